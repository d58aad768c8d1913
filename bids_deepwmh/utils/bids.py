"""Find FLAIRs in a BIDS dataset, check the paths a run will use, validate, describe outputs."""

import json
import os
import shutil
import socket
import subprocess
import sys
from collections import Counter
from pathlib import Path

from bids_deepwmh import __url__, __version__


class UsageError(ValueError):
    """The command line asks for something that cannot be done."""

    exit_code = 2


class InvalidDatasetError(UsageError):
    """The input is not a (valid) BIDS dataset."""

    exit_code = 16  # BIDS execution spec: an input dataset failed BIDS validation


class NoMatchError(UsageError):
    """Labels or filters select no FLAIR."""

    exit_code = 18  # BIDS execution spec: entity-based filtering selected no files


class NoInputError(UsageError):
    """The dataset holds no FLAIR at all."""

    exit_code = 66  # BIDS execution spec (sysexits NOINPUT)


_SCAN = (
    "sub-{subject}[_ses-{session}][_acq-{acquisition}][_ce-{ceagent}][_rec-{reconstruction}][_run-{run}]"
)
_ANAT = "sub-{subject}[/ses-{session}]/{datatype<anat>|anat}/" + _SCAN
# How this App names its derivatives (pybids path patterns); figures go under sub-X/figures/ as in fMRIPrep.
PATH_PATTERNS = (
    _ANAT + "[_space-{space}][_res-{resolution}][_label-{label}][_desc-{desc}]"
    "_{suffix<FLAIR|mask|probseg|dseg|morph|quality>}{extension<.nii|.nii.gz|.json|.tsv>|.nii.gz}",
    _ANAT + "_from-{from}_to-{to}_mode-{mode<image|points>|image}_{suffix<xfm>|xfm}{extension<.h5|.txt>}",
    "sub-{subject}/{datatype<figures>}/" + _SCAN + "[_space-{space}][_desc-{desc}]"
    "_{suffix<FLAIR|mask|dseg|probseg|morph>}{extension<.svg|.png|.html>}",
)
SCAN_ENTITIES = ("subject", "session", "acquisition", "ceagent", "reconstruction", "run")


def derivative_path(output_dir, source_file, **entities):
    """Where the derivative of ``source_file`` with ``entities`` is written."""
    from bids.layout import parse_file_entities
    from bids.layout.writing import build_path

    source = parse_file_entities(str(source_file))
    values = {k: source[k] for k in SCAN_ENTITIES if k in source}
    values.update(entities)
    return Path(output_dir) / build_path(values, path_patterns=PATH_PATTERNS)


FLAIR_QUERY = {"suffix": "FLAIR", "extension": [".nii", ".nii.gz"], "datatype": "anat"}


def strip_prefix(labels, prefix):
    """``['sub-01', '02']`` -> ``['01', '02']``."""
    return [label[len(prefix):] if label.startswith(prefix) else label for label in labels or []]


def check_paths(bids_dir, output_dir, work_dir):
    """Refuse outputs inside the raw data (other than under ``derivatives/``)."""
    bids_dir = Path(bids_dir).resolve()
    if not (bids_dir / "dataset_description.json").is_file():
        raise InvalidDatasetError(f"{bids_dir} is not a BIDS dataset: it has no dataset_description.json")
    for name, path in (("output", output_dir), ("work", work_dir)):
        if path is None:
            continue
        path = Path(path).resolve()
        inside = path == bids_dir or bids_dir in path.parents
        if inside and (bids_dir / "derivatives") not in [path, *path.parents][:-1]:
            raise UsageError(
                f"the {name} directory {path} is inside the input dataset {bids_dir}; "
                f"use a folder outside it or under {bids_dir / 'derivatives'}"
            )
        if path == bids_dir / "derivatives":
            raise UsageError(f"the {name} directory must be a subfolder of {path}, not the folder itself")


def validate_dataset(bids_dir):
    """Run the BIDS validator; return a list of short error lines (empty when valid)."""
    beside_python = Path(sys.executable).parent  # a virtual environment that is not activated
    exe = next(
        (found for name in ("bids-validator-deno", "bids-validator")
         for found in (shutil.which(name), shutil.which(name, path=str(beside_python))) if found),
        None,
    )
    if exe is None:
        raise UsageError("the BIDS validator (bids-validator-deno) is not installed; "
                         "install it or pass --skip-bids-validation")
    proc = subprocess.run(
        [exe, "--format", "json", "--ignoreWarnings", str(bids_dir)],
        capture_output=True, text=True, check=False,
    )
    try:
        issues = json.loads(proc.stdout)["issues"]["issues"]
    except (json.JSONDecodeError, KeyError):
        return [f"the validator failed: {(proc.stderr or proc.stdout).strip()[:300]}"]
    errors = [i for i in issues if i.get("severity") == "error"]
    counts = Counter(i["code"] for i in errors)
    where = {}
    for issue in errors:
        where.setdefault(issue["code"], issue.get("location", ""))
    return [f"{code} ({n}x), e.g. {where[code]}" for code, n in counts.items()]


def read_filters(path):
    """Read an fMRIPrep-style ``--bids-filter-file``; only its ``flair`` query is used here."""
    try:
        filters = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise UsageError(f"cannot read the BIDS filter file {path}: {exc}") from exc
    if not isinstance(filters, dict) or not all(isinstance(v, dict) for v in filters.values()):
        raise UsageError(f"{path}: expected an object of queries, e.g. {{\"flair\": {{\"acquisition\": \"3D\"}}}}")
    return filters


def _to_query(filters):
    from bids.layout import Query

    special = {None: Query.NONE, "*": Query.ANY}
    return {k: special.get(v, v) if not isinstance(v, list) else v for k, v in filters.items()}


def collect_flairs(layout, participant_label=None, session_label=None, bids_filters=None):
    """Return the sorted FLAIR files selected by the labels and the ``flair`` filter."""
    subjects = layout.get_subjects()
    if participant_label:
        missing = sorted(set(participant_label) - set(subjects))
        if missing:
            raise NoMatchError(
                f"participant label(s) {', '.join(missing)} not found in {layout.root} "
                f"(it has: {', '.join(sorted(subjects)) or 'none'})"
            )
    if session_label:
        # pybids reads subject=None as "files without a subject": leave the filter out instead.
        sessions = layout.get_sessions(**({"subject": participant_label} if participant_label else {}))
        missing = sorted(set(session_label) - set(sessions))
        if missing:
            raise NoMatchError(
                f"session label(s) {', '.join(missing)} not found in {layout.root}"
                f" for the selected participants (it has: {', '.join(sorted(sessions)) or 'none'})"
            )
    query = dict(FLAIR_QUERY)
    query.update(_to_query((bids_filters or {}).get("flair", {})))
    if participant_label:
        query["subject"] = list(participant_label)
    if session_label:
        query["session"] = list(session_label)
    files = sorted(layout.get(return_type="file", **query))
    if not files:
        searched = {k: v for k, v in query.items() if k != "extension"}
        narrowed = participant_label or session_label or (bids_filters or {}).get("flair")
        error = NoMatchError if narrowed else NoInputError
        raise error(f"no FLAIR found in {layout.root} for the query {searched}")
    return files


def write_dataset_description(output_dir, bids_dir):
    """Write the derivatives' ``dataset_description.json`` and ``.bidsignore``."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    description = {
        "Name": "bids-deepwmh: white matter hyperintensity segmentation",
        "BIDSVersion": "1.10.0",
        "DatasetType": "derivative",
        "GeneratedBy": [{"Name": "bids-deepwmh", "Version": __version__, "CodeURL": __url__}],
        "SourceDatasets": [{"URL": Path(bids_dir).resolve().as_uri()}],
        "HowToAcknowledge": "Cite DeepWMH (Liu et al., Science Bulletin 2024) and bids-deepwmh.",
    }
    container = os.getenv("DEEPWMH_CONTAINER")
    if container:
        description["GeneratedBy"][0]["Container"] = {"Type": container}
    write_atomic(output_dir / "dataset_description.json", json.dumps(description, indent=2) + "\n")
    write_atomic(output_dir / ".bidsignore", "\n".join(BIDSIGNORE) + "\n")


# Files that BIDS does not define (the validator would call them errors).
BIDSIGNORE = ("*_xfm.h5", "*_xfm.txt", "*_xfm.json", "*_morph.tsv", "*_morph.json", "*_quality.json", "sub-*/figures",
              "sub-*.html", "logs/", "group_*")


STAGING = ".deepwmh-staging"  # hidden folders of the output folder where derivatives are written first


def staging_prefix():
    """Name prefix of a staging folder of this process (host and process id)."""
    return f"{STAGING}-{socket.gethostname()}-{os.getpid()}-"


def remove_stale_staging(output_dir):
    """Remove staging folders left by processes of this host that no longer exist (a killed run)."""
    import psutil

    this_host = f"{STAGING}-{socket.gethostname()}-"
    for folder in Path(output_dir).glob(f"{this_host}*"):
        pid = folder.name[len(this_host):].split("-")[0]
        if pid.isdigit() and not psutil.pid_exists(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def write_atomic(path, text):
    """Write ``text`` (UTF-8) to ``path`` through a temporary file renamed over it: a reader, or a
    run writing the same file at once, never sees half of it."""
    tmp = Path(f"{path}.tmp{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def read_participants(bids_dir):
    """``participants.tsv`` as a dict of rows keyed by participant_id (empty when absent)."""
    from bids_deepwmh.utils.tables import read_tsv

    table = Path(bids_dir) / "participants.tsv"
    return {row["participant_id"]: row for row in read_tsv(table)} if table.exists() else {}


def describe_scan(bids_dir, path, participants=None):
    """Provenance of a FLAIR: its ``file``, a ``name`` (dataset folder and relative path), the
    ``dataset`` name, the ``license`` (participants.tsv column, else the dataset's) and the
    participant's ``group`` (participants.tsv column, else "n/a")."""
    from bids.layout import parse_file_entities

    bids_dir = Path(bids_dir)
    description = json.loads((bids_dir / "dataset_description.json").read_text())
    participant = "sub-" + parse_file_entities(str(path))["subject"]
    row = (read_participants(bids_dir) if participants is None else participants).get(participant, {})
    return {
        "file": str(path),
        "name": f"{bids_dir.name}/{Path(path).relative_to(bids_dir)}",
        "dataset": description.get("Name", bids_dir.name),
        "license": row.get("license") or row.get("licence") or description.get("License", "unknown"),
        "group": row.get("group") or "n/a",
    }


CONTROL_GROUPS = {"control", "controls", "healthy", "hc", "normal"}
MIN_REFERENCE_CONTROLS = 4


def reference_cohort(scans):
    """The scans the normal-appearing reference is built from: those of participants whose
    ``group`` names a control, when there are at least ``MIN_REFERENCE_CONTROLS``; else all."""
    controls = [scan for scan in scans if scan["group"].strip().lower() in CONTROL_GROUPS]
    return controls if len(controls) >= MIN_REFERENCE_CONTROLS else list(scans)
