"""``deepwmh``: run the level asked for (participant, group, train, reference) and report what happened."""

import logging
import os
import sys
import time

from bids_deepwmh import __version__
from bids_deepwmh.cli.parser import build_parser
from bids_deepwmh.config import Config
from bids_deepwmh.model.bundle import BundleError, load_bundle
from bids_deepwmh.utils.bids import UsageError, check_paths
from bids_deepwmh.utils.logs import LOG_FORMAT
from bids_deepwmh.utils.workers import RunInterrupted, stop_on_signals

logger = logging.getLogger("deepwmh")


def main(argv=None):
    """Console entry point; exits with the run's code."""
    sys.exit(run(argv))


def run(argv=None):
    """Run the level the command line asks for; return the exit code."""
    args = build_parser().parse_args(argv)
    try:
        with stop_on_signals():
            return _run_level(args)
    except UsageError as exc:
        print(f"deepwmh: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except BundleError as exc:
        print(f"deepwmh: error: {exc}", file=sys.stderr)
        return UsageError.exit_code
    except GraphError as exc:
        print(f"deepwmh: error: the run stopped outside any processing step: {exc}\n"
              "Outputs already written are kept; rerun the same command to resume.", file=sys.stderr)
        return 1
    except RunInterrupted as exc:
        print(f"deepwmh: stopped by {exc.name}; its worker processes were stopped. Outputs already "
              "written are complete; rerun the same command (same work folder) to resume.", file=sys.stderr)
        return exc.exit_code


def _run_level(args):
    config = Config.from_args(args)
    check_paths(config.bids_dir, config.output_dir, config.work_dir)
    log_file = _setup_logging(config)
    if config.analysis_level == "participant":
        return run_participant(config)
    if config.analysis_level == "train":
        return run_train(config, log_file)
    if config.analysis_level == "reference":
        return run_reference(config)
    from bids_deepwmh.group import run_group

    return run_group(config)


def _setup_logging(config):
    """Messages of this App on the terminal (more with -v); Nipype's go to logs/ unless -v.
    Returns the log file."""
    level = logging.WARNING - 10 * min(config.verbose + 1, 2)
    log_dir = config.output_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    formatter = logging.Formatter(LOG_FORMAT)
    log_path = log_dir / f"deepwmh-{config.analysis_level}-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
    log_file = logging.FileHandler(log_path)
    log_file.setFormatter(formatter)
    terminal = logging.StreamHandler()
    terminal.setFormatter(formatter)
    terminal.setLevel(level)
    for name in ("deepwmh", "nipype"):
        named = logging.getLogger(name)
        named.handlers = [log_file, terminal] if name == "deepwmh" or config.verbose else [log_file]
        named.propagate = False
    logger.setLevel(logging.DEBUG)
    return log_path


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


def _configure_nipype(config):
    from nipype import config as nipype_config
    from nipype import logging as nipype_logging

    nipype_config.update_config({
        "execution": {
            "crashdump_dir": str(config.output_dir / "logs"),
            "crashfile_format": "txt",
            "stop_on_first_crash": config.stop_on_first_crash,
            "check_version": False,
            "poll_sleep_duration": 0.05,
        },
        "logging": {"workflow_level": "INFO", "interface_level": "INFO", "utils_level": "WARNING"},
    })
    nipype_logging.update_logging(nipype_config)


class GraphError(RuntimeError):
    """The run stopped outside any processing step (in the engine or the plugin)."""


def _run_graph(wf, config):
    """Run ``wf`` in the work folder; return the crashed nodes by name (the others ran to the end).

    Nodes run in a pool of worker processes (a forkserver, as in fMRIPrep: a fork of this process
    would copy its OpenMP and ITK thread pools half-way, and a forked worker once hung); a worker
    killed fails the nodes it was running, and a new pool runs the rest.  On SIGTERM or SIGINT
    (see :func:`run`) the workers are stopped before :class:`RunInterrupted` goes on.
    """
    from functools import partial

    from bids_deepwmh.utils.status import track_failures
    from bids_deepwmh.utils.workers import critical_path_plugin, stop_workers, worker_pool

    wf.base_dir = str(config.work_dir)
    failures = {}
    plugin_args = {**config.plugin_args(), "status_callback": track_failures(failures)}
    plugin = critical_path_plugin(partial(worker_pool, config.nprocs, os.getpid()), plugin_args)
    try:
        wf.run(plugin=plugin)
    except RuntimeError as exc:  # Nipype: some nodes crashed, or the engine itself failed
        message = str(exc).strip()
        if not failures:
            raise GraphError(message.splitlines()[-1] if message else type(exc).__name__) from exc
    except RunInterrupted:
        logger.warning("stopping: %d worker process(es) ended", stop_workers(plugin.pool))
        raise
    finally:
        plugin.pool.shutdown(wait=False, cancel_futures=True)
    return failures


def run_participant(config):
    """Build and run the graph; print one line per scan; 0 if all done, 1 if some failed."""
    from bids_deepwmh.utils.bids import remove_stale_staging, write_dataset_description
    from bids_deepwmh.utils.status import scan_status
    from bids_deepwmh.workflows.base import init_deepwmh_wf

    flair_files = select_flairs(config)
    bundle = load_bundle(config.model)
    config.set_environment()
    _configure_nipype(config)
    write_dataset_description(config.output_dir, config.bids_dir)
    remove_stale_staging(config.output_dir)
    logger.info("bids-deepwmh %s: %d FLAIR(s) to process with the model %s%s", __version__, len(flair_files),
                bundle.path, " on the GPU" if config.use_gpu else "")
    wf = init_deepwmh_wf(flair_files, config.output_dir, bundle, omp_nthreads=config.omp_nthreads,
                         use_gpu=config.use_gpu, mirror=config.mirror, random_seed=config.random_seed)
    failures = _run_graph(wf, config)
    if failures:
        logger.warning("%d step(s) failed; crash reports in %s", len(failures), config.output_dir / "logs")
    statuses = [scan_status(f, config.output_dir, failures) for f in flair_files]
    changes = _run_longitudinal(config, statuses)
    _write_reports(config, flair_files, bundle, statuses)
    print(f"\nbids-deepwmh {__version__}: {len(flair_files)} scan(s)")
    for line in statuses:
        print(line.summary)
    if changes:
        print(f"change across sessions: {len(changes)} participant(s)")
        for line in changes:
            print(line.summary)
    return 0 if all(s.ok for s in statuses + changes) else 1


def _run_longitudinal(config, statuses):
    """The change between the sessions of every participant scanned in two or more (a second graph
    in the same work folder, so that a rerun resumes); one status per series of sessions."""
    from bids_deepwmh.utils.sessions import session_series
    from bids_deepwmh.utils.status import series_status
    from bids_deepwmh.workflows.longitudinal import init_longitudinal_wf, longitudinal_table_path

    series = session_series(config.bids_dir, config.output_dir, statuses)
    compared = [s for s in series if len(s.usable) >= 2]
    failures = {}
    if compared:
        logger.info("change across sessions: %d participant series", len(compared))
        wf = init_longitudinal_wf(compared, config.output_dir, random_seed=config.random_seed)
        failures = _run_graph(wf, config)
    return [series_status(s, longitudinal_table_path(config.output_dir, s), failures, config.output_dir / "logs")
            for s in series]


def _write_reports(config, flair_files, bundle, statuses):
    """One HTML report per participant with at least one finished scan (as fMRIPrep, after the run)."""
    from bids.layout import parse_file_entities

    from bids_deepwmh.reports.participant import generate_reports

    done = sorted({parse_file_entities(str(s.source))["subject"] for s in statuses if s.ok})
    failed = generate_reports(config.output_dir, done, bundle, "deepwmh " + " ".join(sys.argv[1:]), statuses)
    written = [s for s in done if s not in failed]
    if written:
        logger.info("reports: %s", ", ".join(str(config.output_dir / f"sub-{s}.html") for s in written))


MIN_TRAINING_SCANS = 4
# The reference level's minimum: on dev-thick, a reference of 5 of its scans kept each of the other
# 5 under twice its manual volume, as one of all 10 did (docs/training.md#a-reference-for-your-scanner).
MIN_REFERENCE_SCANS = 5


def _cohort(config, level, minimum):
    """``(scans, reference_scans)`` of a cohort level: the selected FLAIRs described, and those the
    reference is built from (the controls, when participants.tsv names enough); refused when the
    reference would have fewer than ``minimum`` of them."""
    from bids_deepwmh.utils.bids import MIN_REFERENCE_CONTROLS, describe_scan, read_participants, reference_cohort

    participants = read_participants(config.bids_dir)
    scans = [describe_scan(config.bids_dir, f, participants) for f in select_flairs(config)]
    reference_scans = reference_cohort(scans)
    if len(reference_scans) < minimum:
        raise UsageError(f"the {level} level needs at least {minimum} FLAIRs; {len(reference_scans)} selected")
    if len(reference_scans) < len(scans):
        logger.info("normal-appearing reference: from the %d control scans named in participants.tsv",
                    len(reference_scans))
    else:
        logger.info("normal-appearing reference: from all %d scans (participants.tsv names fewer than %d "
                    "control scans; each scan's own hyperintensities are left out)", len(scans),
                    MIN_REFERENCE_CONTROLS)
    return scans, reference_scans


def run_train(config, log_file=None):
    """Preprocess, pseudo-label and learn; write the bundle to ``OUTPUT_DIR/model``.  The training
    node appends its progress (epochs, loss, time left) to ``log_file``."""
    from bids_deepwmh.model.training import TrainingSettings
    from bids_deepwmh.workflows.train import init_train_wf

    try:
        TrainingSettings.from_dict(config.train_settings)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"--train-settings: {exc}") from exc
    scans, reference_scans = _cohort(config, "train", MIN_TRAINING_SCANS)
    config.set_environment()
    _configure_nipype(config)
    bundle_dir = config.output_dir / "model"
    logger.info("bids-deepwmh %s: training on %d FLAIR(s)%s; the model goes to %s", __version__, len(scans),
                " on the GPU" if config.use_gpu else "", bundle_dir)
    command = "deepwmh " + " ".join(sys.argv[1:])
    settings = {"seed": config.random_seed, **config.train_settings}
    wf = init_train_wf(scans, bundle_dir, config.work_dir / "training", settings, command,
                       config.omp_nthreads, config.use_gpu, log_file, reference_scans=reference_scans,
                       random_seed=config.random_seed)
    return _run_cohort_graph(wf, config, "training", bundle_dir)


def _run_cohort_graph(wf, config, what, bundle_dir):
    """Run a cohort level's graph; say where its model is, or which steps failed (exit code 1)."""
    from bids_deepwmh.utils.status import crash_reason

    failures = _run_graph(wf, config)
    if failures:
        log_dir = config.output_dir / "logs"
        print(f"\nbids-deepwmh {__version__}: {what} FAILED; no model written. Failed step(s):")
        for name in sorted(failures):
            print(f"  {name}: {crash_reason(name, log_dir)}")
        print("Leave out a scan that fails with --participant-label or --bids-filter-file; a rerun resumes.")
        return 1
    print(f"\nbids-deepwmh {__version__}: model written to {bundle_dir} (see its model_card.md); "
          f"use it with --model {bundle_dir}")
    return 0


def run_reference(config):
    """Preprocess the selected FLAIRs and build their normal-appearing reference; write it with the
    network of ``--model`` (default: the bundled one) as a bundle in ``OUTPUT_DIR/model``."""
    from bids_deepwmh.workflows.train import init_reference_level_wf

    bundle_dir = config.output_dir / "model"
    base = load_bundle(config.model)
    if base.path.resolve() == bundle_dir.resolve():
        raise UsageError(f"--model {base.path} is where the reference level writes its model: give another "
                         "output folder, or copy the model first")
    _, reference_scans = _cohort(config, "reference", MIN_REFERENCE_SCANS)
    config.set_environment()
    _configure_nipype(config)
    logger.info("bids-deepwmh %s: a reference from %d FLAIR(s), with the network of %s; the model goes to %s",
                __version__, len(reference_scans), base.path, bundle_dir)
    wf = init_reference_level_wf(reference_scans, bundle_dir, base, "deepwmh " + " ".join(sys.argv[1:]),
                                 config.omp_nthreads, config.use_gpu, random_seed=config.random_seed)
    return _run_cohort_graph(wf, config, "the reference", bundle_dir)


if __name__ == "__main__":
    main()
