"""Read a FLAIR, reorient it to RAS+, clean its values and reject what is not a 3D brain image."""

import zlib
from pathlib import Path

import nibabel as nib
import numpy as np

from bids_deepwmh.utils.errors import InvalidImageError

MIN_EXTENT_MM = 60.0  # a brain is about 140 mm across; anything smaller in any direction is not one
MIN_SLICES = 8
# The darkest 1 % of an MRI's voxels is air around the head, or the background of a skull-stripped
# scan: that intensity is the image's zero, so a storage offset (a background below or above zero)
# changes nothing downstream.  The real FLAIRs of the development data have it at 0, or within
# 0.1 % of the bright end (a few negative voxels of interpolation ringing).
ZERO_LEVEL_PERCENTILE = 1.0
RECONVERT = "convert the scan again from its DICOM files (e.g. with dcm2niix)"
LEAVE_OUT = "or leave this file out with --bids-filter-file"


def _mm(values):
    """``(0.9, 0.9, 5.0)`` -> ``"0.9 x 0.9 x 5 mm"``: numbers as a person writes them."""
    return " x ".join(f"{float(v):.3g}" for v in values) + " mm"


def _voxels(shape):
    return " x ".join(map(str, shape)) + " voxels"


def _check_header(name, img):
    """Refuse, before any voxel is read, a header that cannot describe a 3D brain image."""
    if int(img.header["qform_code"]) == 0 and int(img.header["sform_code"]) == 0:
        raise InvalidImageError(
            f"{name}: its header says nothing of where the image lies in the scanner (qform and sform "
            f"codes are both 0), so its orientation, left and right included, is unknown; {RECONVERT}"
        )
    shape = img.shape
    if len(shape) == 2 or (len(shape) == 3 and 1 in shape):
        raise InvalidImageError(f"{name}: it is a 2D image ({_voxels(shape)}), not a 3D FLAIR; "
                                f"{RECONVERT} with every slice, {LEAVE_OUT}")
    if len(shape) == 4 and shape[3] > 1:
        raise InvalidImageError(f"{name}: it holds {shape[3]} volumes ({_voxels(shape)}), not one 3D FLAIR; "
                                f"keep the FLAIR volume alone in the file, {LEAVE_OUT}")
    if len(shape) not in (3, 4):
        raise InvalidImageError(f"{name}: it has {len(shape)} dimensions ({_voxels(shape)}), not the 3 of a "
                                f"FLAIR; {RECONVERT}")
    zooms = np.asarray(img.header.get_zooms()[:3], dtype=float)
    if not np.all(np.isfinite(zooms)) or np.any(zooms <= 0):
        raise InvalidImageError(f"{name}: its header gives impossible voxel sizes ({_mm(zooms)}); {RECONVERT}")
    if not np.all(np.isfinite(img.affine)) or abs(np.linalg.det(img.affine[:3, :3])) < 1e-6:
        raise InvalidImageError(f"{name}: its header's voxel-to-scanner transform is degenerate (not "
                                f"invertible); {RECONVERT}")
    if sorted(shape[:3])[1] < MIN_SLICES:
        raise InvalidImageError(
            f"{name}: {_voxels(shape[:3])} are too few to hold a brain (at least {MIN_SLICES} slices in "
            f"two directions); give the whole-brain FLAIR, {LEAVE_OUT}"
        )
    extent = np.asarray(shape[:3]) * zooms
    if np.any(extent < MIN_EXTENT_MM):
        raise InvalidImageError(
            f"{name}: its field of view ({_mm(extent)}) is too small for a brain "
            f"(at least {MIN_EXTENT_MM:.0f} mm in every direction); give the whole-brain FLAIR, {LEAVE_OUT}"
        )


def conform(in_file):
    """Return ``in_file`` as a float32 RAS+ image with finite values, its darkest voxels at 0
    (``ZERO_LEVEL_PERCENTILE``).

    Raises :class:`InvalidImageError` naming the file, the problem and what to do.
    """
    name = Path(in_file).name
    try:
        img = nib.load(str(in_file))
    except Exception as exc:  # nibabel raises many types for corrupt files
        raise InvalidImageError(
            f"{name}: it cannot be read as a NIfTI image (it is damaged, incomplete or in another format); "
            f"{RECONVERT}"
        ) from exc
    _check_header(name, img)
    try:  # the voxels are read here, before anything else touches them
        data = np.asarray(img.dataobj, dtype=np.float32).reshape(img.shape[:3])
    except (EOFError, OSError, ValueError, zlib.error) as exc:
        raise InvalidImageError(
            f"{name}: the file is damaged or incomplete (its data end before the image does); copy it again, "
            f"or {RECONVERT}"
        ) from exc
    finite = np.isfinite(data)
    if not finite.all():
        data = np.where(finite, data, 0).astype(np.float32)
    if np.count_nonzero(data > data.min()) < 0.01 * data.size or np.ptp(data[finite]) <= 0:
        raise InvalidImageError(f"{name}: the image is empty (every voxel, or nearly, holds the same value); "
                                f"{RECONVERT}")
    data -= np.float32(np.percentile(data, ZERO_LEVEL_PERCENTILE))
    header = img.header.copy()
    header.set_data_shape(data.shape)
    header.set_data_dtype(np.float32)
    header.set_slope_inter(None, None)
    canonical = nib.as_closest_canonical(nib.Nifti1Image(data, img.affine, header))
    out = nib.Nifti1Image(np.asanyarray(canonical.dataobj), canonical.affine, canonical.header)
    out.set_qform(canonical.affine, code=1)
    out.set_sform(canonical.affine, code=1)
    return out


def to_source_grid(img, source_file, dtype=None):
    """Undo :func:`conform`'s reorientation: return ``img`` on the grid of ``source_file``."""
    source = nib.load(str(source_file))
    source_ornt = nib.orientations.io_orientation(source.affine)
    ras_to_source = nib.orientations.ornt_transform(
        nib.orientations.io_orientation(img.affine), source_ornt
    )
    data = nib.orientations.apply_orientation(np.asanyarray(img.dataobj), ras_to_source)
    if dtype is not None:
        data = data.astype(dtype)
    if data.shape != source.shape[:3]:
        raise ValueError(f"cannot bring {data.shape} back to the grid {source.shape[:3]}")
    header = source.header.copy()
    header.set_data_dtype(data.dtype)
    header.set_xyzt_units("mm")
    header.set_slope_inter(None, None)
    if len(source.shape) > 3:  # a 4D single-volume source: outputs are 3D
        header.set_data_shape(data.shape)
    out = nib.Nifti1Image(data, source.affine, header)
    out.set_qform(source.affine, code=1)
    out.set_sform(source.affine, code=1)
    return out
