"""Helpers shared by the interfaces: output paths, transforms and grids."""

import os

import nibabel as nib
from nipype.interfaces.base import BaseInterfaceInputSpec, File, SimpleInterface, TraitedSpec, traits


def out_path(runtime, name):
    """Absolute path of an output file in the node's working directory."""
    return os.path.join(runtime.cwd, name)


class _ApplyTransformInputSpec(BaseInterfaceInputSpec):
    in_file = File(exists=True, mandatory=True)
    reference = File(exists=True, mandatory=True, desc="image whose grid the output takes")
    transform = File(exists=True, mandatory=True)
    interpolation = traits.Enum("linear", "nearestNeighbor", "genericLabel", usedefault=True)
    binarize = traits.Bool(False, usedefault=True, desc="threshold the result at 0.5 into uint8")


class _ApplyTransformOutputSpec(TraitedSpec):
    out_file = File(exists=True)


class ApplyTransform(SimpleInterface):
    """Resample an image onto another grid through an ANTs transform."""

    input_spec = _ApplyTransformInputSpec
    output_spec = _ApplyTransformOutputSpec

    def _run_interface(self, runtime):
        import numpy as np

        from bids_deepwmh.core.images import like
        from bids_deepwmh.core.registration import resample

        reference = nib.load(self.inputs.reference)
        moved = resample(
            nib.load(self.inputs.in_file), reference, self.inputs.transform,
            self.inputs.interpolation,
        )
        if self.inputs.binarize:
            moved = like(moved.get_fdata() >= 0.5, reference, np.uint8)
        self._results["out_file"] = out_path(runtime, "resampled.nii.gz")
        nib.save(moved, self._results["out_file"])
        return runtime


class _ToSourceGridInputSpec(BaseInterfaceInputSpec):
    in_file = File(exists=True, mandatory=True, desc="image on the conformed (RAS+) grid")
    source_file = File(exists=True, mandatory=True, desc="the original FLAIR")
    dtype = traits.Enum("float32", "uint8", usedefault=True)


class _ToSourceGridOutputSpec(TraitedSpec):
    out_file = File(exists=True)


class ToSourceGrid(SimpleInterface):
    """Bring an image back to the original FLAIR's orientation, shape and affine."""

    input_spec = _ToSourceGridInputSpec
    output_spec = _ToSourceGridOutputSpec

    def _run_interface(self, runtime):
        from bids_deepwmh.core.conform import to_source_grid

        out = to_source_grid(nib.load(self.inputs.in_file), self.inputs.source_file, self.inputs.dtype)
        self._results["out_file"] = out_path(runtime, "native.nii.gz")
        nib.save(out, self._results["out_file"])
        return runtime
