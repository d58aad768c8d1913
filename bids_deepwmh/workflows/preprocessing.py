"""Conform, N4, registration to the template and brain mask."""

from nipype.interfaces import utility as niu
from nipype.pipeline import engine as pe

from bids_deepwmh.core import template
from bids_deepwmh.interfaces.preprocessing import BrainMask, Conform, N4BiasCorrection, RegisterToTemplate


def init_preprocessing_wf(omp_nthreads=1, name="preprocessing_wf"):
    """Inputs: ``in_file`` (a FLAIR).  Outputs on the conformed (RAS+) grid: ``flair``
    (bias-corrected), ``brain_mask``, and the ``forward_transform`` (FLAIR to template) and
    ``inverse_transform``, with the registration ``similarity``."""
    wf = pe.Workflow(name=name)
    inputnode = pe.Node(niu.IdentityInterface(fields=["in_file"]), name="inputnode")
    outputnode = pe.Node(
        niu.IdentityInterface(
            fields=["conformed", "flair", "brain_mask", "forward_transform", "inverse_transform", "similarity"]
        ),
        name="outputnode",
    )
    conform = pe.Node(Conform(), name="conform", mem_gb=1)
    n4 = pe.Node(N4BiasCorrection(), name="n4", n_procs=omp_nthreads, mem_gb=1.5)
    register = pe.Node(
        RegisterToTemplate(template=template.registration_target()),
        name="register", n_procs=omp_nthreads, mem_gb=2,
    )
    brain_mask = pe.Node(BrainMask(template_mask=template.brain_mask()), name="brain_mask", mem_gb=1.5)
    wf.connect([
        (inputnode, conform, [("in_file", "in_file")]),
        (conform, n4, [("out_file", "in_file")]),
        (n4, register, [("out_file", "in_file")]),
        (n4, brain_mask, [("out_file", "in_file")]),
        (register, brain_mask, [("inverse_transform", "inverse_transform")]),
        (conform, outputnode, [("out_file", "conformed")]),
        (n4, outputnode, [("out_file", "flair")]),
        (brain_mask, outputnode, [("out_mask", "brain_mask")]),
        (register, outputnode, [
            ("forward_transform", "forward_transform"),
            ("inverse_transform", "inverse_transform"),
            ("similarity", "similarity"),
        ]),
    ])  # fmt: skip
    return wf
