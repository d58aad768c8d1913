"""Build the normal-appearing reference from preprocessed scans, in template space."""

from nipype.interfaces import utility as niu
from nipype.pipeline import engine as pe

from bids_deepwmh.core import template
from bids_deepwmh.interfaces.reference import BuildReference
from bids_deepwmh.interfaces.utils import ApplyTransform


def init_reference_wf(count, source_names, out_file="reference.nii.gz", metadata=None, name="reference_wf"):
    """Inputs ``flair_<i>``, ``brain_mask_<i>`` and ``forward_transform_<i>`` (i = 1..count, on
    the FLAIRs' grids); output ``reference`` (``out_file``; relative: in the node's folder)."""
    wf = pe.Workflow(name=name)
    fields = [f"{kind}_{i}" for i in range(1, count + 1) for kind in ("flair", "brain_mask", "forward_transform")]
    inputnode = pe.Node(niu.IdentityInterface(fields=fields), name="inputnode")
    outputnode = pe.Node(niu.IdentityInterface(fields=["reference"]), name="outputnode")
    grid = template.brain_mask(template.REGISTRATION_RESOLUTION)
    flairs = pe.Node(niu.Merge(count), name="flairs")
    masks = pe.Node(niu.Merge(count), name="brain_masks")
    build = pe.Node(
        BuildReference(
            source_files=[str(s) for s in source_names],
            template_mask=grid,
            wm_probability=template.tissue_probability("WM", template.REGISTRATION_RESOLUTION),
            out_file=str(out_file),
            metadata=metadata or {},
        ),
        name="build_reference", mem_gb=4,
    )
    build.config = {"execution": {"remove_unnecessary_outputs": False}}  # the sidecar goes with the image
    for i in range(1, count + 1):
        for kind, merge in (("flair", flairs), ("brain_mask", masks)):
            to_template = pe.Node(ApplyTransform(reference=grid), name=f"{kind}_{i}_to_template")
            wf.connect([
                (inputnode, to_template, [(f"{kind}_{i}", "in_file"), (f"forward_transform_{i}", "transform")]),
                (to_template, merge, [("out_file", f"in{i}")]),
            ])  # fmt: skip
    wf.connect([
        (flairs, build, [("out", "flairs")]),
        (masks, build, [("out", "brain_masks")]),
        (build, outputnode, [("out_file", "reference")]),
    ])  # fmt: skip
    return wf


def connect_to_reference(wf, source_wf, reference_wf, i, prefix=""):
    """Feed scan ``i``'s preprocessed FLAIR, brain mask and transform to the reference
    (``prefix``: where the preprocessing workflow sits inside ``source_wf``)."""
    wf.connect([
        (source_wf, reference_wf, [
            (f"{prefix}outputnode.flair", f"inputnode.flair_{i}"),
            (f"{prefix}outputnode.brain_mask", f"inputnode.brain_mask_{i}"),
            (f"{prefix}outputnode.forward_transform", f"inputnode.forward_transform_{i}"),
        ]),
    ])  # fmt: skip
