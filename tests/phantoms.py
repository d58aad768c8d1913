"""Synthetic images made by the tests: an ellipsoid 'brain' with known bright blobs."""

import nibabel as nib
import numpy as np

SHAPE = (64, 72, 60)


def ellipsoid(shape=SHAPE, centre=None, radii=(26, 30, 24)):
    centre = np.array(shape) / 2 if centre is None else np.asarray(centre)
    grid = np.indices(shape).astype(np.float32)
    return sum(((grid[i] - centre[i]) / radii[i]) ** 2 for i in range(3)) <= 1


def blob(shape, centre, radius):
    return ellipsoid(shape, centre, (radius, radius, radius))


BLOBS = (((32, 30, 30), 3.0), ((24, 44, 26), 2.5), ((40, 42, 36), 3.5))


def brain_phantom(seed=0, shape=SHAPE, blobs=BLOBS, contrast=0.6, noise=0.02):
    """FLAIR-like phantom: white matter (1.0) in a grey rim (1.3) in dark CSF, bright blobs.

    Returns (image array, brain mask, white matter mask, lesion mask)."""
    rng = np.random.default_rng(seed)
    brain = ellipsoid(shape)
    wm = ellipsoid(shape, radii=(23, 27, 21))
    image = np.where(brain, 1.3, 0.0) - np.where(wm, 0.3, 0.0)
    lesions = np.zeros(shape, bool)
    for centre, radius in blobs:
        lesions |= blob(shape, centre, radius) & wm
    image = image + contrast * lesions
    image = image + rng.normal(0, noise, shape) * brain
    return image.astype(np.float32), brain, wm, lesions


def save(array, path, affine=None, dtype=np.float32):
    img = nib.Nifti1Image(np.asarray(array).astype(dtype), np.eye(4) if affine is None else affine)
    img.header.set_xyzt_units("mm", "sec")
    nib.save(img, str(path))
    return str(path)


IDENTITY_TRANSFORM = """#Insight Transform File V1.0
#Transform 0
Transform: AffineTransform_double_3_3
Parameters: 1 0 0 0 1 0 0 0 1 0 0 0
FixedParameters: 0 0 0
"""


def identity_transform(path):
    path.write_text(IDENTITY_TRANSFORM)
    return str(path)


def with_tumour(img, radius_mm=22.0, offset_mm=(35.0, 10.0, 20.0)):
    """A copy of a real FLAIR with a tumour-like mass: a dark necrotic core in a bright rim of
    oedema, a sphere centred ``offset_mm`` from the middle of the image (right, anterior, up)."""
    data = img.get_fdata(dtype=np.float32)
    zooms = np.asarray(img.header.get_zooms()[:3], float)
    centre_mm = np.linalg.inv(img.affine) @ np.r_[img.affine[:3, :3] @ (np.array(img.shape[:3]) / 2)
                                                   + img.affine[:3, 3] + offset_mm, 1]
    grid = np.indices(img.shape[:3]).astype(np.float32)
    distance = np.sqrt(sum(((grid[i] - centre_mm[i]) * zooms[i]) ** 2 for i in range(3)))
    level = np.percentile(data[data > 0], 75)
    data = np.where(distance <= radius_mm, 1.8 * level, data)
    data = np.where(distance <= 0.5 * radius_mm, 0.3 * level, data)
    return nib.Nifti1Image(data, img.affine, img.header)


def half_cropped(img):
    """A copy of a real FLAIR whose field of view stops halfway up the brain (upper half cut off)."""
    data = np.asanyarray(img.dataobj)
    axis = int(np.argmax(np.abs(img.affine[2, :3])))  # the voxel axis closest to superior
    rows = np.flatnonzero(np.any(data > np.percentile(data, 50), axis=tuple(a for a in range(3) if a != axis)))
    cut = (rows[0] + rows[-1]) // 2
    keep = [slice(None)] * 3
    keep[axis] = slice(0, cut) if img.affine[2, axis] > 0 else slice(cut, None)
    return img.slicer[tuple(keep)]


# Motion-like ghosts, as (shift, amplitude): copies of the image shifted by that fraction of the field of
# view along the phase-encode axis, wrapped around; periodic motion (breathing, pulsation, a restless
# patient) puts the strongest half a field of view away.
GHOSTS = ((0.5, 0.3), (0.25, 0.15), (0.75, 0.15))


def degraded(img, noise=0.15, ghosts=GHOSTS, seed=0):
    """A float32 copy of a real FLAIR with motion-like ``ghosts`` (see ``GHOSTS``) along the voxel axis
    closest to anterior-posterior (the phase-encode axis of most axial FLAIRs), then Rician noise: Gaussian
    noise of ``noise`` times the 99th percentile on the real and imaginary channels, the magnitude kept."""
    data = np.asanyarray(img.dataobj).astype(np.float64)
    axis = int(np.argmax(np.abs(img.affine[1, :3])))
    ghosted = data + sum(amplitude * np.roll(data, round(shift * data.shape[axis]), axis=axis)
                         for shift, amplitude in ghosts)
    rng = np.random.default_rng(seed)
    sigma = noise * np.percentile(data, 99)
    noisy = np.hypot(ghosted + rng.normal(0, sigma, data.shape), rng.normal(0, sigma, data.shape))
    header = img.header.copy()
    header.set_data_dtype(np.float32)
    header.set_slope_inter(None, None)
    return nib.Nifti1Image(noisy.astype(np.float32), img.affine, header)
