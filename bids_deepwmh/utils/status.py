"""What happened to each scan of a participant-level run."""

import re
from dataclasses import dataclass
from pathlib import Path

from bids_deepwmh.utils.bids import derivative_path
from bids_deepwmh.utils.errors import FORESEEN
from bids_deepwmh.utils.tables import read_tsv

_ERROR_LINE = re.compile(r"^\s*(?:[\w.]+\.)?(\w+(?:Error|Exception)): (.+)$")
RESUME = "then rerun the same command: the steps already finished are kept"
# Failures that are not the scan's fault, recognised in the crash file, and what to do about them.
_OUT_OF_MEMORY = re.compile(r"MemoryError|Unable to allocate|Failed to allocate memory|bad_alloc|out of memory", re.I)
_KILLED = re.compile(r"BrokenProcessPool|terminated abruptly|killed by signal|\bSIGKILL\b", re.I)
OUT_OF_MEMORY = ("the {step} step ran out of memory; give the run more memory or run fewer scans at once "
                 "(--nprocs, --mem-gb), " + RESUME)
KILLED = ("the {step} step was stopped before it finished (most often the system ends a step when memory runs "
          "out); give the run more memory or run fewer scans at once (--nprocs, --mem-gb), " + RESUME)
UNEXPECTED = ("the {step} step stopped on an unexpected error, described in {crash_file}; " + RESUME
              + ", and if it fails again report it with that file")

SCAN_ATTRIBUTE = "deepwmh_scan"  # set on every node of a scan's branch: the FLAIR it processes


def mark_scan_nodes(wf, flair_file):
    """Record ``flair_file`` on every node of ``wf``, so that a crash names its scan."""
    for name in wf.list_node_names():
        setattr(wf.get_node(name), SCAN_ATTRIBUTE, str(flair_file))


def track_failures(failures):
    """A Nipype ``status_callback`` that records crashed nodes in ``failures`` by full name."""

    def callback(node, status):
        if status == "exception":
            failures[node.fullname] = node

    return callback


def _crash_file(node_fullname, log_dir):
    """The newest crash file of that node, or ``None``."""
    crash_files = sorted(Path(log_dir).glob("crash-*.txt"), key=lambda p: p.stat().st_mtime, reverse=True)
    return next((f for f in crash_files if f"Node: {node_fullname}\n" in f.read_text(errors="replace")), None)


def crash_reason(node_fullname, log_dir):
    """One plain sentence: why that node failed and what to do.  A foreseen problem with the scan
    (:mod:`bids_deepwmh.utils.errors`) is said in its own words; running out of memory and a step
    killed are recognised; anything else points at the crash file, which keeps the exception."""
    step = node_fullname.split(".")[-1].replace("_", " ")
    crash_file = _crash_file(node_fullname, log_dir)
    if crash_file is None:
        return UNEXPECTED.format(step=step, crash_file=f"no crash file in {log_dir}")
    text = crash_file.read_text(errors="replace")
    messages = [m for m in map(_ERROR_LINE.match, text.splitlines()) if m]
    foreseen = [m for m in messages if m.group(1) in FORESEEN]
    if foreseen:
        return foreseen[-1].group(2).strip()
    if _OUT_OF_MEMORY.search(text):
        return OUT_OF_MEMORY.format(step=step)
    if _KILLED.search(text):
        return KILLED.format(step=step)
    return UNEXPECTED.format(step=step, crash_file=crash_file)


@dataclass
class ScanStatus:
    source: Path
    ok: bool
    detail: str

    @property
    def summary(self):
        """The scan's line at the end of a run: ``name: done (volumes)`` or ``name: FAILED: why``."""
        name = Path(self.source).name
        if self.ok:
            return f"  {name}: done ({self.detail})"
        return f"  {name}: FAILED: {self.detail.removeprefix(f'{name}: ')}"


def scan_status(flair_file, output_dir, failures):
    """Done when no node of the scan crashed and its WMH mask and table exist."""
    crashed = sorted(name for name, node in failures.items()
                     if getattr(node, SCAN_ATTRIBUTE, None) == str(flair_file))
    if crashed:
        return ScanStatus(flair_file, False, crash_reason(crashed[0], Path(output_dir) / "logs"))
    table = derivative_path(output_dir, flair_file, label="WMH", suffix="morph", extension=".tsv")
    mask = derivative_path(output_dir, flair_file, label="WMH", suffix="mask", extension=".nii.gz")
    if not (table.exists() and mask.exists()):
        return ScanStatus(flair_file, False, "not run: an earlier failure stopped the run; " + RESUME)
    row = read_tsv(table)[0]
    return ScanStatus(
        flair_file, True,
        f"WMH {float(row['wmh_volume_ml']):.2f} mL in {row['wmh_count']} lesion(s), "
        f"brain {float(row['brain_volume_ml']):.0f} mL",
    )


SERIES_ATTRIBUTE = "deepwmh_series"  # set on every node of a longitudinal branch: the table it writes


def series_status(series, table, failures, log_dir):
    """Whether the change across a participant's sessions (``series``) was measured, and what it found:
    one line per session pair, or why it was not measured."""
    crashed = sorted(name for name, node in failures.items() if getattr(node, SERIES_ATTRIBUTE, None) == str(table))
    skipped = "; ".join(f"ses-{s.label} skipped: {s.reason}" for s in series.scans if not s.usable)
    name = f"sub-{series.subject}"
    if len(series.usable) < 2:
        return ScanStatus(name, True, "change not measured: fewer than two sessions can be compared"
                          + (f" ({skipped})" if skipped else ""))
    if crashed:
        return ScanStatus(name, False, f"change across sessions: {crash_reason(crashed[0], log_dir)}")
    if not Path(table).exists():
        return ScanStatus(name, False, "change across sessions not measured: an earlier failure stopped the run")
    pairs = []
    for row in read_tsv(table):
        if row.get("compared_with") not in (None, "", "n/a"):
            counts = ", ".join(f"{row[f'{c}_wmh_count']} {c}" for c in ("new", "enlarging", "shrinking", "disappeared"))
            pairs.append(f"{row['compared_with']} -> {row['session_id']}: {counts}")
    return ScanStatus(name, True, "; ".join(pairs + ([skipped] if skipped else [])) + f" ({Path(table).name})")
