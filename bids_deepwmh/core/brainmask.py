"""Brain mask in native space: the template's mask through the inverse transform, refined on the image."""

import numpy as np
from scipy import ndimage


def largest_component(mask):
    """Keep the largest 26-connected component of a boolean mask."""
    labels, n = ndimage.label(mask, structure=np.ones((3, 3, 3)))
    if n <= 1:
        return mask.astype(bool)
    sizes = ndimage.sum(mask, labels, range(1, n + 1))
    return labels == (np.argmax(sizes) + 1)


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
