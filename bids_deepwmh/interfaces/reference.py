"""Building the normal-appearing FLAIR reference from a registered cohort."""

from pathlib import Path

import nibabel as nib
import numpy as np
from nipype.interfaces.base import (
    BaseInterfaceInputSpec,
    File,
    InputMultiObject,
    SimpleInterface,
    TraitedSpec,
    traits,
)


class _BuildReferenceInputSpec(BaseInterfaceInputSpec):
    flairs = InputMultiObject(File(exists=True), mandatory=True, desc="bias-corrected FLAIRs in template space")
    brain_masks = InputMultiObject(File(exists=True), mandatory=True, desc="their brain masks in template space")
    source_files = InputMultiObject(traits.Str, mandatory=True, desc="the raw FLAIRs (for provenance)")
    template_mask = File(exists=True, mandatory=True, desc="template brain mask, same grid")
    wm_probability = File(exists=True, mandatory=True, desc="template white-matter probseg, same grid")
    out_file = traits.Str("reference.nii.gz", usedefault=True,
                          desc="where to write the reference (.nii.gz; relative: in the node's folder)")
    metadata = traits.Dict(desc="extra metadata (licences, command)")


class _BuildReferenceOutputSpec(TraitedSpec):
    out_file = File(exists=True)
    out_json = File(exists=True)


class BuildReference(SimpleInterface):
    """Per-voxel median and scaled MAD of white-matter-normalised FLAIRs."""

    input_spec = _BuildReferenceInputSpec
    output_spec = _BuildReferenceOutputSpec

    def _run_interface(self, runtime):
        from bids_deepwmh import TEMPLATE, __version__
        from bids_deepwmh.core.anatomical import normalise
        from bids_deepwmh.core.reference import build_reference, save_reference
        from bids_deepwmh.core.template import REGISTRATION_RESOLUTION

        template_mask = nib.load(self.inputs.template_mask)
        in_template = np.asanyarray(template_mask.dataobj) > 0
        wm = nib.load(self.inputs.wm_probability).get_fdata(dtype=np.float32)
        stack = np.full((len(self.inputs.flairs), *in_template.shape), np.nan, np.float32)
        for i, (flair_file, mask_file) in enumerate(zip(self.inputs.flairs, self.inputs.brain_masks, strict=True)):
            brain = (nib.load(mask_file).get_fdata() >= 0.5) & in_template
            normalised = normalise(nib.load(flair_file).get_fdata(dtype=np.float32), brain, wm)
            stack[i][brain] = normalised[brain]
        expected, spread = build_reference(stack, template_mask.header.get_zooms()[:3], wm)
        metadata = {
            "Description": "Normal-appearing FLAIR reference: volume 0 is the per-voxel median of "
            "white-matter-normalised, N4-corrected FLAIRs registered to the template, each scan's own "
            "hyperintense voxels left out (second pass); volume 1 is their scaled median absolute "
            "deviation (smoothed).",
            "Template": TEMPLATE,
            "Resolution": REGISTRATION_RESOLUTION,
            "Sources": list(self.inputs.source_files),
            "GeneratedBy": {"Name": "bids-deepwmh", "Version": __version__},
            **self.inputs.metadata,
        }
        out_file, out_json = save_reference(
            Path(runtime.cwd, self.inputs.out_file), expected, spread, template_mask.affine, metadata
        )
        self._results.update(out_file=str(out_file), out_json=str(out_json))
        return runtime


class _WriteReferenceBundleInputSpec(BaseInterfaceInputSpec):
    reference_file = File(exists=True, mandatory=True, desc="the cohort's reference (its sidecar beside it)")
    base_bundle = traits.Directory(exists=True, mandatory=True, desc="the bundle whose network is kept")
    scans = traits.List(traits.Dict, mandatory=True, desc="name, dataset, group and licence of each reference scan")
    bundle_dir = traits.Str(mandatory=True, desc="where the new bundle is written")
    command = traits.Str("deepwmh", usedefault=True, desc="the command line, for the model card")


class _WriteReferenceBundleOutputSpec(TraitedSpec):
    bundle_dir = traits.Directory(exists=True)


class WriteReferenceBundle(SimpleInterface):
    """A model bundle of the cohort's reference and an existing bundle's network."""

    input_spec = _WriteReferenceBundleInputSpec
    output_spec = _WriteReferenceBundleOutputSpec

    def _run_interface(self, runtime):
        from bids_deepwmh.model.bundle import write_reference_bundle

        self._results["bundle_dir"] = str(write_reference_bundle(
            self.inputs.bundle_dir, self.inputs.base_bundle, self.inputs.reference_file, self.inputs.scans,
            self.inputs.command))
        return runtime
