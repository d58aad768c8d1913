"""Reports that open without a network (cluster nodes, air-gapped sites, archived results).

NiReports' page template loads jQuery and Bootstrap from CDNs; without a network the report loses
its layout and navigation.  :func:`inline_remote_assets` writes those files into the page from the
copies shipped in ``bids_deepwmh/data/report-assets`` (the same bytes: their SRI hashes match the
template's ``integrity`` attributes).
"""

import base64
import hashlib
import logging
import re
from functools import cache

logger = logging.getLogger("deepwmh")

# The remote files NiReports' template names, and the shipped copy of each (MIT licences beside them).
SHIPPED_ASSETS = {
    "https://code.jquery.com/jquery-3.6.0.min.js": "jquery-3.6.0.min.js",
    "https://cdn.jsdelivr.net/npm/bootstrap@5.2.3/dist/css/bootstrap.min.css": "bootstrap-5.2.3.min.css",
    "https://cdn.jsdelivr.net/npm/bootstrap@5.2.3/dist/js/bootstrap.bundle.min.js": "bootstrap-5.2.3.bundle.min.js",
}
ASSET_FOLDER = "report-assets"

_REMOTE = r"(?:https?:)?//[^\"']+"
# <script src="https://..."></script> and <link href="https://..." rel="stylesheet">, attributes in any order.
_REMOTE_SCRIPT = re.compile(rf"<script\b[^>]*?\bsrc=[\"']({_REMOTE})[\"'][^>]*>\s*</script>", re.IGNORECASE)
_REMOTE_STYLESHEET = re.compile(rf"<link\b(?=[^>]*\brel=[\"']?stylesheet)[^>]*?\bhref=[\"']({_REMOTE})[\"'][^>]*>",
                                re.IGNORECASE)
_INTEGRITY = re.compile(r"\bintegrity=[\"']([^\"']+)[\"']", re.IGNORECASE)
_SOURCE_MAP = re.compile(r"^\s*(?://|/\*)# sourceMappingURL=\S+(?:\s*\*/)?\s*$", re.MULTILINE)
_CHARSET = re.compile(r"^@charset [^;]+;")  # ignored inside a page; the page says its encoding


class OfflineAssetError(RuntimeError):
    """A shipped asset is missing or is not the file the page asks for."""


@cache
def shipped_asset(url):
    """Bytes of the shipped copy of ``url``; None if none is shipped."""
    from bids_deepwmh.data import load

    name = SHIPPED_ASSETS.get(url)
    if name is None:
        return None
    path = load(ASSET_FOLDER, name)
    if not path.is_file():
        raise OfflineAssetError(f"{path} is missing from the installed package (reinstall bids-deepwmh)")
    return path.read_bytes()


def _matches_integrity(content, integrity):
    """Whether ``content`` has one of the Subresource Integrity hashes in ``integrity``."""
    for token in integrity.split():
        algorithm, _, expected = token.partition("-")
        if algorithm in ("sha256", "sha384", "sha512"):
            actual = base64.b64encode(hashlib.new(algorithm, content).digest()).decode()
            if actual == expected:
                return True
    return False


def _inline(match, element):
    tag, url = match.group(0), match.group(1)
    content = shipped_asset(url)
    if content is None:
        logger.warning("report: no offline copy of %s; the report loads it from the network", url)
        return tag
    integrity = _INTEGRITY.search(tag)
    if integrity and not _matches_integrity(content, integrity.group(1)):
        raise OfflineAssetError(f"the shipped copy of {url} does not match the page's integrity hash")
    text = _CHARSET.sub("", _SOURCE_MAP.sub("", content.decode("utf-8")).strip())
    return f"<!-- {url}, inlined for offline use -->\n<{element}>\n{text}\n</{element}>"


def inline_remote_assets(html):
    """``html`` with every remote script and stylesheet that has a shipped copy written inline."""
    html = _REMOTE_SCRIPT.sub(lambda m: _inline(m, "script"), html)
    return _REMOTE_STYLESHEET.sub(lambda m: _inline(m, "style"), html)


def make_self_contained(path):
    """Rewrite the HTML file ``path`` with its remote scripts and stylesheets inline."""
    from bids_deepwmh.utils.bids import write_atomic

    write_atomic(path, inline_remote_assets(path.read_text(encoding="utf-8")))
