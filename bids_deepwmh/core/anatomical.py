"""Anatomical-knowledge WMH segmentation: where the scan is brighter than normal-appearing brains.

The normal-appearing reference holds, per template voxel, the expected intensity (median) and
spread (scaled MAD) of white-matter-normalised FLAIRs.  On the native grid, a voxel's score is
how far it lies above what is expected there, in units of the larger of two spreads:

    z = (I - max(expected, brain level)) / max(reference spread, white-matter spread)

The scan's own level and spread keep the score calibrated on any scanner.  The level is the median
of brain tissue brighter than CSF, whatever the brain mask's extent.  The spread comes from the
white matter alone, from its darker half, which lesions (always brighter) cannot widen, so that a
3D FLAIR's bright cortex no longer inflates it and hides every lesion.  The
reference raises the bar where normal tissue is bright or variable (cortex edges, septum,
choroid plexus, normal periventricular caps).  Lesions are seeds above ``THRESHOLD`` robust
standard deviations, grown to neighbours above half of it, inside white and deep grey matter,
less their faint partial-volume rims (``lesions.trim_faint_rims``).
"""

import numpy as np
from scipy import ndimage
from skimage.filters import apply_hysteresis_threshold

from bids_deepwmh.core.lesions import ball, trim_faint_rims

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
# The darker half of the white matter measures noise and bias; its brighter half also holds normal
# variation (tracts, caps) that the score must not call lesion.  This factor brings the first to the
# second: about the median ratio (1.2) over the 2D FLAIRs of ../shared of the former scan spread
# (all tissue brighter than CSF) to this one, so that 2D FLAIRs keep their scores while a 3D
# FLAIR's bright cortex no longer inflates its spread; 1.0 and 1.5 were measured too (README).
WHITE_MATTER_SPREAD_FACTOR = 1.25
# Normal white matter on a real FLAIR always varies: its spread (as above) was 0.083-0.163 of its
# median on each of the 38 real FLAIRs of ../shared measured.  A smoother image (a phantom, a
# denoised or synthesised FLAIR) gets this floor, not a hair-trigger score.
MIN_WHITE_MATTER_SPREAD = 0.08
MIN_WHITE_MATTER_VOXELS = 100
# FLAIR nulls CSF by inverting it before the slices are read; CSF flowing in from the spinal canal
# was never inverted, so the lowest slices of a 2D FLAIR can show it bright, as on a T2w (the
# inflow artefact).  Such a slice is no FLAIR: nothing in it can be judged as WMH.  It shows as
# more than UNNULLED_FRACTION of the brain (grown by CISTERN_MM in-plane, to take in the cisterns
# around the brainstem) at twice the white matter's level or brighter: 1.7-6.6 % on the lowest
# slice of 9 of the 43 2D FLAIRs of ../shared measured, at most 0.63 % on the 34 others' and
# 0.72 % on the top two slices of any.  Lesions inside the brain reach 3.3 % of a slice, so only
# the lowest slices are checked.
UNNULLED_LEVEL = 2.0
UNNULLED_FRACTION = 0.01
UNNULLED_EDGE_SLICES = 2
CISTERN_MM = 3.0


def robust_sd(values):
    """Scaled median absolute deviation (the SD of a Gaussian, robust to outliers)."""
    return MAD_TO_SD * float(np.median(np.abs(values - np.median(values))))


def core_white_matter(region, wm_probability):
    """The voxels of ``region`` in the template's core white matter; all of ``region`` if too few."""
    white_matter = region & (wm_probability > WM_CORE_PROBABILITY)
    return white_matter if white_matter.sum() >= MIN_WHITE_MATTER_VOXELS else region


def normalise(flair, brain, wm_probability):
    """Divide ``flair`` by the median intensity of its white matter (lesions barely move it)."""
    scale = float(np.median(flair[core_white_matter(brain, wm_probability)]))
    if not np.isfinite(scale) or scale <= 0:
        raise ValueError("cannot normalise: the white matter has no signal")
    return flair / scale


def unnulled_slices(normalised, brain, affine):
    """``(axis, indices)``: the lowest slices of the brain (at most ``UNNULLED_EDGE_SLICES``,
    counted from the bottom until one is nulled) whose CSF is not nulled, along the grid ``axis``
    closest to the inferior-superior direction of ``affine``; ``normalised`` is the FLAIR over its
    white matter's level (:func:`normalise`)."""
    affine = np.asarray(affine)
    zooms = np.linalg.norm(affine[:3, :3], axis=0)
    axis = int(np.argmax(np.abs(affine[2, :3])))
    in_plane = tuple(a for a in range(3) if a != axis)
    footprint = ball(zooms, CISTERN_MM)
    disc = np.take(footprint, [footprint.shape[axis] // 2], axis=axis)
    around = ndimage.binary_dilation(brain, disc)
    voxels = around.sum(axis=in_plane)
    bright = ((normalised >= UNNULLED_LEVEL) & around).sum(axis=in_plane)
    from_bottom = np.flatnonzero(voxels)
    if affine[2, axis] < 0:
        from_bottom = from_bottom[::-1]
    indices = []
    for index in from_bottom[:UNNULLED_EDGE_SLICES]:
        if bright[index] <= UNNULLED_FRACTION * voxels[index]:
            break
        indices.append(int(index))
    return axis, indices


def white_matter_spread(values):
    """Spread of white-matter intensities: the scaled median absolute deviation of the darker half,
    times ``WHITE_MATTER_SPREAD_FACTOR`` (lesions, however confluent, only add bright voxels), and
    at least ``MIN_WHITE_MATTER_SPREAD`` times the median."""
    median = float(np.median(values))
    darker = median - values[values <= median]
    spread = WHITE_MATTER_SPREAD_FACTOR * MAD_TO_SD * float(np.median(darker))
    return max(spread, MIN_WHITE_MATTER_SPREAD * median)


def hyperintensity_score(normalised, brain, wm_probability, expected, spread, zooms):
    """One-sided score (≥ 0, 0 outside the brain); all arrays on one grid, ``zooms`` in mm."""
    sigma = SMOOTHING_MM / np.asarray(zooms, dtype=float)
    smoothed = ndimage.gaussian_filter(normalised.astype(np.float32), sigma)
    tissue = brain & (smoothed > CSF_LEVEL)
    if not tissue.any():
        raise ValueError("cannot score: the brain has no tissue brighter than CSF")
    white_matter = core_white_matter(tissue, wm_probability)
    level, scale = float(np.median(smoothed[tissue])), white_matter_spread(smoothed[white_matter])
    z = (smoothed - np.maximum(expected, level)) / np.maximum(spread, scale)
    return np.where(brain, np.clip(z, 0, None), 0).astype(np.float32)


def segment(score, allowed, zooms):
    """Hysteresis threshold of the score inside the allowed tissue, faint rims and tiny components
    dropped; ``zooms``: the voxel size in mm."""
    score = np.where(allowed, score, 0)
    mask = apply_hysteresis_threshold(score, HYSTERESIS_RATIO * THRESHOLD, THRESHOLD)
    return trim_faint_rims(mask, score, zooms, MIN_LESION_MM3)
