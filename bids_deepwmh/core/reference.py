"""The normal-appearing FLAIR reference: robust per-voxel statistics of a registered cohort.

Built without labels: lesions are sparse and sit in different places in different people, so
the per-voxel median and scaled median absolute deviation (MAD) of a cohort's normalised
FLAIRs describe normal-appearing tissue.
"""

import json
import warnings
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

from bids_deepwmh.core.anatomical import MAD_TO_SD

MIN_COVERAGE = 0.5  # a voxel needs this fraction of the cohort to have data there
SMOOTHING_VOXELS = 1.0  # the spread of a small cohort is noisy: smooth it


def build_reference(stack):
    """Expected intensity and spread from ``stack`` (scans × template voxels).

    ``stack`` holds normalised FLAIRs in template space, NaN outside each scan's brain or field
    of view.  Voxels covered by too few scans are NaN in both maps.
    """
    stack = np.asarray(stack, dtype=np.float32)
    covered = np.isfinite(stack).sum(0) >= max(2, MIN_COVERAGE * stack.shape[0])
    with warnings.catch_warnings():  # voxels outside every scan stay NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        expected = np.nanmedian(stack, axis=0)
        spread = MAD_TO_SD * np.nanmedian(np.abs(stack - expected), axis=0)
    weight = ndimage.gaussian_filter(covered.astype(np.float32), SMOOTHING_VOXELS)
    spread = ndimage.gaussian_filter(np.where(covered, spread, 0), SMOOTHING_VOXELS)
    spread /= np.maximum(weight, 1e-3)
    return np.where(covered, expected, np.nan), np.where(covered, spread, np.nan)


def save_reference(path, expected, spread, affine, metadata):
    """Write the reference as a 4D NIfTI (expected, spread; 0 where unknown) with a JSON sidecar."""
    path = Path(path)
    data = np.stack([np.nan_to_num(expected), np.nan_to_num(spread)], axis=-1).astype(np.float32)
    img = nib.Nifti1Image(data, affine)
    img.header.set_data_dtype(np.int16)  # nibabel scales; ample for intensities near 1
    img.header.set_xyzt_units("mm", "sec")
    nib.save(img, path)
    sidecar = _sidecar(path)
    sidecar.write_text(json.dumps(metadata, indent=2) + "\n")
    return path, sidecar


def load_reference(path):
    """Return the expected and spread images and the metadata of a saved reference."""
    img = nib.load(str(path))
    data = img.get_fdata(dtype=np.float32)
    expected, spread = (nib.Nifti1Image(data[..., i], img.affine) for i in range(2))
    return expected, spread, json.loads(_sidecar(path).read_text())


def _sidecar(path):
    path = Path(path)
    return path.with_name(path.name.replace(".nii.gz", ".json"))
