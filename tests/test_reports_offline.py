"""The HTML reports open without a network: no script, stylesheet or image is loaded from a URL."""

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from bids_deepwmh.data import load
from bids_deepwmh.model.bundle import load_bundle
from bids_deepwmh.reports.group import group_report_html
from bids_deepwmh.reports.offline import SHIPPED_ASSETS, OfflineAssetError, inline_remote_assets
from bids_deepwmh.reports.participant import generate_reports
from bids_deepwmh.utils.status import ScanStatus

REMOTE = re.compile(r"^\s*(?:https?:)?//", re.IGNORECASE)
CSS_URL = re.compile(r"""(?:url\(\s*["']?|@import\s+["'])([^"')\s]+)""", re.IGNORECASE)
LOADING_ATTRIBUTES = {("script", "src"), ("link", "href"), ("img", "src"), ("iframe", "src"), ("object", "data"),
                      ("embed", "src"), ("source", "src"), ("audio", "src"), ("video", "src"), ("image", "href"),
                      ("image", "xlink:href"), ("use", "href"), ("use", "xlink:href")}


class _LoadedURLs(HTMLParser):
    """Every URL a browser would fetch to display the page: element sources and CSS ``url()``s."""

    def __init__(self):
        super().__init__()
        self.urls = []
        self._in_style = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for element, attribute in LOADING_ATTRIBUTES:
            if tag == element and attrs.get(attribute):
                if tag == "link" and "stylesheet" not in attrs.get("rel", "") and "icon" not in attrs.get("rel", ""):
                    continue
                self.urls.append(attrs[attribute])
        self.urls += CSS_URL.findall(attrs.get("style") or "")
        self._in_style = tag == "style"

    def handle_endtag(self, tag):
        self._in_style = False

    def handle_data(self, data):
        if self._in_style:
            self.urls += CSS_URL.findall(data)


def remote_urls(html):
    parser = _LoadedURLs()
    parser.feed(html)
    return [url for url in parser.urls if REMOTE.match(url)]


def _figures(folder, subject):
    """The smallest reportlets the report specification picks up: a summary and one figure."""
    folder.mkdir(parents=True)
    (folder / f"sub-{subject}_desc-summary_FLAIR.html").write_text("<p>Quality: no flag</p>")
    (folder / f"sub-{subject}_desc-brain_mask.svg").write_text(
        '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>')


def test_participant_report_is_self_contained(tmp_path):
    _figures(tmp_path / "sub-01" / "figures", "01")
    statuses = [ScanStatus(Path("sub-01_FLAIR.nii.gz"), True, "no quality flag")]
    failed = generate_reports(tmp_path, ["01"], load_bundle(load("model")), "deepwmh bids out participant", statuses)
    assert failed == []
    html = (tmp_path / "sub-01.html").read_text()
    assert remote_urls(html) == []
    assert len(re.findall(r"Bootstrap\s+v5\.2\.3", html)) == 2  # its styles and its script, inline
    assert "jQuery v3.6.0" in html and "sourceMappingURL" not in html
    assert "sub-01/figures/sub-01_desc-brain_mask.svg" in html  # figures stay beside it, relative


def test_group_report_is_self_contained():
    row = {"participant_id": "sub-01", "session_id": "n/a", "acquisition": "n/a", "run": "n/a",
           "wmh_volume_ml": 2.0, "periventricular_wmh_volume_ml": 1.2, "deep_wmh_volume_ml": 0.8, "wmh_count": 3,
           "wmh_fraction_of_brain": 0.002, "quality_flagged": False, "quality_flags": "none"}
    assert remote_urls(group_report_html([row], {}, "summary")) == []


def test_every_cdn_file_of_the_nireports_template_is_shipped():
    from nireports.assembler import data

    template = data.load("report.tpl").read_text()
    assert set(remote_urls(template)) <= set(SHIPPED_ASSETS)
    assert remote_urls(inline_remote_assets(template)) == []


def test_a_shipped_copy_that_is_not_the_page_s_file_is_refused():
    url = next(iter(SHIPPED_ASSETS))
    page = f'<script src="{url}" integrity="sha256-AAAA"></script>'
    with pytest.raises(OfflineAssetError, match="integrity"):
        inline_remote_assets(page)


def test_a_remote_file_without_a_shipped_copy_is_left_as_it_is():
    page = '<link rel="stylesheet" href="https://example.org/other.css">'
    assert inline_remote_assets(page) == page
