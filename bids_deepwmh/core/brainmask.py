"""Foreground masks without registration: the head, and the brain of a skull-stripped scan."""

import numpy as np
from scipy import ndimage

BACKGROUND_FRACTION = 0.01  # of the 99th intensity percentile: below it, a skull-stripped scan's background
# A brain (with its ventricles, sulci and cerebellum; MNI-sized brains reach 2 L) is smaller than
# this; a whole head is larger (2.75 L for the smallest defaced head of the development data).
SKULL_STRIPPED_MAX_ML = 2500.0
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
