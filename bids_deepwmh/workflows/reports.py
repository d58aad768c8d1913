"""The figures of one scan's report (assembled into HTML after the run)."""

from nipype.interfaces import utility as niu
from nipype.pipeline import engine as pe

from bids_deepwmh import TEMPLATE
from bids_deepwmh.interfaces.bids import DerivativesDataSink
from bids_deepwmh.interfaces.reports import (
    AxialMosaic,
    BrainMaskPlot,
    DisplayAnatomy,
    DisplayTemplate,
    DisplayWMH,
    RegistrationPlot,
    ScanSummary,
)


def init_report_wf(output_dir, source_file, name="report_wf"):
    """Inputs on the conformed grid: ``flair``, ``brain_mask``, the template's ``template_t1w`` and
    ``wm_probability`` brought to it, ``regions``, ``probseg``; the ``volumes`` table and the
    ``quality`` record.  Writes the reportlets under ``sub-X/figures/``.  The brain mask figure
    needs only the FLAIR and its brain, so it is drawn while the scan is registered; the
    registration figure needs the template's priors only, so it is drawn while the scan is
    segmented."""
    wf = pe.Workflow(name=name)
    inputnode = pe.Node(
        niu.IdentityInterface(fields=["flair", "brain_mask", "template_t1w", "wm_probability", "regions", "probseg",
                                      "volumes", "quality"]),
        name="inputnode",
    )
    anatomy = pe.Node(DisplayAnatomy(), name="display_anatomy", mem_gb=1)
    template_view = pe.Node(DisplayTemplate(), name="display_template", mem_gb=1)
    wmh = pe.Node(DisplayWMH(), name="display_wmh", mem_gb=1)
    summary = pe.Node(ScanSummary(source_file=str(source_file)), name="summary")
    wmh_mosaic = pe.Node(AxialMosaic(), name="wmh_mosaic", mem_gb=1)
    probseg_mosaic = pe.Node(AxialMosaic(rows=2), name="probseg_mosaic", mem_gb=1)
    brain_mask_plot = pe.Node(BrainMaskPlot(), name="brain_mask_plot", mem_gb=1)
    registration_plot = pe.Node(RegistrationPlot(template_label=f"Template ({TEMPLATE})"), name="registration_plot",
                                mem_gb=1)

    def sink(node_name, **entities):
        return pe.Node(DerivativesDataSink(base_directory=str(output_dir), source_file=str(source_file),
                                           datatype="figures", **entities),
                       name=node_name, run_without_submitting=True)

    figures = {  # node -> its reportlet sink
        summary: sink("ds_summary", desc="summary", suffix="FLAIR", extension=".html"),
        wmh_mosaic: sink("ds_wmh_mosaic", desc="wmh", suffix="dseg", extension=".svg"),
        probseg_mosaic: sink("ds_probseg_mosaic", desc="wmh", suffix="probseg", extension=".svg"),
        brain_mask_plot: sink("ds_brain_mask_plot", desc="brain", suffix="mask", extension=".svg"),
        registration_plot: sink("ds_registration_plot", space=TEMPLATE, suffix="FLAIR", extension=".svg"),
    }
    wf.connect([
        (inputnode, anatomy, [("flair", "flair"), ("brain_mask", "brain_mask")]),
        (inputnode, template_view, [("flair", "flair"), ("template_t1w", "template_t1w"),
                                    ("wm_probability", "wm_probability")]),
        (inputnode, wmh, [("flair", "flair"), ("regions", "regions"), ("probseg", "probseg")]),
        (inputnode, summary, [("volumes", "volumes"), ("quality", "quality")]),
        (anatomy, wmh_mosaic, [("flair", "in_file"), ("brain_mask", "bbox_mask")]),
        (wmh, wmh_mosaic, [("regions", "regions")]),
        (anatomy, probseg_mosaic, [("flair", "in_file"), ("brain_mask", "bbox_mask")]),
        (wmh, probseg_mosaic, [("probseg", "probseg")]),
        (anatomy, brain_mask_plot, [("flair", "background_file"), ("brain_mask", "mask_file")]),
        (anatomy, registration_plot, [("flair", "flair")]),
        (template_view, registration_plot, [("template_t1w", "template"), ("wm_mask", "wm_mask")]),
    ])  # fmt: skip
    for node, ds in figures.items():
        wf.connect(node, "out_report", ds, "in_file")
    return wf
