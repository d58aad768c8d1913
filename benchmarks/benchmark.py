"""Run every FLAIR of ../shared/data/bids through ``deepwmh`` and tabulate its cost and flags.

One scan at a time (a cold work folder each), so the seconds and memory are those of one scan:
wall time of the command, seconds per stage (from Nipype's node results), peak memory of the
whole process tree (sampled every 0.1 s), and the quality flags raised.  ``benchmarks/accuracy.py
--out`` the same folder then scores the annotated sets from these outputs.  ``--batch`` datasets
are then run again, each as one command over all its scans (a cold work folder, outputs apart),
and their seconds per scan are printed beside those of the same scans run one at a time.

    python benchmarks/benchmark.py [--data ../shared/data/bids] [--out bench] [--nprocs 2] [--batch dev-thick]
"""

import argparse
import csv
import json
import shutil
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

import psutil

STAGES = ("conform", "brain_extraction", "n4", "register", "priors", "anatomical_wmh", "learned_wmh",
          "regional_wmh", "quality_flags")
FIGURES = ("display_anatomy", "display_template", "display_wmh", "wmh_mosaic", "probseg_mosaic",
           "brain_mask_plot", "registration_plot", "summary")  # the report's nodes, timed together as "figures"


def tree_rss(process):
    try:
        processes = [process, *process.children(recursive=True)]
    except psutil.Error:  # the command has just ended
        return 0
    total = 0
    for p in processes:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def run_measured(command):
    """Run ``command``; return (exit code, seconds, peak RSS of the process tree in GB)."""
    start = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    peak, watched = [0], psutil.Process(proc.pid)

    def sample():
        while proc.poll() is None:
            peak[0] = max(peak[0], tree_rss(watched))
            time.sleep(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    output = proc.communicate()[0]
    sampler.join()
    return proc.returncode, time.perf_counter() - start, peak[0] / 1e9, output


def stage_seconds(work_dir):
    from nipype.utils.filemanip import loadpkl

    seconds = defaultdict(float)
    for result in Path(work_dir).rglob("result_*.pklz"):
        in_priors = result.parent.parent.name == "priors_wf" or result.parent.name == "template_masks"
        node = "priors" if in_priors else result.parent.name
        duration = getattr(loadpkl(result).runtime, "duration", 0) or 0
        seconds[node if node in STAGES else "figures" if node in FIGURES else "outputs"] += duration
    return seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data" / "bids")
    parser.add_argument("--out", type=Path, default=Path("bench"))
    parser.add_argument("--nprocs", type=int, default=2)
    parser.add_argument("--model", type=Path, help="a model bundle (default: the bundled model)")
    parser.add_argument("--datasets", nargs="+", help="dataset folders to run (default: all)")
    parser.add_argument("--batch", nargs="+", default=[], metavar="DATASET",
                        help="then run these datasets again, each in one command over all its scans")
    args = parser.parse_args()
    if not args.data.is_dir():
        sys.exit(f"no data at {args.data}")
    from bids.layout import parse_file_entities

    rows = []
    datasets = sorted(p for p in args.data.iterdir() if (p / "dataset_description.json").exists())
    for dataset in (d for d in datasets if not args.datasets or d.name in args.datasets):
        out_dir = args.out / "derivatives" / dataset.name
        for flair in sorted(dataset.glob("sub-*/**/anat/*_FLAIR.nii*")):
            entities = parse_file_entities(str(flair))
            query = {"subject": entities["subject"], "session": entities.get("session")}
            filter_file = args.out / "filters" / f"{flair.name}.json"
            filter_file.parent.mkdir(parents=True, exist_ok=True)
            filter_file.write_text(json.dumps({"flair": query}))
            work = args.out / "work" / flair.name
            shutil.rmtree(work, ignore_errors=True)
            command = [sys.executable, "-m", "bids_deepwmh", str(dataset), str(out_dir), "participant",
                       "-w", str(work), "--nprocs", str(args.nprocs), "--bids-filter-file", str(filter_file),
                       "--skip-bids-validation", *(["--model", str(args.model)] if args.model else [])]
            code, seconds, peak_gb, output = run_measured(command)
            row = {"dataset": dataset.name, "scan": flair.name.split("_FLAIR")[0], "exit": code,
                   "seconds": round(seconds, 1), "peak_gb": round(peak_gb, 2)}
            row.update({f"s_{k}": round(v, 1) for k, v in stage_seconds(work).items()})
            if code != 0:
                row["error"] = output.strip().splitlines()[-1]
            quality = next(out_dir.glob(f"sub-{entities['subject']}/**/{flair.name.split('_FLAIR')[0]}_quality.json"),
                           None)
            row["flags"] = ",".join(json.loads(quality.read_text())["flags"]) or "none" if quality else "n/a"
            print(json.dumps(row), flush=True)
            rows.append(row)
    columns = ["dataset", "scan", "exit", "flags", "seconds", "peak_gb",
               *(f"s_{s}" for s in (*STAGES, "figures", "outputs")), "error"]
    with open(args.out / "benchmark.tsv", "w") as fh:
        writer = csv.DictWriter(fh, columns, delimiter="\t", extrasaction="ignore", restval="")
        writer.writeheader()
        writer.writerows(rows)
    print("| " + " | ".join(columns[:-1]) + " |")
    print("|" + "---|" * (len(columns) - 1))
    for row in rows:
        print("| " + " | ".join(str(row.get(c, "")) for c in columns[:-1]) + " |")
    if args.batch:
        print("\n| dataset | scans | batch s per scan | one at a time s per scan | batch peak GB |\n|---|---|---|---|---|")
        for dataset in (d for d in datasets if d.name in args.batch):
            single = [r["seconds"] for r in rows if r["dataset"] == dataset.name]
            work = args.out / "batch" / "work" / dataset.name
            shutil.rmtree(work, ignore_errors=True)
            command = [sys.executable, "-m", "bids_deepwmh", str(dataset),
                       str(args.out / "batch" / "derivatives" / dataset.name), "participant", "-w", str(work),
                       "--nprocs", str(args.nprocs), "--skip-bids-validation",
                       *(["--model", str(args.model)] if args.model else [])]
            code, seconds, peak_gb, _ = run_measured(command)
            print(f"| {dataset.name} | {len(single)} | {seconds / len(single):.1f}{'' if code == 0 else ' (failed)'} | "
                  f"{sum(single) / len(single):.1f} | {peak_gb:.2f} |", flush=True)


if __name__ == "__main__":
    main()
