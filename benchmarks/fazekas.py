"""Fazekas grades and regional volumes against two raters' visual grades (``dev-fazekas``).

Runs the participant level on ``../shared/data/bids/dev-fazekas`` (scans already done in
``OUT/derivatives/dev-fazekas`` are reused), then prints, against each rater (``VK``, ``IA`` in
``participants.tsv``) and against their mean rounded half up:

- Spearman's rank correlation of the total, periventricular and deep WMH volumes with the grades
  (total volume against the sum of the two grades);
- quadratic-weighted kappa and exact agreement of the App's ``fazekas_periventricular`` and
  ``fazekas_deep`` grades, with a confusion table;
- one row per scan: volumes, the App's grades with their measurements, the raters' grades.

    python benchmarks/fazekas.py [--data ../shared/data/bids] [--out bench] [--nprocs 2]
"""

import math
import sys
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr
from sklearn.metrics import cohen_kappa_score, confusion_matrix

from bids_deepwmh.utils.bids import derivative_path
from bids_deepwmh.utils.tables import read_tsv

sys.path.insert(0, str(Path(__file__).resolve().parent))
from accuracy import benchmark_arguments, run_participant_level  # noqa: E402

DATASET = "dev-fazekas"
RATERS = ("VK", "IA")
REGIONS = ("periventricular", "deep")
GRADES = (0, 1, 2, 3)


def half_up(value):
    """Round half up (2.5 -> 3), as the raters' mean grade is read."""
    return int(math.floor(value + 0.5))


def scan_rows(dataset, out_dir):
    """One row per participant: the raters' grades and the App's volumes and grades."""
    rows = []
    for participant in read_tsv(dataset / "participants.tsv"):
        subject = participant["participant_id"]
        flair = next(dataset.glob(f"{subject}/**/anat/*_FLAIR.nii*")).relative_to(dataset)
        table = derivative_path(out_dir, flair, label="WMH", suffix="morph", extension=".tsv")
        if not table.exists():
            print(f"{subject}: no outputs (the scan failed?); left out", file=sys.stderr)
            continue
        found = read_tsv(table)[0]
        row = {"participant_id": subject, **found}
        for region in REGIONS:
            key = "peri" if region == "periventricular" else "deep"
            grades = [int(participant[f"{key}_{rater}"]) for rater in RATERS]
            row.update({f"{region}_{rater}": grade for rater, grade in zip(RATERS, grades, strict=True)})
            row[f"{region}_mean"] = half_up(np.mean(grades))
        rows.append(row)
    return rows


def _numbers(rows, column):
    return np.array([float(r[column]) for r in rows])


def correlations(rows):
    """Spearman of the volumes with the grades of each rater and of their mean."""
    lines = ["| volume | " + " | ".join(f"vs {r}" for r in (*RATERS, "mean")) + " |", "|---|---|---|---|"]
    for region, volume in (("total", "wmh_volume_ml"), *((r, f"{r}_wmh_volume_ml") for r in REGIONS)):
        cells = []
        for rater in (*RATERS, "mean"):
            if region == "total":
                grade = sum(_numbers(rows, f"{r}_{rater}") for r in REGIONS)
            else:
                grade = _numbers(rows, f"{region}_{rater}")
            cells.append(f"{spearmanr(_numbers(rows, volume), grade).statistic:.2f}")
        lines.append(f"| {region} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def agreement(rows):
    """Quadratic-weighted kappa, exact agreement and a confusion table per region and rater."""
    lines = ["| grade | vs | weighted kappa | exact agreement |", "|---|---|---|---|"]
    tables = []
    for region in REGIONS:
        ours = _numbers(rows, f"fazekas_{region}").astype(int)
        for rater in (*RATERS, "mean"):
            theirs = _numbers(rows, f"{region}_{rater}").astype(int)
            kappa = cohen_kappa_score(theirs, ours, weights="quadratic", labels=list(GRADES))
            lines.append(f"| {region} | {rater} | {kappa:.2f} | {np.mean(ours == theirs):.2f} |")
        theirs = _numbers(rows, f"{region}_mean").astype(int)
        matrix = confusion_matrix(theirs, ours, labels=list(GRADES))
        tables.append(f"\n{region}: raters' mean (rows) against the App (columns)\n"
                      + "\n".join(f"  {g}: " + " ".join(f"{n:3d}" for n in row) for g, row in zip(GRADES, matrix,
                                                                                                  strict=True)))
    inter = [f"{region} VK vs IA: weighted kappa "
             f"{cohen_kappa_score(_numbers(rows, f'{region}_VK'), _numbers(rows, f'{region}_IA'), weights='quadratic', labels=list(GRADES)):.2f}"
             for region in REGIONS]
    return "\n".join(lines) + "\n" + "\n".join(tables) + "\n\n" + "\n".join(inter)


PER_SCAN = ("wmh_volume_ml", "periventricular_wmh_volume_ml", "deep_wmh_volume_ml", "fazekas_periventricular",
            "periventricular_extent_mm", "fazekas_deep", "deep_largest_mm")


def per_scan(rows):
    head = ["participant_id", *PER_SCAN, *(f"{region}_{r}" for region in REGIONS for r in RATERS)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(str(row.get(c, "")) for c in head) + " |" for row in rows]
    return "\n".join(lines)


def main():
    args = benchmark_arguments(__doc__.splitlines()[0])
    dataset = args.data / DATASET
    if not dataset.is_dir():
        sys.exit(f"no {DATASET} at {dataset}")
    out_dir = args.out / "derivatives" / DATASET
    run_participant_level(dataset, out_dir, args.out / "work" / DATASET, args.nprocs)
    rows = scan_rows(dataset, out_dir)
    print(f"{len(rows)} scans of {DATASET}\n\nSpearman of volume with grade\n{correlations(rows)}\n\n"
          f"Grades\n{agreement(rows)}\n\nPer scan\n{per_scan(rows)}")


if __name__ == "__main__":
    main()
