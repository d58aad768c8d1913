"""Accuracy on every annotated set of ../shared/data/bids, each on its own, per scan and per rater.

For each annotated dataset (one with ``derivatives/manual``), the participant level is run into
``OUT/derivatives/<dataset>`` (a folder that already holds a scan's outputs, e.g. from
``benchmarks/benchmark.py --out OUT``, is reused), then, per scan and manual mask (rater):
Dice, lesion F1, HD95 and AVD of the network (``final``) and of the anatomical stage, the WMH
volume against the manual one, and where ``derivatives/brainmask`` has a reference brain mask,
the brain mask's Dice with it and the network's WMH volume outside it.  Also the volume of the
ventricles' linings and caps (label 5 of the regions dseg), how much of it the rater drew, and the
network's Dice without them (the convention of raters who leave them out).

    python benchmarks/accuracy.py [--data ../shared/data/bids] [--out bench] [--nprocs 2]
"""

import argparse
import csv
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import nibabel as nib
import numpy as np

from bids_deepwmh.core.metrics import dice
from bids_deepwmh.group import agreement_rows
from bids_deepwmh.utils.bids import derivative_path

KINDS = ("final", "anatomical")
METRICS = ("dice", "lesion_f1", "hd95_mm", "avd_percent")


def run_participant_level(dataset, out_dir, work_dir, nprocs):
    """Outputs for every FLAIR of ``dataset`` that has none yet in ``out_dir``."""
    missing = [f for f in sorted(dataset.glob("sub-*/**/anat/*_FLAIR.nii*"))
               if not derivative_path(out_dir, f.relative_to(dataset), label="WMH", suffix="mask",
                                      extension=".nii.gz").exists()]
    if missing:
        subprocess.run([sys.executable, "-m", "bids_deepwmh", str(dataset), str(out_dir), "participant",
                        "-w", str(work_dir), "--nprocs", str(nprocs), "--skip-bids-validation"], check=False)


def _volume_ml(img):
    return np.count_nonzero(np.asanyarray(img.dataobj) > 0.5) * abs(np.linalg.det(img.affine[:3, :3])) / 1000.0


def brain_rows(dataset, out_dir):
    """Per scan with a reference brain mask: brain Dice, volumes and the WMH outside the reference brain."""
    rows = {}
    for reference in sorted((dataset / "derivatives" / "brainmask").glob("*_desc-brain_mask.nii*")):
        scan = reference.name.split("_desc-brain")[0]
        flair = next(dataset.glob(f"sub-*/**/anat/{scan}_FLAIR.nii*"))
        mask_path = derivative_path(out_dir, flair.relative_to(dataset), desc="brain", suffix="mask",
                                    extension=".nii.gz")
        if not mask_path.exists():
            continue
        truth = np.asanyarray(nib.load(reference).dataobj) > 0
        found_img = nib.load(mask_path)
        wmh = np.asanyarray(nib.load(str(mask_path).replace("desc-brain_mask", "label-WMH_mask")).dataobj) > 0
        voxel_ml = abs(np.linalg.det(found_img.affine[:3, :3])) / 1000.0
        rows[scan] = {"brain_dice": round(dice(np.asanyarray(found_img.dataobj) > 0, truth), 3),
                      "brain_ml": round(_volume_ml(found_img), 1),
                      "reference_brain_ml": round(truth.sum() * voxel_ml, 1),
                      "wmh_outside_reference_brain_ml": round(np.count_nonzero(wmh & ~truth) * voxel_ml, 2)}
    return rows


def lining_columns(wmh_path, manual):
    """The ventricles' linings and caps of one scan against one manual mask: their volume, the
    fraction of them the rater drew and the network's Dice without them."""
    from bids_deepwmh.core.regions import VENTRICLE_LINING

    wmh_img = nib.load(wmh_path)
    wmh = np.asanyarray(wmh_img.dataobj) > 0
    linings = np.asanyarray(nib.load(str(wmh_path).replace("label-WMH_mask", "desc-wmhregions_dseg")).dataobj) \
        == VENTRICLE_LINING
    drawn = np.asanyarray(manual.dataobj) > 0.5
    voxel_ml = abs(np.linalg.det(wmh_img.affine[:3, :3])) / 1000.0
    return {"lining_ml": round(linings.sum() * voxel_ml, 2),
            "lining_drawn_fraction": round(float(drawn[linings].mean()), 2) if linings.any() else "",
            "final_dice_without_linings": round(dice(wmh & ~linings, drawn), 3)}


def score_dataset(dataset, out_dir):
    """One row per scan and manual mask, with both kinds of automatic mask side by side."""
    config = argparse.Namespace(participant_label=[], session_label=[])
    pairs = defaultdict(dict)
    for row in agreement_rows(out_dir, dataset / "derivatives" / "manual", config):
        scan = "_".join(v for k, v in row.items() if k in ("participant_id", "session_id") and v != "n/a")
        rater = row["manual_mask"].split("_desc-")[-1].split("_")[0] if "_desc-" in row["manual_mask"] else "manual"
        pairs[(scan, rater, row["manual_mask"])][row["mask"]] = row
    brains = brain_rows(dataset, out_dir)
    rows = []
    for (scan, rater, manual_name), by_kind in sorted(pairs.items()):
        manual = next((dataset / "derivatives" / "manual").rglob(manual_name))
        wmh = derivative_path(out_dir, next(dataset.glob(f"sub-*/**/anat/{scan}_FLAIR.nii*")).relative_to(dataset),
                              label="WMH", suffix="mask", extension=".nii.gz")
        row = {"dataset": dataset.name, "scan": scan, "rater": rater,
               "manual_ml": round(_volume_ml(nib.load(manual)), 2), "wmh_ml": round(_volume_ml(nib.load(wmh)), 2),
               **lining_columns(wmh, nib.load(manual))}
        for kind in KINDS:
            row.update({f"{kind}_{m}": by_kind[kind][m] for m in METRICS if kind in by_kind})
        rows.append({**row, **brains.get(scan, {})})
    return rows


def _mean(rows, column):
    values = [float(r[column]) for r in rows if r.get(column) not in (None, "")]
    return f"{np.mean(values):.3f}" if values else ""


def benchmark_arguments(description):
    """``--data`` (the BIDS datasets of ../shared), ``--out`` and ``--nprocs``, as every accuracy benchmark takes."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data" / "bids")
    parser.add_argument("--out", type=Path, default=Path("bench"))
    parser.add_argument("--nprocs", type=int, default=2)
    return parser.parse_args()


def main():
    args = benchmark_arguments(__doc__.splitlines()[0])
    if not args.data.is_dir():
        sys.exit(f"no data at {args.data}")
    rows = []
    for dataset in sorted(p for p in args.data.iterdir() if (p / "derivatives" / "manual").is_dir()):
        out_dir = args.out / "derivatives" / dataset.name
        run_participant_level(dataset, out_dir, args.out / "work" / dataset.name, args.nprocs)
        rows.extend(score_dataset(dataset, out_dir))
    columns = ["dataset", "scan", "rater", *(f"{k}_{m}" for k in KINDS for m in METRICS), "manual_ml", "wmh_ml",
               "lining_ml", "lining_drawn_fraction", "final_dice_without_linings",
               "brain_dice", "brain_ml", "reference_brain_ml", "wmh_outside_reference_brain_ml"]
    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.out / "accuracy.tsv", "w") as fh:
        writer = csv.DictWriter(fh, columns, delimiter="\t", extrasaction="ignore", restval="")
        writer.writeheader()
        writer.writerows(rows)
    print("| " + " | ".join(columns) + " |\n|" + "---|" * len(columns))
    for row in rows:
        print("| " + " | ".join(str(row.get(c, "")) for c in columns) + " |")
    print("\n| set | pairs | network Dice | anatomical Dice | network lesion F1 | anatomical lesion F1 | "
          "network Dice without linings |\n|---|---|---|---|---|---|---|")
    for name in sorted({r["dataset"] for r in rows}):
        subset = [r for r in rows if r["dataset"] == name]
        print(f"| {name} | {len(subset)} | " + " | ".join(
            _mean(subset, f"{k}_{m}") for m in ("dice", "lesion_f1") for k in KINDS)
              + f" | {_mean(subset, 'final_dice_without_linings')} |")


if __name__ == "__main__":
    main()
