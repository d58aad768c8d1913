"""Brain mask in native space: the template's mask through the inverse transform, refined on the image."""

import numpy as np
from scipy import ndimage


def largest_component(mask, connectivity=3):
    """Keep the largest component of a boolean mask (connectivity 3: 26 neighbours, 1: 6)."""
    labels, n = ndimage.label(mask, structure=ndimage.generate_binary_structure(3, connectivity))
    if n <= 1:
        return mask.astype(bool)
    sizes = ndimage.sum(mask, labels, range(1, n + 1))
    return labels == (np.argmax(sizes) + 1)


def head_mask(data):
    """A rough foreground mask (head, or brain if skull-stripped): Otsu's threshold on the log
    intensities of every voxel, so a zero background and a noisy one are both told apart."""
    from skimage.filters import threshold_otsu

    log_data = np.log1p(np.clip(data, 0, None))
    if np.ptp(log_data) == 0:
        return np.zeros(data.shape, bool)
    mask = log_data > threshold_otsu(log_data)
    mask = largest_component(ndimage.binary_opening(mask, iterations=1), connectivity=1)
    return ndimage.binary_fill_holes(ndimage.binary_closing(mask, iterations=2))


def refine_brain_mask(flair, prior, zooms):
    """Refine a warped template brain-mask probability ``prior`` on the N4-corrected ``flair``.

    Voxels the template calls brain are kept where the image holds tissue; dark voxels at the
    edge (background, skull, a cropped field of view) are dropped; the ventricles and sulci the
    template encloses stay inside.  All arrays are on the native grid; ``zooms`` in mm.
    """
    core = prior > 0.5
    if not core.any():
        raise ValueError("the template brain mask does not overlap the image after registration")
    reference = np.median(flair[core])
    tissue = flair > 0.25 * reference
    # Tissue where the template is fairly sure, joined to the confident core.
    mask = (prior > 0.5) & tissue | (prior > 0.9)
    mask &= flair > 0  # outside a skull-stripped scan or the field of view
    radius = np.maximum(1, np.round(2.0 / np.asarray(zooms)).astype(int))
    structure = np.ones(tuple(2 * radius + 1), bool)
    mask = ndimage.binary_closing(mask, structure=structure)
    mask = ndimage.binary_fill_holes(mask)
    return largest_component(mask & (flair > 0))


def _ball(radius_mm, zooms):
    """An ellipsoidal structuring element of ``radius_mm`` on a grid of voxel size ``zooms``."""
    radii = np.maximum(1, np.round(radius_mm / np.asarray(zooms, dtype=float))).astype(int)
    grid = np.indices(2 * radii + 1) - radii[:, None, None, None]
    return (((grid / radii[:, None, None, None]) ** 2).sum(0)) <= 1


def rough_brain_mask(flair, zooms, radius_mm=5.0):
    """Brain without registration, for registering a whole-head scan to a brain-only template.

    Tissue brighter than half the foreground median, eroded by ``radius_mm`` so the scalp
    comes apart from the brain, the largest piece kept, grown back inside the tissue.  On a
    skull-stripped scan this is the brain itself.
    """
    head = head_mask(flair)
    if not head.any():
        raise ValueError("the image has no foreground")
    tissue = flair > 0.5 * np.median(flair[head])
    ball = _ball(radius_mm, zooms)
    core = largest_component(ndimage.binary_erosion(tissue, structure=ball))
    if not core.any():
        core = largest_component(tissue)
    brain = ndimage.binary_dilation(core, structure=ball) & tissue
    return ndimage.binary_fill_holes(ndimage.binary_closing(brain, structure=ball))
