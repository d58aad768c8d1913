"""The ``deepwmh`` argument parser (fMRIPrep and MRIQC conventions)."""

import argparse
import os
from pathlib import Path

from bids_deepwmh import DEFAULT_RANDOM_SEED, __version__


def _positive_int(value):
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value} is not a positive integer")
    return number


def _positive_float(value):
    number = float(value)
    if number <= 0:
        raise argparse.ArgumentTypeError(f"{value} is not a positive number")
    return number


def _existing_file(value):
    path = Path(value)
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"{value} does not exist or is not a file")
    return path.resolve()


def _directory(value):
    return Path(value).expanduser().resolve()


def build_parser():
    parser = argparse.ArgumentParser(
        prog="deepwmh",
        description="Annotation-free white matter hyperintensity segmentation of FLAIR MRI "
        "(a BIDS App in the spirit of DeepWMH).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("bids_dir", type=_directory, help="the input BIDS dataset")
    parser.add_argument("output_dir", type=_directory, help="where the derivatives are written")
    parser.add_argument(
        "analysis_level", choices=["participant", "group", "train", "reference"],
        help="participant: segment each FLAIR; group: gather the per-scan tables; train: learn a "
        "model from the selected FLAIRs, without annotations; reference: build the normal-appearing "
        "reference of the selected FLAIRs (one scanner and protocol, at least 5) and pair it with the "
        "network of --model; both write OUTPUT_DIR/model, for --model at the participant level",
    )
    selection = parser.add_argument_group("selecting scans")
    selection.add_argument(
        "--participant-label", "--participant_label", nargs="+", metavar="LABEL",
        help="participants to process (with or without 'sub-'); default: all",
    )
    selection.add_argument(
        "--session-label", nargs="+", metavar="LABEL",
        help="sessions to process (with or without 'ses-'); default: all",
    )
    selection.add_argument(
        "--bids-filter-file", type=_existing_file, metavar="FILE",
        help="JSON with a 'flair' query of BIDS entities, as in fMRIPrep "
        "(null: entity absent, \"*\": any value)",
    )
    selection.add_argument(
        "--skip-bids-validation", action="store_true", help="do not run the BIDS validator"
    )
    model = parser.add_argument_group("model")
    model.add_argument(
        "--model", type=_directory, metavar="DIR",
        help="a model bundle (the train or reference level's OUTPUT_DIR/model); default: the bundled "
        "model; at the reference level, the network to pair the new reference with",
    )
    model.add_argument(
        "--tta", action="store_true",
        help="test-time augmentation: average the predictions of the 8 mirrored inputs (8x slower)",
    )
    model.add_argument("--no-gpu", action="store_true", help="never use a GPU, even when one is present")
    model.add_argument(
        "--train-settings", type=_existing_file, metavar="FILE",
        help="train level: JSON object of training settings to change (e.g. {\"final_epochs\": 20})",
    )
    evaluation = parser.add_argument_group("evaluation (group level)")
    evaluation.add_argument(
        "--manual-masks", type=_directory, metavar="DIR",
        help="a BIDS-Derivatives dataset of manual WMH masks (label-WMH ... _mask, on the FLAIR "
        "grid); the group level then writes Dice, HD95, AVD, lesion recall and F1 per scan",
    )
    resources = parser.add_argument_group("resources")
    resources.add_argument(
        "-w", "--work-dir", type=_directory, default=Path("work").resolve(),
        help="intermediate files; a rerun with the same folder resumes",
    )
    resources.add_argument(
        "--nprocs", "--n-cpus", type=_positive_int, default=os.cpu_count() or 1,
        help="scans processed in parallel at most (CPU slots)",
    )
    resources.add_argument(
        "--omp-nthreads", type=_positive_int, default=None,
        help="threads per process for brain extraction and BLAS (ANTs and the network always run "
        "on one thread, so that results never depend on it); default: min(nprocs, 8)",
    )
    resources.add_argument(
        "--random-seed", type=int, default=DEFAULT_RANDOM_SEED, metavar="N",
        help="seed of the registration's sampling and of training: the same input, options and "
        "version give the same outputs, bit for bit, on the CPU",
    )
    resources.add_argument(
        "--mem-gb", "--mem", type=_positive_float, default=None,
        help="memory the scheduler may use, in GB",
    )
    resources.add_argument(
        "--stop-on-first-crash", action="store_true",
        help="stop at the first failure instead of finishing the other scans",
    )
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="more messages (repeat for more)"
    )
    parser.add_argument("--version", action="version", version=f"bids-deepwmh {__version__}")
    return parser
