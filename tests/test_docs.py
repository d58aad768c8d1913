"""The documentation: the site under docs/ builds without a warning, and the README stays a
short page for users that keeps the command CI runs."""

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
README_MAX_LINES = 250
MARKER = "<!-- test-command -->"


def test_docs_build_strictly(tmp_path):
    """Warnings, broken links or anchors between pages, and pages missing from the nav fail."""
    site = tmp_path / "site"
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(REPO / "mkdocs.yml"),
         "--site-dir", str(site)],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{result.stdout}{result.stderr}"
    assert (site / "index.html").is_file()
    assert (site / "development" / "index.html").is_file()


def test_readme_is_short():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, (
        f"README.md has {len(lines)} lines (at most {README_MAX_LINES}): move details to docs/"
    )


def test_readme_keeps_the_test_command():
    """.ci/run runs the line two lines after the marker (after the opening of a code block)."""
    lines = README.read_text(encoding="utf-8").splitlines()
    assert lines.count(MARKER) == 1
    at = lines.index(MARKER)
    assert lines[at + 1].startswith("```")
    command = lines[at + 2]
    assert command.startswith("python3 -m venv .venv && .venv/bin/pip install -e \".[test]\"")
    assert "pytest" in command


def test_readme_links_point_to_files():
    """Relative links of the README (docs pages, benchmarks/README.md) are to files that exist."""
    text = README.read_text(encoding="utf-8")
    targets = [t for t in re.findall(r"\]\(([^)\s]+)\)", text) if not re.match(r"[a-z]+:", t)]
    assert targets, "the README links to no page of docs/"
    missing = [t for t in targets if not (REPO / t.split("#")[0]).exists()]
    assert not missing, f"README.md links to missing files: {missing}"


def test_mkdocs_pins_agree():
    """The test extra, the docs extra and Read the Docs' requirements ask for the same MkDocs."""
    pins = set(re.findall(r"\"(mkdocs\s*[^\"]*)\"", (REPO / "pyproject.toml").read_text()))
    requirements = [line.strip() for line in (REPO / "docs" / "requirements.txt").read_text().splitlines()
                    if line.strip() and not line.startswith("#")]
    normalise = {re.sub(r"\s+", "", p) for p in pins | set(requirements)}
    assert len(normalise) == 1, f"MkDocs pinned differently: {sorted(normalise)}"
