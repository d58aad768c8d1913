"""``deepwmh-demo``: its dataset (real FLAIRs shipped in the package) and how it stops without a template.

The whole demo (three real scans through both levels, about 5 minutes on 2 cores) runs only when
``DEEPWMH_RUN_DEMO=1``.
"""

import hashlib
import os
import re

import nibabel as nib
import numpy as np
import pytest

from bids_deepwmh import demo
from bids_deepwmh.data import load
from bids_deepwmh.group import find_manual_masks
from bids_deepwmh.utils.bids import derivative_path, validate_dataset
from bids_deepwmh.utils.tables import read_tsv

FLAIRS = ("sub-01/ses-1/anat/sub-01_ses-1_FLAIR.nii.gz", "sub-01/ses-2/anat/sub-01_ses-2_FLAIR.nii.gz",
          "sub-lj26/anat/sub-lj26_FLAIR.nii.gz")
ANNOTATED = "sub-lj26/anat/sub-lj26_FLAIR.nii.gz"


def test_demo_dataset_is_valid_bids_with_its_manual_mask(tmp_path):
    bids_dir = demo.write_demo_dataset(tmp_path / "bids")
    assert validate_dataset(bids_dir) == []
    assert sorted(str(p.relative_to(bids_dir)) for p in bids_dir.glob("sub-*/**/*_FLAIR.nii.gz")) == sorted(FLAIRS)
    manual_dir = bids_dir / "derivatives" / "manual"
    assert (manual_dir / "dataset_description.json").is_file()
    # The group level finds the mask from the scan's outputs' names, and it lies on the FLAIR's grid.
    masks = find_manual_masks(manual_dir, derivative_path(tmp_path / "out", ANNOTATED, label="WMH", suffix="mask",
                                                          extension=".nii.gz"))
    assert [m.name for m in masks] == ["sub-lj26_label-WMH_desc-consensus_mask.nii.gz"]
    flair, mask = nib.load(bids_dir / ANNOTATED), nib.load(masks[0])
    assert mask.shape == flair.shape and np.allclose(mask.affine, flair.affine)
    assert set(np.unique(np.asanyarray(mask.dataobj))) == {0, 1}


def test_notice_names_every_shipped_file_with_its_checksum():
    root = load("demo", "bids")
    listed = dict(re.findall(r"^- (\S+)\n\s+sha256 ([0-9a-f]{64})$", (load("demo") / "NOTICE").read_text(), re.M))
    shipped = {str(p.relative_to(root)) for p in root.rglob("*.nii.gz")}
    assert set(listed) >= shipped
    for name, digest in listed.items():
        assert hashlib.sha256((root / name).read_bytes()).hexdigest() == digest, name


def test_without_templates_it_stops_with_one_sentence(tmp_path, monkeypatch):
    def unreachable(*args, **kwargs):
        raise Exception("Could not fetch template files")  # as TemplateFlow raises offline

    monkeypatch.setattr("bids_deepwmh.core.template.template_file", unreachable)
    with pytest.raises(SystemExit) as stopped:
        demo.main([str(tmp_path / "demo")])
    message = str(stopped.value.code)
    assert message.startswith("deepwmh-demo: the template it needs") and "TEMPLATEFLOW_HOME" in message
    assert "\n" not in message and not (tmp_path / "demo").exists()


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("DEEPWMH_RUN_DEMO") != "1", reason="the whole demo takes minutes: DEEPWMH_RUN_DEMO=1")
def test_demo_runs_and_the_network_beats_the_anatomical_stage(tmp_path, templateflow_home, capsys):
    demo.main([str(tmp_path), "--nprocs", "2"])
    printed = capsys.readouterr().out
    out = tmp_path / "derivatives"
    scans = read_tsv(out / "group_wmh.tsv")
    assert len(scans) == len(FLAIRS) and all(float(r["wmh_volume_ml"]) > 0 for r in scans)
    dice = {r["mask"]: float(r["dice"]) for r in read_tsv(out / "group_agreement.tsv")}
    assert dice["final"] > dice["anatomical"]
    assert f"Dice {dice['final']:.3f}" in printed and f"Dice {dice['anatomical']:.3f}" in printed
    assert "Change across sessions, sub-01 ses-1 -> ses-2: WMH " in printed  # one patient scanned twice
    for report in ("sub-01.html", "sub-lj26.html", "group_report.html"):
        assert (out / report).is_file() and str(out / report) in printed
