"""The group level: one table of every scan's WMH volumes and quality flags, one of each
participant's change across sessions, the group report, and agreement with manual masks."""

import json
import logging
from pathlib import Path

import numpy as np

from bids_deepwmh.core.quality import CHECKS
from bids_deepwmh.core.volumes import VOLUME_COLUMNS
from bids_deepwmh.reports.group import group_report_html
from bids_deepwmh.utils.bids import NoInputError, NoMatchError, UsageError, read_participants, write_atomic
from bids_deepwmh.utils.tables import read_tsv, table_text

logger = logging.getLogger("deepwmh")

ID_COLUMNS = ("participant_id", "session_id", "acquisition", "run")
QUALITY_COLUMNS = ("quality_flagged", "quality_flags", "out_of_distribution") + tuple(f"qc_{c.name}" for c in CHECKS)
AGREEMENT_COLUMNS = ("dice", "hd95_mm", "avd_percent", "lesion_recall", "lesion_f1")
MASK_KINDS = {None: "final", "anatomical": "anatomical"}  # desc entity -> the mask column of the agreement


def _ids(path):
    from bids.layout import parse_file_entities

    entities = parse_file_entities(str(path))
    return {
        "participant_id": f"sub-{entities['subject']}",
        "session_id": f"ses-{entities['session']}" if "session" in entities else "n/a",
        "acquisition": entities.get("acquisition", "n/a"),
        "run": str(entities.get("run", "n/a")),
    }


def _selected(ids, config):
    subject = ids["participant_id"][4:]
    session = ids["session_id"][4:] if ids["session_id"] != "n/a" else None
    return (not config.participant_label or subject in config.participant_label) and (
        not config.session_label or session in config.session_label
    )


def _quality_values(table):
    """The quality columns of a scan from its ``*_quality.json`` (n/a when absent)."""
    path = Path(str(table).replace("_label-WMH_morph.tsv", "_quality.json"))
    if not path.exists():
        return {}
    record = json.loads(path.read_text())
    return {"quality_flagged": record["flagged"], "quality_flags": ",".join(record["flags"]) or "none",
            "out_of_distribution": record["out_of_distribution"],
            **{f"qc_{name}": check["value"] for name, check in record["checks"].items()}}


def collect_volumes(output_dir, config):
    """One row per scan from the per-scan ``label-WMH_morph.tsv`` tables and quality records."""
    rows = []
    for table in sorted(Path(output_dir).glob("sub-*/**/anat/*_label-WMH_morph.tsv")):
        ids = _ids(table)
        if _selected(ids, config):
            rows.append({**ids, **read_tsv(table)[0], **_quality_values(table)})
    return rows


def _median(rows, column):
    values = [float(r[column]) for r in rows if r.get(column) not in (None, "n/a")]
    return f"{np.median(values):.2f}" if values else "n/a"


def _summary(rows):
    volumes = np.array([float(r["wmh_volume_ml"]) for r in rows])
    participants = sorted({r["participant_id"] for r in rows})
    flagged = [r for r in rows if str(r.get("quality_flagged")) == "True"]
    text = (
        f"bids-deepwmh group summary\n"
        f"scans: {len(rows)} from {len(participants)} participant(s)\n"
        f"WMH volume (mL): median {np.median(volumes):.2f}, mean {volumes.mean():.2f}, "
        f"range {volumes.min():.2f} to {volumes.max():.2f}\n"
        f"periventricular / deep WMH volume (mL): median {_median(rows, 'periventricular_wmh_volume_ml')} / "
        f"{_median(rows, 'deep_wmh_volume_ml')}\n"
        f"lesion count: median {np.median([int(r['wmh_count']) for r in rows]):.0f}\n"
        f"flagged by the quality checks: {len(flagged)} scan(s)\n"
    )
    for r in flagged:
        scan = " ".join(r[c] for c in ID_COLUMNS if r[c] != "n/a")
        text += f"  {scan}: {r['quality_flags']}\n"
    return text


def find_manual_masks(manual_dir, prediction):
    """Every manual ``label-WMH`` mask of the same scan (one per rater), sorted by name."""
    from bids.layout import parse_file_entities

    from bids_deepwmh.utils.bids import SCAN_ENTITIES

    wanted = {k: v for k, v in parse_file_entities(str(prediction)).items() if k in SCAN_ENTITIES}
    pattern = f"sub-{wanted['subject']}/**/*_label-WMH*_mask.nii*"
    return [candidate for candidate in sorted(Path(manual_dir).glob(pattern))
            if {k: v for k, v in parse_file_entities(str(candidate)).items() if k in SCAN_ENTITIES} == wanted]


def agreement_rows(output_dir, manual_dir, config):
    """Challenge metrics of each predicted mask against each manual mask of its scan."""
    import nibabel as nib
    from bids.layout import parse_file_entities
    from nibabel.processing import resample_from_to

    from bids_deepwmh.core.metrics import agreement

    rows = []
    for prediction in sorted(Path(output_dir).glob("sub-*/**/anat/*_label-WMH*_mask.nii.gz")):
        entities = parse_file_entities(str(prediction))
        if "space" in entities or entities.get("desc") not in (None, "anatomical"):  # native-grid masks only
            continue
        ids = {**_ids(prediction), "mask": MASK_KINDS[entities.get("desc")]}
        if not _selected(ids, config):
            continue
        pred_img = nib.load(prediction)
        for manual in find_manual_masks(manual_dir, prediction):
            true_img = nib.load(manual)
            if true_img.shape[:3] != pred_img.shape or not np.allclose(true_img.affine, pred_img.affine, atol=1e-3):
                logger.warning("%s is not on the FLAIR grid; resampling it (nearest neighbour)", manual.name)
                true_img = resample_from_to(true_img, pred_img, order=0)
            metrics = agreement(
                np.asanyarray(pred_img.dataobj) > 0, np.asanyarray(true_img.dataobj) > 0.5, pred_img.affine
            )
            rows.append({**ids, **{k: round(v, 4) for k, v in metrics.items()}, "manual_mask": manual.name})
    return rows


CHANGE_COLUMNS = ("participant_id", "series", "sessions_compared", "first_session", "last_session", "years",
                  "first_wmh_volume_ml", "last_wmh_volume_ml", "wmh_change_ml", "wmh_change_ml_per_year",
                  *(f"{name}_wmh_{what}" for name in ("new", "enlarging", "shrinking", "disappeared")
                    for what in ("count", "volume_ml")))


def _participant_change(table, rows):
    """One row of ``group_longitudinal.tsv``: a participant's change from the first to the last
    compared session (its ``desc-longitudinal_morph.tsv`` rows), the lesions counted over every pair."""
    compared = [r for r in rows if r["status"] == "compared"]
    first, last = compared[0], compared[-1]
    years = float(last["years_since_first"]) if last["years_since_first"] not in ("", "n/a") else float("nan")
    change = float(last["wmh_volume_ml"]) - float(first["wmh_volume_ml"])
    summary = {"participant_id": table.name.split("_")[0], "series": table.name.removesuffix("_morph.tsv"),
               "sessions_compared": len(compared), "first_session": first["session_id"],
               "last_session": last["session_id"], "years": years, "first_wmh_volume_ml": first["wmh_volume_ml"],
               "last_wmh_volume_ml": last["wmh_volume_ml"], "wmh_change_ml": round(change, 4),
               "wmh_change_ml_per_year": round(change / years, 4) if years > 0 else float("nan")}
    for name in ("new", "enlarging", "shrinking", "disappeared"):
        summary[f"{name}_wmh_count"] = sum(int(r[f"{name}_wmh_count"]) for r in compared[1:])
        summary[f"{name}_wmh_volume_ml"] = round(sum(float(r[f"{name}_wmh_volume_ml"]) for r in compared[1:]), 4)
    return summary


def collect_changes(output_dir, config):
    """One row per participant series from the ``desc-longitudinal_morph.tsv`` tables."""
    changes = []
    for table in sorted(Path(output_dir).glob("sub-*/anat/sub-*_desc-longitudinal_morph.tsv")):
        subject = table.name.split("_")[0][4:]
        rows = read_tsv(table)
        if (not config.participant_label or subject in config.participant_label) and \
                sum(r["status"] == "compared" for r in rows) >= 2:
            changes.append(_participant_change(table, rows))
    return changes


def _change_summary(changes):
    per_year = [c["wmh_change_ml_per_year"] for c in changes if np.isfinite(c["wmh_change_ml_per_year"])]
    return (f"change across sessions: {len(changes)} participant(s); WMH volume change (mL, first to last "
            f"session): median {np.median([c['wmh_change_ml'] for c in changes]):.2f}"
            + (f", per year (dated sessions, {len(per_year)}): median {np.median(per_year):.2f}" if per_year else "")
            + f"; new lesions: {sum(c['new_wmh_count'] for c in changes)} in all\n")


def run_group(config):
    """Write ``group_wmh.tsv`` and its summary (and ``group_agreement.tsv``); return 0."""
    output_dir = Path(config.output_dir)
    if not output_dir.is_dir():
        raise NoInputError(f"{output_dir} does not exist: run the participant level first")
    rows = collect_volumes(output_dir, config)
    if not rows:
        error = NoMatchError if (config.participant_label or config.session_label) else NoInputError
        raise error(f"no per-scan WMH tables (*_label-WMH_morph.tsv) selected in {output_dir}; "
                    "run the participant level first")
    write_atomic(output_dir / "group_wmh.tsv", table_text(ID_COLUMNS + VOLUME_COLUMNS + QUALITY_COLUMNS, rows))
    summary = _summary(rows)
    changes = collect_changes(output_dir, config)
    if changes:
        write_atomic(output_dir / "group_longitudinal.tsv", table_text(CHANGE_COLUMNS, changes))
        summary += _change_summary(changes)
    if config.manual_masks:
        if not Path(config.manual_masks).is_dir():
            raise UsageError(f"--manual-masks {config.manual_masks} is not a folder")
        agree = agreement_rows(output_dir, config.manual_masks, config)
        columns = ID_COLUMNS + ("mask",) + AGREEMENT_COLUMNS + ("manual_mask",)
        write_atomic(output_dir / "group_agreement.tsv", table_text(columns, agree))
        for kind in MASK_KINDS.values():
            kind_rows = [r for r in agree if r["mask"] == kind]
            if kind_rows:
                means = {c: np.nanmean([r[c] for r in kind_rows]) for c in AGREEMENT_COLUMNS}
                summary += f"agreement of the {kind} masks with manual masks ({len(kind_rows)} scan(s)): " + ", ".join(
                    f"mean {c} {v:.3f}" for c, v in means.items()
                ) + "\n"
        if not agree:
            summary += f"agreement: no manual mask in {config.manual_masks} matches a scan\n"
    write_atomic(output_dir / "group_wmh_summary.txt", summary)
    write_atomic(output_dir / "group_report.html",
                 group_report_html(rows, read_participants(config.bids_dir), summary, changes))
    print(summary, end="")
    return 0
