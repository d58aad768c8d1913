"""Brain and head masks from the image alone: the head, the brain of a skull-stripped scan, a rough
brain for registering a whole head, a registered template brain refined on the image, and whether
a brain mask is plausible."""

import numpy as np
from scipy import ndimage

from bids_deepwmh.core.metrics import dice

BACKGROUND_FRACTION = 0.01  # of the 99th intensity percentile: below it, a skull-stripped scan's background
# A brain (with its ventricles, sulci and cerebellum; MNI-sized brains reach 2 L) is smaller than
# this; a whole head is larger (2.75 L for the smallest defaced head of the development data).
SKULL_STRIPPED_MAX_ML = 2500.0
# A brain mask outside this range (mL, ventricles included) is not a brain: adults' brains with their
# ventricles are 900-1800 mL; the range leaves room for small and atrophied brains, and large heads.
PLAUSIBLE_BRAIN_ML = (600.0, 2200.0)
# A brain mask is plausible if its Dice with the template's brain, brought to the scan by an affine
# registration, reaches this.  HD-BET's masks of the whole-head real FLAIRs of the development data:
# 0.88-0.97 (0.95-0.97 for 33 of 38); the two brains it cut, of older patients with large ventricles
# and confluent WMH (dev-fazekas sub-u79, sub-u200: 628 and 1046 mL of 1051 and 1617 expected), 0.73 and 0.78.
ROUGH_TEMPLATE_MIN_DICE = 0.85
# HD-BET's retry, on a scan where its first mask failed, must agree as closely as its first masks of
# those scans mostly do (at least this for 36 of 38): on sub-u79 the retry (Dice 0.86) still left
# out the ventricles, the confluent WMH around them and the top slices, which the template's brain
# refined on the image kept.
RETRY_MIN_DICE = 0.9
ROUGH_DENOISE_MM = 2.0  # the median filter of a rough brain made again on a noisy scan
# The head mask's log intensities are taken with the 99th percentile brought to this level, the
# range of scanners' integer images, so that the mask is the same however the image is scaled.
HEAD_MASK_LEVEL = 1000.0


def largest_component(mask, connectivity=3):
    """Keep the largest component of a boolean mask (connectivity 3: 26 neighbours, 1: 6)."""
    labels, n = ndimage.label(mask, structure=ndimage.generate_binary_structure(3, connectivity))
    if n <= 1:
        return mask.astype(bool)
    sizes = ndimage.sum(mask, labels, range(1, n + 1))
    return labels == (np.argmax(sizes) + 1)


def head_mask(data):
    """A rough foreground mask (head, or brain if skull-stripped): Otsu's threshold on the log
    intensities of every voxel (scaled, ``HEAD_MASK_LEVEL``), so a zero background and a noisy one
    are both told apart."""
    from skimage.filters import threshold_otsu

    level = float(np.percentile(data, 99))
    log_data = np.log1p(np.clip(data, 0, None) * (HEAD_MASK_LEVEL / level if level > 0 else 1.0))
    if np.ptp(log_data) == 0:
        return np.zeros(data.shape, bool)
    mask = log_data > threshold_otsu(log_data)
    mask = largest_component(ndimage.binary_opening(mask, iterations=1), connectivity=1)
    return ndimage.binary_fill_holes(ndimage.binary_closing(mask, iterations=2))


def skull_stripped_brain(data, zooms):
    """The brain of a scan that its source already skull-stripped, or ``None`` for a whole head.

    A skull-stripped scan is a brain on an empty background: its foreground (every voxel above
    ``BACKGROUND_FRACTION`` of the bright end, the largest piece, holes filled) is no larger than
    a brain.  A whole head, its scalp and neck, or a noisy background are larger.
    """
    ceiling = float(np.percentile(data, 99))
    if ceiling <= 0:
        return None
    foreground = ndimage.binary_fill_holes(largest_component(data > BACKGROUND_FRACTION * ceiling, connectivity=1))
    volume_ml = np.count_nonzero(foreground) * float(np.prod(zooms)) / 1000.0
    return foreground if volume_ml <= SKULL_STRIPPED_MAX_ML else None


def _volume_ml(mask, zooms):
    return np.count_nonzero(mask) * float(np.prod(zooms)) / 1000.0


def implausible_brain(mask, expected, zooms, min_dice=ROUGH_TEMPLATE_MIN_DICE):
    """Why the boolean ``mask`` cannot be the brain, or ``None``: empty, of a volume outside
    ``PLAUSIBLE_BRAIN_ML``, or unlike the ``expected`` brain (boolean: the template's brain brought to
    the scan by an affine registration) by a Dice under ``min_dice``."""
    volume_ml = _volume_ml(mask, zooms)
    low, high = PLAUSIBLE_BRAIN_ML
    if volume_ml == 0:
        return "empty"
    if not low <= volume_ml <= high:
        return f"{volume_ml:.0f} mL, outside the {low:.0f}-{high:.0f} mL of a brain"
    agreement = dice(mask, expected)
    if agreement < min_dice:
        expected_ml = _volume_ml(expected, zooms)
        return (f"{volume_ml:.0f} mL, Dice {agreement:.2f} with the template's brain registered to the scan "
                f"({expected_ml:.0f} mL), under {min_dice:g}")
    return None


def rough_brain_mask(data, zooms, radius_mm=5.0):
    """A brain without registration, to register a whole-head scan to a brain-only template:
    tissue brighter than half the head's median, eroded by ``radius_mm`` so that the scalp comes
    apart from the brain, the largest piece kept and grown back inside the tissue, closed (the whole
    head if nothing is left).

    Strong noise breaks the tissue into speckle that the erosion takes apart (26 mL of a 1323 mL
    brain on ``dev-native/sub-tr5`` with noise of 15 % of the bright end): a rough brain of a volume
    outside ``PLAUSIBLE_BRAIN_ML`` is made again on the image median-filtered over
    ``ROUGH_DENOISE_MM``, which bridges the skull on clean scans and so is not used on them."""
    brain = _rough_brain(data, zooms, radius_mm)
    low, high = PLAUSIBLE_BRAIN_ML
    if low <= _volume_ml(brain, zooms) <= high:
        return brain
    size = [max(1, round(ROUGH_DENOISE_MM / z)) // 2 * 2 + 1 for z in zooms]  # odd, at least one voxel
    return _rough_brain(ndimage.median_filter(data, size=size), zooms, radius_mm)


def _rough_brain(data, zooms, radius_mm):
    head = head_mask(data)
    if not head.any():
        return head
    tissue = data > 0.5 * np.median(data[head])
    ball = _ball(radius_mm, zooms)
    core = largest_component(ndimage.binary_erosion(tissue, structure=ball))
    if not core.any():
        return head
    brain = ndimage.binary_dilation(core, structure=ball) & tissue
    return ndimage.binary_fill_holes(ndimage.binary_closing(brain, structure=ball))


def _ball(radius_mm, zooms):
    """An ellipsoid of ``radius_mm`` on a grid of ``zooms`` mm, at least one voxel in every direction
    (so that thick slices are eroded too: the scalp above and below the brain comes apart from it)."""
    radii = np.maximum(1, np.round(radius_mm / np.asarray(zooms, dtype=float))).astype(int)
    grid = np.indices(2 * radii + 1) - radii[:, None, None, None]
    return (((grid / radii[:, None, None, None]) ** 2).sum(0)) <= 1


def refine_brain_mask(data, prior, zooms):
    """The template's brain probability ``prior``, brought to the image, refined on the image
    ``data``: voxels the template calls brain are kept where the image holds tissue, the dark ones at
    its edge (skull, background, beyond the field of view) dropped, the ventricles and sulci it
    encloses kept; where the template is sure (> 0.9) the voxel stays whatever its intensity.
    Empty only if the template's brain misses the image."""
    core = prior > 0.5
    if not core.any():
        return core
    tissue = data > 0.25 * np.median(data[core])
    mask = (core & tissue) | (prior > 0.9)
    radius = np.maximum(1, np.round(2.0 / np.asarray(zooms))).astype(int)
    padded = np.pad(mask, [(r, r) for r in radius])  # so that the closing keeps a brain cut by the field of view
    closed = ndimage.binary_closing(padded, structure=np.ones(tuple(2 * radius + 1), bool))
    mask = closed[tuple(slice(r, -r) for r in radius)]
    return largest_component(ndimage.binary_fill_holes(mask), connectivity=1)
