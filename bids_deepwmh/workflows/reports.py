"""Quality flags and the figures of one scan's report (assembled into HTML after the run)."""

from nipype.interfaces import utility as niu
from nipype.pipeline import engine as pe
from nireports.interfaces.reporting.base import SimpleBeforeAfterRPT
from nireports.interfaces.reporting.masks import SimpleShowMaskRPT

from bids_deepwmh import TEMPLATE
from bids_deepwmh.core import template
from bids_deepwmh.interfaces.bids import DerivativesDataSink
from bids_deepwmh.interfaces.quality import QualityFlags
from bids_deepwmh.interfaces.reports import AxialMosaic, DisplayImages, ScanSummary
from bids_deepwmh.interfaces.utils import ApplyTransform


def init_report_wf(output_dir, source_file, bundle, name="report_wf"):
    """Inputs on the conformed grid: ``flair``, ``brain_mask``, ``regions``, ``probseg``,
    ``volumes``, the template's ``wm_probability`` and ``aseg`` on it, the transforms, the
    registration ``similarity`` and the network's ``outside_tissue_ml``.  Writes the quality record
    (``*_quality.json``) and the reportlets under ``sub-X/figures/``."""
    wf = pe.Workflow(name=name)
    inputnode = pe.Node(
        niu.IdentityInterface(fields=["flair", "brain_mask", "regions", "probseg", "volumes", "wm_probability",
                                      "aseg", "forward_transform", "inverse_transform", "similarity",
                                      "outside_tissue_ml"]),
        name="inputnode",
    )
    gm_on_flair = pe.Node(ApplyTransform(in_file=template.tissue_probability("GM")), name="gm_on_flair")
    quality = pe.Node(
        QualityFlags(
            reference_file=str(bundle.reference_file),
            coverage_tissue=[template.tissue_probability(label, template.REGISTRATION_RESOLUTION)
                             for label in ("WM", "GM")],
            template_brain=template.brain_mask(),
        ),
        name="quality_flags", mem_gb=2,
    )
    summary = pe.Node(ScanSummary(source_file=str(source_file)), name="summary")
    display = pe.Node(DisplayImages(), name="display_images", mem_gb=1)
    wmh_mosaic = pe.Node(AxialMosaic(), name="wmh_mosaic", mem_gb=1)
    probseg_mosaic = pe.Node(AxialMosaic(rows=2), name="probseg_mosaic", mem_gb=1)
    brain_mask_plot = pe.Node(SimpleShowMaskRPT(), name="brain_mask_plot", mem_gb=1)
    template_on_flair = pe.Node(ApplyTransform(in_file=template.template_file(1, desc="brain", suffix="T1w")),
                                name="template_on_flair")
    template_wm_on_flair = pe.Node(ApplyTransform(in_file=template.tissue_probability("WM"), binarize=True),
                                   name="template_wm_on_flair")
    registration_plot = pe.Node(
        SimpleBeforeAfterRPT(before_label=f"Template ({TEMPLATE})", after_label="FLAIR"),
        name="registration_plot", mem_gb=1,
    )

    def sink(node_name, **entities):
        return pe.Node(DerivativesDataSink(base_directory=str(output_dir), source_file=str(source_file),
                                           **entities), name=node_name, run_without_submitting=True)

    ds_quality = sink("ds_quality", suffix="quality", extension=".json")
    figures = {  # node -> its reportlet sink
        summary: sink("ds_summary", datatype="figures", desc="summary", suffix="FLAIR", extension=".html"),
        wmh_mosaic: sink("ds_wmh_mosaic", datatype="figures", desc="wmh", suffix="dseg", extension=".svg"),
        probseg_mosaic: sink("ds_probseg_mosaic", datatype="figures", desc="wmh", suffix="probseg",
                             extension=".svg"),
        brain_mask_plot: sink("ds_brain_mask_plot", datatype="figures", desc="brain", suffix="mask",
                              extension=".svg"),
        registration_plot: sink("ds_registration_plot", datatype="figures", space=TEMPLATE, suffix="FLAIR",
                                extension=".svg"),
    }
    wf.connect([
        (inputnode, gm_on_flair, [("flair", "reference"), ("inverse_transform", "transform")]),
        (inputnode, quality, [("flair", "in_file"), ("brain_mask", "brain_mask"),
                              ("forward_transform", "forward_transform"), ("inverse_transform", "inverse_transform"),
                              ("similarity", "similarity"), ("wm_probability", "wm_probability"), ("aseg", "aseg"),
                              ("outside_tissue_ml", "outside_tissue_ml")]),
        (gm_on_flair, quality, [("out_file", "gm_probability")]),
        (quality, ds_quality, [("out_json", "in_file")]),
        (inputnode, summary, [("volumes", "volumes")]),
        (quality, summary, [("out_json", "quality")]),
        (inputnode, display, [("flair", "flair"), ("brain_mask", "brain_mask"), ("regions", "regions"),
                              ("probseg", "probseg")]),
        (display, wmh_mosaic, [("flair", "in_file"), ("brain_mask", "bbox_mask"), ("regions", "regions")]),
        (display, probseg_mosaic, [("flair", "in_file"), ("brain_mask", "bbox_mask"), ("probseg", "probseg")]),
        (display, brain_mask_plot, [("flair", "background_file"), ("brain_mask", "mask_file")]),
        (display, template_on_flair, [("flair", "reference")]),
        (display, template_wm_on_flair, [("flair", "reference")]),
        (inputnode, template_on_flair, [("inverse_transform", "transform")]),
        (inputnode, template_wm_on_flair, [("inverse_transform", "transform")]),
        (template_on_flair, registration_plot, [("out_file", "before")]),
        (display, registration_plot, [("flair", "after")]),
        (template_wm_on_flair, registration_plot, [("out_file", "wm_seg")]),
    ])  # fmt: skip
    for node, ds in figures.items():
        wf.connect(node, "out_report", ds, "in_file")
    return wf
