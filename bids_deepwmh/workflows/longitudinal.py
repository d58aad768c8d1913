"""The longitudinal graph, run after the cross-sectional one: one branch per participant's series
of sessions, reading each compared session's derivatives."""

from nipype.pipeline import engine as pe

from bids_deepwmh import DEFAULT_RANDOM_SEED, TEMPLATE
from bids_deepwmh.core import template
from bids_deepwmh.core.longitudinal import (
    CHANGE_LABELS,
    CHANGE_Z,
    ENLARGING_FRACTION,
    MIN_CHANGE_MM3,
)
from bids_deepwmh.interfaces.bids import DerivativesDataSink
from bids_deepwmh.interfaces.longitudinal import ConsistentWMH, LongitudinalTable, SubjectSpace, WMHChange
from bids_deepwmh.interfaces.reports import LongitudinalFigure, LongitudinalSummary, VolumeCurve
from bids_deepwmh.interfaces.utils import ApplyTransform
from bids_deepwmh.utils.bids import derivative_path
from bids_deepwmh.utils.status import SERIES_ATTRIBUTE
from bids_deepwmh.workflows.outputs import VOLUMES_SIDECAR

CHANGE_RULE = (
    "Lesions are the 26-connected components of the union of the two sessions' consistent WMH masks in subject "
    "space; a lesion is new (absent before), disappeared (absent after), enlarging or shrinking (by at least "
    f"{ENLARGING_FRACTION:.0%} of its former volume and at least {MIN_CHANGE_MM3:g} mm3), else stable. In a lesion "
    f"of both sessions, every piece of at least {MIN_CHANGE_MM3:g} mm3 it gained is labelled enlarging and every "
    "piece it lost shrinking, whatever the lesion's class."
)
CONSISTENT_DESCRIPTION = (
    "WMH judged with the participant's other sessions in view, in subject space: where a lesion's summed "
    f"FLAIR change between consecutive sessions is within {CHANGE_Z:g} SDs of what unchanged tissue shows, the "
    "sessions share the label of their mean WMH evidence; where it changed, each keeps its own."
)
CHANGE_TABLE_SIDECAR = {
    "lesion_id": {"Description": "Lesion number, largest first (26-connected components of the union of the "
                  "two sessions' consistent WMH masks, subject space)"},
    "change": {"Description": "How the lesion changed since the previous session",
               "Levels": {name: name for name in CHANGE_LABELS.values()}},
    "volume_before_mm3": {"Description": "Lesion volume in the previous session", "Units": "mm^3"},
    "volume_after_mm3": {"Description": "Lesion volume in this session", "Units": "mm^3"},
    "changed_mm3": {"Description": "Volume of its voxels labelled new, enlarging (gained), shrinking (lost) or "
                    "disappeared (former) in the change dseg (subject space)", "Units": "mm^3"},
    "region": {"Description": "infratentorial when most of its voxels lie in the template's brainstem and "
               "cerebellum, else periventricular when most lie within 10 mm of the lateral ventricles' wall, else deep"},
    **{f"subject_{a}_mm": {"Description": f"Centroid, subject-space {a} coordinate", "Units": "mm"} for a in "xyz"},
    **{f"native_{a}_mm": {"Description": f"Centroid, this session's scanner {a} coordinate (RAS)", "Units": "mm"}
       for a in "xyz"},
}
LONGITUDINAL_SIDECAR = {
    "session_id": {"Description": "Session, in time order"},
    "acq_time": {"Description": "The session's acq_time in sessions.tsv"},
    "years_since_first": {"Description": "Years since the first compared session (from acq_time)", "Units": "year"},
    "status": {"Description": "compared, or skipped (see reason)"},
    "reason": {"Description": "Why a session was skipped: its scan failed, or it was flagged out of distribution"},
    **{key: {**value, "Description": value["Description"] + " (consistent segmentation, subject space)"}
       for key, value in VOLUMES_SIDECAR.items()},
    "cross_sectional_wmh_volume_ml": {"Description": "Total WMH volume of the session's own segmentation "
                                      "(label-WMH_morph.tsv)", "Units": "mL"},
    "compared_with": {"Description": "The previous compared session, that the change columns are against"},
    **{key: value for name in ("new", "enlarging", "shrinking", "disappeared") for key, value in (
        (f"{name}_wmh_count", {"Description": f"Number of lesions classed {name} since the previous compared "
                               "session"}),
        (f"{name}_wmh_volume_ml", {"Description": f"Volume of the voxels labelled {name} in the change dseg "
                                   "(subject space)", "Units": "mL"}),
    )},
    "stable_wmh_count": {"Description": "Number of stable lesions since the previous compared session"},
}


CHANGE_DESCRIPTION = (
    "WMH change since the previous compared session (ComparedWith), on this FLAIR's grid: 1 new, 2 enlarging (voxels "
    "a lesion gained), 3 shrinking (voxels a lesion lost), 4 disappeared (a lesion's former voxels), 5 stable (the "
    "rest of every lesion). " + CHANGE_RULE
)


def _pick(items, index):
    return items[index]


def session_inputs(output_dir, sources):
    """Each compared session's derivatives the longitudinal branch reads, as lists by name."""
    wanted = {"flairs": {"desc": "preproc", "suffix": "FLAIR"}, "brain_masks": {"desc": "brain", "suffix": "mask"},
              "probsegs": {"label": "WMH", "suffix": "probseg"}, "wmh_masks": {"label": "WMH", "suffix": "mask"},
              "regions": {"desc": "wmhregions", "suffix": "dseg"}}
    paths = {name: [str(derivative_path(output_dir, s, extension=".nii.gz", **e)) for s in sources]
             for name, e in wanted.items()}
    paths["cross_sectional"] = [str(derivative_path(output_dir, s, label="WMH", suffix="morph", extension=".tsv"))
                                for s in sources]
    paths["from_template"] = [str(derivative_path(output_dir, s, mode="image", suffix="xfm", extension=".h5",
                                                  **{"from": TEMPLATE, "to": "FLAIR"})) for s in sources]
    return paths


def series_path(output_dir, series, **entities):
    """Where a derivative of a whole series (no session) with ``entities`` is written: named after
    the entities its FLAIRs share, as the sinks name it."""
    from bids.layout import parse_file_entities

    from bids_deepwmh.utils.sessions import SERIES_ENTITIES

    found = [parse_file_entities(scan.source) for scan in series.scans]
    shared = {k: found[0][k] for k in SERIES_ENTITIES
              if k in found[0] and all(e.get(k) == found[0][k] for e in found)}
    source = f"sub-{series.subject}/anat/sub-{series.subject}_FLAIR.nii.gz"
    return derivative_path(output_dir, source, **shared, **entities)


def longitudinal_table_path(output_dir, series):
    """Where the series' ``desc-longitudinal_morph.tsv`` is written."""
    return series_path(output_dir, series, desc="longitudinal", suffix="morph", extension=".tsv")


def init_longitudinal_wf(series_list, output_dir, *, random_seed=DEFAULT_RANDOM_SEED, name="longitudinal_wf"):
    """One independent branch per :class:`~bids_deepwmh.utils.sessions.Series` with two or more
    compared sessions."""
    wf = pe.Workflow(name=name)
    # Its inputs are derivatives, which the cross-sectional graph writes again on every run (same
    # content, new times): hashed by content, a rerun resumes.
    wf.config["execution"] = {"hash_method": "content"}
    wf.add_nodes([init_series_wf(series, output_dir, random_seed=random_seed) for series in series_list])
    return wf


def init_series_wf(series, output_dir, *, random_seed=DEFAULT_RANDOM_SEED, name=None):
    """The subject space, the consistent segmentation, the change between consecutive compared
    sessions, the table and the figures of one series."""
    wf = pe.Workflow(name=name or f"{series.name}_wf")
    compared = series.usable
    sources = [scan.source for scan in compared]
    every_source = [scan.source for scan in series.scans]
    inputs = session_inputs(output_dir, sources)
    subject_space = pe.Node(SubjectSpace(flairs=inputs["flairs"], brain_masks=inputs["brain_masks"],
                                         random_seed=random_seed), name="subject_space", mem_gb=2)
    aseg = pe.Node(ApplyTransform(in_file=template.aseg(), reference=inputs["flairs"][0],
                                  transform=inputs["from_template"][0], interpolation="genericLabel"),
                   name="aseg_to_first_session", mem_gb=1)
    consistent = pe.Node(ConsistentWMH(**{k: inputs[k] for k in ("flairs", "brain_masks", "probsegs", "wmh_masks",
                                                                   "regions")}), name="consistent_wmh", mem_gb=4)
    change = pe.Node(WMHChange(session_grids=inputs["flairs"]), name="wmh_change", mem_gb=2)
    table = pe.Node(LongitudinalTable(
        sessions=[{"session_id": s.label, "acq_time": s.acq_time, "reason": s.reason} for s in series.scans],
        cross_sectional=inputs["cross_sectional"]), name="longitudinal_table")
    figure = pe.Node(LongitudinalFigure(labels=[f"ses-{s.label}" for s in compared]), name="change_figure", mem_gb=1)
    curve = pe.Node(VolumeCurve(), name="volume_curve")
    summary = pe.Node(LongitudinalSummary(), name="summary")

    def sink(node_name, source_file, **entities):
        """A derivatives sink named after ``source_file`` (a list: their shared entities)."""
        return pe.Node(DerivativesDataSink(base_directory=str(output_dir), source_file=source_file, **entities),
                       name=node_name, run_without_submitting=True)

    mean_flair = series_path(output_dir, series, space="subject", desc="mean", suffix="FLAIR", extension=".nii.gz")
    in_subject_space = {"SpatialReference": f"bids::{mean_flair.relative_to(output_dir)}"}
    for k, scan in enumerate(compared):
        session = f"ses_{scan.label}"
        ds_transform = sink(f"ds_transform_{session}", scan.source, suffix="xfm", extension=".txt", mode="image",
                            Description="ITK affine (rigid unless the brains' volumes differ) from this FLAIR to the "
                            "participant's subject space (space-subject): the compared sessions' mean position",
                            **{"from": "FLAIR", "to": "subject"})
        ds_mask = sink(f"ds_mask_{session}", scan.source, space="subject", label="WMH", desc="longitudinal",
                       suffix="mask", compress=True, Type="Lesion", Description=CONSISTENT_DESCRIPTION,
                       **in_subject_space)
        wf.connect([
            (subject_space, ds_transform, [(("transforms", _pick, k), "in_file")]),
            (consistent, ds_mask, [(("wmh_masks", _pick, k), "in_file")]),
        ])  # fmt: skip
        if k == 0:
            continue
        ds_change = sink(f"ds_change_{session}", scan.source, desc="wmhchange", suffix="dseg", compress=True,
                         ComparedWith=f"ses-{compared[k - 1].label}", Description=CHANGE_DESCRIPTION)
        ds_labels = sink(f"ds_change_labels_{session}", scan.source, desc="wmhchange", suffix="dseg",
                         extension=".tsv")
        ds_lesions = sink(f"ds_change_lesions_{session}", scan.source, desc="wmhchange", suffix="morph",
                          extension=".tsv", **CHANGE_TABLE_SIDECAR)
        wf.connect([
            (change, ds_change, [(("dsegs", _pick, k - 1), "in_file")]),
            (change, ds_labels, [(("labels", _pick, k - 1), "in_file")]),
            (change, ds_lesions, [(("tables", _pick, k - 1), "in_file")]),
        ])  # fmt: skip

    ds_table = sink("ds_table", every_source, desc="longitudinal", suffix="morph", extension=".tsv",
                    **LONGITUDINAL_SIDECAR)
    ds_mean = sink("ds_mean_flair", every_source, space="subject", desc="mean", suffix="FLAIR", compress=True,
                   SkullStripped=False, **in_subject_space,
                   Description="Mean of the compared sessions' bias-corrected FLAIRs in subject space (each divided by "
                   "its normal-appearing tissue's median): the participant's subject space, the sessions' mean "
                   "position, that the from-FLAIR_to-subject transforms map to")
    ds_figure = sink("ds_change_figure", every_source, datatype="figures", desc="wmhchange", suffix="dseg",
                     extension=".svg")
    ds_curve = sink("ds_volume_curve", every_source, datatype="figures", desc="longitudinal", suffix="morph",
                    extension=".svg")
    ds_summary = sink("ds_summary", every_source, datatype="figures", desc="longitudinal", suffix="morph",
                      extension=".html")
    wf.connect([
        (subject_space, consistent, [("transforms", "transforms"), ("reference", "reference")]),
        (aseg, consistent, [("out_file", "aseg")]),
        (subject_space, change, [("transforms", "transforms")]),
        (consistent, change, [("regions", "regions"), ("aseg", "aseg")]),
        (consistent, table, [("regions", "regions"), ("brain_masks", "brain_masks"), ("aseg", "aseg")]),
        (change, table, [("tables", "change_tables"), ("subject_dsegs", "change_dsegs")]),
        (consistent, figure, [("flairs", "flairs"), ("brain_masks", "brain_masks"), ("wmh_masks", "wmh_masks")]),
        (change, figure, [("subject_dsegs", "change_dsegs")]),
        (table, curve, [("out_tsv", "table")]),
        (table, summary, [("out_tsv", "table")]),
        (consistent, ds_mean, [("mean_flair", "in_file")]),
        (table, ds_table, [("out_tsv", "in_file")]),
        (figure, ds_figure, [("out_report", "in_file")]),
        (curve, ds_curve, [("out_report", "in_file")]),
        (summary, ds_summary, [("out_report", "in_file")]),
    ])  # fmt: skip
    for node_name in wf.list_node_names():
        setattr(wf.get_node(node_name), SERIES_ATTRIBUTE, str(longitudinal_table_path(output_dir, series)))
    return wf
