"""Shared fixtures: environment, phantoms and the real data in ../shared (skipped when absent)."""

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("DEEPWMH_SHARED_DATA", REPO.parent / "shared" / "data"))

os.environ.setdefault("NIPYPE_NO_ET", "1")
if "TEMPLATEFLOW_HOME" not in os.environ and (SHARED_DATA / "templateflow").is_dir():
    os.environ["TEMPLATEFLOW_HOME"] = str(SHARED_DATA / "templateflow")


def _templateflow_ready():
    home = os.environ.get("TEMPLATEFLOW_HOME")
    return bool(home) and any(Path(home).glob("tpl-MNI152NLin2009cAsym/*_T1w.nii.gz"))


@pytest.fixture(scope="session")
def templateflow_home():
    if not _templateflow_ready():
        pytest.skip("no TemplateFlow home with MNI152NLin2009cAsym (set TEMPLATEFLOW_HOME, "
                    "or put ../shared/data/templateflow beside the repository)")
    return Path(os.environ["TEMPLATEFLOW_HOME"])


@pytest.fixture(scope="session")
def shared_bids():
    path = SHARED_DATA / "bids"
    if not path.is_dir():
        pytest.skip(f"real FLAIR data not found at {path} (../shared/data/bids)")
    return path
