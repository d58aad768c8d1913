"""Conversions between nibabel and ANTs images, and small image helpers."""

import nibabel as nib
import numpy as np


def to_ants(img):
    """Return a nibabel image as a float32 ANTsImage in the same physical space (mm units).

    antspyx is imported here, not with the module: the network and the brain extraction, which use
    this module's other helpers, then run without it (as on a GPU machine with PyTorch alone)."""
    import ants

    return ants.from_nibabel_nifti(like(np.asanyarray(img.dataobj), img))


def ants_data(ants_img, dtype=np.float32):
    """The voxel array of an ANTsImage (same index order as nibabel's)."""
    return ants_img.numpy().astype(dtype)


def like(data, reference, dtype=np.float32):
    """A nibabel image holding ``data`` on ``reference``'s grid."""
    out = nib.Nifti1Image(np.asarray(data, dtype=dtype), reference.affine)
    out.set_qform(reference.affine, code=1)
    out.set_sform(reference.affine, code=1)
    out.header.set_xyzt_units("mm", "sec")
    return out


def voxel_aligned(img):
    """The same voxels on a grid whose axes are the world's: the header's rotation (an oblique
    acquisition) dropped, the voxel sizes kept.  What is computed on it depends on the voxels alone,
    however the header turns them."""
    aligned = nib.Nifti1Image(np.zeros((1, 1, 1)), np.diag(np.r_[voxel_sizes(img), 1.0]))
    return like(np.asanyarray(img.dataobj), aligned)


def voxel_sizes(img):
    """The voxel sizes (mm) the header states: the same numbers however the header is rotated."""
    return np.asarray(img.header.get_zooms()[:3], dtype=float)


def voxel_volume_mm3(img):
    """Volume of one voxel of ``img`` in mm³."""
    return float(abs(np.linalg.det(img.affine[:3, :3])))


def bounding_box(mask, margin_mm=0.0, zooms=(1.0, 1.0, 1.0)):
    """Slices of the boolean ``mask``'s bounding box (``mask`` not empty), grown by ``margin_mm``
    (whole voxels of ``zooms`` mm, rounded up) and kept within the grid."""
    from scipy import ndimage

    (box,) = ndimage.find_objects(np.asarray(mask, np.uint8))
    grow = [int(np.ceil(margin_mm / z)) for z in zooms]
    return tuple(slice(max(0, b.start - g), min(n, b.stop + g))
                 for b, g, n in zip(box, grow, mask.shape, strict=True))


def near_mask(mask, zooms, distance_mm):
    """Boolean: the voxels within ``distance_mm`` (Euclidean, on a grid of ``zooms`` mm) of the
    boolean ``mask``, the mask included.  Measured on the mask's bounding box grown by the distance
    alone: the same voxels as over the whole grid, in a fraction of the time."""
    from scipy import ndimage

    mask = np.asarray(mask, bool)
    near = np.zeros(mask.shape, bool)
    if mask.any():
        box = bounding_box(mask, distance_mm, zooms)
        near[box] = ndimage.distance_transform_edt(~mask[box], sampling=zooms) <= distance_mm
    return near


def deeper_than(mask, zooms, depth_mm):
    """Boolean: the voxels of the boolean ``mask`` farther than ``depth_mm`` from every voxel
    outside it (measured on the mask's grown bounding box, as :func:`near_mask`)."""
    from scipy import ndimage

    mask = np.asarray(mask, bool)
    deep = np.zeros(mask.shape, bool)
    if mask.any():
        box = bounding_box(mask, depth_mm, zooms)
        deep[box] = ndimage.distance_transform_edt(mask[box], sampling=zooms) > depth_mm
    return deep


def distance_to_surface(mask, zooms):
    """Distance (mm) from each voxel's centre to the nearest face of the boolean ``mask``'s voxels,
    0 inside it; ``inf`` everywhere when the mask is empty.  Voxels are boxes: on 6 mm slices, a
    voxel right above the mask is 3 mm from it, not 6 mm as from centre to centre, so that
    distances from a structure read alike on thick and thin slices."""
    from scipy import ndimage

    mask = np.asarray(mask, bool)
    if not mask.any():
        return np.full(mask.shape, np.inf, np.float32)
    indices = np.zeros((mask.ndim, *mask.shape), np.int32)
    ndimage.distance_transform_edt(~mask, sampling=zooms, return_distances=False, return_indices=True,
                                   indices=indices)
    squared = np.zeros(mask.shape, np.float32)
    for axis, size in enumerate(zooms):
        steps = np.abs(indices[axis] - np.arange(mask.shape[axis]).reshape([-1 if a == axis else 1
                                                                           for a in range(mask.ndim)]))
        squared += (np.clip(steps - 0.5, 0, None) * size) ** 2
    return np.sqrt(squared)
