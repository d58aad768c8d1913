"""Selecting FLAIRs through pybids, and the command line's refusals and exit codes."""

import json

import numpy as np
import pytest
from bids import BIDSLayout
from phantoms import brain_phantom, save

from bids_deepwmh.cli.run import run
from bids_deepwmh.utils.bids import (
    NoInputError,
    NoMatchError,
    UsageError,
    check_paths,
    collect_flairs,
    derivative_path,
)

FILES = (
    "sub-01/ses-1/anat/sub-01_ses-1_FLAIR.nii.gz",
    "sub-01/ses-2/anat/sub-01_ses-2_run-1_FLAIR.nii.gz",
    "sub-01/ses-2/anat/sub-01_ses-2_run-2_FLAIR.nii.gz",
    "sub-02/ses-1/anat/sub-02_ses-1_acq-3D_FLAIR.nii",
    "sub-02/ses-1/anat/sub-02_ses-1_T1w.nii.gz",
    "sub-03/ses-1/anat/sub-03_ses-1_T1w.nii.gz",
)


def make_dataset(root, files=FILES):
    root.mkdir(parents=True, exist_ok=True)
    (root / "dataset_description.json").write_text(json.dumps({"Name": "t", "BIDSVersion": "1.10.0"}))
    image = brain_phantom()[0] * 100
    for name in files:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        save(image, path, np.diag([3.0, 3.0, 3.0, 1.0]), np.int16)
    return root


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("bids") / "ds")


@pytest.fixture(scope="module")
def layout(dataset):
    return BIDSLayout(str(dataset), validate=False)


def names(files):
    return [f.split("/")[-1] for f in files]


def test_every_flair_sessions_and_runs(layout):
    assert names(collect_flairs(layout)) == [
        "sub-01_ses-1_FLAIR.nii.gz", "sub-01_ses-2_run-1_FLAIR.nii.gz",
        "sub-01_ses-2_run-2_FLAIR.nii.gz", "sub-02_ses-1_acq-3D_FLAIR.nii",
    ]


def test_labels_and_filters(layout):
    assert names(collect_flairs(layout, ["02"])) == ["sub-02_ses-1_acq-3D_FLAIR.nii"]
    assert len(collect_flairs(layout, ["01"], ["2"])) == 2
    assert len(collect_flairs(layout, session_label=["2"])) == 2  # a session of every participant
    assert names(collect_flairs(layout, bids_filters={"flair": {"run": 2}})) == ["sub-01_ses-2_run-2_FLAIR.nii.gz"]
    assert len(collect_flairs(layout, bids_filters={"flair": {"run": None}})) == 2
    assert names(collect_flairs(layout, bids_filters={"flair": {"acquisition": "3D"}})) == [
        "sub-02_ses-1_acq-3D_FLAIR.nii"
    ]


def test_missing_labels_and_missing_flair(layout):
    with pytest.raises(NoMatchError, match=r"participant label\(s\) 99 not found.*it has: 01, 02, 03"):
        collect_flairs(layout, ["99"])
    with pytest.raises(NoMatchError, match=r"session label\(s\) 7 not found"):
        collect_flairs(layout, session_label=["7"])
    with pytest.raises(NoMatchError, match="no FLAIR found.*'subject': \\['03'\\]"):
        collect_flairs(layout, ["03"])
    with pytest.raises(NoMatchError):
        collect_flairs(layout, bids_filters={"flair": {"acquisition": "2D"}})


def test_paths_inside_the_input_are_refused(dataset, tmp_path):
    check_paths(dataset, tmp_path / "out", tmp_path / "work")
    check_paths(dataset, dataset / "derivatives" / "deepwmh", tmp_path / "work")
    for inside in (dataset, dataset / "sub-01", dataset / "out"):
        with pytest.raises(UsageError, match="inside the input dataset"):
            check_paths(dataset, inside, None)
    with pytest.raises(UsageError, match="is not a BIDS dataset"):
        check_paths(tmp_path, tmp_path / "out", None)


def test_derivative_names_follow_the_source():
    source = "/data/sub-01/ses-2/anat/sub-01_ses-2_acq-3D_run-2_FLAIR.nii.gz"
    assert str(derivative_path("/out", source, label="WMH", suffix="mask", extension=".nii.gz")) == (
        "/out/sub-01/ses-2/anat/sub-01_ses-2_acq-3D_run-2_label-WMH_mask.nii.gz"
    )


@pytest.mark.parametrize(
    "extra, code, message",
    [
        (["--participant-label", "sub-99"], 18, "participant label(s) 99 not found"),
        (["--participant-label", "03"], 18, "no FLAIR found"),
        (["--session-label", "ses-9"], 18, "session label(s) 9 not found"),
    ],
)
def test_cli_exit_codes_for_selection(dataset, tmp_path, capsys, extra, code, message):
    args = [str(dataset), str(tmp_path / "out"), "participant", "-w", str(tmp_path / "w"), *extra]
    assert run(args + ["--skip-bids-validation"]) == code
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_cli_refusals(dataset, tmp_path, capsys):
    assert run([str(dataset), str(dataset / "out"), "participant"]) == 2
    assert "inside the input dataset" in capsys.readouterr().err
    assert run([str(tmp_path), str(tmp_path / "out"), "participant"]) == 16
    assert "not a BIDS dataset" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        run([str(dataset), str(tmp_path / "out"), "unknown"])
    assert info.value.code == 2


def test_bids_filter_file_errors(dataset, tmp_path, capsys):
    bad = tmp_path / "filter.json"
    bad.write_text("{not json")
    assert run([str(dataset), str(tmp_path / "out"), "participant", "--bids-filter-file", str(bad)]) == 2
    assert "cannot read the BIDS filter file" in capsys.readouterr().err


def test_validation_failure_is_reported_briefly(tmp_path, capsys):
    dataset = make_dataset(tmp_path / "invalid", ("sub-01/anat/sub-01_FLAIR.nii.gz",))
    (dataset / "sub-01" / "anat" / "notbids.txt").write_text("stray file")
    code = run([str(dataset), str(tmp_path / "out"), "participant", "-w", str(tmp_path / "w")])
    err = capsys.readouterr().err
    assert code == 16 and "failed BIDS validation" in err and "--skip-bids-validation" in err


def test_empty_dataset_is_no_input(tmp_path, capsys):
    dataset = make_dataset(tmp_path / "t1only", ("sub-01/anat/sub-01_T1w.nii.gz",))
    code = run([str(dataset), str(tmp_path / "out"), "participant", "--skip-bids-validation"])
    assert code == NoInputError.exit_code == 66
    assert "no FLAIR found" in capsys.readouterr().err


def test_version(capsys):
    with pytest.raises(SystemExit) as info:
        run(["--version"])
    assert info.value.code == 0 and "bids-deepwmh" in capsys.readouterr().out


def test_only_staging_folders_of_dead_processes_are_removed(tmp_path):
    import subprocess
    import sys

    from bids_deepwmh.utils.bids import remove_stale_staging, staging_prefix

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    own = tmp_path / f"{staging_prefix()}abc"
    stale = tmp_path / f"{staging_prefix().rsplit('-', 2)[0]}-{gone.stdout.strip()}-xyz"
    for folder in (own, stale):
        (folder / "sub-01").mkdir(parents=True)
    remove_stale_staging(tmp_path)
    assert own.exists() and not stale.exists()
