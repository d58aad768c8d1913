"""Template files from TemplateFlow and the tissue the anatomical stage may call WMH."""

import nibabel as nib
import numpy as np

from bids_deepwmh import TEMPLATE

# FreeSurfer aseg labels of cerebral white matter and deep grey matter (thalamus, caudate,
# putamen, pallidum, accumbens, ventral DC), white-matter hypointensities and the corpus callosum.
WHITE_AND_DEEP_GREY = (2, 41, 10, 49, 11, 50, 12, 51, 13, 52, 26, 58, 28, 60, 77, 251, 252, 253, 254, 255)
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
    entity, so it is picked among the template's ``dseg`` files by name)."""
    from templateflow import api

    found = api.get(TEMPLATE, resolution=resolution, suffix="dseg", extension=".nii.gz")
    found = [str(p) for p in (found if isinstance(found, list) else [found])]
    matches = [p for p in found if "_seg-aseg_" in p]
    if len(matches) != 1:
        raise FileNotFoundError(f"TemplateFlow has no {TEMPLATE} res-{resolution} seg-aseg dseg")
    return matches[0]


def allowed_tissue(aseg_img):
    """Float image: 1 in white and deep grey matter, 0 elsewhere (cortex, CSF, cerebellum)."""
    labels = np.asanyarray(aseg_img.dataobj)
    return nib.Nifti1Image(np.isin(labels, WHITE_AND_DEEP_GREY).astype(np.float32), aseg_img.affine)
