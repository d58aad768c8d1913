"""Assemble the open-licence FLAIRs of ../shared/data/bids into one BIDS dataset of symbolic links,
the input of the train level that produced the bundled model (see its model card).

    python scripts/assemble_training_set.py ../shared/data/bids train-bids
"""

import argparse
import json
from pathlib import Path

from bids_deepwmh.utils.tables import write_tsv

# (dataset folder, participant, licence): the scans ../shared/data/README.md allows for training.
OPENMS = "CC-BY (Lesjak et al., Neuroinformatics 2016)"
SCANS = [
    *[("openms-long", f"sub-{n}", OPENMS) for n in ("01", "03", "04", "09", "12", "19", "20")],
    *[("dev-annotated", f"sub-{n}", "CC-BY (Lesjak et al., Neuroinformatics 2018); images only")
      for n in ("lj07", "lj19", "lj26")],
    ("misc", "sub-synthsr", "Apache-2.0 (SynthSR repository)"),
    ("misc", "sub-stroke", "BSD-2-Clause (repository)"),
]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("shared_bids", type=Path, help="../shared/data/bids")
    parser.add_argument("out_dir", type=Path)
    args = parser.parse_args()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for dataset, participant, licence in SCANS:
        link = args.out_dir / participant
        if not link.is_symlink():
            link.symlink_to((args.shared_bids / dataset / participant).resolve(), target_is_directory=True)
        rows.append({"participant_id": participant, "source_dataset": dataset, "license": licence})
    (args.out_dir / "dataset_description.json").write_text(json.dumps({
        "Name": "bids-deepwmh training set (open-licence FLAIRs of ../shared/data/bids)",
        "BIDSVersion": "1.10.0", "DatasetType": "raw", "License": "per participant: see participants.tsv",
    }, indent=2) + "\n")
    write_tsv(args.out_dir / "participants.tsv", list(rows[0]), rows)
    print(f"{args.out_dir}: {len(rows)} participants")


if __name__ == "__main__":
    main()
