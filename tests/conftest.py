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


# The real scans of test_real_data.py and test_quality.py: name -> (dataset, FLAIR).
REAL_CASES = {
    "msl14": ("dev-annotated", "sub-msl14/ses-1/anat/sub-msl14_ses-1_FLAIR.nii.gz"),
    "2d": ("openms-long", "sub-20/ses-2/anat/sub-20_ses-2_FLAIR.nii.gz"),
    "thick": ("misc", "sub-thick/anat/sub-thick_FLAIR.nii.gz"),
    "tr5": ("dev-native", "sub-tr5/anat/sub-tr5_FLAIR.nii.gz"),
}
REAL_TUMOURS = ("sub-bratsmet/anat/sub-bratsmet_FLAIR.nii.gz", "sub-tcgadu/anat/sub-tcgadu_FLAIR.nii.gz")
OLDER_PATIENT = "dev-fazekas/sub-u19/anat/sub-u19_FLAIR.nii.gz"  # clinical 6 mm FLAIR, confluent WMH


@pytest.fixture(scope="session")
def real_run(shared_bids, templateflow_home, tmp_path_factory):
    """Every real scan of the tests in one participant-level run (two at a time): the cases and the
    tumours linked from ../shared; ``OLDER_PATIENT`` written as is (``sub-clean``) and degraded by
    noise and ghosts (``sub-degraded``); the ``msl14`` case made bad, with a tumour-like mass
    (``sub-tumour``) and cut in half (``sub-cropped``)."""
    import json

    import nibabel as nib
    from phantoms import degraded, half_cropped, with_tumour

    from bids_deepwmh.cli.run import run

    root = tmp_path_factory.mktemp("real")
    bids_dir = root / "bids"
    linked = [(shared_bids / dataset / flair, flair) for dataset, flair in REAL_CASES.values()]
    linked += [(shared_bids / "tumour" / flair, flair) for flair in REAL_TUMOURS]
    for source, flair in linked:
        (bids_dir / flair).parent.mkdir(parents=True)
        (bids_dir / flair).symlink_to(source)
    older = nib.load(shared_bids / OLDER_PATIENT)
    msl14 = nib.load(shared_bids.joinpath(*REAL_CASES["msl14"]))
    made = {"clean": older, "degraded": degraded(older), "tumour": with_tumour(msl14), "cropped": half_cropped(msl14)}
    for label, img in made.items():
        (bids_dir / f"sub-{label}" / "anat").mkdir(parents=True)
        nib.save(img, bids_dir / f"sub-{label}" / "anat" / f"sub-{label}_FLAIR.nii.gz")
    (bids_dir / "dataset_description.json").write_text(json.dumps({"Name": "real scans", "BIDSVersion": "1.10.0"}))
    out, work = root / "out", root / "work"
    code = run([str(bids_dir), str(out), "participant", "-w", str(work), "--nprocs", "2", "--skip-bids-validation"])
    return {"code": code, "bids": bids_dir, "out": out, "work": work}
