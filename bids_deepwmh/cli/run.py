"""``deepwmh``: run the participant or group level and report what happened to each scan."""

import logging
import sys
import time

from bids_deepwmh import __version__
from bids_deepwmh.cli.parser import build_parser
from bids_deepwmh.config import Config
from bids_deepwmh.utils.bids import UsageError, check_paths

logger = logging.getLogger("deepwmh")


def main(argv=None):
    """Console entry point; exits with the run's code."""
    sys.exit(run(argv))


def run(argv=None):
    args = build_parser().parse_args(argv)
    try:
        config = Config.from_args(args)
        check_paths(config.bids_dir, config.output_dir, config.work_dir)
        _setup_logging(config)
        if config.analysis_level == "participant":
            return run_participant(config)
        from bids_deepwmh.group import run_group

        return run_group(config)
    except UsageError as exc:
        print(f"deepwmh: error: {exc}", file=sys.stderr)
        return exc.exit_code


def _setup_logging(config):
    """Messages of this App on the terminal (more with -v); Nipype's go to logs/ unless -v."""
    level = logging.WARNING - 10 * min(config.verbose + 1, 2)
    log_dir = config.output_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    formatter = logging.Formatter("%(asctime)s %(name)s %(levelname)s: %(message)s")
    log_file = logging.FileHandler(log_dir / f"deepwmh-{config.analysis_level}-{time.strftime('%Y%m%d-%H%M%S')}.log")
    log_file.setFormatter(formatter)
    terminal = logging.StreamHandler()
    terminal.setFormatter(formatter)
    terminal.setLevel(level)
    for name in ("deepwmh", "nipype"):
        named = logging.getLogger(name)
        named.handlers = [log_file, terminal] if name == "deepwmh" or config.verbose else [log_file]
        named.propagate = False
    logger.setLevel(logging.DEBUG)


def select_flairs(config):
    """Validate the dataset (unless asked not to) and return the selected FLAIR files."""
    from bids import BIDSLayout

    from bids_deepwmh.utils.bids import InvalidDatasetError, collect_flairs, validate_dataset

    if not config.skip_bids_validation:
        errors = validate_dataset(config.bids_dir)
        if errors:
            raise InvalidDatasetError(
                f"{config.bids_dir} failed BIDS validation: " + "; ".join(errors[:5])
                + " (details: bids-validator-deno; or pass --skip-bids-validation)"
            )
    layout = BIDSLayout(str(config.bids_dir), validate=False)
    return collect_flairs(layout, config.participant_label, config.session_label, config.bids_filters)


def run_participant(config):
    """Build and run the graph; print one line per scan; 0 if all done, 1 if some failed."""
    from bids_deepwmh.utils.bids import write_dataset_description
    from bids_deepwmh.utils.status import scan_status, track_failures

    flair_files = select_flairs(config)
    config.set_environment()
    from nipype import config as nipype_config

    from bids_deepwmh.workflows.base import init_deepwmh_wf

    nipype_config.update_config({
        "execution": {
            "crashdump_dir": str(config.output_dir / "logs"),
            "crashfile_format": "txt",
            "stop_on_first_crash": config.stop_on_first_crash,
            "check_version": False,
        },
        "logging": {"workflow_level": "INFO", "interface_level": "INFO", "utils_level": "WARNING"},
    })
    from nipype import logging as nipype_logging

    nipype_logging.update_logging(nipype_config)
    write_dataset_description(config.output_dir, config.bids_dir)
    logger.info("bids-deepwmh %s: %d FLAIR(s) to process", __version__, len(flair_files))
    wf = init_deepwmh_wf(flair_files, config.output_dir, config.reference_file, config.omp_nthreads)
    wf.base_dir = str(config.work_dir)
    plugin = config.plugin_settings()
    failures = {}
    plugin["plugin_args"]["status_callback"] = track_failures(failures)
    try:
        wf.run(**plugin)
    except RuntimeError:  # Nipype: some nodes crashed; the others ran to the end
        logger.warning("%d step(s) failed; crash reports in %s", len(failures), config.output_dir / "logs")
    statuses = [scan_status(f, config.output_dir, failures) for f in flair_files]
    print(f"\nbids-deepwmh {__version__}: {len(flair_files)} scan(s)")
    for line in statuses:
        print(line.summary)
    return 0 if all(s.ok for s in statuses) else 1


if __name__ == "__main__":
    main()
