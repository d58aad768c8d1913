"""Conform, brain extraction, N4 and registration nodes."""

import nibabel as nib
from nipype.interfaces.base import BaseInterfaceInputSpec, File, SimpleInterface, TraitedSpec, traits

from bids_deepwmh import DEFAULT_RANDOM_SEED
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


class _BrainExtractionInputSpec(BaseInterfaceInputSpec):
    in_file = File(exists=True, mandatory=True, desc="conformed FLAIR")
    template = File(exists=True, mandatory=True, desc="template brain image, affinely registered to the FLAIR")
    template_mask = File(exists=True, mandatory=True, desc="template brain mask, brought to the FLAIR by that "
                         "registration: what HD-BET's mask is checked against, and replaced by where it fails")
    use_gpu = traits.Bool(False, usedefault=True, desc="run HD-BET on CUDA when present")
    num_threads = traits.Int(1, usedefault=True, desc="CPU threads for the network")
    random_seed = traits.Int(DEFAULT_RANDOM_SEED, usedefault=True, desc="seed of that registration")


class _BrainExtractionOutputSpec(TraitedSpec):
    out_mask = File(exists=True, desc="brain mask (uint8)")
    metadata = traits.Dict(desc="how the mask was made (and the masks rejected), for its sidecar")


class BrainExtraction(SimpleInterface):
    """HD-BET's brain mask, or the brain of a scan its source already skull-stripped; where HD-BET's
    mask cannot be the brain, its retry or the template's brain registered to the scan."""

    input_spec = _BrainExtractionInputSpec
    output_spec = _BrainExtractionOutputSpec

    def _run_interface(self, runtime):
        import os

        import numpy as np

        from bids_deepwmh.core.images import like
        from bids_deepwmh.core.skullstrip import extract_brain, template_brain_probability

        device = "cpu"
        if self.inputs.use_gpu:
            import torch

            from bids_deepwmh.model.inference import device_for

            torch.set_num_threads(self.inputs.num_threads)
            device = device_for(True)
        flair = nib.load(self.inputs.in_file)

        def template_prior():
            return template_brain_probability(
                flair, nib.load(self.inputs.template), nib.load(self.inputs.template_mask),
                os.path.join(runtime.cwd, "template"), self.inputs.random_seed)

        brain = extract_brain(flair, device, self.inputs.num_threads, template_prior)
        self._results.update(out_mask=out_path(runtime, "brain_mask.nii.gz"), metadata=brain.metadata())
        nib.save(like(brain.mask, flair, np.uint8), self._results["out_mask"])
        return runtime


class _N4InputSpec(BaseInterfaceInputSpec):
    in_file = File(exists=True, mandatory=True)
    brain_mask = File(exists=True, mandatory=True, desc="where the bias field is fitted")


class _N4OutputSpec(TraitedSpec):
    out_file = File(exists=True, desc="bias-corrected FLAIR, brain median scaled to 1000")


class N4BiasCorrection(SimpleInterface):
    """N4 bias-field correction (antspyx) fitted inside the brain on ~4 mm voxels."""

    input_spec = _N4InputSpec
    output_spec = _N4OutputSpec

    def _run_interface(self, runtime):
        from bids_deepwmh.core.bias import n4_correct

        brain = nib.load(self.inputs.brain_mask).get_fdata() > 0
        self._results["out_file"] = out_path(runtime, "n4.nii.gz")
        nib.save(n4_correct(nib.load(self.inputs.in_file), brain), self._results["out_file"])
        return runtime


class _RegisterInputSpec(BaseInterfaceInputSpec):
    in_file = File(exists=True, mandatory=True, desc="the conformed FLAIR")
    brain_mask = File(exists=True, mandatory=True, desc="the FLAIR's brain: only it is registered")
    template = File(exists=True, mandatory=True, desc="template brain image (fixed)")
    random_seed = traits.Int(DEFAULT_RANDOM_SEED, usedefault=True, desc="seed of the metric's sampling")


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
            nib.load(self.inputs.in_file), nib.load(self.inputs.brain_mask).get_fdata() > 0,
            nib.load(self.inputs.template), runtime.cwd, random_seed=self.inputs.random_seed,
        )
        self._results.update(
            forward_transform=str(forward), inverse_transform=str(inverse), similarity=similarity
        )
        return runtime
