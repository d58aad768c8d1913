"""Report nodes: the images on a display grid, axial mosaics and the HTML summary of one scan."""

import json
from pathlib import Path

from nipype.interfaces.base import BaseInterfaceInputSpec, File, SimpleInterface, TraitedSpec, isdefined, traits

from bids_deepwmh.interfaces.utils import out_path


class _DisplayImagesInputSpec(BaseInterfaceInputSpec):
    flair = File(exists=True, mandatory=True, desc="bias-corrected FLAIR")
    brain_mask = File(exists=True, mandatory=True)
    regions = File(exists=True, mandatory=True, desc="regions dseg")
    probseg = File(exists=True, mandatory=True, desc="WMH probability")


class _DisplayImagesOutputSpec(TraitedSpec):
    flair = File(exists=True)
    brain_mask = File(exists=True)
    regions = File(exists=True)
    probseg = File(exists=True)


class DisplayImages(SimpleInterface):
    """The images the figures show, on voxels of at least 1 mm (fine in-plane grids plot slowly)."""

    input_spec = _DisplayImagesInputSpec
    output_spec = _DisplayImagesOutputSpec

    def _run_interface(self, runtime):
        import nibabel as nib

        from bids_deepwmh.reports.figures import display_grid, for_display

        flair = nib.load(self.inputs.flair)
        grid = display_grid(flair)
        for name, order in (("flair", 1), ("brain_mask", 0), ("regions", 0), ("probseg", 1)):
            img = flair if name == "flair" else nib.load(getattr(self.inputs, name))
            self._results[name] = out_path(runtime, f"{name}.nii.gz")
            nib.save(for_display(img, grid, order), self._results[name])
        return runtime


class _AxialMosaicInputSpec(BaseInterfaceInputSpec):
    in_file = File(exists=True, mandatory=True, desc="background image (the bias-corrected FLAIR)")
    bbox_mask = File(exists=True, mandatory=True, desc="the slices span this mask (the brain)")
    regions = File(exists=True, desc="regions dseg, drawn as coloured outlines")
    probseg = File(exists=True, desc="probability map, drawn in colour")
    rows = traits.Int(3, usedefault=True)


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
