"""Settings of one run, read once from the command line at the top of the program."""

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from bids_deepwmh import DEFAULT_RANDOM_SEED
from bids_deepwmh.utils.bids import UsageError, read_filters, strip_prefix


def packaged_model():
    """The model bundle shipped with the package."""
    from bids_deepwmh.model.bundle import packaged_bundle

    return packaged_bundle()


def read_training_settings(path):
    """Training settings to change, from a JSON file."""
    import json

    try:
        values = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise UsageError(f"--train-settings {path}: not a readable JSON file ({exc})") from exc
    if not isinstance(values, dict):
        raise UsageError(f"--train-settings {path}: expected a JSON object of setting names and values")
    return values


@dataclass(frozen=True)
class Config:
    bids_dir: Path
    output_dir: Path
    analysis_level: str
    work_dir: Path
    participant_label: list = field(default_factory=list)
    session_label: list = field(default_factory=list)
    bids_filters: dict = field(default_factory=dict)
    skip_bids_validation: bool = False
    manual_masks: Path = None
    nprocs: int = 1
    omp_nthreads: int = 1
    mem_gb: float = None
    stop_on_first_crash: bool = False
    verbose: int = 0
    model: Path = field(default_factory=packaged_model)
    use_gpu: bool = False
    mirror: bool = False
    random_seed: int = DEFAULT_RANDOM_SEED
    train_settings: dict = field(default_factory=dict)

    @classmethod
    def from_args(cls, args):
        nprocs = args.nprocs
        return cls(
            bids_dir=args.bids_dir,
            output_dir=args.output_dir,
            analysis_level=args.analysis_level,
            work_dir=args.work_dir,
            participant_label=strip_prefix(args.participant_label, "sub-"),
            session_label=strip_prefix(args.session_label, "ses-"),
            bids_filters=read_filters(args.bids_filter_file) if args.bids_filter_file else {},
            skip_bids_validation=args.skip_bids_validation,
            manual_masks=args.manual_masks,
            nprocs=nprocs,
            omp_nthreads=args.omp_nthreads or min(nprocs, 8),
            mem_gb=args.mem_gb,
            stop_on_first_crash=args.stop_on_first_crash,
            verbose=args.verbose,
            model=args.model or packaged_model(),
            use_gpu=not args.no_gpu and _cuda_available(),
            mirror=args.tta,
            random_seed=args.random_seed,
            train_settings=read_training_settings(args.train_settings) if args.train_settings else {},
        )

    def set_environment(self):
        """Thread counts in every node (ITK: one, so that registration is the same on every run;
        OpenMP and BLAS: ``omp_nthreads``); no network checks from Nipype."""
        os.environ["ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS"] = "1"
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[var] = str(self.omp_nthreads)
        os.environ.setdefault("NIPYPE_NO_ET", "1")

    def plugin_args(self):
        """Settings of the graph's process pool, bounded by the requested CPUs and memory."""
        args = {"n_procs": self.nprocs, "raise_insufficient": False}
        if self.mem_gb:
            args["memory_gb"] = self.mem_gb
        return args


def _cuda_available():
    """Whether PyTorch sees a CUDA device; without an NVIDIA driver on Linux, answered without
    importing PyTorch (seconds of a run's start on a CPU machine)."""
    if sys.platform.startswith("linux") and not os.path.exists("/proc/driver/nvidia"):
        return False
    import torch

    return torch.cuda.is_available()
