"""The cohort levels: the participant level's preprocessing for every scan and a reference built
from them; the train level then makes anatomical pseudo-labels and trains a network in two stages,
the reference level writes the reference with an existing network; each into a model bundle."""

from nipype.interfaces import utility as niu
from nipype.pipeline import engine as pe

from bids_deepwmh import DEFAULT_RANDOM_SEED
from bids_deepwmh.interfaces.reference import WriteReferenceBundle
from bids_deepwmh.interfaces.segmentation import AnatomicalWMH
from bids_deepwmh.interfaces.training import TrainModel
from bids_deepwmh.workflows.base import scan_workflow_name
from bids_deepwmh.workflows.preprocessing import init_preprocessing_wf
from bids_deepwmh.workflows.priors import init_priors_wf, init_template_masks, template_mask_connections
from bids_deepwmh.workflows.reference import connect_to_reference, init_reference_wf

PSEUDO_LABEL_PRIORS = ("reference", "wm_probability", "allowed_tissue", "aseg")  # what AnatomicalWMH takes


def init_train_wf(scans, bundle_dir, training_dir, settings=None, command="deepwmh", omp_nthreads=1,
                  use_gpu=False, progress_log=None, reference_scans=None, random_seed=DEFAULT_RANDOM_SEED,
                  name="deepwmh_wf"):
    """``scans``: dicts with the raw ``file``, its ``name``, ``dataset``, ``license`` and ``group``;
    ``reference_scans``: those of them the normal-appearing reference is built from (default: all).

    Per-scan preprocessing is named as at the participant level, so a participant run with the
    same work folder is reused.  Checkpoints go to ``training_dir``; training progress is also
    appended to ``progress_log`` (the run's log file)."""
    wf, reference_wf, scan_wfs = init_cohort_wf(
        scans, reference_scans, omp_nthreads=omp_nthreads, use_gpu=use_gpu, random_seed=random_seed, name=name)
    gathered = {field: pe.Node(niu.Merge(len(scans)), name=f"gather_{field}")
                for field in ("flairs", "brain_masks", "pseudo_labels", "scores")}
    template_masks = init_template_masks()
    train = pe.Node(
        TrainModel(
            scans=provenance(scans), settings=settings or {}, checkpoint_dir=f"{training_dir}/checkpoints", bundle_dir=str(bundle_dir),
            command=command, use_gpu=use_gpu, num_threads=omp_nthreads,
        ),
        name="train_model", n_procs=omp_nthreads, mem_gb=6,
    )
    if progress_log:
        train.inputs.progress_log = str(progress_log)
    for i, scan_wf in enumerate(scan_wfs, start=1):
        priors_wf = init_priors_wf(priors=PSEUDO_LABEL_PRIORS, name=f"{scan_wf.name}_priors_wf")
        pseudo_labels = pe.Node(AnatomicalWMH(), name=f"{scan_wf.name}_pseudo_labels", mem_gb=2)
        wf.connect([
            (template_masks, priors_wf, template_mask_connections(PSEUDO_LABEL_PRIORS)),
            (scan_wf, priors_wf, [
                ("preprocessing_wf.outputnode.flair", "inputnode.flair"),
                ("preprocessing_wf.outputnode.inverse_transform", "inputnode.inverse_transform"),
            ]),
            (reference_wf, priors_wf, [("outputnode.reference", "inputnode.reference")]),
            (scan_wf, pseudo_labels, [
                ("preprocessing_wf.outputnode.flair", "in_file"),
                ("preprocessing_wf.outputnode.brain_mask", "brain_mask"),
            ]),
            (priors_wf, pseudo_labels, [(f"outputnode.{prior}", prior) for prior in PSEUDO_LABEL_PRIORS]),
            (scan_wf, gathered["flairs"], [("preprocessing_wf.outputnode.flair", f"in{i}")]),
            (scan_wf, gathered["brain_masks"], [("preprocessing_wf.outputnode.brain_mask", f"in{i}")]),
            (pseudo_labels, gathered["pseudo_labels"], [("wmh_mask", f"in{i}")]),
            (pseudo_labels, gathered["scores"], [("network_score", f"in{i}")]),
        ])  # fmt: skip
    wf.connect([
        (reference_wf, train, [("outputnode.reference", "reference_file")]),
        *[(node, train, [("out", field)]) for field, node in gathered.items()],
    ])  # fmt: skip
    return wf


def provenance(scans):
    """The scans as the bundle's card names them: every field but the raw ``file``, as text."""
    return [{k: str(v) for k, v in s.items() if k != "file"} for s in scans]


def init_cohort_wf(scans, reference_scans=None, *, omp_nthreads=1, use_gpu=False, random_seed=DEFAULT_RANDOM_SEED,
                   name="deepwmh_wf"):
    """``(wf, reference_wf, scan_wfs)``: every scan's preprocessing (named as at the participant
    level, so that a participant run with the same work folder is reused) and the normal-appearing
    reference built from ``reference_scans`` (default: all), the start of both cohort levels."""
    wf = pe.Workflow(name=name)
    reference_scans = scans if reference_scans is None else reference_scans
    reference_index = {s["name"]: i for i, s in enumerate(reference_scans, start=1)}
    reference_wf = init_reference_wf(
        len(reference_index), list(reference_index),
        metadata={"Licenses": {s["name"]: f"{s['dataset']}: {s['license']}" for s in reference_scans}},
    )
    scan_wfs = []
    for scan in scans:
        scan_wf = pe.Workflow(name=scan_workflow_name(scan["file"]))
        preprocessing_wf = init_preprocessing_wf(omp_nthreads=omp_nthreads, use_gpu=use_gpu, random_seed=random_seed)
        preprocessing_wf.inputs.inputnode.in_file = str(scan["file"])
        scan_wf.add_nodes([preprocessing_wf])
        if scan["name"] in reference_index:
            connect_to_reference(wf, scan_wf, reference_wf, reference_index[scan["name"]], prefix="preprocessing_wf.")
        else:
            wf.add_nodes([scan_wf])
        scan_wfs.append(scan_wf)
    return wf, reference_wf, scan_wfs


def init_reference_level_wf(scans, bundle_dir, base_bundle, command="deepwmh", omp_nthreads=1, use_gpu=False,
                            random_seed=DEFAULT_RANDOM_SEED, name="deepwmh_wf"):
    """The reference level: the normal-appearing reference of ``scans``, written with the network
    of ``base_bundle`` (a loaded bundle) as a new bundle in ``bundle_dir`` (on every run: a bundle
    deleted since is written again)."""
    wf, reference_wf, _ = init_cohort_wf(scans, omp_nthreads=omp_nthreads, use_gpu=use_gpu, random_seed=random_seed,
                                         name=name)
    write = pe.Node(
        WriteReferenceBundle(
            scans=provenance(scans), base_bundle=str(base_bundle.path), bundle_dir=str(bundle_dir), command=command,
        ),
        name="write_bundle", run_without_submitting=True, overwrite=True,
    )
    wf.connect(reference_wf, "outputnode.reference", write, "reference_file")
    return wf
