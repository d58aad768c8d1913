"""Conform, N4, registration and brain mask nodes."""

import nibabel as nib
from nipype.interfaces.base import BaseInterfaceInputSpec, File, SimpleInterface, TraitedSpec, traits

from bids_deepwmh.interfaces.utils import out_path


class _ConformInputSpec(BaseInterfaceInputSpec):
    in_file = File(exists=True, mandatory=True, desc="FLAIR as found in the BIDS dataset")


class _ConformOutputSpec(TraitedSpec):
    out_file = File(exists=True, desc="float32 RAS+ FLAIR with finite values")


class Conform(SimpleInterface):
    """Reorient to RAS+, clean NaN/Inf and reject what cannot be a 3D brain image."""

    input_spec = _ConformInputSpec
    output_spec = _ConformOutputSpec

    def _run_interface(self, runtime):
        from bids_deepwmh.core.conform import conform

        self._results["out_file"] = out_path(runtime, "conformed.nii.gz")
        nib.save(conform(self.inputs.in_file), self._results["out_file"])
        return runtime


class _N4InputSpec(BaseInterfaceInputSpec):
    in_file = File(exists=True, mandatory=True)


class _N4OutputSpec(TraitedSpec):
    out_file = File(exists=True, desc="bias-corrected FLAIR, foreground median scaled to 1000")


class N4BiasCorrection(SimpleInterface):
    """N4 bias-field correction (antspyx), fitted on ~4 mm voxels."""

    input_spec = _N4InputSpec
    output_spec = _N4OutputSpec

    def _run_interface(self, runtime):
        from bids_deepwmh.core.bias import n4_correct

        self._results["out_file"] = out_path(runtime, "n4.nii.gz")
        nib.save(n4_correct(nib.load(self.inputs.in_file)), self._results["out_file"])
        return runtime


class _RegisterInputSpec(BaseInterfaceInputSpec):
    in_file = File(exists=True, mandatory=True, desc="bias-corrected FLAIR")
    template = File(exists=True, mandatory=True, desc="template brain image (fixed)")


class _RegisterOutputSpec(TraitedSpec):
    forward_transform = File(exists=True, desc="composite FLAIR-to-template transform (.h5)")
    inverse_transform = File(exists=True, desc="composite template-to-FLAIR transform (.h5)")
    similarity = traits.Float(desc="Mattes mutual information after registration (lower is better)")


class RegisterToTemplate(SimpleInterface):
    """Affine and SyN registration of the FLAIR to the template (antspyx)."""

    input_spec = _RegisterInputSpec
    output_spec = _RegisterOutputSpec

    def _run_interface(self, runtime):
        from bids_deepwmh.core.registration import register_to_template

        forward, inverse, similarity = register_to_template(
            nib.load(self.inputs.in_file), nib.load(self.inputs.template), runtime.cwd
        )
        self._results.update(
            forward_transform=str(forward), inverse_transform=str(inverse), similarity=similarity
        )
        return runtime


class _BrainMaskInputSpec(BaseInterfaceInputSpec):
    in_file = File(exists=True, mandatory=True, desc="bias-corrected FLAIR")
    inverse_transform = File(exists=True, mandatory=True)
    template_mask = File(exists=True, mandatory=True, desc="template brain mask")


class _BrainMaskOutputSpec(TraitedSpec):
    out_mask = File(exists=True)


class BrainMask(SimpleInterface):
    """The template's brain mask brought to the FLAIR, refined on the image."""

    input_spec = _BrainMaskInputSpec
    output_spec = _BrainMaskOutputSpec

    def _run_interface(self, runtime):
        import numpy as np

        from bids_deepwmh.core.brainmask import refine_brain_mask
        from bids_deepwmh.core.images import like
        from bids_deepwmh.core.registration import resample

        flair = nib.load(self.inputs.in_file)
        template_mask = nib.load(self.inputs.template_mask)
        prior = resample(
            like(np.asanyarray(template_mask.dataobj), template_mask), flair,
            self.inputs.inverse_transform,
        )
        mask = refine_brain_mask(
            flair.get_fdata(dtype=np.float32), prior.get_fdata(), flair.header.get_zooms()[:3]
        )
        self._results["out_mask"] = out_path(runtime, "brain_mask.nii.gz")
        nib.save(like(mask, flair, np.uint8), self._results["out_mask"])
        return runtime
