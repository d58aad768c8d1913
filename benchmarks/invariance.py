"""Does the same image give the same WMH and quality values however it is stored, and on every run?

One real FLAIR (default: ``dev-native/sub-tr5`` of ../shared, a whole-head 4.4 mm 2D FLAIR) is
written in the variants below, all run in one participant-level run; the original is then run
again in a fresh work folder.  Each variant's WMH mask is brought back onto the original's voxel
grid and compared with the original's: Dice, WMH volume change, and whether it is bit-identical;
and each quality check's value with the original's (the one that moved most, and any
value that is no number).

    python benchmarks/invariance.py --out bench-invariance [--scan FILE] [--nprocs 2]

Variants: ``rotated`` (the header turned by 25 degrees about the left-right axis, voxels untouched:
an oblique acquisition), ``reversed`` (left-right storage order reversed, the affine adjusted to
match), ``uint8`` (rescaled to 0-255), ``float64`` (intensities x 10^6), ``offset`` (float64,
intensities minus 1.5 times their median, times 0.37: the air and the CSF below zero).
"""

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import nibabel as nib
import numpy as np

from bids_deepwmh.core.metrics import dice
from bids_deepwmh.utils.bids import derivative_path

SHARED_BIDS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "bids"
DEFAULT_SCAN = SHARED_BIDS / "dev-native" / "sub-tr5" / "anat" / "sub-tr5_FLAIR.nii.gz"
ROTATION_DEG = 25.0


def _rotated_header(img):
    """The same voxels, the header turned by ``ROTATION_DEG`` about the left-right axis through the centre."""
    angle = np.deg2rad(ROTATION_DEG)
    rotation = np.eye(4)
    rotation[1:3, 1:3] = [[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]
    centre = img.affine @ np.r_[(np.array(img.shape[:3]) - 1) / 2, 1]
    to_centre, back = np.eye(4), np.eye(4)
    to_centre[:3, 3], back[:3, 3] = -centre[:3], centre[:3]
    return nib.Nifti1Image(np.asanyarray(img.dataobj), back @ rotation @ to_centre @ img.affine)


def _reversed_storage(img):
    """The first voxel axis stored the other way round, the affine adjusted: the same image in space."""
    flip = np.eye(4)
    flip[0, 0], flip[0, 3] = -1, img.shape[0] - 1
    return nib.Nifti1Image(np.asanyarray(img.dataobj)[::-1], img.affine @ flip)


def _uint8(img):
    data = np.asanyarray(img.dataobj).astype(np.float64)
    scaled = np.round(255 * (data - data.min()) / np.ptp(data))
    return nib.Nifti1Image(scaled.astype(np.uint8), img.affine)


def _float64(img):
    return nib.Nifti1Image(np.asanyarray(img.dataobj).astype(np.float64) * 1e6, img.affine)


def _offset(img):
    """float64 with an offset that puts the background (and the darkest tissue) below zero."""
    data = np.asanyarray(img.dataobj).astype(np.float64)
    return nib.Nifti1Image((data - 1.5 * np.median(data)) * 0.37, img.affine)


VARIANTS = {"original": lambda img: img, "rotated": _rotated_header, "reversed": _reversed_storage,
            "uint8": _uint8, "float64": _float64, "offset": _offset}
BACK_TO_ORIGINAL = {"reversed": lambda mask: mask[::-1]}  # voxel order of the original


def write_variants(scan, bids_dir):
    source = nib.load(str(scan))
    source = nib.Nifti1Image(np.asanyarray(source.dataobj), source.affine, source.header)
    bids_dir.mkdir(parents=True, exist_ok=True)
    description = {"Name": "storage variants", "BIDSVersion": "1.10.0"}
    (bids_dir / "dataset_description.json").write_text(json.dumps(description))
    for label, make in VARIANTS.items():
        img = make(source)
        img.set_qform(img.affine, code=1)
        img.set_sform(img.affine, code=1)
        img.header.set_xyzt_units("mm", "sec")
        folder = bids_dir / f"sub-{label}" / "anat"
        folder.mkdir(parents=True, exist_ok=True)
        nib.save(img, folder / f"sub-{label}_FLAIR.nii.gz")


def participant(bids_dir, out_dir, work_dir, nprocs, labels=()):
    start = time.time()
    command = [sys.executable, "-m", "bids_deepwmh", str(bids_dir), str(out_dir), "participant", "-w", str(work_dir),
               "--nprocs", str(nprocs), "--skip-bids-validation"]
    subprocess.run(command + (["--participant-label", *labels] if labels else []), check=True)
    return time.time() - start


def wmh_mask(out_dir, label):
    path = derivative_path(out_dir, f"sub-{label}/anat/sub-{label}_FLAIR.nii.gz", label="WMH", suffix="mask",
                           extension=".nii.gz")
    img = nib.load(path)
    mask = np.asanyarray(img.dataobj) > 0
    return BACK_TO_ORIGINAL.get(label, lambda m: m)(mask), abs(np.linalg.det(img.affine[:3, :3])) / 1000.0


def quality_values(out_dir, label):
    path = derivative_path(out_dir, f"sub-{label}/anat/sub-{label}_FLAIR.nii.gz", suffix="quality", extension=".json")
    return {name: check["value"] for name, check in json.loads(path.read_text())["checks"].items()}


def quality_difference(values, original):
    """The check whose value moved most from the original's (relatively; absolutely for values under 1),
    as ``"name a -> b"``, and the checks whose value is no finite number."""
    not_numbers = [name for name, value in values.items() if value is None or not np.isfinite(value)]
    compared = [name for name in original if name not in not_numbers and original[name] is not None]
    if not compared:
        return "", not_numbers
    name = max(compared, key=lambda n: abs(values[n] - original[n]) / max(abs(original[n]), 1.0))
    return f"{name} {original[name]:g} -> {values[name]:g}", not_numbers


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scan", type=Path, default=DEFAULT_SCAN)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--nprocs", type=int, default=2)
    args = parser.parse_args(argv)
    if not args.scan.exists():
        sys.exit(f"{args.scan} not found: pass --scan, or put ../shared beside the repository")
    out = args.out.resolve()
    write_variants(args.scan, out / "bids")
    seconds = participant(out / "bids", out / "derivatives", out / "work", args.nprocs)
    rerun_seconds = participant(out / "bids", out / "rerun", out / "work-rerun", args.nprocs, ["original"])
    original, voxel_ml = wmh_mask(out / "derivatives", "original")
    masks = {label: wmh_mask(out / "derivatives", label)[0] for label in VARIANTS if label != "original"}
    masks["rerun"] = wmh_mask(out / "rerun", "original")[0]
    qualities = {label: quality_values(out / "derivatives", label) for label in VARIANTS}
    qualities["rerun"] = quality_values(out / "rerun", "original")
    rows = []
    for label, mask in masks.items():
        largest, not_numbers = quality_difference(qualities[label], qualities["original"])
        rows.append({"variant": label, "dice": round(dice(mask, original), 3),
                     "volume_change_percent": round(100 * (mask.sum() / max(original.sum(), 1) - 1), 1),
                     "identical": bool(np.array_equal(mask, original)),
                     "quality_largest_change": largest, "quality_not_numbers": not_numbers})
    _, original_not_numbers = quality_difference(qualities["original"], qualities["original"])
    print(f"{args.scan.name}: original WMH {original.sum() * voxel_ml:.2f} mL, quality values that are no number: "
          f"{', '.join(original_not_numbers) or 'none'}; {len(VARIANTS)} variants in {seconds:.0f} s, "
          f"the rerun in {rerun_seconds:.0f} s ({args.nprocs} processes)")
    print("| variant | Dice with the original | WMH volume change | bit-identical mask | largest quality value "
          "change | quality values that are no number |\n|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['variant']} | {row['dice']:.3f} | {row['volume_change_percent']:+.1f} % | "
              f"{'yes' if row['identical'] else 'no'} | {row['quality_largest_change']} | "
              f"{', '.join(row['quality_not_numbers']) or 'none'} |")
    (out / "invariance.json").write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
