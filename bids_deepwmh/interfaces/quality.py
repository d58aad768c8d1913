"""The quality-flags node: measure every check of :mod:`bids_deepwmh.core.quality` on one scan."""

import json

import nibabel as nib
import numpy as np
from nipype.interfaces.base import BaseInterfaceInputSpec, File, SimpleInterface, TraitedSpec, traits

from bids_deepwmh.interfaces.utils import out_path


class _QualityFlagsInputSpec(BaseInterfaceInputSpec):
    normalised = File(exists=True, mandatory=True, desc="white-matter-normalised FLAIR (conformed grid)")
    brain_mask = File(exists=True, mandatory=True)
    forward_transform = File(exists=True, mandatory=True, desc="FLAIR-to-template transform")
    similarity = traits.Float(mandatory=True, desc="registration similarity (Mattes MI)")
    reference = File(exists=True, mandatory=True, desc="normal-appearing reference (expected, spread) on the FLAIR")
    wm_probability = File(exists=True, mandatory=True, desc="template white-matter probseg on the FLAIR grid")
    gm_probability = File(exists=True, mandatory=True, desc="template grey-matter probseg on the FLAIR grid")
    aseg = File(exists=True, mandatory=True, desc="template seg-aseg labels on the FLAIR grid")
    template_brain = File(exists=True, mandatory=True, desc="template brain mask on the FLAIR grid")
    right_hemisphere = File(exists=True, mandatory=True, desc="the template's right hemisphere on the FLAIR grid")
    coverage_tissue = traits.List(File(exists=True), mandatory=True,
                                  desc="template WM and GM probsegs on the grid where coverage is measured")
    outside_tissue_ml = traits.Float(mandatory=True, desc="WMH the network found outside where WMH can be")
    unnulled_slice_count = traits.Int(mandatory=True, desc="lowest slices whose CSF is not nulled (AnatomicalWMH)")
    brain_extraction = traits.Dict(mandatory=True, desc="how the brain mask was made (its sidecar's fields)")


class _QualityFlagsOutputSpec(TraitedSpec):
    out_json = File(exists=True, desc="the quality record")
    flagged = traits.Bool(desc="some check fired")


class QualityFlags(SimpleInterface):
    """Registration, brain mask, slice thickness, coverage, contrast and out-of-distribution checks."""

    input_spec = _QualityFlagsInputSpec
    output_spec = _QualityFlagsOutputSpec

    def _run_interface(self, runtime):
        from scipy import ndimage

        from bids_deepwmh.core import anatomical, quality
        from bids_deepwmh.core.images import like, voxel_volume_mm3
        from bids_deepwmh.core.metrics import dice
        from bids_deepwmh.core.reference import reference_volumes
        from bids_deepwmh.core.regions import LATERAL_VENTRICLES
        from bids_deepwmh.core.registration import resample

        flair = nib.load(self.inputs.normalised)
        zooms = flair.header.get_zooms()[:3]
        brain = np.asanyarray(nib.load(self.inputs.brain_mask).dataobj) > 0

        def load(path):
            return nib.load(path).get_fdata(dtype=np.float32)

        def load_mask(path):
            return np.asanyarray(nib.load(path).dataobj) > 0

        normalised = flair.get_fdata(dtype=np.float32)
        wm_probability = load(self.inputs.wm_probability)
        ventricles = ndimage.binary_erosion(np.isin(np.rint(load(self.inputs.aseg)), LATERAL_VENTRICLES) & brain)
        wm_csf, gm_wm = quality.tissue_contrast(
            normalised, brain & (wm_probability > anatomical.WM_CORE_PROBABILITY),
            brain & (load(self.inputs.gm_probability) > 0.9), ventricles,
        )
        tissue = [nib.load(path) for path in self.inputs.coverage_tissue]
        template_tissue = sum(img.get_fdata(dtype=np.float32) for img in tissue) >= 0.5
        signal = like(normalised >= quality.SIGNAL_LEVEL, flair)
        in_template = resample(signal, tissue[0], self.inputs.forward_transform).get_fdata(dtype=np.float32)
        expected, spread = (img.get_fdata(dtype=np.float32)
                            for img in reference_volumes(nib.load(self.inputs.reference)))
        excess = quality.excess_over_reference(normalised, brain, expected, spread, zooms)
        values = {
            "registration_similarity": self.inputs.similarity,
            "brain_volume_ml": np.count_nonzero(brain) * voxel_volume_mm3(flair) / 1000.0,
            "brain_masks_rejected": len(self.inputs.brain_extraction.get("BrainExtractionRejected", [])),
            "brain_template_dice": dice(brain, load_mask(self.inputs.template_brain)),
            "wmh_outside_tissue_ml": self.inputs.outside_tissue_ml,
            "slice_thickness_mm": max(zooms),
            "unnulled_csf_slices": self.inputs.unnulled_slice_count,
            "brain_coverage": quality.brain_coverage(in_template, template_tissue),
            "wm_csf_contrast": wm_csf,
            "gm_wm_contrast": gm_wm,
            "atypical_tissue_ml": quality.atypical_tissue_ml(excess, zooms),
            "one_sided_hyperintensity_ml": quality.one_sided_hyperintensity_ml(
                excess, brain, load_mask(self.inputs.right_hemisphere), zooms),
        }
        record = {**quality.assess(values), "brain_extraction": self.inputs.brain_extraction}
        self._results.update(out_json=out_path(runtime, "quality.json"), flagged=record["flagged"])
        with open(self._results["out_json"], "w") as fh:
            json.dump(record, fh, indent=2)
        return runtime
