"""Agreement of the train level's cleaned labels with manual masks (the scans that have one).

The cleaned labels are written by the train level to
``WORK/training/checkpoints/<run>/cleaned-labels/<scan>_desc-cleaned_mask.nii.gz`` on each
FLAIR's conformed grid; they are brought back to the raw FLAIR's grid and scored with the
MICCAI 2017 WMH challenge metrics.

    python benchmarks/evaluate_cleaned_labels.py WORK/training/checkpoints/<run>/cleaned-labels \\
        ../shared/data/bids/dev-annotated
"""

import argparse
import sys
from pathlib import Path

import nibabel as nib
import numpy as np

from bids_deepwmh.core.conform import to_source_grid
from bids_deepwmh.core.metrics import agreement
from bids_deepwmh.group import find_manual_masks

METRICS = ("dice", "lesion_f1", "hd95_mm", "avd_percent")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("labels_dir", type=Path)
    parser.add_argument("bids_dir", type=Path, help="dataset with the raw FLAIRs and derivatives/manual")
    args = parser.parse_args()
    rows = []
    for label_file in sorted(args.labels_dir.glob("*_desc-cleaned_mask.nii.gz")):
        stem = label_file.name.replace("_desc-cleaned_mask.nii.gz", "")
        sources = list(args.bids_dir.glob(f"sub-*/**/anat/{stem}.nii*"))
        if not sources:
            continue
        cleaned = to_source_grid(nib.load(label_file), sources[0])
        for manual in find_manual_masks(args.bids_dir / "derivatives" / "manual", sources[0]):
            truth = nib.load(manual)
            metrics = agreement(np.asanyarray(cleaned.dataobj) > 0, np.asanyarray(truth.dataobj) > 0.5, cleaned.affine)
            rows.append((stem, metrics))
            print(f"| {manual.name} | " + " | ".join(f"{metrics[m]:.3f}" for m in METRICS) + " |", flush=True)
    if not rows:
        sys.exit(f"no cleaned label in {args.labels_dir} has a manual mask in {args.bids_dir}")
    print(f"mean Dice over {len(rows)} scan-mask pair(s): {np.mean([m['dice'] for _, m in rows]):.3f}")


if __name__ == "__main__":
    main()
