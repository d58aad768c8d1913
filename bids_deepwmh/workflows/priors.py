"""The template's priors brought onto the FLAIR, each once, for every later step."""

from nipype.interfaces import utility as niu
from nipype.pipeline import engine as pe

from bids_deepwmh.core import template
from bids_deepwmh.interfaces.priors import TemplateMasks
from bids_deepwmh.interfaces.utils import ApplyTransform

MASKS = ("allowed_tissue", "wmh_tissue", "right_hemisphere")  # made in template space by TemplateMasks, once
PRIORS = (  # in this order: those the segmentation waits for come first
    "reference", "wm_probability", "allowed_tissue", "wmh_tissue", "aseg", "gm_probability", "template_brain",
    "right_hemisphere", "template_t1w",
)


def init_template_masks(name="template_masks"):
    """The template-space masks of ``MASKS``: one node per run, for every scan's ``priors_wf``."""
    return pe.Node(TemplateMasks(wm_probability=template.tissue_probability("WM"), aseg=template.aseg()), name=name)


def template_mask_connections(priors=PRIORS, prefix=""):
    """Connections from :func:`init_template_masks` to a ``priors_wf`` making ``priors`` (whose
    input node is ``prefix`` + ``inputnode`` from where the connection is made)."""
    return [(mask, f"{prefix}inputnode.{mask}") for mask in MASKS if mask in priors]


def init_priors_wf(*, priors=PRIORS, name="priors_wf"):
    """Inputs: ``flair`` (its grid), ``inverse_transform`` (template to FLAIR), ``reference``
    (the normal-appearing reference, in template space) and the template-space masks of ``MASKS``
    (from :func:`init_template_masks`).  Outputs, on the FLAIR's grid: ``wm_probability``,
    ``gm_probability``, ``aseg``, the ``template_brain`` mask and ``template_t1w``;
    ``allowed_tissue`` (where the anatomical stage may call WMH), ``wmh_tissue`` (where the
    network's WMH are kept) and ``right_hemisphere``; the ``reference`` (expected, spread); only
    those named in ``priors``.  Masks are resampled linearly and kept at >= 0.5; each warp is a
    node of its own, so that they share the cores."""
    wf = pe.Workflow(name=name)
    inputnode = pe.Node(niu.IdentityInterface(fields=["flair", "inverse_transform", "reference", *MASKS]),
                        name="inputnode")
    outputnode = pe.Node(niu.IdentityInterface(fields=list(priors)), name="outputnode")
    template_files = {
        "wm_probability": template.tissue_probability("WM"),
        "gm_probability": template.tissue_probability("GM"),
        "aseg": template.aseg(),
        "template_brain": template.brain_mask(),
        "template_t1w": template.template_file(template.OUTPUT_RESOLUTION, desc="brain", suffix="T1w"),
    }
    for prior in priors:
        warp = pe.Node(
            ApplyTransform(interpolation="genericLabel" if prior == "aseg" else "linear",
                           binarize=prior in ("template_brain", *MASKS)),
            name=prior,
        )
        if prior in template_files:
            warp.inputs.in_file = template_files[prior]
        else:
            wf.connect(inputnode, prior, warp, "in_file")
        wf.connect([
            (inputnode, warp, [("flair", "reference"), ("inverse_transform", "transform")]),
            (warp, outputnode, [("out_file", prior)]),
        ])  # fmt: skip
    return wf
