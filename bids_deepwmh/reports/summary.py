"""The HTML summary of one scan: quality verdict first, then its WMH volumes and every check."""

from html import escape

# Inline colours as well as Bootstrap's classes, so the verdict stands out even offline.
_OK_STYLE = "background:#d1e7dd;border:1px solid #a3cfbb;padding:.6em 1em;border-radius:4px"
_FLAG_STYLE = "background:#f8d7da;border:1px solid #f1aeb5;padding:.6em 1em;border-radius:4px"


def _not_measurable_note(record):
    names = record.get("not_measurable", [])
    if not names:
        return ""
    items = "; ".join(f"<strong>{escape(name)}</strong> ({escape(record['checks'][name]['not_measurable'])})"
                      for name in names)
    return f"<p>Not measurable on this scan, so not judged: {items}.</p>"


def _brain_mask_note(record):
    """Which brain mask was kept, and why the ones before it were not, when HD-BET's first was rejected."""
    extraction = record.get("brain_extraction", {})
    rejected = extraction.get("BrainExtractionRejected", [])
    if not rejected:
        return ""
    reasons = "; ".join(f"{escape(r['Method'])}: {escape(r['Reason'])}" for r in rejected)
    return f"<p>Brain mask kept: <strong>{escape(extraction['BrainExtraction'])}</strong> (rejected: {reasons}).</p>"


def _unnulled_note(record):
    """What was left out because the lowest slices are no FLAIR (a value, not a flag, for one slice)."""
    count = (record["checks"].get("unnulled_csf_slices") or {}).get("value")
    if not count:
        return ""
    slices = "slice shows" if count == 1 else f"{count:.0f} slices show"
    return (f"<p>The lowest {slices} CSF bright, as a T2w does (CSF flowing in from below was not nulled): "
            "no WMH was called there.</p>")


def _quality_banner(record):
    if not record["flagged"]:
        return (f'<div class="alert alert-success" role="alert" style="{_OK_STYLE}"><strong>Quality: no flag.</strong> '
                f"Every automatic check that could be measured passed (details below).{_not_measurable_note(record)}"
                f"{_unnulled_note(record)}</div>")
    items = "".join(
        f"<li><strong>{escape(name)}</strong> = {record['checks'][name]['value']} "
        f"(expected {escape(record['checks'][name]['threshold'])}): {escape(record['checks'][name]['meaning'])}</li>"
        for name in record["flags"]
    )
    title = "Out of distribution: this does not look like a normal-contrast brain FLAIR. " \
        if record["out_of_distribution"] else ""
    return (f'<div class="alert alert-danger" role="alert" style="{_FLAG_STYLE}"><strong>Quality: FLAGGED.</strong> '
            f"{title}"
            f"Check the figures before using this scan's results.<ul>{items}</ul>{_brain_mask_note(record)}"
            f"{_not_measurable_note(record)}{_unnulled_note(record)}</div>")


_OUT_OF_DISTRIBUTION_GRADES = (" <strong>This scan is out of distribution</strong> (above): its grades, like its volumes, "
                               "may count what is not WMH.")
_REGION_ROWS = (("all WMH", "wmh"), ("periventricular (within 10 mm of the lateral ventricles)", "periventricular_wmh"),
                ("&nbsp;&nbsp;of which linings and caps of the ventricles (up to 5 mm)", "ventricle_lining_wmh"),
                ("deep (the rest of the cerebrum)", "deep_wmh"), ("infratentorial (brainstem and cerebellum)",
                                                                  "infratentorial_wmh"))


def _volumes_table(volumes, record):
    from bids_deepwmh.core.fazekas import describe

    rows = []
    for label, prefix in _REGION_ROWS:
        fraction = float(volumes[f"{prefix}_fraction_of_brain"]) * 100
        rows.append(f"<tr><td>{label}</td><td>{float(volumes[f'{prefix}_volume_ml']):.2f}</td>"
                    f"<td>{volumes[f'{prefix}_count']}</td><td>{fraction:.3f}</td></tr>")
    periventricular, deep = describe(volumes)
    return ('<table class="table table-sm"><thead><tr><th>region</th><th>volume (mL)</th><th>lesions</th>'
            f'<th>% of brain</th></tr></thead><tbody>{"".join(rows)}</tbody></table>'
            f"<p><strong>Fazekas grades</strong> (from the segmentation, not a radiologist's reading): "
            f"{escape(periventricular)}; {escape(deep)}.{_OUT_OF_DISTRIBUTION_GRADES if record['out_of_distribution'] else ''}"
            "</p>"
            f"<p>Brain volume {float(volumes['brain_volume_ml']):.0f} mL; lateral ventricles "
            f"{float(volumes['lateral_ventricles_volume_ml']):.1f} mL. Lesions are 26-connected components; a "
            "lesion is counted in the region holding most of its voxels.</p>")


def _check_row(name, check):
    if "not_measurable" in check:
        value, verdict = f"not measurable: {escape(check['not_measurable'])}", "not measurable"
    else:
        value, verdict = check["value"], "<strong>flagged</strong>" if check["flagged"] else "ok"
    return (f"<tr><td>{escape(name)}</td><td>{value}</td><td>{escape(check['threshold'])}</td>"
            f"<td>{verdict}</td><td>{escape(check['description'])}</td></tr>")


def _checks_table(record):
    rows = "".join(_check_row(name, check) for name, check in record["checks"].items())
    return ('<details><summary>Quality checks</summary><table class="table table-sm"><thead><tr><th>check</th>'
            f"<th>value</th><th>threshold</th><th>verdict</th><th>what it measures</th></tr></thead>"
            f"<tbody>{rows}</tbody></table></details>")


def scan_summary_html(scan_name, volumes, record):
    """HTML fragment for the report of one scan (``volumes``: a row of the volumes table)."""
    return (f'<h3 class="elem-title">{escape(scan_name)}</h3>\n{_quality_banner(record)}\n'
            f"{_volumes_table(volumes, record)}\n{_checks_table(record)}\n")
