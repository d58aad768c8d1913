"""The network's working space: the brain's bounding box on an isotropic grid, and its inputs.

Every scan, whatever its voxel size (0.5 mm in-plane, 7 mm slices), is resampled to
``spacing`` mm along its own (RAS+ conformed) axes, cropped to the brain plus a margin.  The
FLAIR is standardised inside the brain (median 0, robust SD 1) and set to 0 outside it.
"""

from dataclasses import dataclass

import nibabel as nib
import numpy as np
from nibabel.processing import resample_from_to

from bids_deepwmh.core.anatomical import robust_sd

MARGIN_MM = 8.0
SCORE_SCALE = 5.0  # the anatomical score (robust z) enters the network as z / 5, clipped to [0, 2]


@dataclass(frozen=True)
class Grid:
    shape: tuple
    affine: np.ndarray

    def image(self, data):
        return nib.Nifti1Image(np.asarray(data, np.float32), self.affine)


def working_grid(brain_img, spacing):
    """An isotropic grid along ``brain_img``'s axes that covers its brain with a margin."""
    brain = np.asanyarray(brain_img.dataobj) > 0
    if not brain.any():
        raise ValueError("the brain mask is empty")
    zooms = np.sqrt((brain_img.affine[:3, :3] ** 2).sum(axis=0))
    directions = brain_img.affine[:3, :3] / zooms
    nonzero = np.nonzero(brain)
    low = np.array([idx.min() for idx in nonzero]) * zooms - MARGIN_MM
    high = np.array([idx.max() for idx in nonzero]) * zooms + MARGIN_MM
    affine = np.eye(4)
    affine[:3, :3] = directions * spacing
    affine[:3, 3] = brain_img.affine[:3, :3] @ (low / zooms) + brain_img.affine[:3, 3]
    shape = tuple(int(n) for n in np.ceil((high - low) / spacing).astype(int) + 1)
    return Grid(shape, affine)


def to_grid(img, grid, order=1):
    """``img`` resampled onto ``grid`` (zero outside its field of view)."""
    return resample_from_to(img, (grid.shape, grid.affine), order=order, cval=0.0).get_fdata(dtype=np.float32)


def from_grid(data, grid, target_img, order=1):
    """Working-space ``data`` resampled back onto ``target_img``'s grid."""
    return resample_from_to(grid.image(data), target_img, order=order, cval=0.0).get_fdata(dtype=np.float32)


def standardise(flair, brain):
    """Median 0 and robust SD 1 inside the brain, 0 outside."""
    inside = flair[brain]
    scale = robust_sd(inside)
    if inside.size == 0 or scale <= 0:
        raise ValueError("cannot standardise: the brain has no intensity variation")
    return np.where(brain, (flair - np.median(inside)) / scale, 0).astype(np.float32)


def network_input(flair_img, brain_img, spacing, score_img=None):
    """``(channels, grid, brain)``: the network's input channels on the working grid."""
    grid = working_grid(brain_img, spacing)
    brain = to_grid(brain_img, grid) >= 0.5
    channels = [standardise(to_grid(flair_img, grid), brain)]
    if score_img is not None:
        channels.append(np.clip(to_grid(score_img, grid) / SCORE_SCALE, 0, 2) * brain)
    return np.stack(channels).astype(np.float32), grid, brain
