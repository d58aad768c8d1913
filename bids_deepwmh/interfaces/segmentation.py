"""The WMH nodes (anatomical-knowledge and learned) and the volumes table node."""

import json

import nibabel as nib
import numpy as np
from nipype.interfaces.base import BaseInterfaceInputSpec, File, SimpleInterface, TraitedSpec, isdefined, traits

from bids_deepwmh.interfaces.utils import out_path


class _AnatomicalWMHInputSpec(BaseInterfaceInputSpec):
    in_file = File(exists=True, mandatory=True, desc="bias-corrected FLAIR (conformed grid)")
    brain_mask = File(exists=True, mandatory=True)
    inverse_transform = File(exists=True, mandatory=True, desc="template-to-FLAIR transform")
    reference_file = File(exists=True, mandatory=True, desc="normal-appearing FLAIR reference")
    wm_probability = File(exists=True, mandatory=True, desc="template white-matter probseg")
    aseg = File(exists=True, mandatory=True, desc="template seg-aseg dseg")


class _AnatomicalWMHOutputSpec(TraitedSpec):
    score = File(exists=True, desc="one-sided hyperintensity z-score")
    wmh_mask = File(exists=True, desc="binary WMH mask")


class AnatomicalWMH(SimpleInterface):
    """Voxels far brighter than normal-appearing brains, in white and deep grey matter."""

    input_spec = _AnatomicalWMHInputSpec
    output_spec = _AnatomicalWMHOutputSpec

    def _run_interface(self, runtime):
        from bids_deepwmh.core import anatomical
        from bids_deepwmh.core.images import like, voxel_volume_mm3
        from bids_deepwmh.core.reference import load_reference
        from bids_deepwmh.core.registration import resample
        from bids_deepwmh.core.template import allowed_tissue

        flair = nib.load(self.inputs.in_file)
        brain = np.asanyarray(nib.load(self.inputs.brain_mask).dataobj) > 0
        expected, spread, _ = load_reference(self.inputs.reference_file)

        def to_native(template_img):
            return resample(template_img, flair, self.inputs.inverse_transform).get_fdata(dtype=np.float32)

        allowed = to_native(allowed_tissue(nib.load(self.inputs.aseg))) > 0.5
        normalised = anatomical.normalise(
            flair.get_fdata(dtype=np.float32), brain, to_native(nib.load(self.inputs.wm_probability))
        )
        score = anatomical.hyperintensity_score(
            normalised, brain, to_native(expected), to_native(spread), flair.header.get_zooms()[:3]
        )
        wmh = anatomical.segment(score, allowed & brain, voxel_volume_mm3(flair))
        self._results.update(
            score=out_path(runtime, "score.nii.gz"),
            wmh_mask=out_path(runtime, "wmh.nii.gz"),
        )
        nib.save(like(score, flair), self._results["score"])
        nib.save(like(wmh, flair, np.uint8), self._results["wmh_mask"])
        return runtime


class _VolumesInputSpec(BaseInterfaceInputSpec):
    wmh_mask = File(exists=True, mandatory=True)
    brain_mask = File(exists=True, mandatory=True)


class _VolumesOutputSpec(TraitedSpec):
    out_tsv = File(exists=True)
    out_json = traits.Str(desc="the same values as a JSON string")


class WMHVolumes(SimpleInterface):
    """One-row table: WMH volume, lesion count, brain volume, WMH fraction of brain."""

    input_spec = _VolumesInputSpec
    output_spec = _VolumesOutputSpec

    def _run_interface(self, runtime):
        from bids_deepwmh.core.images import voxel_volume_mm3
        from bids_deepwmh.core.volumes import VOLUME_COLUMNS, wmh_volumes

        wmh_img = nib.load(self.inputs.wmh_mask)
        values = wmh_volumes(
            np.asanyarray(wmh_img.dataobj) > 0,
            np.asanyarray(nib.load(self.inputs.brain_mask).dataobj) > 0,
            voxel_volume_mm3(wmh_img),
        )
        self._results["out_tsv"] = out_path(runtime, "volumes.tsv")
        with open(self._results["out_tsv"], "w") as fh:
            fh.write("\t".join(VOLUME_COLUMNS) + "\n")
            fh.write("\t".join(str(values[c]) for c in VOLUME_COLUMNS) + "\n")
        self._results["out_json"] = json.dumps(values)
        return runtime


class _LearnedWMHInputSpec(BaseInterfaceInputSpec):
    in_file = File(exists=True, mandatory=True, desc="bias-corrected FLAIR (conformed grid)")
    brain_mask = File(exists=True, mandatory=True)
    score = File(exists=True, desc="anatomical score (used when the model takes it)")
    model = traits.Directory(exists=True, mandatory=True, desc="model bundle")
    use_gpu = traits.Bool(False, usedefault=True, desc="run on CUDA when present (a GPU node for Nipype)")
    mirror = traits.Bool(False, usedefault=True, desc="average the 8 mirrored predictions")
    num_threads = traits.Int(1, usedefault=True, desc="CPU threads for PyTorch")


class _LearnedWMHOutputSpec(TraitedSpec):
    probseg = File(exists=True, desc="WMH probability")
    wmh_mask = File(exists=True, desc="binary WMH mask")


class LearnedWMH(SimpleInterface):
    """The trained network's WMH probability and mask."""

    input_spec = _LearnedWMHInputSpec
    output_spec = _LearnedWMHOutputSpec

    def _run_interface(self, runtime):
        import torch

        from bids_deepwmh.core.images import like
        from bids_deepwmh.model.bundle import load_bundle
        from bids_deepwmh.model.inference import segment_scan

        torch.set_num_threads(self.inputs.num_threads)
        bundle = load_bundle(self.inputs.model)
        score = nib.load(self.inputs.score) if bundle.uses_score and isdefined(self.inputs.score) else None
        flair = nib.load(self.inputs.in_file)
        probability, mask = segment_scan(
            bundle, flair, nib.load(self.inputs.brain_mask), score, self.inputs.use_gpu, self.inputs.mirror
        )
        self._results.update(probseg=out_path(runtime, "probseg.nii.gz"), wmh_mask=out_path(runtime, "wmh.nii.gz"))
        nib.save(like(probability, flair), self._results["probseg"])
        nib.save(like(mask, flair, np.uint8), self._results["wmh_mask"])
        return runtime
