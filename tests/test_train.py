"""The train and reference levels through the command line, on a small synthetic dataset (tiny
training settings): each writes a bundle that the participant level then uses with ``--model``."""

import json

import nibabel as nib
import numpy as np
import pytest

from bids_deepwmh.cli.run import run
from bids_deepwmh.model.bundle import load_bundle, packaged_bundle
from bids_deepwmh.synthetic_dataset import write_dataset
from bids_deepwmh.utils.bids import derivative_path, describe_scan, reference_cohort
from bids_deepwmh.workflows.train import init_train_wf

TINY = {"base_channels": 4, "levels": 3, "patch": 32, "steps_per_epoch": 4, "cleaning_epochs": 2,
        "ensemble_epochs": 2, "final_epochs": 2, "validation_scans": 1}


@pytest.fixture(scope="module")
def trained(tmp_path_factory, templateflow_home):
    root = tmp_path_factory.mktemp("train")
    bids_dir = write_dataset(root / "bids", resolution=2, scans=(
        ("01", None, 11), ("02", None, 12), ("03", None, 13), ("04", None, 14), ("05", None, 15)))
    settings = root / "settings.json"
    settings.write_text(json.dumps(TINY))
    out, work = root / "out", root / "work"
    args = [str(bids_dir), str(out), "train", "-w", str(work), "--nprocs", "2", "--skip-bids-validation",
            "--train-settings", str(settings)]
    return {"bids": bids_dir, "out": out, "work": work, "code": run(args), "args": args}


def test_train_level_writes_a_bundle_with_its_card(trained):
    assert trained["code"] == 0
    bundle = load_bundle(trained["out"] / "model")
    assert bundle.settings["network"] == {"in_channels": 2, "base_channels": 4, "levels": 3}  # FLAIR + score
    card = (bundle.path / "model_card.md").read_text()
    assert "bids/sub-01/anat/sub-01_FLAIR.nii.gz" in card and "final" in card
    curve = (bundle.path / "training_curve.tsv").read_text().splitlines()
    assert len(curve) == 1 + 2 + 2
    assert json.loads((bundle.path / "reference.json").read_text())["Sources"]


def test_training_progress_reaches_the_log_file(trained):
    """The training node runs in a Nipype worker process; its epoch lines must still be logged."""
    (log_file,) = (trained["out"] / "logs").glob("deepwmh-train-*.log")
    text = log_file.read_text()
    for stage, epochs in (("cleaning", 2), ("final", 2)):
        for epoch in range(1, epochs + 1):
            assert f"{stage} epoch {epoch}/{epochs}: loss" in text
    assert "min left in this stage" in text and "cleaned labels of sub-01" in text


def test_participant_level_uses_the_trained_model(trained):
    out = trained["out"].parent / "participant"
    code = run([str(trained["bids"]), str(out), "participant", "-w", str(trained["work"]), "--nprocs", "2",
                "--skip-bids-validation", "--participant-label", "01", "--model", str(trained["out"] / "model")])
    assert code == 0
    probseg = derivative_path(out, "sub-01/anat/sub-01_FLAIR.nii.gz", label="WMH", suffix="probseg",
                              extension=".nii.gz")
    sidecar = json.loads(probseg.with_name(probseg.name.replace(".nii.gz", ".json")).read_text())
    assert "trained without manual annotations" in sidecar["Description"]
    assert np.isfinite(nib.load(probseg).get_fdata()).all()


def test_reference_level_pairs_the_cohorts_reference_with_the_bundled_network(trained, capsys):
    out = trained["out"].parent / "reference"
    args = [str(trained["bids"]), str(out), "reference", "-w", str(trained["work"]), "--nprocs", "2",
            "--skip-bids-validation"]
    assert run(args) == 0  # the train level's preprocessing and reference are reused
    bundle, packaged = load_bundle(out / "model"), load_bundle(packaged_bundle())
    assert bundle.weights_sha256 == packaged.weights_sha256 and bundle.settings == packaged.settings
    built = (trained["out"] / "model" / "reference.nii.gz").read_bytes()  # the train level's, of the same scans
    assert (bundle.path / "reference.nii.gz").read_bytes() == built != packaged.reference_file.read_bytes()
    card = (bundle.path / "model_card.md").read_text()
    assert "built from 5 FLAIRs" in card and "bids/sub-05/anat/sub-05_FLAIR.nii.gz" in card
    assert "## bids-deepwmh model card" in card  # the network's own card follows
    assert run(args[:-1] + ["--skip-bids-validation", "--participant-label", "01", "02", "03", "04"]) == 2
    assert "the reference level needs at least 5 FLAIRs; 4 selected" in capsys.readouterr().err
    assert run(args + ["--model", str(out / "model")]) == 2
    assert "is where the reference level writes its model" in capsys.readouterr().err


def test_a_modified_bundle_is_refused(trained, tmp_path, capsys):
    import shutil

    copy = tmp_path / "model"
    shutil.copytree(trained["out"] / "model", copy)
    (copy / "settings.json").write_text((copy / "settings.json").read_text().replace('"levels": 3', '"levels": 4'))
    code = run([str(trained["bids"]), str(tmp_path / "out"), "participant", "--skip-bids-validation",
                "--model", str(copy)])
    assert code == 2
    assert "settings.json fails its sha256 check" in capsys.readouterr().err


def test_the_reference_is_built_from_the_controls_when_at_least_four_are_named(tmp_path, templateflow_home):
    (tmp_path / "dataset_description.json").write_text(json.dumps({"Name": "cohort", "BIDSVersion": "1.10.0"}))
    groups = {"01": "HC", "02": "control", "03": "healthy", "04": " Control ", "05": "patient"}
    (tmp_path / "participants.tsv").write_text(
        "participant_id\tgroup\n" + "".join(f"sub-{s}\t{g}\n" for s, g in groups.items()))
    scans = [describe_scan(tmp_path, tmp_path / f"sub-{s}" / "anat" / f"sub-{s}_FLAIR.nii.gz") for s in groups]
    assert reference_cohort(scans) == scans[:4]
    assert reference_cohort(scans[1:]) == scans[1:]  # three controls are too few: every scan

    wf = init_train_wf(scans, tmp_path / "model", tmp_path / "training", reference_scans=scans[:4])
    build = wf.get_node("reference_wf.build_reference")
    assert build.inputs.source_files == [s["name"] for s in scans[:4]]
    assert set(build.inputs.metadata["Licenses"]) == set(build.inputs.source_files)
    feeding_the_reference = {u.name for u, v in wf._graph.edges() if v.name == "reference_wf"}
    assert feeding_the_reference == {f"sub_0{s}_FLAIR_wf" for s in "1234"}
    trained_on = {u.name for u, v in wf._graph.edges() if v.name == "gather_pseudo_labels"}
    assert "sub_05_FLAIR_wf_pseudo_labels" in trained_on and len(trained_on) == 5  # the patient is still learned from
