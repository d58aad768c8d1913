"""Segmentation: the anatomical-knowledge stage, the trained network, the regional split, volumes."""

from nipype.interfaces import utility as niu
from nipype.pipeline import engine as pe

from bids_deepwmh.core import template
from bids_deepwmh.interfaces.segmentation import AnatomicalWMH, LearnedWMH, RegionalWMH, WMHTissue, WMHVolumes
from bids_deepwmh.interfaces.utils import ApplyTransform


def init_segmentation_wf(bundle, *, use_gpu=False, mirror=False, name="segmentation_wf"):
    """Inputs: ``flair``, ``brain_mask``, ``inverse_transform``.  Outputs on the FLAIR's
    (conformed) grid: ``wmh_mask`` and ``probseg`` from the network of ``bundle``, kept to the
    ``tissue`` where WMH can be (with ``outside_tissue_ml``, what the network found elsewhere),
    ``anatomical_mask`` and ``score`` from the anatomical stage, the ``regions`` dseg
    (periventricular, deep, ventricles) with its ``regions_table``, the ``lesions`` table,
    ``volumes`` (a one-row TSV of the final mask, in total and by region), and the template's
    ``wm_probability`` and ``aseg`` brought to the FLAIR once for every later step."""
    wf = pe.Workflow(name=name)
    inputnode = pe.Node(
        niu.IdentityInterface(fields=["flair", "brain_mask", "inverse_transform"]), name="inputnode"
    )
    outputnode = pe.Node(
        niu.IdentityInterface(fields=["wmh_mask", "probseg", "tissue", "outside_tissue_ml", "anatomical_mask",
                                      "score", "regions",
                                      "regions_table", "lesions", "volumes", "wm_probability", "aseg"]),
        name="outputnode",
    )
    anatomical = pe.Node(
        AnatomicalWMH(
            reference_file=str(bundle.reference_file),
            wm_probability=template.tissue_probability("WM"),
            aseg=template.aseg(),
        ),
        name="anatomical_wmh", mem_gb=2,
    )
    learned = pe.Node(
        LearnedWMH(model=str(bundle.path), use_gpu=use_gpu, mirror=mirror),
        name="learned_wmh", mem_gb=3,
    )
    tissue = pe.Node(
        WMHTissue(wm_probability=template.tissue_probability("WM"), aseg=template.aseg()), name="wmh_tissue", mem_gb=1
    )
    wm_on_flair = pe.Node(ApplyTransform(in_file=template.tissue_probability("WM")), name="wm_on_flair")
    aseg_on_flair = pe.Node(ApplyTransform(in_file=template.aseg(), interpolation="genericLabel"),
                            name="aseg_on_flair")
    regional = pe.Node(RegionalWMH(), name="regional_wmh", mem_gb=2)
    volumes = pe.Node(WMHVolumes(), name="volumes")
    wf.connect([
        (inputnode, anatomical, [
            ("flair", "in_file"), ("brain_mask", "brain_mask"), ("inverse_transform", "inverse_transform"),
        ]),
        (inputnode, tissue, [("flair", "reference"), ("inverse_transform", "inverse_transform")]),
        (inputnode, learned, [("flair", "in_file"), ("brain_mask", "brain_mask")]),
        (tissue, learned, [("out_mask", "tissue")]),
        (inputnode, regional, [
            ("flair", "in_file"), ("brain_mask", "brain_mask"), ("inverse_transform", "inverse_transform"),
        ]),
        (inputnode, wm_on_flair, [("flair", "reference"), ("inverse_transform", "transform")]),
        (inputnode, aseg_on_flair, [("flair", "reference"), ("inverse_transform", "transform")]),
        (wm_on_flair, regional, [("out_file", "wm_probability")]),
        (aseg_on_flair, regional, [("out_file", "aseg")]),
        (learned, regional, [("wmh_mask", "wmh_mask"), ("probseg", "probseg")]),
        (inputnode, volumes, [("brain_mask", "brain_mask")]),
        (regional, volumes, [("regions", "regions"), ("lesions", "lesions")]),
        (learned, outputnode, [("wmh_mask", "wmh_mask"), ("probseg", "probseg"),
                               ("outside_tissue_ml", "outside_tissue_ml")]),
        (tissue, outputnode, [("out_mask", "tissue")]),
        (anatomical, outputnode, [("wmh_mask", "anatomical_mask"), ("score", "score")]),
        (regional, outputnode, [("regions", "regions"), ("regions_table", "regions_table"), ("lesions", "lesions")]),
        (wm_on_flair, outputnode, [("out_file", "wm_probability")]),
        (aseg_on_flair, outputnode, [("out_file", "aseg")]),
        (volumes, outputnode, [("out_tsv", "volumes")]),
    ])  # fmt: skip
    if bundle.uses_score:
        wf.connect(anatomical, "score", learned, "score")
    return wf
