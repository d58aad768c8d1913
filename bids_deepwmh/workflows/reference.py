"""Build the normal-appearing reference from a cohort, with the participant level's nodes."""

from nipype.interfaces import utility as niu
from nipype.pipeline import engine as pe

from bids_deepwmh.core import template
from bids_deepwmh.interfaces.reference import BuildReference
from bids_deepwmh.interfaces.utils import ApplyTransform
from bids_deepwmh.workflows.base import scan_workflow_name
from bids_deepwmh.workflows.preprocessing import init_preprocessing_wf


def init_reference_wf(flair_files, out_file, metadata=None, omp_nthreads=1, source_names=None,
                      name="reference_wf"):
    """Preprocess every FLAIR, bring it to the template, and build the reference there.

    ``source_names`` name the scans in the reference's metadata (default: their paths)."""
    wf = pe.Workflow(name=name)
    resolution = template.REGISTRATION_RESOLUTION
    grid = template.brain_mask(resolution)
    n = len(flair_files)
    flairs = pe.Node(niu.Merge(n), name="flairs")
    masks = pe.Node(niu.Merge(n), name="brain_masks")
    build = pe.Node(
        BuildReference(
            source_files=[str(f) for f in (source_names or flair_files)],
            template_mask=grid,
            wm_probability=template.tissue_probability("WM", resolution),
            out_file=str(out_file),
            metadata=metadata or {},
        ),
        name="build_reference", mem_gb=4,
    )
    for i, flair_file in enumerate(flair_files, start=1):
        scan_name = scan_workflow_name(flair_file)
        preprocessing_wf = init_preprocessing_wf(omp_nthreads=omp_nthreads, name=f"{scan_name}_preproc")
        preprocessing_wf.inputs.inputnode.in_file = str(flair_file)
        flair_to_template = pe.Node(ApplyTransform(reference=grid), name=f"{scan_name}_flair_to_template")
        mask_to_template = pe.Node(ApplyTransform(reference=grid), name=f"{scan_name}_mask_to_template")
        wf.connect([
            (preprocessing_wf, flair_to_template, [
                ("outputnode.flair", "in_file"), ("outputnode.forward_transform", "transform"),
            ]),
            (preprocessing_wf, mask_to_template, [
                ("outputnode.brain_mask", "in_file"), ("outputnode.forward_transform", "transform"),
            ]),
            (flair_to_template, flairs, [("out_file", f"in{i}")]),
            (mask_to_template, masks, [("out_file", f"in{i}")]),
        ])  # fmt: skip
    wf.connect([
        (flairs, build, [("out", "flairs")]),
        (masks, build, [("out", "brain_masks")]),
    ])  # fmt: skip
    return wf
