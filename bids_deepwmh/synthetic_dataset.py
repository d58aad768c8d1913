"""A small synthetic BIDS dataset with known lesions, for the end-to-end tests and the container check.

Each synthetic FLAIR is drawn from the template's tissue probability maps (FLAIR-like contrast:
grey matter brighter than white matter, CSF dark), with ellipsoidal hyperintense lesions in
deep white matter, a smooth bias field, noise, a random head pose and LPS storage order.  The
lesion masks are written as a manual-mask derivative, so the group level reports the Dice.
"""

import json
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage
from scipy.spatial.transform import Rotation

# FLAIR-like intensities relative to white matter.
TISSUE_INTENSITY = {"WM": 1.0, "GM": 1.3, "CSF": 0.25}
LESION_CONTRAST = 0.7  # a lesion core is this much brighter than white matter
WM_SIGNAL = 400.0


def synthetic_flair(seed, n_lesions=8, resolution=1):
    """Return (FLAIR image, lesion mask image) on a randomly posed, LPS-stored grid."""
    from bids_deepwmh.core.template import tissue_probability

    rng = np.random.default_rng(seed)
    maps = {label: nib.load(tissue_probability(label, resolution)) for label in TISSUE_INTENSITY}
    affine = maps["WM"].affine
    probs = {label: img.get_fdata(dtype=np.float32) for label, img in maps.items()}
    image = sum(TISSUE_INTENSITY[label] * probs[label] for label in probs)
    zooms = np.abs(np.diag(affine)[:3])

    # Lesions: ellipsoids centred in deep white matter, soft edges.
    deep_wm = ndimage.binary_erosion(probs["WM"] > 0.95, iterations=max(1, round(4 / zooms[0])))
    candidates = np.argwhere(deep_wm)
    lesion_profile = np.zeros(image.shape, np.float32)
    for centre in candidates[rng.choice(len(candidates), n_lesions, replace=False)]:
        radii = rng.uniform(2.5, 5.0, size=3) / zooms
        box = tuple(slice(max(0, int(c - 2 * r)), int(c + 2 * r) + 1) for c, r in zip(centre, radii, strict=True))
        grid = np.indices(image[box].shape).astype(np.float32)
        offsets = [centre[i] - box[i].start for i in range(3)]
        distance = sum(((grid[i] - offsets[i]) / radii[i]) ** 2 for i in range(3))
        lesion_profile[box] = np.maximum(lesion_profile[box], np.clip(1.5 - distance, 0, 1))
    lesions = (lesion_profile >= 0.5) & (probs["WM"] > 0.5)
    image = image * (1 + LESION_CONTRAST * lesion_profile * (probs["WM"] > 0.5))

    # Bias field, noise, signal scale.
    low_res = rng.normal(size=(4, 4, 4))
    field = ndimage.zoom(low_res, np.array(image.shape) / 4, order=3)[tuple(slice(0, s) for s in image.shape)]
    image = image * np.exp(0.12 * field / np.abs(field).max())
    image = (image + rng.normal(0, 0.03, image.shape)) * (image > 0.02)
    data = np.clip(image * WM_SIGNAL, 0, None).astype(np.int16)

    # A random head pose, and LPS storage: what a scanner might write.
    pose = np.eye(4)
    pose[:3, :3] = Rotation.from_euler("xyz", rng.uniform(-6, 6, size=3), degrees=True).as_matrix()
    pose[:3, 3] = rng.uniform(-4, 4, size=3)
    flip = np.diag([-1.0, -1.0, 1.0, 1.0])
    flip[:2, 3] = np.array(image.shape[:2]) - 1
    posed = pose @ affine @ flip
    make = lambda array, dtype: nib.Nifti1Image(array[::-1, ::-1].astype(dtype), posed)  # noqa: E731
    flair, mask = make(data, np.int16), make(lesions, np.uint8)
    for img in (flair, mask):
        img.header.set_xyzt_units("mm", "sec")
    return flair, mask


SCANS = (("01", "1", 1), ("01", "2", 2), ("02", None, 3))


def write_dataset(root, resolution=1, scans=SCANS):
    """Write the synthetic BIDS dataset (and ``derivatives/manual`` lesion masks) under ``root``."""
    root = Path(root)
    manual = root / "derivatives" / "manual"
    root.mkdir(parents=True, exist_ok=True)
    (root / "dataset_description.json").write_text(json.dumps({
        "Name": "bids-deepwmh synthetic test dataset", "BIDSVersion": "1.10.0", "DatasetType": "raw",
        "License": "CC0", "Authors": ["bids-deepwmh"],
    }, indent=2) + "\n")
    (root / "README").write_text("Synthetic FLAIR images with known lesions, made by bids_deepwmh.synthetic_dataset.\n")
    (root / "participants.tsv").write_text("participant_id\tage\tgroup\nsub-01\t67\tpatient\nsub-02\t72\tpatient\n")
    (root / "participants.json").write_text(json.dumps({
        "age": {"Description": "age at first scan", "Units": "year"},
        "group": {"Description": "cohort", "Levels": {"patient": "synthetic lesions"}},
    }, indent=2) + "\n")
    manual.mkdir(parents=True, exist_ok=True)
    (manual / "dataset_description.json").write_text(json.dumps({
        "Name": "Known synthetic lesions", "BIDSVersion": "1.10.0", "DatasetType": "derivative",
        "GeneratedBy": [{"Name": "bids_deepwmh.synthetic_dataset"}],
    }, indent=2) + "\n")
    for subject, session, seed in scans:
        flair, mask = synthetic_flair(seed, resolution=resolution)
        parts = [f"sub-{subject}"] + ([f"ses-{session}"] if session else [])
        stem = "_".join(parts)
        for base, name, img in ((root, f"{stem}_FLAIR", flair), (manual, f"{stem}_label-WMH_desc-truth_mask", mask)):
            folder = base.joinpath(*parts, "anat")
            folder.mkdir(parents=True, exist_ok=True)
            nib.save(img, folder / f"{name}.nii.gz")
            (folder / f"{name}.json").write_text(json.dumps(
                {"Description": "synthetic"} if base == manual else
                {"MagneticFieldStrength": 3, "Manufacturer": "synthetic", "RepetitionTime": 9.0,
                 "EchoTime": 0.09, "InversionTime": 2.5}, indent=2) + "\n")
    return root
