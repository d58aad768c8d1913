"""The group report from a table of scans: every plot the data allow, and the flagged scans."""

import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

from bids_deepwmh.reports.group import group_report_html

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class _TagBalance(HTMLParser):
    """Records every end tag that does not close the innermost open element, and what stays open."""

    def __init__(self):
        super().__init__()
        self.open, self.mismatched = [], []

    def handle_starttag(self, tag, attrs):
        if tag not in VOID:
            self.open.append(tag)

    def handle_startendtag(self, tag, attrs):
        pass  # <path ... />: opened and closed at once

    def handle_endtag(self, tag):
        if self.open and self.open[-1] == tag:
            self.open.pop()
        else:
            self.mismatched.append((tag, list(self.open)))


def _assert_well_formed(html):
    balance = _TagBalance()
    balance.feed(html)
    balance.close()
    assert not balance.mismatched and not balance.open, (balance.mismatched[:3], balance.open)
    for svg in re.findall(r"<svg.*?</svg>", html, flags=re.S):  # inline plots are XML
        ET.fromstring(svg)


def _row(participant, session, volume, flagged=False):
    return {"participant_id": participant, "session_id": session, "acquisition": "n/a", "run": "n/a",
            "wmh_volume_ml": volume, "periventricular_wmh_volume_ml": 0.6 * volume,
            "deep_wmh_volume_ml": 0.4 * volume, "wmh_count": 5, "wmh_fraction_of_brain": volume / 1200,
            "fazekas_periventricular": str(min(3, int(volume // 3))), "fazekas_deep": "1",
            "quality_flagged": flagged, "quality_flags": "brain_coverage" if flagged else "none"}


def test_group_report_has_every_plot_and_lists_flagged_scans():
    rows = [_row("sub-01", "ses-1", 2.0), _row("sub-01", "ses-2", 3.5), _row("sub-02", "ses-1", 10.0),
            _row("sub-02", "ses-2", 12.0), _row("sub-03", "ses-1", 0.5, flagged=True)]
    participants = {"sub-01": {"age": "61"}, "sub-02": {"age": "74"}, "sub-03": {"age": "n/a"},
                    "sub-04": {"age": "70"}}
    html = group_report_html(rows, participants, "summary text")
    _assert_well_formed(html)
    for title in ("WMH volume", "Periventricular versus deep", "Fazekas grades and volumes", "WMH volume against age",
                  "Change across sessions"):
        assert f"<h2>{title}</h2>" in html
    assert html.count("<svg") == 5
    flagged = html[html.index("<h2>Flagged scans</h2>"):html.index("<h2>WMH volume</h2>")]
    assert "sub-03 ses-1" in flagged and "brain_coverage" in flagged and "sub-01 ses-1" not in flagged


def test_group_report_without_ages_or_sessions():
    html = group_report_html([_row("sub-01", "n/a", 2.0), _row("sub-02", "n/a", 4.0)], {}, "summary")
    _assert_well_formed(html)
    assert "against age" not in html and "across sessions" not in html
    assert "No scan was flagged" in html


def test_group_report_of_outputs_without_fazekas_grades():
    rows = [{k: v for k, v in _row(f"sub-0{i}", "n/a", 2.0 * i).items() if not k.startswith("fazekas")}
            for i in (1, 2)]
    html = group_report_html(rows, {}, "summary")
    _assert_well_formed(html)
    assert "Fazekas" not in html


def _change(participant, change, years):
    return {"participant_id": participant, "series": f"{participant}_desc-longitudinal", "sessions_compared": 2,
            "first_session": "ses-1", "last_session": "ses-2", "years": years, "first_wmh_volume_ml": 2.0,
            "last_wmh_volume_ml": 2.0 + change, "wmh_change_ml": change,
            "wmh_change_ml_per_year": change / years if years == years else float("nan"),
            **{f"{name}_wmh_count": 1 for name in ("new", "enlarging", "shrinking", "disappeared")}}


def test_group_report_shows_the_change_per_participant():
    rows = [_row("sub-01", "ses-1", 2.0), _row("sub-01", "ses-2", 3.5), _row("sub-02", "ses-1", 2.0),
            _row("sub-02", "ses-2", 1.0)]
    html = group_report_html(rows, {}, "summary", [_change("sub-01", 1.5, 2.0), _change("sub-02", -1.0, 0.5)])
    _assert_well_formed(html)
    assert "<h2>Change across sessions</h2>" in html and "<h2>Change per participant</h2>" in html
    assert "mL per year" in html and 'href="sub-02.html"' in html
    undated = group_report_html(rows, {}, "summary", [_change("sub-01", 1.5, float("nan"))])
    assert "not every session is dated" in undated and "<td>n/a</td>" in undated
