"""``deepwmh-demo``: write a small synthetic BIDS dataset with known lesions and run both levels."""

import argparse
import os
import shutil
import sys
from pathlib import Path

from bids_deepwmh.synthetic_dataset import write_dataset


def main(argv=None):
    parser = argparse.ArgumentParser(prog="deepwmh-demo", description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", type=Path, default=Path("deepwmh-demo"),
                        help="where the dataset, outputs and work folder go")
    parser.add_argument("--nprocs", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args(argv)
    from bids_deepwmh.cli.run import run

    folder = args.folder.resolve()
    bids_dir, out_dir, work_dir = folder / "bids", folder / "derivatives", folder / "work"
    if bids_dir.exists():
        shutil.rmtree(bids_dir)
    print(f"writing a synthetic BIDS dataset with known lesions to {bids_dir}")
    write_dataset(bids_dir)
    common = ["-w", str(work_dir), "--nprocs", str(args.nprocs)]
    code = run([str(bids_dir), str(out_dir), "participant", *common])
    if code != 0:
        sys.exit(code)
    code = run([str(bids_dir), str(out_dir), "group", *common,
                "--manual-masks", str(bids_dir / "derivatives" / "manual")])
    print(f"reports: {out_dir / 'group_report.html'} and one sub-<label>.html per participant beside it")
    sys.exit(code)


if __name__ == "__main__":
    main()
