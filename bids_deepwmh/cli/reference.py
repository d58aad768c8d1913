"""``deepwmh-build-reference``: rebuild the normal-appearing FLAIR reference from BIDS datasets.

Controls (``group`` column of ``participants.tsv``: control, healthy, hc) are used when a
dataset names them; otherwise its whole cohort, since lesions are sparse and sit in different
places in different people.  No annotation is read.
"""

import argparse
import csv
import json
import os
import sys
from pathlib import Path

from bids_deepwmh.utils.bids import UsageError, strip_prefix

CONTROL_GROUPS = {"control", "controls", "healthy", "hc", "normal"}


def _participants(bids_dir):
    table = Path(bids_dir) / "participants.tsv"
    if not table.exists():
        return {}
    with open(table) as fh:
        return {row["participant_id"]: row for row in csv.DictReader(fh, delimiter="\t")}


def select_cohort(bids_dirs, exclude=()):
    """FLAIRs to build from, with the licence of each (participants.tsv or dataset_description)."""
    from bids import BIDSLayout

    from bids_deepwmh.utils.bids import FLAIR_QUERY

    selected = []
    for bids_dir in (Path(d).resolve() for d in bids_dirs):
        description = json.loads((bids_dir / "dataset_description.json").read_text())
        participants = _participants(bids_dir)
        controls = [p for p, row in participants.items() if row.get("group", "").lower() in CONTROL_GROUPS]
        layout = BIDSLayout(str(bids_dir), validate=False)
        for path in sorted(layout.get(return_type="file", **FLAIR_QUERY)):
            subject = layout.get_file(path).entities["subject"]
            participant = f"sub-{subject}"
            if subject in exclude or (controls and participant not in controls):
                continue
            row = participants.get(participant, {})
            licence = row.get("license") or row.get("licence") or description.get("License", "unknown")
            selected.append({
                "file": path,
                "name": f"{bids_dir.name}/{Path(path).relative_to(bids_dir)}",
                "dataset": description.get("Name", bids_dir.name),
                "license": licence,
            })
    return selected


def build_parser():
    parser = argparse.ArgumentParser(prog="deepwmh-build-reference", description=__doc__.splitlines()[0])
    parser.add_argument("bids_dirs", nargs="+", type=Path, help="BIDS datasets with FLAIRs")
    parser.add_argument("-o", "--output", type=Path, required=True, help="reference file (.nii.gz)")
    parser.add_argument("-w", "--work-dir", type=Path, default=Path("work-reference"))
    parser.add_argument("--exclude-participant", nargs="+", default=[], metavar="LABEL",
                        help="participants left out (e.g. scans without an open licence)")
    parser.add_argument("--nprocs", type=int, default=os.cpu_count() or 1)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    from bids_deepwmh.config import Config

    cohort = select_cohort(args.bids_dirs, strip_prefix(args.exclude_participant, "sub-"))
    if len(cohort) < 5:
        raise SystemExit(f"deepwmh-build-reference: error: {len(cohort)} FLAIR(s) selected; at least 5 are needed")
    settings = Config(
        bids_dir=args.bids_dirs[0], output_dir=args.output.parent, analysis_level="reference",
        work_dir=args.work_dir.resolve(), nprocs=args.nprocs, omp_nthreads=min(args.nprocs, 8),
    )
    settings.set_environment()
    from bids_deepwmh.workflows.reference import init_reference_wf

    command = "deepwmh-build-reference " + " ".join(sys.argv[1:] if argv is None else argv)
    metadata = {
        "Licenses": {c["name"]: f"{c['dataset']}: {c['license']}" for c in cohort},
        "Command": command,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    wf = init_reference_wf(
        [c["file"] for c in cohort], args.output.resolve(), metadata, settings.omp_nthreads,
        source_names=[c["name"] for c in cohort],
    )
    wf.base_dir = str(settings.work_dir)
    try:
        wf.run(**settings.plugin_settings())
    except RuntimeError as exc:
        raise SystemExit(f"deepwmh-build-reference: error: {exc}") from exc
    print(f"wrote {args.output} from {len(cohort)} FLAIR(s)")


if __name__ == "__main__":
    try:
        main()
    except UsageError as exc:
        raise SystemExit(f"deepwmh-build-reference: error: {exc}") from exc
