"""``deepwmh-demo``: run both levels on real FLAIRs that ship with the package and say what came out.

The demo dataset (``bids_deepwmh/data/demo``: CC-BY, its NOTICE names each file, its source and
whom to cite) holds a whole-head 2D FLAIR of a multiple sclerosis patient at two sessions, and
a skull-stripped 1 mm FLAIR of another patient with the consensus of three raters' lesion
masks, against which the group level measures the network and the anatomical stage.
"""

import argparse
import contextlib
import io
import os
import shutil
import sys
import textwrap
from pathlib import Path

from bids_deepwmh.data import load

DEMO_SUBJECTS = ("01", "lj26")
MASK_KINDS = (("final", "network (final mask)"), ("anatomical", "anatomical stage"))
NOT_HELD_OUT = (
    "The bundled model was built from open-licence FLAIRs that include these (sub-01's among the "
    "network's training scans, sub-lj26's in its normal-appearing reference; never a manual mask), "
    "so this agreement is a demonstration, not a held-out accuracy: the README reports accuracy."
)


def write_demo_dataset(root):
    """Copy the demo BIDS dataset, its manual masks in ``derivatives/manual``, to ``root`` (replaced)."""
    root = Path(root)
    if root.exists():
        shutil.rmtree(root)
    shutil.copytree(load("demo", "bids"), root)  # copy2 keeps the times, so a rerun resumes
    return root


def templates_available():
    """Whether the template files that the participant level reads are at hand (TemplateFlow
    fetches them now if need be)."""
    from bids_deepwmh.core import template

    try:
        template.registration_target()
        template.aseg()
        template.template_file(template.OUTPUT_RESOLUTION, desc="brain", suffix="T1w")
        for resolution in (template.OUTPUT_RESOLUTION, template.REGISTRATION_RESOLUTION):
            template.brain_mask(resolution)
            template.tissue_probability("WM", resolution)
            template.tissue_probability("GM", resolution)
    except Exception:  # TemplateFlow raises bare Exception, requests' errors, OSError...
        return False
    return True


def _mask_volume_ml(path):
    import nibabel as nib
    import numpy as np

    from bids_deepwmh.core.images import voxel_volume_mm3

    img = nib.load(path)
    return np.count_nonzero(np.asanyarray(img.dataobj)) * voxel_volume_mm3(img) / 1000


def _scan_name(row):
    return " ".join(row[c] for c in ("participant_id", "session_id") if row[c] != "n/a")


def _flair_path(row):
    """The FLAIR of a group table's row, relative to the BIDS folder."""
    values = (row["participant_id"], row["session_id"], f"acq-{row['acquisition']}", f"run-{row['run']}")
    name = "_".join(v for v in values if not v.endswith("n/a")) + "_FLAIR.nii.gz"
    return Path(*(v for v in (row["participant_id"], row["session_id"]) if v != "n/a"), "anat", name)


def summary(bids_dir, out_dir):
    """What to look at after the run: each scan's WMH, the agreement of both stages with each
    manual mask, and where the reports are."""
    from bids_deepwmh.utils.bids import derivative_path
    from bids_deepwmh.utils.tables import read_tsv

    lines = ["", "deepwmh-demo: white matter hyperintensities found (final masks)"]
    for row in read_tsv(out_dir / "group_wmh.tsv"):
        flags = f"; quality flags: {row['quality_flags']}" if str(row.get("quality_flagged")) == "True" else ""
        lines.append(f"  {_scan_name(row):<14} {float(row['wmh_volume_ml']):6.2f} mL in "
                     f"{row['wmh_count']} lesion(s){flags}")
    agreement = read_tsv(out_dir / "group_agreement.tsv")
    for manual_name in sorted({row["manual_mask"] for row in agreement}):
        rows = {row["mask"]: row for row in agreement if row["manual_mask"] == manual_name}
        scan = next(iter(rows.values()))
        manual = next((bids_dir / "derivatives" / "manual").rglob(manual_name))
        lines.append(f"\n{_scan_name(scan)} against its manual mask ({_mask_volume_ml(manual):.2f} mL, {manual_name}):")
        for kind, label in MASK_KINDS:
            if kind in rows:
                desc = {} if kind == "final" else {"desc": kind}
                mask = derivative_path(out_dir, _flair_path(scan), label="WMH", suffix="mask", extension=".nii.gz",
                                       **desc)
                lines.append(f"  {label:<22} Dice {float(rows[kind]['dice']):.3f}, {_mask_volume_ml(mask):6.2f} mL")
    if agreement:
        lines += textwrap.wrap(NOT_HELD_OUT, width=100)
    changes = out_dir / "group_longitudinal.tsv"
    for row in read_tsv(changes) if changes.exists() else []:
        counts = ", ".join(f"{row[f'{name}_wmh_count']} {name}" for name in ("new", "enlarging", "shrinking",
                                                                              "disappeared"))
        lines.append(f"\nChange across sessions, {row['participant_id']} {row['first_session']} -> "
                     f"{row['last_session']}: WMH {float(row['first_wmh_volume_ml']):.2f} -> "
                     f"{float(row['last_wmh_volume_ml']):.2f} mL; lesions {counts} (group_longitudinal.tsv)")
    reports = sorted(str(p) for p in out_dir.glob("sub-*.html"))
    lines += ["", "Reports (open in a browser):", *(f"  participant: {p}" for p in reports),
              f"  group:       {out_dir / 'group_report.html'}",
              f"Tables: {out_dir / 'group_wmh.tsv'}, {out_dir / 'group_agreement.tsv'}"
              + (f", {changes}" if changes.exists() else "")]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="deepwmh-demo", description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", type=Path, default=Path("deepwmh-demo"),
                        help="where the dataset, outputs and work folder go")
    parser.add_argument("--nprocs", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args(argv)
    if not templates_available():
        from templateflow.conf import TF_HOME

        sys.exit(f"deepwmh-demo: the template it needs (TemplateFlow's MNI152NLin2009cAsym) is not in {TF_HOME} "
                 "and could not be downloaded: run it once with internet access, or set TEMPLATEFLOW_HOME "
                 "to a TemplateFlow folder that has it.")
    from bids_deepwmh.cli.run import run

    folder = args.folder.resolve()
    bids_dir, out_dir, work_dir = folder / "bids", folder / "derivatives", folder / "work"
    print(f"deepwmh-demo: copying three real FLAIRs (CC-BY; see {bids_dir / 'README'}) to {bids_dir}:\n"
          "  sub-01 ses-1 and ses-2: one patient's whole-head 2D FLAIR, scanned twice\n"
          "  sub-lj26: a skull-stripped 1 mm FLAIR with its raters' consensus lesion mask\n"
          "then running the participant level (about a minute per scan) and the group level.")
    write_demo_dataset(bids_dir)
    common = ["-w", str(work_dir), "--nprocs", str(args.nprocs), "--participant-label", *DEMO_SUBJECTS]
    code = run([str(bids_dir), str(out_dir), "participant", *common])
    if code != 0:
        sys.exit(code)
    with contextlib.redirect_stdout(io.StringIO()):  # its summary is in group_wmh_summary.txt
        code = run([str(bids_dir), str(out_dir), "group", *common,
                    "--manual-masks", str(bids_dir / "derivatives" / "manual")])
    if code != 0:
        sys.exit(code)
    print(summary(bids_dir, out_dir))


if __name__ == "__main__":
    main()
