"""The template's masks that the scan's priors are made from (template space, before warping)."""

import nibabel as nib
import numpy as np
from nipype.interfaces.base import BaseInterfaceInputSpec, File, SimpleInterface, TraitedSpec

from bids_deepwmh.interfaces.utils import out_path


class _TemplateMasksInputSpec(BaseInterfaceInputSpec):
    wm_probability = File(exists=True, mandatory=True, desc="template white-matter probseg")
    aseg = File(exists=True, mandatory=True, desc="template seg-aseg dseg, on the probseg's grid")


class _TemplateMasksOutputSpec(TraitedSpec):
    allowed_tissue = File(exists=True, desc="white and deep grey matter: where the anatomical stage may call WMH")
    wmh_tissue = File(exists=True, desc="where the network's WMH are kept (with a margin)")
    right_hemisphere = File(exists=True, desc="x > 0 mm in the template")


class TemplateMasks(SimpleInterface):
    """Masks made from the template's tissue maps, in template space: once per run, for every scan to warp."""

    input_spec = _TemplateMasksInputSpec
    output_spec = _TemplateMasksOutputSpec

    def _run_interface(self, runtime):
        from bids_deepwmh.core.images import like
        from bids_deepwmh.core.template import allowed_tissue, right_of_midline, wmh_tissue

        wm_probability, aseg = nib.load(self.inputs.wm_probability), nib.load(self.inputs.aseg)
        masks = {
            "allowed_tissue": allowed_tissue(aseg),
            "wmh_tissue": wmh_tissue(wm_probability, aseg),
            "right_hemisphere": like(right_of_midline(aseg), aseg),
        }
        for name, img in masks.items():
            self._results[name] = out_path(runtime, f"{name}.nii.gz")
            nib.save(like(np.asanyarray(img.dataobj), aseg, np.uint8), self._results[name])
        return runtime
