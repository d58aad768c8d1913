"""The normal-appearing FLAIR reference: robust per-voxel statistics of a registered cohort.

Built without labels: lesions are sparse and sit in different places in different people, so
the per-voxel median and scaled median absolute deviation (MAD) of a cohort's normalised
FLAIRs describe normal-appearing tissue.  Where lesions are common in the cohort (periventricular
caps in multiple sclerosis), they would still raise the median and the MAD and hide the same
lesions in new scans, so a second pass leaves out each scan's own hyperintensities.
"""

import json
import warnings
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

from bids_deepwmh.core.anatomical import HYSTERESIS_RATIO, MAD_TO_SD, THRESHOLD, hyperintensity_score

MIN_COVERAGE = 0.5  # a voxel needs this fraction of the cohort to have data there
SMOOTHING_VOXELS = 1.0  # the spread of a small cohort is noisy: smooth it


def build_reference(stack, zooms, wm_probability):
    """Expected intensity and spread of normal-appearing tissue from ``stack`` (scans × voxels).

    ``stack`` holds normalised FLAIRs in template space (voxel size ``zooms`` mm), NaN outside
    each scan's brain or field of view; ``wm_probability`` is the template's white matter.  A
    first pass describes the whole cohort; the second leaves out, in each scan, the voxels that
    score as lesion against the first (above the level that lesions are grown to, plus one voxel
    of partial volume).  Voxels covered by too few scans are NaN in both maps.
    """
    stack = np.asarray(stack, dtype=np.float32)
    expected, spread = _robust_statistics(stack)
    known_expected, known_spread = np.nan_to_num(expected), np.nan_to_num(spread)  # 0: unknown, as saved
    normal_appearing = stack.copy()
    for scan in normal_appearing:
        brain = np.isfinite(scan)
        score = hyperintensity_score(np.nan_to_num(scan), brain, wm_probability, known_expected, known_spread,
                                     zooms)
        scan[ndimage.binary_dilation(score >= HYSTERESIS_RATIO * THRESHOLD) & brain] = np.nan
    return _robust_statistics(normal_appearing)


def _robust_statistics(stack):
    """Per-voxel median and smoothed scaled MAD where enough scans have data, else NaN."""
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
    expected, spread = reference_volumes(nib.load(str(path)))
    return expected, spread, json.loads(_sidecar(path).read_text())


def reference_volumes(img):
    """The expected and spread images of a reference image (in template space or brought to a scan)."""
    data = img.get_fdata(dtype=np.float32)
    return tuple(nib.Nifti1Image(data[..., i], img.affine) for i in range(2))


def _sidecar(path):
    path = Path(path)
    return path.with_name(path.name.replace(".nii.gz", ".json"))
