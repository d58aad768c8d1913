"""Conform, brain extraction, N4 and registration to the template."""

from nipype.interfaces import utility as niu
from nipype.pipeline import engine as pe

from bids_deepwmh import DEFAULT_RANDOM_SEED
from bids_deepwmh.core import template
from bids_deepwmh.interfaces.preprocessing import BrainExtraction, Conform, N4BiasCorrection, RegisterToTemplate


def init_preprocessing_wf(*, omp_nthreads=1, use_gpu=False, random_seed=DEFAULT_RANDOM_SEED,
                          name="preprocessing_wf"):
    """Inputs: ``in_file`` (a FLAIR).  Outputs on the conformed (RAS+) grid: ``flair``
    (bias-corrected), ``brain_mask`` (with its sidecar ``brain_mask_metadata``), and the
    ``forward_transform`` (FLAIR to template) and ``inverse_transform``, with the registration
    ``similarity``.  ANTs (N4, registration) runs on one thread with ``random_seed``: the same
    input then gives the same transforms, bit for bit.  The registration takes the brain before
    bias correction (its metric, mutual information on the coarse levels it runs, barely sees a
    smooth bias), so that N4 and the registration run side by side on two cores."""
    wf = pe.Workflow(name=name)
    inputnode = pe.Node(niu.IdentityInterface(fields=["in_file"]), name="inputnode")
    outputnode = pe.Node(
        niu.IdentityInterface(
            fields=["conformed", "flair", "brain_mask", "brain_mask_metadata", "forward_transform",
                    "inverse_transform", "similarity"]
        ),
        name="outputnode",
    )
    conform = pe.Node(Conform(), name="conform", mem_gb=1)
    brain_extraction = pe.Node(
        BrainExtraction(template=template.registration_target(), template_mask=template.brain_mask(),
                        use_gpu=use_gpu, num_threads=omp_nthreads, random_seed=random_seed),
        name="brain_extraction", n_procs=omp_nthreads, mem_gb=3,
    )
    n4 = pe.Node(N4BiasCorrection(), name="n4", mem_gb=1.5)
    register = pe.Node(
        RegisterToTemplate(template=template.registration_target(), random_seed=random_seed),
        name="register", mem_gb=2,
    )
    wf.connect([
        (inputnode, conform, [("in_file", "in_file")]),
        (conform, brain_extraction, [("out_file", "in_file")]),
        (conform, n4, [("out_file", "in_file")]),
        (brain_extraction, n4, [("out_mask", "brain_mask")]),
        (conform, register, [("out_file", "in_file")]),
        (brain_extraction, register, [("out_mask", "brain_mask")]),
        (conform, outputnode, [("out_file", "conformed")]),
        (n4, outputnode, [("out_file", "flair")]),
        (brain_extraction, outputnode, [("out_mask", "brain_mask"), ("metadata", "brain_mask_metadata")]),
        (register, outputnode, [
            ("forward_transform", "forward_transform"),
            ("inverse_transform", "inverse_transform"),
            ("similarity", "similarity"),
        ]),
    ])  # fmt: skip
    return wf
