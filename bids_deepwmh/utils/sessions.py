"""Which FLAIRs of a participant form a series over time, in which order, and which can be compared."""

import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from bids_deepwmh.utils.bids import SCAN_ENTITIES, derivative_path
from bids_deepwmh.utils.tables import read_tsv

SERIES_ENTITIES = tuple(e for e in SCAN_ENTITIES if e not in ("subject", "session"))


@dataclass(frozen=True)
class SessionScan:
    label: str  # the session label, without "ses-"
    source: str  # the raw FLAIR
    acq_time: str = None  # as sessions.tsv gives it
    reason: str = None  # why the scan cannot be compared (None: it can)

    @property
    def usable(self):
        return self.reason is None


@dataclass(frozen=True)
class Series:
    """The FLAIRs of one participant over its sessions, in time order."""

    subject: str
    scans: tuple = field(default_factory=tuple)

    @property
    def usable(self):
        return [scan for scan in self.scans if scan.usable]

    @property
    def name(self):
        """A valid Nipype name: ``sub_01``, with the series' other entities when they name it."""
        from bids.layout import parse_file_entities

        entities = [parse_file_entities(scan.source) for scan in self.scans]
        shared = [f"{k}_{entities[0][k]}" for k in SERIES_ENTITIES
                  if k in entities[0] and all(e.get(k) == entities[0][k] for e in entities)]
        return re.sub(r"\W", "_", "_".join([f"sub_{self.subject}", *shared]))


def _natural_key(label):
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", label)]


def acquisition_times(bids_dir, subject):
    """``{session label: acq_time}`` from ``sub-<label>/sub-<label>_sessions.tsv`` (empty without it)."""
    table = Path(bids_dir) / f"sub-{subject}" / f"sub-{subject}_sessions.tsv"
    if not table.exists():
        return {}
    return {row["session_id"].removeprefix("ses-"): row["acq_time"] for row in read_tsv(table)
            if row.get("acq_time") not in (None, "", "n/a")}


def parse_time(text):
    """An ``acq_time`` (ISO 8601, as BIDS writes it) as a datetime; None when it is not one."""
    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except (TypeError, ValueError):
        return None


def years_between(first, then):
    """Years from the ``acq_time`` ``first`` to ``then`` (3 decimals); None unless both are dates."""
    start, end = parse_time(first), parse_time(then)
    if start is None or end is None:
        return None
    return round((end - start).total_seconds() / (365.25 * 86400), 3)


def exclusion_reason(output_dir, source, done, detail):
    """Why a scan cannot be compared with the participant's other sessions, or None: its run
    failed (``done`` False, ``detail`` saying why), or its quality record calls it out of distribution."""
    if not done:
        return f"its scan failed ({detail})"
    record = derivative_path(output_dir, source, suffix="quality", extension=".json")
    if record.exists():
        quality = json.loads(record.read_text())
        if quality.get("out_of_distribution"):
            return "out of distribution (" + ", ".join(quality["flags"]) + ")"
    return None


def session_series(bids_dir, output_dir, statuses):
    """The :class:`Series` of every participant with FLAIRs in two or more sessions.

    ``statuses``: the scan statuses of the run (``source``, ``ok``, ``detail``).  A participant
    with one FLAIR per session gives one series, whatever its other entities (a protocol that changed
    between sessions); one with several FLAIRs in a session gives a series per acquisition, run and
    reconstruction.  Sessions are in ``acq_time`` order when sessions.tsv dates them all, else in
    the order of their labels (``2`` before ``10``)."""
    from bids.layout import parse_file_entities

    by_subject = {}
    for status in statuses:
        entities = parse_file_entities(str(status.source))
        if "session" in entities:
            by_subject.setdefault(entities["subject"], []).append((entities, status))
    found = []
    for subject, scans in sorted(by_subject.items()):
        times = acquisition_times(bids_dir, subject)
        sessions = [e["session"] for e, _ in scans]
        one_per_session = len(set(sessions)) == len(sessions)
        groups = {}
        for entities, status in scans:
            key = () if one_per_session else tuple(entities.get(k) for k in SERIES_ENTITIES)
            groups.setdefault(key, []).append((entities, status))
        for members in groups.values():
            if len({e["session"] for e, _ in members}) < 2:
                continue
            dated = all(parse_time(times.get(e["session"])) for e, _ in members)
            members.sort(key=lambda m: (parse_time(times[m[0]["session"]]) if dated else 0,
                                        _natural_key(m[0]["session"])))
            found.append(Series(subject, tuple(
                SessionScan(e["session"], str(s.source), times.get(e["session"]),
                            exclusion_reason(output_dir, s.source, s.ok, s.detail))
                for e, s in members)))
    return found
