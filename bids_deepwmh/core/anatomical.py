"""Anatomical-knowledge WMH segmentation: where the scan is brighter than normal-appearing brains.

The normal-appearing reference holds, per template voxel, the expected intensity (median) and
spread (scaled MAD) of white-matter-normalised FLAIRs.  On the native grid, a voxel's score is
how far it lies above what is expected there, in units of the larger of two spreads:

    z = (I - max(expected, brain level)) / max(reference spread, scan spread)

The scan's own brain level and robust spread (of tissue brighter than CSF) keep the score
calibrated on any scanner, whatever the brain mask's extent; the
reference raises the bar where normal tissue is bright or variable (cortex edges, septum,
choroid plexus, normal periventricular caps).  Lesions are seeds above ``THRESHOLD`` robust
standard deviations, grown to neighbours above half of it, inside white and deep grey matter.
"""

import numpy as np
from scipy import ndimage
from skimage.filters import apply_hysteresis_threshold

from bids_deepwmh.core.lesions import remove_small_components

# Where the white-matter probability is this high, the voxel is white matter for normalisation.
WM_CORE_PROBABILITY = 0.9
SMOOTHING_MM = 1.0  # Gaussian sigma before scoring: lesions are blobs, noise is not
THRESHOLD = 3.0  # robust standard deviations: the classical outlier cut, not fitted to labels
HYSTERESIS_RATIO = 0.5  # a lesion extends over joined voxels scoring at least this fraction
MIN_LESION_MM3 = 3.0
MAD_TO_SD = 1.4826
# Of the white-matter median: darker voxels are CSF, which FLAIR suppresses.  The scan's level and
# spread are measured on the brighter brain tissue, so that they do not depend on how much
# sulcal and ventricular CSF the brain mask holds (a tight mask and HD-BET's differ there).
CSF_LEVEL = 0.6


def robust_sd(values):
    """Scaled median absolute deviation (the SD of a Gaussian, robust to outliers)."""
    return MAD_TO_SD * float(np.median(np.abs(values - np.median(values))))


def normalise(flair, brain, wm_probability):
    """Divide ``flair`` by the median intensity of its white matter (lesions barely move it)."""
    wm = brain & (wm_probability > WM_CORE_PROBABILITY)
    if wm.sum() < 100:
        wm = brain
    scale = float(np.median(flair[wm]))
    if not np.isfinite(scale) or scale <= 0:
        raise ValueError("cannot normalise: the white matter has no signal")
    return flair / scale


def hyperintensity_score(normalised, brain, expected, spread, zooms):
    """One-sided score (≥ 0, 0 outside the brain); all arrays on one grid, ``zooms`` in mm."""
    sigma = SMOOTHING_MM / np.asarray(zooms, dtype=float)
    smoothed = ndimage.gaussian_filter(normalised.astype(np.float32), sigma)
    inside = smoothed[brain & (smoothed > CSF_LEVEL)]
    if inside.size == 0:
        raise ValueError("cannot score: the brain has no tissue brighter than CSF")
    level, scale = float(np.median(inside)), robust_sd(inside)
    if scale <= 0:
        raise ValueError("cannot score: the brain has no intensity variation")
    z = (smoothed - np.maximum(expected, level)) / np.maximum(spread, scale)
    return np.where(brain, np.clip(z, 0, None), 0).astype(np.float32)


def segment(score, allowed, voxel_mm3):
    """Hysteresis threshold of the score inside the allowed tissue; tiny components dropped."""
    score = np.where(allowed, score, 0)
    mask = apply_hysteresis_threshold(score, HYSTERESIS_RATIO * THRESHOLD, THRESHOLD)
    return remove_small_components(mask, voxel_mm3, MIN_LESION_MM3)
