"""Template files from TemplateFlow and the tissue the anatomical stage may call WMH."""

import nibabel as nib
import numpy as np

from bids_deepwmh import TEMPLATE
from bids_deepwmh.core.images import near_mask

# FreeSurfer aseg labels of cerebral white matter and deep grey matter (thalamus, caudate,
# putamen, pallidum, accumbens, ventral DC), white-matter hypointensities and the corpus callosum.
WHITE_AND_DEEP_GREY = (2, 41, 10, 49, 11, 50, 12, 51, 13, 52, 26, 58, 28, 60, 77, 251, 252, 253, 254, 255)
# aseg labels of the brainstem and the cerebellar white matter, where multiple sclerosis lesions occur too.
BRAINSTEM_AND_CEREBELLAR_WM = (16, 7, 46)
WMH_TISSUE_MARGIN_MM = 3.0  # how far beyond the template's white and deep grey matter a WMH may reach
REGISTRATION_RESOLUTION = 2  # mm: the template grid registration and the reference use
OUTPUT_RESOLUTION = 1  # mm: the template grid of template-space outputs


def template_file(resolution, **entities):
    """Path of one TemplateFlow file of the template (fetched on first use)."""
    from templateflow import api

    path = api.get(TEMPLATE, resolution=resolution, extension=".nii.gz", **entities)
    if not path or isinstance(path, list):
        raise FileNotFoundError(
            f"TemplateFlow has no single file for {TEMPLATE} res-{resolution} {entities}; "
            "check TEMPLATEFLOW_HOME"
        )
    return str(path)


def registration_target():
    return template_file(REGISTRATION_RESOLUTION, desc="brain", suffix="T1w")


def brain_mask(resolution=OUTPUT_RESOLUTION):
    return template_file(resolution, desc="brain", suffix="mask")


def tissue_probability(label, resolution=OUTPUT_RESOLUTION):
    return template_file(resolution, label=label, suffix="probseg")


def aseg(resolution=OUTPUT_RESOLUTION):
    """The FreeSurfer-style ``seg-aseg`` segmentation (pybids' TemplateFlow layout has no ``seg``
    entity, so it is picked by name among the template's ``dseg`` files of no atlas and no
    ``desc``: without those two filters TemplateFlow would fetch its 29 atlases on first use)."""
    from templateflow import api

    found = api.get(TEMPLATE, resolution=resolution, suffix="dseg", atlas=None, desc=None, extension=".nii.gz")
    found = [str(p) for p in (found if isinstance(found, list) else [found])]
    matches = [p for p in found if "_seg-aseg_" in p]
    if len(matches) != 1:
        raise FileNotFoundError(f"TemplateFlow has no {TEMPLATE} res-{resolution} seg-aseg dseg")
    return matches[0]


def allowed_tissue(aseg_img):
    """Float image: 1 in white and deep grey matter, 0 elsewhere (cortex, CSF, cerebellum)."""
    labels = np.asanyarray(aseg_img.dataobj)
    return nib.Nifti1Image(np.isin(labels, WHITE_AND_DEEP_GREY).astype(np.float32), aseg_img.affine)


def wmh_tissue(wm_probability_img, aseg_img, margin_mm=WMH_TISSUE_MARGIN_MM):
    """Float image on the template grid: 1 where WMH can be, 0 elsewhere.

    White matter (probability ≥ 0.5, cerebral and cerebellar), deep grey matter, brainstem and
    cerebellar white matter, grown by ``margin_mm`` so that juxtacortical lesions and the
    registration's few millimetres of error are kept; scalp, orbits, skull base and most of the
    cortex are left out.  ``wm_probability_img`` and ``aseg_img`` share the template grid."""
    labels = np.asanyarray(aseg_img.dataobj)
    tissue = (wm_probability_img.get_fdata(dtype=np.float32) >= 0.5) | np.isin(
        labels, WHITE_AND_DEEP_GREY + BRAINSTEM_AND_CEREBELLAR_WM)
    zooms = aseg_img.header.get_zooms()[:3]
    grown = near_mask(tissue, zooms, margin_mm)
    return nib.Nifti1Image(grown.astype(np.float32), aseg_img.affine)


def right_of_midline(template_img):
    """Boolean array on ``template_img``'s grid: the right hemisphere (x > 0 mm in the template)."""
    i, j, k = np.ogrid[tuple(slice(n) for n in template_img.shape[:3])]
    row = template_img.affine[0]
    return row[0] * i + row[1] * j + row[2] * k + row[3] > 0
