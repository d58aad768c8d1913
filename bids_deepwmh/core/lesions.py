"""Connected components of binary lesion masks."""

import numpy as np
from scipy import ndimage

FULL_CONNECTIVITY = np.ones((3, 3, 3), bool)


def label_components(mask):
    """Label 26-connected components; returns (labels, count)."""
    return ndimage.label(np.asarray(mask, bool), structure=FULL_CONNECTIVITY)


def remove_small_components(mask, voxel_mm3, min_mm3=3.0):
    """Drop components smaller than ``min_mm3`` cubic millimetres."""
    labels, n = label_components(mask)
    if n == 0:
        return np.zeros(mask.shape, bool)
    sizes = np.bincount(labels.ravel())[1:] * voxel_mm3
    keep = np.concatenate([[False], sizes >= min_mm3])
    return keep[labels]


def keep_in_tissue(probability, mask, tissue, voxel_mm3):
    """``(probability, mask, outside_ml)``: both limited to the boolean ``tissue`` where WMH can
    be, and the volume (mL) of the mask that lay outside it."""
    outside_ml = float(np.count_nonzero(mask & ~tissue) * voxel_mm3 / 1000.0)
    return np.where(tissue, probability, 0).astype(np.float32), mask & tissue, outside_ml
