"""The quality checks of one scan, beside its segmentation, and their record."""

from nipype.interfaces import utility as niu
from nipype.pipeline import engine as pe

from bids_deepwmh.core import template
from bids_deepwmh.interfaces.bids import DerivativesDataSink
from bids_deepwmh.interfaces.quality import QualityFlags


def init_quality_wf(output_dir, source_file, name="quality_wf"):
    """Inputs on the conformed grid: the ``normalised`` FLAIR, ``brain_mask``, the priors
    ``reference``, ``wm_probability``, ``gm_probability``, ``aseg``, ``template_brain`` and
    ``right_hemisphere``; the ``forward_transform`` with the registration ``similarity``, the
    network's ``outside_tissue_ml``, the ``unnulled_slice_count`` and the ``brain_extraction`` (the
    brain mask's sidecar fields).
    Writes ``*_quality.json``; output ``quality`` (its path)."""
    wf = pe.Workflow(name=name)
    fields = ["normalised", "brain_mask", "reference", "wm_probability", "gm_probability", "aseg", "template_brain",
              "right_hemisphere", "forward_transform", "similarity", "outside_tissue_ml", "unnulled_slice_count",
              "brain_extraction"]
    inputnode = pe.Node(niu.IdentityInterface(fields=fields), name="inputnode")
    outputnode = pe.Node(niu.IdentityInterface(fields=["quality"]), name="outputnode")
    quality = pe.Node(
        QualityFlags(coverage_tissue=[template.tissue_probability(label, template.REGISTRATION_RESOLUTION)
                                      for label in ("WM", "GM")]),
        name="quality_flags", mem_gb=2,
    )
    ds_quality = pe.Node(DerivativesDataSink(base_directory=str(output_dir), source_file=str(source_file),
                                             suffix="quality", extension=".json"),
                         name="ds_quality", run_without_submitting=True)
    wf.connect([
        (inputnode, quality, [(field, field) for field in fields]),
        (quality, ds_quality, [("out_json", "in_file")]),
        (quality, outputnode, [("out_json", "quality")]),
    ])  # fmt: skip
    return wf
