"""Report nodes: the images on the display grid, the figures and the HTML summary of one scan."""

import json
from pathlib import Path

from nipype.interfaces.base import BaseInterfaceInputSpec, File, SimpleInterface, TraitedSpec, isdefined, traits

from bids_deepwmh.interfaces.utils import out_path


class _DisplayAnatomyInputSpec(BaseInterfaceInputSpec):
    flair = File(exists=True, mandatory=True, desc="bias-corrected FLAIR")
    brain_mask = File(exists=True, mandatory=True)


class _DisplayAnatomyOutputSpec(TraitedSpec):
    flair = File(exists=True)
    brain_mask = File(exists=True)


class DisplayAnatomy(SimpleInterface):
    """The FLAIR and its brain mask on the display grid (the FLAIR's voxels on the world's axes,
    at least 1 mm), where every figure is drawn without resampling."""

    input_spec = _DisplayAnatomyInputSpec
    output_spec = _DisplayAnatomyOutputSpec

    def _run_interface(self, runtime):
        self._results.update(_save(_to_display(self.inputs, ("flair", "brain_mask")), runtime))
        return runtime


class _DisplayTemplateInputSpec(BaseInterfaceInputSpec):
    flair = File(exists=True, mandatory=True, desc="bias-corrected FLAIR (its grid makes the display grid)")
    template_t1w = File(exists=True, mandatory=True, desc="the template's T1w brain on the FLAIR")
    wm_probability = File(exists=True, mandatory=True, desc="the template's white-matter probseg on the FLAIR")


class _DisplayTemplateOutputSpec(TraitedSpec):
    template_t1w = File(exists=True)
    wm_mask = File(exists=True, desc="the template's white matter (probability >= 0.5)")


class DisplayTemplate(SimpleInterface):
    """The template brought to the FLAIR, on the display grid of :class:`DisplayAnatomy`."""

    input_spec = _DisplayTemplateInputSpec
    output_spec = _DisplayTemplateOutputSpec

    def _run_interface(self, runtime):
        import numpy as np

        from bids_deepwmh.core.images import like

        images = _to_display(self.inputs, ("template_t1w", "wm_probability"))
        wm = images.pop("wm_probability")
        images["wm_mask"] = like(wm.get_fdata() >= 0.5, wm, np.uint8)
        self._results.update(_save(images, runtime))
        return runtime


class _DisplayWMHInputSpec(BaseInterfaceInputSpec):
    flair = File(exists=True, mandatory=True, desc="bias-corrected FLAIR (its grid makes the display grid)")
    regions = File(exists=True, mandatory=True, desc="regions dseg")
    probseg = File(exists=True, mandatory=True, desc="WMH probability")


class _DisplayWMHOutputSpec(TraitedSpec):
    regions = File(exists=True)
    probseg = File(exists=True)


class DisplayWMH(SimpleInterface):
    """The WMH regions and probability on the display grid of :class:`DisplayAnatomy`."""

    input_spec = _DisplayWMHInputSpec
    output_spec = _DisplayWMHOutputSpec

    def _run_interface(self, runtime):
        self._results.update(_save(_to_display(self.inputs, ("regions", "probseg")), runtime))
        return runtime


LABEL_IMAGES = ("brain_mask", "regions")  # resampled by nearest neighbour; the others linearly


def _to_display(inputs, names):
    """The inputs ``names`` on the display grid of ``inputs.flair`` (nibabel images by name)."""
    import nibabel as nib

    from bids_deepwmh.reports.figures import display_grid, for_display

    flair = nib.load(inputs.flair)
    grid = display_grid(flair)
    return {name: for_display(flair if name == "flair" else nib.load(getattr(inputs, name)), grid,
                              0 if name in LABEL_IMAGES else 1)
            for name in names}


def _save(images, runtime):
    """Save nibabel images by name in the node's folder; their paths by name."""
    import nibabel as nib

    paths = {name: out_path(runtime, f"{name}.nii.gz") for name in images}
    for name, img in images.items():
        nib.save(img, paths[name])
    return paths


class _AxialMosaicInputSpec(BaseInterfaceInputSpec):
    in_file = File(exists=True, mandatory=True, desc="background image (the bias-corrected FLAIR)")
    bbox_mask = File(exists=True, mandatory=True, desc="the slices span this mask (the brain)")
    regions = File(exists=True, desc="regions dseg, drawn as coloured outlines")
    probseg = File(exists=True, desc="probability map, drawn in colour")
    rows = traits.Int(4, usedefault=True)


class _ReportOutputSpec(TraitedSpec):
    out_report = File(exists=True)


class AxialMosaic(SimpleInterface):
    """Axial slices of the FLAIR with WMH outlines by region, or with the probability map."""

    input_spec = _AxialMosaicInputSpec
    output_spec = _ReportOutputSpec

    def _run_interface(self, runtime):
        from bids_deepwmh.reports.figures import axial_mosaic, region_contours

        contours = region_contours(self.inputs.regions) if isdefined(self.inputs.regions) else ()
        overlay = self.inputs.probseg if isdefined(self.inputs.probseg) else None
        self._results["out_report"] = out_path(runtime, "mosaic.svg")
        axial_mosaic(self.inputs.in_file, self.inputs.bbox_mask, self._results["out_report"],
                     contours=contours, overlay=overlay, rows=self.inputs.rows)
        return runtime


class _BrainMaskPlotInputSpec(BaseInterfaceInputSpec):
    background_file = File(exists=True, mandatory=True, desc="the FLAIR (display grid)")
    mask_file = File(exists=True, mandatory=True, desc="the brain mask (display grid)")


class BrainMaskPlot(SimpleInterface):
    """The brain mask's outline on the FLAIR in three views."""

    input_spec = _BrainMaskPlotInputSpec
    output_spec = _ReportOutputSpec

    def _run_interface(self, runtime):
        from bids_deepwmh.reports.figures import brain_mask_figure

        self._results["out_report"] = out_path(runtime, "brain_mask.svg")
        brain_mask_figure(self.inputs.background_file, self.inputs.mask_file, self._results["out_report"])
        return runtime


class _RegistrationPlotInputSpec(BaseInterfaceInputSpec):
    flair = File(exists=True, mandatory=True, desc="the FLAIR (display grid)")
    template = File(exists=True, mandatory=True, desc="the template brought to the FLAIR (display grid)")
    wm_mask = File(exists=True, mandatory=True, desc="the template's white matter on the FLAIR, outlined on both")
    template_label = traits.Str("Template", usedefault=True)


class RegistrationPlot(SimpleInterface):
    """The FLAIR and the template brought to it, one over the other, the template's white matter
    outlined on both."""

    input_spec = _RegistrationPlotInputSpec
    output_spec = _ReportOutputSpec

    def _run_interface(self, runtime):
        from bids_deepwmh.reports.figures import registration_figure

        self._results["out_report"] = out_path(runtime, "registration.svg")
        registration_figure(self.inputs.flair, self.inputs.template, self.inputs.wm_mask, self._results["out_report"],
                            self.inputs.template_label)
        return runtime


class _ScanSummaryInputSpec(BaseInterfaceInputSpec):
    source_file = File(exists=True, mandatory=True, desc="the raw FLAIR")
    volumes = File(exists=True, mandatory=True, desc="the volumes table")
    quality = File(exists=True, mandatory=True, desc="the quality record (JSON)")


class ScanSummary(SimpleInterface):
    """HTML fragment: quality verdict, WMH volumes by region, every quality check."""

    input_spec = _ScanSummaryInputSpec
    output_spec = _ReportOutputSpec

    def _run_interface(self, runtime):
        from bids_deepwmh.reports.summary import scan_summary_html
        from bids_deepwmh.utils.tables import read_tsv

        html = scan_summary_html(Path(self.inputs.source_file).name, read_tsv(self.inputs.volumes)[0],
                                 json.loads(Path(self.inputs.quality).read_text()))
        self._results["out_report"] = out_path(runtime, "summary.html")
        Path(self._results["out_report"]).write_text(html)
        return runtime


class _LongitudinalFigureInputSpec(BaseInterfaceInputSpec):
    flairs = traits.List(File(exists=True), mandatory=True, desc="subject-space FLAIRs, normalised (ConsistentWMH)")
    brain_masks = traits.List(File(exists=True), mandatory=True, desc="brain masks (subject space)")
    wmh_masks = traits.List(File(exists=True), mandatory=True, desc="consistent WMH masks (subject space)")
    change_dsegs = traits.List(File(exists=True), mandatory=True, desc="change dsegs of the later sessions")
    labels = traits.List(traits.Str, mandatory=True, desc="the sessions' names, in time order")


class LongitudinalFigure(SimpleInterface):
    """The sessions side by side in subject space, what changed outlined in colour."""

    input_spec = _LongitudinalFigureInputSpec
    output_spec = _ReportOutputSpec

    def _run_interface(self, runtime):
        from bids_deepwmh.reports.longitudinal import change_figure

        self._results["out_report"] = change_figure(self.inputs.flairs, self.inputs.brain_masks, self.inputs.wmh_masks,
                                                    self.inputs.change_dsegs, self.inputs.labels,
                                                    out_path(runtime, "change.svg"))
        return runtime


class _LongitudinalTableReportInputSpec(BaseInterfaceInputSpec):
    table = File(exists=True, mandatory=True, desc="the longitudinal table (TSV)")


class VolumeCurve(SimpleInterface):
    """WMH volume across the sessions."""

    input_spec = _LongitudinalTableReportInputSpec
    output_spec = _ReportOutputSpec

    def _run_interface(self, runtime):
        from bids_deepwmh.reports.longitudinal import volume_curve
        from bids_deepwmh.utils.tables import read_tsv

        self._results["out_report"] = volume_curve(read_tsv(self.inputs.table), out_path(runtime, "volumes.svg"))
        return runtime


class LongitudinalSummary(SimpleInterface):
    """HTML fragment: the longitudinal table, one line per session."""

    input_spec = _LongitudinalTableReportInputSpec
    output_spec = _ReportOutputSpec

    def _run_interface(self, runtime):
        from bids_deepwmh.reports.longitudinal import summary_html
        from bids_deepwmh.utils.tables import read_tsv

        self._results["out_report"] = out_path(runtime, "longitudinal.html")
        Path(self._results["out_report"]).write_text(summary_html(read_tsv(self.inputs.table)))
        return runtime
