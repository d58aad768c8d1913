"""The anatomical-knowledge WMH stage and its volumes table."""

from nipype.interfaces import utility as niu
from nipype.pipeline import engine as pe

from bids_deepwmh.core import template
from bids_deepwmh.interfaces.segmentation import AnatomicalWMH, WMHVolumes


def init_anatomical_wmh_wf(reference_file, name="anatomical_wmh_wf"):
    """Inputs: ``flair``, ``brain_mask``, ``inverse_transform``.  Outputs: ``wmh_mask``,
    ``score`` and ``volumes`` (a one-row TSV), all on the FLAIR's (conformed) grid."""
    wf = pe.Workflow(name=name)
    inputnode = pe.Node(
        niu.IdentityInterface(fields=["flair", "brain_mask", "inverse_transform"]), name="inputnode"
    )
    outputnode = pe.Node(niu.IdentityInterface(fields=["wmh_mask", "score", "volumes"]), name="outputnode")
    anatomical = pe.Node(
        AnatomicalWMH(
            reference_file=str(reference_file),
            wm_probability=template.tissue_probability("WM"),
            aseg=template.aseg(),
        ),
        name="anatomical_wmh", mem_gb=2,
    )
    volumes = pe.Node(WMHVolumes(), name="volumes")
    wf.connect([
        (inputnode, anatomical, [
            ("flair", "in_file"), ("brain_mask", "brain_mask"), ("inverse_transform", "inverse_transform"),
        ]),
        (inputnode, volumes, [("brain_mask", "brain_mask")]),
        (anatomical, volumes, [("wmh_mask", "wmh_mask")]),
        (anatomical, outputnode, [("wmh_mask", "wmh_mask"), ("score", "score")]),
        (volumes, outputnode, [("out_tsv", "volumes")]),
    ])  # fmt: skip
    return wf
