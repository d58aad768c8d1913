"""Settings of one run, read once from the command line at the top of the program."""

import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from bids_deepwmh.utils.bids import read_filters, strip_prefix


def packaged_reference():
    """The normal-appearing FLAIR reference shipped with the package."""
    return Path(str(resources.files("bids_deepwmh") / "data" / REFERENCE_NAME))


REFERENCE_NAME = "tpl-MNI152NLin2009cAsym_res-02_desc-normal_FLAIR.nii.gz"


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
    reference_file: Path = field(default_factory=packaged_reference)

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
        )

    def set_environment(self):
        """Thread counts for ITK and BLAS in every node; no network checks from Nipype."""
        threads = ("ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
        for var in threads:
            os.environ[var] = str(self.omp_nthreads)
        os.environ.setdefault("NIPYPE_NO_ET", "1")

    def plugin_settings(self):
        """Nipype's MultiProc plugin, bounded by the requested CPUs and memory."""
        args = {"n_procs": self.nprocs, "raise_insufficient": False, "maxtasksperchild": 1}
        if self.mem_gb:
            args["memory_gb"] = self.mem_gb
        return {"plugin": "MultiProc", "plugin_args": args}
