"""Registration of a FLAIR to a TemplateFlow template with antspyx, and resampling through it."""

import shutil
from pathlib import Path

import ants
import nibabel as nib
import numpy as np
from ants.config import set_ants_deterministic
from scipy import ndimage

from bids_deepwmh import DEFAULT_RANDOM_SEED
from bids_deepwmh.core.images import ants_data, like, to_ants, voxel_sizes

# The metric is computed only inside the template's brain grown by this margin, so that
# the empty space around both brains does not count in the match.
METRIC_MARGIN_MM = 6.0
RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0])  # nibabel's world is RAS, ITK's LPS


def register_to_template(moving, brain, fixed, out_dir, random_seed=DEFAULT_RANDOM_SEED, transform="SyN"):
    """Affine then SyN registration (mutual information) of ``moving`` onto ``fixed`` (the affine
    alone with ``transform="Affine"``).

    ``moving`` is the FLAIR (nibabel, native space) and ``brain`` its boolean brain mask; only
    the brain is registered, to ``fixed``, the template's brain, and every stage measures the
    match only near the template's brain (``METRIC_MARGIN_MM``).  It starts from the FLAIR's voxel
    axes laid along the template's and the centres of mass matched (:func:`voxel_axes_start`), so
    that how the header turns the voxels (an oblique acquisition) does not change the result.
    Returns the paths of the forward (native to template) and inverse composite transforms
    written in ``out_dir``, and the similarity (Mattes mutual information, lower is better) of
    the warped image to the template inside its brain.

    The result is the same bit for bit from run to run only when ITK runs on one thread in this
    process (``ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS=1`` before ITK's first use, as every run of
    the App sets): with two threads, two runs of the same seed land up to a voxel apart.
    """
    set_ants_deterministic(on=True, seed_value=random_seed)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    data = np.asanyarray(moving.dataobj, dtype=np.float32)
    brain = np.asarray(brain, bool)
    if not brain.any():
        raise ValueError("the brain mask is empty: there is no brain to register")
    ceiling = np.percentile(data[brain], 99.5)
    moving_brain = like(np.clip(data, 0, ceiling) * brain, moving)
    moving_ants = to_ants(moving_brain)
    fixed_ants = to_ants(fixed)
    fixed_brain = ants.get_mask(fixed_ants, low_thresh=1e-3, cleanup=0)
    margin = max(1, round(METRIC_MARGIN_MM / min(fixed_ants.spacing)))
    prefix = str(out_dir / "reg_")
    start = str(out_dir / "start.mat")
    ants.write_transform(voxel_axes_start(moving_brain, fixed), start)
    result = ants.registration(
        fixed=fixed_ants,
        moving=moving_ants,
        type_of_transform=transform,
        aff_metric="mattes",
        syn_metric="mattes",
        reg_iterations=(40, 20, 0),
        mask=ants.iMath(fixed_brain, "MD", margin),
        mask_all_stages=True,
        initial_transform=[start],
        outprefix=prefix,
        write_composite_transform=True,
    )
    forward = out_dir / "from-native_to-template_xfm.h5"
    inverse = out_dir / "from-template_to-native_xfm.h5"
    shutil.move(result["fwdtransforms"], forward)
    shutil.move(result["invtransforms"], inverse)
    similarity = ants.image_similarity(
        fixed_ants, result["warpedmovout"], metric_type="MattesMutualInformation", fixed_mask=fixed_brain,
    )
    return forward, inverse, float(similarity)


def voxel_axes_start(moving, fixed):
    """The affine where the registration starts, template to FLAIR millimetres (ITK's LPS): the
    template's axes turned onto the FLAIR's voxel axes, about the intensity-weighted centres of
    mass of the nibabel images ``moving`` and ``fixed``.

    Technologists lay 2D slices along the head, so the voxel axes are as good a start as the
    scanner's axes, and one that does not move when only the header turns."""
    voxel_axes = moving.affine[:3, :3] / voxel_sizes(moving)
    moving_centre, fixed_centre = (
        nib.affines.apply_affine(img.affine, ndimage.center_of_mass(np.clip(img.get_fdata(), 0, None)))
        for img in (moving, fixed)
    )
    return ants.create_ants_transform(
        transform_type="AffineTransform", dimension=3, matrix=RAS_TO_LPS @ voxel_axes @ RAS_TO_LPS,
        center=RAS_TO_LPS @ fixed_centre, translation=RAS_TO_LPS @ (moving_centre - fixed_centre),
    )


def resample(image, reference, transform, interpolation="linear"):
    """Resample nibabel ``image`` onto nibabel ``reference``'s grid through ``transform``.

    ``interpolation`` is one of ``linear``, ``nearestNeighbor`` or ``genericLabel``; a 4D
    ``image`` is resampled volume by volume.
    """
    if len(image.shape) == 4:
        volumes = [resample(image.slicer[..., i], reference, transform, interpolation).get_fdata(dtype=np.float32)
                   for i in range(image.shape[3])]
        return like(np.stack(volumes, axis=-1), reference)
    out = ants.apply_transforms(
        fixed=to_ants(reference),
        moving=to_ants(image),
        transformlist=[str(transform)],
        interpolator=interpolation,
    )
    return like(ants_data(out), reference)


def points_to_template(points, inverse_transform):
    """Map scanner (RAS) millimetres of the FLAIR to template millimetres (RAS).

    ANTs moves points with the transform that moves images the other way, so FLAIR points go
    through the template-to-FLAIR ``inverse_transform``; ANTs points are LPS.
    """
    import pandas as pd

    points = np.asarray(points, float).reshape(-1, 3)
    if not len(points):
        return points
    moved = ants.apply_transforms_to_points(
        3, pd.DataFrame(points @ RAS_TO_LPS, columns=["x", "y", "z"]), [str(inverse_transform)]
    )
    return moved[["x", "y", "z"]].to_numpy() @ RAS_TO_LPS
