"""Segmentation: the anatomical-knowledge stage, the trained network, the regional split, volumes."""

from nipype.interfaces import utility as niu
from nipype.pipeline import engine as pe

from bids_deepwmh.interfaces.segmentation import AnatomicalWMH, LearnedWMH, RegionalWMH, WMHVolumes


def init_segmentation_wf(bundle, *, use_gpu=False, mirror=False, name="segmentation_wf"):
    """Inputs: ``flair``, ``brain_mask``, ``inverse_transform`` and, from the priors on the FLAIR,
    the ``reference``, ``wm_probability``, ``allowed_tissue``, ``wmh_tissue`` and ``aseg``.
    Outputs on the FLAIR's (conformed) grid: ``wmh_mask`` and ``probseg`` from the network of
    ``bundle``, kept to the ``wmh_tissue`` (with ``outside_tissue_ml``, what the network found
    elsewhere), ``anatomical_mask`` and ``score`` from the anatomical stage with the ``normalised``
    FLAIR it scored and the ``unnulled_slice_count`` (lowest slices whose CSF is not nulled, where
    neither stage calls WMH), the ``regions`` dseg (periventricular, deep, ventricles, infratentorial) with
    its ``regions_table``, the ``lesions`` table and ``volumes`` (a one-row TSV of the final mask,
    in total and by region, with its Fazekas grades)."""
    wf = pe.Workflow(name=name)
    inputnode = pe.Node(
        niu.IdentityInterface(fields=["flair", "brain_mask", "inverse_transform", "reference", "wm_probability",
                                      "allowed_tissue", "wmh_tissue", "aseg"]),
        name="inputnode",
    )
    outputnode = pe.Node(
        niu.IdentityInterface(fields=["wmh_mask", "probseg", "outside_tissue_ml", "anatomical_mask", "score",
                                      "normalised", "unnulled_slice_count", "regions", "regions_table", "lesions",
                                      "volumes"]),
        name="outputnode",
    )
    anatomical = pe.Node(AnatomicalWMH(), name="anatomical_wmh", mem_gb=2)
    learned = pe.Node(
        LearnedWMH(model=str(bundle.path), use_gpu=use_gpu, mirror=mirror),
        name="learned_wmh", mem_gb=3,
    )
    regional = pe.Node(RegionalWMH(), name="regional_wmh", mem_gb=2)
    volumes = pe.Node(WMHVolumes(), name="volumes")
    wf.connect([
        (inputnode, anatomical, [("flair", "in_file"), ("brain_mask", "brain_mask"), ("reference", "reference"),
                                 ("wm_probability", "wm_probability"), ("allowed_tissue", "allowed_tissue"),
                                 ("aseg", "aseg")]),
        (inputnode, learned, [("flair", "in_file"), ("brain_mask", "brain_mask"), ("wmh_tissue", "tissue")]),
        (inputnode, regional, [("brain_mask", "brain_mask"), ("inverse_transform", "inverse_transform"),
                               ("aseg", "aseg")]),
        (anatomical, regional, [("normalised", "normalised")]),
        (learned, regional, [("wmh_mask", "wmh_mask"), ("probseg", "probseg")]),
        (inputnode, volumes, [("brain_mask", "brain_mask"), ("aseg", "aseg")]),
        (regional, volumes, [("regions", "regions"), ("lesions", "lesions")]),
        (learned, outputnode, [("wmh_mask", "wmh_mask"), ("probseg", "probseg"),
                               ("outside_tissue_ml", "outside_tissue_ml")]),
        (anatomical, learned, [("score", "score"), ("network_score", "network_score"),
                               ("unnulled_slices", "unnulled_slices")]),
        (anatomical, outputnode, [("wmh_mask", "anatomical_mask"), ("score", "score"),
                                  ("normalised", "normalised"), ("unnulled_slice_count", "unnulled_slice_count")]),
        (regional, outputnode, [("regions", "regions"), ("regions_table", "regions_table"), ("lesions", "lesions")]),
        (volumes, outputnode, [("out_tsv", "volumes")]),
    ])  # fmt: skip
    return wf
