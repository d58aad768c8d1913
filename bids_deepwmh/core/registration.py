"""Registration of a FLAIR to a TemplateFlow template with antspyx, and resampling through it."""

import shutil
from pathlib import Path

import ants
import numpy as np

from bids_deepwmh.core.images import ants_data, like, to_ants


def register_to_template(moving, fixed, moving_mask, out_dir, random_seed=20240101):
    """Rigid, affine then SyN registration (mutual information) of ``moving`` onto ``fixed``.

    ``moving`` and ``moving_mask`` are nibabel images in native space; ``fixed`` is the
    template (nibabel).  Returns the paths of the forward (native to template) and inverse
    composite transforms written in ``out_dir``, and the similarity (Mattes mutual
    information, lower is better) of the warped image to the template inside its brain.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    data = np.asanyarray(moving.dataobj, dtype=np.float32)
    mask = np.asanyarray(moving_mask.dataobj) > 0
    # Whole-head scans and brain-only template: keep the head but tame the scalp's bright fat.
    ceiling = np.percentile(data[mask], 99.5) if mask.any() else data.max()
    moving_ants = to_ants(like(np.clip(data, 0, ceiling), moving))
    fixed_ants = to_ants(fixed)
    prefix = str(out_dir / "reg_")
    result = ants.registration(
        fixed=fixed_ants,
        moving=moving_ants,
        type_of_transform="SyN",
        aff_metric="mattes",
        syn_metric="mattes",
        reg_iterations=(40, 20, 0),
        outprefix=prefix,
        write_composite_transform=True,
        random_seed=random_seed,
    )
    forward = out_dir / "from-native_to-template_xfm.h5"
    inverse = out_dir / "from-template_to-native_xfm.h5"
    shutil.move(result["fwdtransforms"], forward)
    shutil.move(result["invtransforms"], inverse)
    similarity = ants.image_similarity(
        fixed_ants, result["warpedmovout"], metric_type="MattesMutualInformation",
        fixed_mask=ants.get_mask(fixed_ants, low_thresh=1e-3, cleanup=0),
    )
    return forward, inverse, float(similarity)


def resample(image, reference, transform, interpolation="linear"):
    """Resample nibabel ``image`` onto nibabel ``reference``'s grid through ``transform``.

    ``interpolation`` is one of ``linear``, ``nearestNeighbor`` or ``genericLabel``.
    """
    out = ants.apply_transforms(
        fixed=to_ants(reference),
        moving=to_ants(image),
        transformlist=[str(transform)],
        interpolator=interpolation,
    )
    return like(ants_data(out), reference)
