"""The same scan gives the same WMH however it is stored, however often and however it is run.

One synthetic FLAIR is stored four ways (its scanner's LPS order, RAS, sagittal slices first, and
as float32 at 1000 times the scale): the masks agree up to interpolation.  Two participant runs
write into one output folder at once (a Slurm array).  A run in a fresh work folder with another
``--nprocs``, stopped by SIGTERM (it must stop its workers) then resumed, must give the same
files bit for bit.
"""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import nibabel as nib
import numpy as np
import psutil
import pytest

from bids_deepwmh.core.metrics import dice
from bids_deepwmh.synthetic_dataset import synthetic_flair
from bids_deepwmh.utils.tables import read_tsv

VARIANTS = ("lps", "ras", "sagittal", "float")


def _stored_variants(flair):
    """The same voxels stored four ways (as scanners and converters write them)."""
    data, affine = np.asanyarray(flair.dataobj), flair.affine
    canonical = nib.as_closest_canonical(flair)
    order = (2, 0, 1)  # sagittal slices first
    permuted = np.eye(4)
    permuted[:3, :3] = np.eye(3)[:, order]
    return {
        "lps": nib.Nifti1Image(data, affine),
        "ras": nib.Nifti1Image(np.asanyarray(canonical.dataobj), canonical.affine),
        "sagittal": nib.Nifti1Image(np.transpose(data, order), affine @ permuted),
        "float": nib.Nifti1Image(data.astype(np.float32) * 1000, affine),
    }


def _write_dataset(root):
    root.mkdir(parents=True)
    (root / "dataset_description.json").write_text(json.dumps({"Name": "storage variants", "BIDSVersion": "1.10.0"}))
    flair, _ = synthetic_flair(1, resolution=2)
    for label, img in _stored_variants(flair).items():
        img.header.set_xyzt_units("mm", "sec")
        folder = root / f"sub-{label}" / "anat"
        folder.mkdir(parents=True)
        nib.save(img, folder / f"sub-{label}_FLAIR.nii.gz")
    return root


def _command(bids_dir, out_dir, work_dir, labels, nprocs):
    return [sys.executable, "-m", "bids_deepwmh", str(bids_dir), str(out_dir), "participant", "-w", str(work_dir),
            "--nprocs", str(nprocs), "--skip-bids-validation", "--participant-label", *labels]


def _outputs(out_dir, label):
    """Every NIfTI (as data, affine and type) and table of a participant, by file name."""
    found = {}
    for path in sorted((out_dir / f"sub-{label}").rglob("*")):
        if path.name.endswith(".nii.gz"):
            img = nib.load(path)
            found[path.name] = (np.asanyarray(img.dataobj), img.affine, img.get_data_dtype())
        elif path.suffix in (".tsv", ".json"):
            found[path.name] = path.read_text()
    return found


def _assert_identical(first, second):
    assert first.keys() == second.keys()
    for name, value in first.items():
        if isinstance(value, tuple):
            assert all(np.array_equal(a, b) for a, b in zip(value, second[name], strict=True)), name
        else:
            assert value == second[name], name


def _canonical_mask(out_dir, label):
    path = out_dir / f"sub-{label}" / "anat" / f"sub-{label}_label-WMH_mask.nii.gz"
    return np.asanyarray(nib.as_closest_canonical(nib.load(path)).dataobj) > 0


@pytest.fixture(scope="module")
def runs(tmp_path_factory, templateflow_home):
    """Two runs started together into one output folder, each with its own work folder."""
    root = tmp_path_factory.mktemp("reproducible")
    bids_dir = _write_dataset(root / "bids")
    out_dir = root / "out"
    together = [subprocess.Popen(_command(bids_dir, out_dir, root / f"work{i}", labels, 1),
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                for i, labels in enumerate((VARIANTS[:2], VARIANTS[2:]))]
    logs = [process.communicate(timeout=1200)[0] for process in together]
    return {"root": root, "bids": bids_dir, "out": out_dir, "codes": [p.returncode for p in together], "logs": logs}


def test_runs_into_one_output_folder_at_once(runs):
    assert runs["codes"] == [0, 0], runs["logs"]
    description = json.loads((runs["out"] / "dataset_description.json").read_text())
    assert description["DatasetType"] == "derivative"
    assert "logs/" in (runs["out"] / ".bidsignore").read_text()
    assert len(list((runs["out"] / "logs").glob("deepwmh-participant-*.log"))) == 2
    assert not list(runs["out"].glob(".deepwmh-staging*")), "staging folders left behind"
    from bids_deepwmh.cli.run import run

    assert run([str(runs["bids"]), str(runs["out"]), "group"]) == 0
    rows = read_tsv(runs["out"] / "group_wmh.tsv")
    assert sorted(row["participant_id"] for row in rows) == sorted(f"sub-{label}" for label in VARIANTS)


def test_storage_does_not_change_the_mask(runs):
    """Up to the float32 rounding of each header's affine (registration then takes other paths)."""
    reference = _canonical_mask(runs["out"], "lps")
    assert reference.sum() > 50
    for label in ("ras", "sagittal", "float"):
        mask = _canonical_mask(runs["out"], label)
        assert dice(mask, reference) >= 0.97, label
        assert abs(mask.sum() / reference.sum() - 1) <= 0.03, label


def test_sigterm_stops_the_workers_and_the_rerun_is_bit_identical(runs):
    """Stopped, then resumed, in a fresh work folder with --nprocs 2: the files of the --nprocs 1 run."""
    out_dir, work_dir = runs["root"] / "stopped", runs["root"] / "work-stopped"
    command = _command(runs["bids"], out_dir, work_dir, ["lps"], 2)
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 600
    while not list(work_dir.glob("**/register")) and time.time() < deadline:
        time.sleep(0.5)
    workers = psutil.Process(process.pid).children(recursive=True)
    assert workers, "the run started no worker process"
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 128 + signal.SIGTERM, stderr[-3000:]  # the run's own account if it differs
    assert "stopped by SIGTERM" in stderr and "rerun the same command" in stderr
    _, alive = psutil.wait_procs(workers, timeout=10)
    assert not alive, f"worker processes left running: {alive}"
    subprocess.run(command, check=True, capture_output=True, timeout=900)
    _assert_identical(_outputs(out_dir, "lps"), _outputs(runs["out"], "lps"))


def test_workers_exit_when_their_run_is_killed(tmp_path):
    """A run killed with SIGKILL cannot stop its workers: they notice and exit by themselves."""
    script = textwrap.dedent("""
        import os, sys, time
        from bids_deepwmh.utils.workers import worker_pool
        pool = worker_pool(2, os.getpid())
        futures = [pool.submit(time.sleep, 600) for _ in range(2)]
        time.sleep(2)
        print(" ".join(str(p.pid) for p in pool._processes.values()), flush=True)
        time.sleep(600)
    """)
    run = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=tmp_path)
    workers = [psutil.Process(int(pid)) for pid in run.stdout.readline().split()]
    assert len(workers) == 2
    os.kill(run.pid, signal.SIGKILL)
    run.wait()
    _, alive = psutil.wait_procs(workers, timeout=15)
    assert not alive, f"orphaned workers still running: {alive}"


def _kill_own_worker():
    import os
    import signal

    os.kill(os.getpid(), signal.SIGKILL)


def _answer():
    return 42


def test_a_killed_step_fails_in_a_plain_sentence_and_the_run_goes_on(tmp_path):
    """A worker killed (as the system does when memory runs out) fails the step it ran; the run does
    not wait for ever, and the steps after it run in a new pool of workers."""
    from types import SimpleNamespace

    from nipype.interfaces.utility import Function
    from nipype.pipeline import engine as pe

    from bids_deepwmh.cli.run import _configure_nipype, _run_graph
    from bids_deepwmh.utils.status import crash_reason

    config = SimpleNamespace(work_dir=tmp_path / "work", output_dir=tmp_path / "out", nprocs=1,
                             stop_on_first_crash=False, plugin_args=lambda: {"n_procs": 1, "raise_insufficient": False})
    _configure_nipype(config)
    wf = pe.Workflow(name="killed_wf")
    wf.add_nodes([pe.Node(Function(function=_kill_own_worker, input_names=[], output_names=[]), name="killed"),
                  pe.Node(Function(function=_answer, input_names=[], output_names=["out"]), name="after")])
    failures = _run_graph(wf, config)
    assert list(failures) == ["killed_wf.killed"]
    assert (tmp_path / "work" / "killed_wf" / "after" / "result_after.pklz").exists()
    assert crash_reason("killed_wf.killed", tmp_path / "out" / "logs").startswith(
        "the killed step was stopped before it finished")
