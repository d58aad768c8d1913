"""Do real whole-head FLAIRs still run when strong noise and motion-like ghosting degrade them?

A few real whole-head FLAIRs of ../shared are written clean and at the levels below (``degraded`` in
tests/phantoms.py: Rician noise of a fraction of the bright end, and ghosts, copies shifted along
the phase-encode axis, wrapped around and attenuated) and all run in one participant-level run.
Printed per scan and level: whether it ran, the brain mask kept (sidecar ``BrainExtraction``) and
the masks rejected before it, the brain volume and the mask's Dice with the clean scan's, the WMH
volume, the quality flags, and whether every quality value is a number.

    python benchmarks/degraded.py --out bench-degraded [--scan FILE ...] [--levels noise both] [--nprocs 2]
"""

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import nibabel as nib
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from phantoms import GHOSTS, degraded  # noqa: E402

from bids_deepwmh.core.metrics import dice  # noqa: E402
from bids_deepwmh.utils.bids import derivative_path  # noqa: E402
from bids_deepwmh.utils.tables import read_tsv  # noqa: E402

SHARED_BIDS = REPO.parent / "shared" / "data" / "bids"
# Older patients' clinical FLAIRs with heavy periventricular WMH (Fazekas 3), a 4.4 mm 3 T scan with a
# reference brain mask, and a 6.4 mm 1.5 T scan: the scans this tool is for.
DEFAULT_SCANS = ("dev-fazekas/sub-u19/anat/sub-u19_FLAIR.nii.gz", "dev-fazekas/sub-u88/anat/sub-u88_FLAIR.nii.gz",
                 "dev-native/sub-tr5/anat/sub-tr5_FLAIR.nii.gz", "dev-thick/sub-101228/anat/sub-101228_FLAIR.nii.gz")
LEVELS = {"clean": None, "noise": {"noise": 0.15, "ghosts": ()}, "ghosts": {"noise": 0.03, "ghosts": GHOSTS},
          "both": {"noise": 0.15, "ghosts": GHOSTS}}


def _label(scan, level):
    return Path(scan).name.split("_")[0].removeprefix("sub-") + level


def write_dataset(scans, levels, bids_dir):
    bids_dir.mkdir(parents=True, exist_ok=True)
    (bids_dir / "dataset_description.json").write_text(json.dumps({"Name": "degraded", "BIDSVersion": "1.10.0"}))
    for scan in scans:
        img = nib.load(scan)
        for level in ("clean", *levels):
            label = _label(scan, level)
            folder = bids_dir / f"sub-{label}" / "anat"
            folder.mkdir(parents=True, exist_ok=True)
            variant = img if LEVELS[level] is None else degraded(img, **LEVELS[level])
            nib.save(variant, folder / f"sub-{label}_FLAIR.nii.gz")


def _finite(record):
    return all(c["value"] is None or np.isfinite(c["value"]) for c in record["checks"].values())


def summary(out_dir, scan, level):
    """One row: what the run made of the scan at that level."""
    label = _label(scan, level)
    source = f"sub-{label}/anat/sub-{label}_FLAIR.nii.gz"
    path = lambda **entities: derivative_path(out_dir, source, **entities)  # noqa: E731
    table = path(label="WMH", suffix="morph", extension=".tsv")
    if not table.exists():
        return {"scan": Path(scan).name.split("_")[0], "level": level, "ran": False}
    brain = np.asanyarray(nib.load(path(desc="brain", suffix="mask", extension=".nii.gz")).dataobj) > 0
    clean_source = source.replace(label, _label(scan, "clean"))
    clean = np.asanyarray(nib.load(derivative_path(out_dir, clean_source, desc="brain", suffix="mask",
                                                   extension=".nii.gz")).dataobj) > 0
    sidecar = json.loads(path(desc="brain", suffix="mask", extension=".json").read_text())
    record = json.loads(path(suffix="quality", extension=".json").read_text())
    row = read_tsv(table)[0]
    return {"scan": Path(scan).name.split("_")[0], "level": level, "ran": True,
            "brain_extraction": sidecar["BrainExtraction"],
            "rejected": [f"{r['Method']}: {r['Reason']}" for r in sidecar.get("BrainExtractionRejected", [])],
            "brain_ml": round(float(row["brain_volume_ml"])), "brain_dice_with_clean": round(dice(brain, clean), 3),
            "wmh_ml": round(float(row["wmh_volume_ml"]), 2), "flags": record["flags"],
            "out_of_distribution": record["out_of_distribution"], "quality_values_finite": _finite(record)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scan", type=Path, nargs="+", default=[SHARED_BIDS / s for s in DEFAULT_SCANS])
    parser.add_argument("--levels", nargs="+", choices=[level for level in LEVELS if level != "clean"],
                        default=["noise", "ghosts", "both"])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--nprocs", type=int, default=2)
    args = parser.parse_args(argv)
    missing = [str(s) for s in args.scan if not s.exists()]
    if missing:
        sys.exit(f"not found: {', '.join(missing)}: pass --scan, or put ../shared beside the repository")
    out = args.out.resolve()
    write_dataset(args.scan, args.levels, out / "bids")
    start = time.time()
    command = [sys.executable, "-m", "bids_deepwmh", str(out / "bids"), str(out / "derivatives"), "participant",
               "-w", str(out / "work"), "--nprocs", str(args.nprocs), "--skip-bids-validation"]
    code = subprocess.run(command).returncode
    rows = [summary(out / "derivatives", scan, level) for scan in args.scan for level in ("clean", *args.levels)]
    print(f"{len(rows)} scans in {time.time() - start:.0f} s ({args.nprocs} processes), exit code {code}")
    print("| scan | level | ran | brain mask | rejected | brain mL | Dice with clean | WMH mL | flags "
          "| values finite |\n|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        if not r["ran"]:
            print(f"| {r['scan']} | {r['level']} | no | | | | | | | |")
            continue
        flags = ", ".join(r["flags"]) + (" (out of distribution)" if r["out_of_distribution"] else "")
        print(f"| {r['scan']} | {r['level']} | yes | {r['brain_extraction']} | {'; '.join(r['rejected'])} | "
              f"{r['brain_ml']} | {r['brain_dice_with_clean']:.3f} | {r['wmh_ml']:.2f} | {flags or 'none'} | "
              f"{'yes' if r['quality_values_finite'] else 'NO'} |")
    (out / "degraded.json").write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
