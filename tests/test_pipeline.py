"""End to end through the command line on a small synthetic dataset with known lesions.

Three good scans (two sessions of one participant, one scan of another) and three broken files (a
2D image, a truncated file, a file that is not NIfTI): each broken one fails with its reason in a
plain sentence, the others' outputs are all written, the change between the two sessions is
measured, a rerun resumes, and the group level gathers them.
"""

import csv
import functools
import json
import re
import subprocess
import sys
from pathlib import Path
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage

from bids_deepwmh.cli.run import run
from bids_deepwmh.core.quality import CHECKS
from bids_deepwmh.synthetic_dataset import write_dataset
from bids_deepwmh.utils.bids import derivative_path, validate_dataset
from bids_deepwmh.utils.status import ScanStatus, crash_reason
from bids_deepwmh.utils.tables import read_tsv

GOOD = ("sub-01/ses-1/anat/sub-01_ses-1_FLAIR.nii.gz", "sub-01/ses-2/anat/sub-01_ses-2_FLAIR.nii.gz",
        "sub-02/anat/sub-02_FLAIR.nii.gz")
SESSION_DATES = {"1": "2019-03-04T10:00:00", "2": "2020-09-02T11:30:00"}  # 1.50 years apart
# The broken files, and the start of the sentence that says what is wrong with each.
BROKEN = {"sub-03": "it is a 2D image (64 x 64 voxels), not a 3D FLAIR",
          "sub-04": "the file is damaged or incomplete",
          "sub-05": "it cannot be read as a NIfTI image"}
EXCEPTION_NAME = re.compile(r"\b[A-Z]\w*(?:Error|Exception|Pool)\b")


def _write_broken(bids_dir):
    """A 2D image, a truncated copy of a good scan, a text file under a NIfTI name."""
    paths = {subject: bids_dir / subject / "anat" / f"{subject}_FLAIR.nii.gz" for subject in BROKEN}
    for path in paths.values():
        path.parent.mkdir(parents=True)
    nib.save(nib.Nifti1Image(np.ones((64, 64), np.float32), np.eye(4)), paths["sub-03"])
    good = (bids_dir / GOOD[2]).read_bytes()
    paths["sub-04"].write_bytes(good[: len(good) // 2])
    paths["sub-05"].write_text("not an image\n")


@pytest.fixture(scope="module")
def study(tmp_path_factory, templateflow_home):
    root = tmp_path_factory.mktemp("study")
    bids_dir = write_dataset(root / "bids", resolution=2, scans=(("01", "1", 1), ("01", "2", 2), ("02", None, 3)))
    (bids_dir / "sub-01" / "sub-01_sessions.tsv").write_text(
        "session_id\tacq_time\n" + "".join(f"ses-{k}\t{v}\n" for k, v in SESSION_DATES.items()))
    _write_broken(bids_dir)
    out, work = root / "out", root / "work"
    args = [str(bids_dir), str(out), "participant", "-w", str(work), "--nprocs", "2", "--skip-bids-validation"]
    code = run(args)
    return {"bids": bids_dir, "out": out, "work": work, "code": code, "args": args}


def test_failed_scan_does_not_stop_the_others(study, capsys):
    assert study["code"] == 1
    for name in GOOD:
        assert derivative_path(study["out"], name, label="WMH", suffix="mask", extension=".nii.gz").exists()
    crash_files = list((study["out"] / "logs").glob("crash-*.txt"))
    assert len(crash_files) == len(BROKEN)
    for crash in crash_files:  # every crash is a broken scan's, and keeps the exception
        text = crash.read_text()
        subject = next(s for s in BROKEN if f"{s.replace('-', '_')}_FLAIR_wf" in text.splitlines()[0])
        assert f"InvalidImageError: {subject}_FLAIR.nii.gz: {BROKEN[subject]}" in text


def test_outputs_are_on_the_native_grid_and_consistent(study):
    for name in GOOD:
        source = nib.load(study["bids"] / name)
        path = functools.partial(derivative_path, study["out"], name)
        for entities in ({"desc": "preproc", "suffix": "FLAIR"}, {"desc": "brain", "suffix": "mask"},
                         {"label": "WMH", "suffix": "mask"}, {"label": "WMH", "suffix": "probseg"},
                         {"label": "WMH", "desc": "anatomical", "suffix": "mask"}):
            img = nib.load(path(extension=".nii.gz", **entities))
            assert img.shape == source.shape and np.allclose(img.affine, source.affine)
            assert path(extension=".json", **entities).exists()
        wmh = nib.load(path(label="WMH", suffix="mask", extension=".nii.gz"))
        brain = nib.load(path(desc="brain", suffix="mask", extension=".nii.gz"))
        assert wmh.get_data_dtype() == np.uint8 and set(np.unique(wmh.dataobj)) <= {0, 1}
        probability = nib.load(path(label="WMH", suffix="probseg", extension=".nii.gz")).get_fdata()
        assert probability.min() >= 0 and probability.max() <= 1
        assert np.all(probability[np.asanyarray(wmh.dataobj) > 0] >= 0.5)  # the mask is the thresholded map
        assert np.all(probability[np.asanyarray(brain.dataobj) == 0] == 0)
        with open(path(label="WMH", suffix="morph", extension=".tsv")) as fh:
            row = next(csv.DictReader(fh, delimiter="\t"))
        voxel_ml = abs(np.linalg.det(source.affine[:3, :3])) / 1000
        assert float(row["wmh_volume_ml"]) == pytest.approx(np.count_nonzero(wmh.dataobj) * voxel_ml, abs=1e-3)
        assert float(row["brain_volume_ml"]) == pytest.approx(np.count_nonzero(brain.dataobj) * voxel_ml, abs=0.01)
        assert 1000 < float(row["brain_volume_ml"]) < 2000
        template_mask = nib.load(path(space="MNI152NLin2009cAsym", resolution="1", label="WMH", suffix="mask",
                                      extension=".nii.gz"))
        assert template_mask.shape == (193, 229, 193)
        template = "MNI152NLin2009cAsym"
        for direction in ({"from": "FLAIR", "to": template}, {"from": template, "to": "FLAIR"}):
            assert path(mode="image", suffix="xfm", extension=".h5", **direction).exists()


def test_regions_lesions_and_quality_records(study):
    for name in GOOD:
        path = functools.partial(derivative_path, study["out"], name)
        regions = np.asanyarray(nib.load(path(desc="wmhregions", suffix="dseg", extension=".nii.gz")).dataobj)
        wmh = np.asanyarray(nib.load(path(label="WMH", suffix="mask", extension=".nii.gz")).dataobj) > 0
        assert np.array_equal(np.isin(regions, (1, 2, 4)), wmh)  # every WMH voxel has one region
        assert (regions == 3).sum() > 0  # the ventricles were found
        assert path(desc="wmhregions", suffix="dseg", extension=".tsv").exists()
        volumes = read_tsv(path(label="WMH", suffix="morph", extension=".tsv"))[0]
        lesions = read_tsv(path(label="WMH", desc="lesions", suffix="morph", extension=".tsv"))
        assert len(lesions) == int(volumes["wmh_count"])
        assert sum(float(r["volume_mm3"]) for r in lesions) / 1000 == pytest.approx(
            float(volumes["wmh_volume_ml"]), abs=1e-3)
        assert sum(float(volumes[f"{region}_wmh_volume_ml"]) for region in ("periventricular", "deep", "infratentorial")) \
            == pytest.approx(float(volumes["wmh_volume_ml"]), abs=1e-3)
        assert volumes["fazekas_periventricular"] in "0123" and volumes["fazekas_deep"] in "0123"
        record = json.loads(path(suffix="quality", extension=".json").read_text())
        assert set(record["checks"]) == {c.name for c in CHECKS}
        assert record["flagged"] == bool(record["flags"])


def test_change_across_sessions(study):
    first, second = GOOD[:2]
    path = functools.partial(derivative_path, study["out"], second)
    change = nib.load(path(desc="wmhchange", suffix="dseg", extension=".nii.gz"))
    source = nib.load(study["bids"] / second)
    assert change.shape == source.shape and np.allclose(change.affine, source.affine)
    labels = np.asanyarray(change.dataobj)
    assert np.issubdtype(change.get_data_dtype(), np.integer) and set(np.unique(labels)) <= set(range(6))
    assert [r["name"] for r in read_tsv(path(desc="wmhchange", suffix="dseg", extension=".tsv"))] == [
        "new", "enlarging", "shrinking", "disappeared", "stable"]
    assert json.loads(path(desc="wmhchange", suffix="dseg", extension=".json").read_text())["ComparedWith"] == "ses-1"
    # The sessions are two synthetic heads with different lesions (demo seeds 1 and 2): the second's are new.
    truth = np.asanyarray(nib.load(study["bids"] / "derivatives" / "manual" / second.replace(
        "_FLAIR", "_label-WMH_desc-truth_mask")).dataobj) > 0
    new = labels == 1
    assert np.count_nonzero(new & ndimage.binary_dilation(truth)) >= 0.8 * np.count_nonzero(new)
    lesions = read_tsv(path(desc="wmhchange", suffix="morph", extension=".tsv"))
    truth_count = ndimage.label(truth, structure=np.ones((3, 3, 3)))[1]
    assert sum(r["change"] == "new" for r in lesions) >= truth_count - 2
    assert {r["change"] for r in lesions} <= {"new", "enlarging", "shrinking", "disappeared", "stable"}
    table = read_tsv(study["out"] / "sub-01" / "anat" / "sub-01_desc-longitudinal_morph.tsv")
    assert [(r["session_id"], r["status"], r["compared_with"]) for r in table] == [
        ("ses-1", "compared", "n/a"), ("ses-2", "compared", "ses-1")]
    assert [r["acq_time"] for r in table] == list(SESSION_DATES.values())
    assert float(table[1]["years_since_first"]) == pytest.approx(1.5, abs=0.01)
    for row in table:  # by region, the infratentorial one too, and graded, as the cross-sectional table
        assert sum(float(row[f"{region}_wmh_volume_ml"]) for region in ("periventricular", "deep", "infratentorial")) \
            == pytest.approx(float(row["wmh_volume_ml"]), abs=1e-3)
        assert row["fazekas_periventricular"] in "0123" and row["fazekas_deep"] in "0123"
    assert int(table[1]["new_wmh_count"]) == sum(r["change"] == "new" for r in lesions)
    assert float(table[1]["new_wmh_volume_ml"]) == pytest.approx(
        sum(float(r["changed_mm3"]) for r in lesions if r["change"] == "new") / 1000, abs=1e-3)
    for scan in (first, second):  # the consistent masks hold the volumes of the table
        xfm = derivative_path(study["out"], scan, suffix="xfm", extension=".txt", mode="image",
                              **{"from": "FLAIR", "to": "subject"})
        assert xfm.exists()
        mask = nib.load(derivative_path(study["out"], scan, space="subject", label="WMH", desc="longitudinal",
                                        suffix="mask", extension=".nii.gz"))
        row = next(r for r in table if scan.split("/")[1] == r["session_id"])
        assert float(row["wmh_volume_ml"]) == pytest.approx(np.count_nonzero(mask.dataobj) / 1000, abs=1e-3)
    assert not derivative_path(study["out"], first, desc="wmhchange", suffix="dseg", extension=".nii.gz").exists()
    assert not list((study["out"] / "sub-02").glob("**/*wmhchange*"))  # one session: no change measured


class _Figures(HTMLParser):
    """The figure files an HTML page shows (img src, object data)."""

    def __init__(self):
        super().__init__()
        self.files = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag in ("img", "object") and (attrs.get("src") or attrs.get("data")):
            self.files.append(attrs.get("src") or attrs.get("data"))


def test_participant_reports_render(study):
    for subject, scans in (("01", 2), ("02", 1)):
        html = (study["out"] / f"sub-{subject}.html").read_text()
        parser = _Figures()
        parser.feed(html)
        # Per scan: WMH by region, probability, brain mask, registration; across sessions: what changed, volumes.
        assert len(parser.files) == 4 * scans + (2 if scans > 1 else 0)
        for name in parser.files:
            figure = study["out"] / name
            assert figure.stat().st_size > 10_000
            assert ET.parse(figure).getroot().tag.endswith("svg")
        assert "Quality: " in html and "periventricular" in html and "Methods" in html
        assert "Fazekas grades" in html
        assert "Griffanti" in html and "DeepWMH" in html  # the methods paragraph and its references
    assert not (study["out"] / "sub-03.html").exists()  # the broken scan gave no report


def test_outputs_pass_the_bids_validator(study):
    description = json.loads((study["out"] / "dataset_description.json").read_text())
    assert description["DatasetType"] == "derivative" and description["GeneratedBy"][0]["Name"] == "bids-deepwmh"
    assert validate_dataset(study["out"]) == []


def test_rerun_resumes_and_says_why_a_scan_failed(study):
    finished = [*study["work"].glob("**/register/result_register.pklz"),
                *study["work"].glob("**/learned_wmh/result_learned_wmh.pklz")]
    finished += [*study["work"].glob("longitudinal_wf/**/consistent_wmh/result_consistent_wmh.pklz")]
    assert len(finished) == 7
    before = {path: path.stat().st_mtime_ns for path in finished}
    proc = subprocess.run(
        [sys.executable, "-m", "bids_deepwmh", *study["args"]], capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 1
    last_lines = proc.stdout.strip().splitlines()
    assert last_lines[-2] == "change across sessions: 1 participant(s)"
    assert last_lines[-1].startswith("  sub-01: done (ses-1 -> ses-2: ")
    lines = {line.split(":")[0].strip(): line.strip() for line in last_lines[-8:-2]}
    for name in GOOD:
        assert lines[Path(name).name].startswith(f"{Path(name).name}: done (WMH ")
    for subject, problem in BROKEN.items():  # one plain sentence: the file, what is wrong, what to do
        line = lines[f"{subject}_FLAIR.nii.gz"]
        assert line.startswith(f"{subject}_FLAIR.nii.gz: FAILED: {problem}") and "; " in line
        assert not EXCEPTION_NAME.search(line), line
    assert {path: path.stat().st_mtime_ns for path in finished} == before  # reused, not recomputed


def _crash(log_dir, node, traceback):
    log_dir.mkdir(exist_ok=True)
    path = log_dir / f"crash-{node.split('.')[-1]}.txt"
    path.write_text(f"Node: {node}\nWorking directory: /work\n\nTraceback (most recent call last):\n{traceback}\n")
    return path


@pytest.mark.parametrize("traceback, expected", [
    ('  File "conform.py", line 1\nEOFError: Compressed file ended before the end-of-stream marker was reached\n\n'
     "The above exception was the direct cause of the following exception:\n\n"
     "bids_deepwmh.utils.errors.InvalidImageError: sub-x_FLAIR.nii.gz: the file is damaged or incomplete (its "
     "data end before the image does); copy it again",
     "the file is damaged or incomplete (its data end before the image does); copy it again"),
    ("numpy._core._exceptions._ArrayMemoryError: Unable to allocate 2.00 GiB for an array",
     "the n4 step ran out of memory"),
    ("onnxruntime.capi.onnxruntime_pybind11_state.RuntimeException: [ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION : "
     "Failed to allocate memory for requested buffer of size 1073741824", "the n4 step ran out of memory"),
    ("concurrent.futures.process.BrokenProcessPool: A process in the process pool was terminated abruptly while "
     "the future was running or pending.", "the n4 step was stopped before it finished"),
    ("KeyError: 'spacing'", "the n4 step stopped on an unexpected error, described in "),
])
def test_a_failure_is_said_in_one_plain_sentence(tmp_path, traceback, expected):
    node = "deepwmh_wf.sub_x_FLAIR_wf.preprocessing_wf.n4"
    crash_file = _crash(tmp_path / "logs", node, traceback)
    line = ScanStatus(Path("sub-x_FLAIR.nii.gz"), False, crash_reason(node, tmp_path / "logs")).summary
    assert line.startswith(f"  sub-x_FLAIR.nii.gz: FAILED: {expected}")
    assert not EXCEPTION_NAME.search(line), line
    if "unexpected" in expected:
        assert str(crash_file) in line  # where the exception is kept


def test_a_failed_change_across_sessions_is_said_in_one_plain_sentence(tmp_path):
    from types import SimpleNamespace

    from bids_deepwmh.utils.sessions import Series, SessionScan
    from bids_deepwmh.utils.status import SERIES_ATTRIBUTE, series_status

    node = "longitudinal_wf.sub_01_wf.change_figure"
    _crash(tmp_path / "logs", node, "KeyError: 'spacing'")
    series = Series("01", tuple(SessionScan(k, f"sub-01/ses-{k}/anat/sub-01_ses-{k}_FLAIR.nii.gz") for k in "12"))
    table = tmp_path / "sub-01_desc-longitudinal_morph.tsv"
    failed = {node: SimpleNamespace(**{SERIES_ATTRIBUTE: str(table)})}
    line = series_status(series, table, failed, tmp_path / "logs").summary
    assert line.startswith("  sub-01: FAILED: change across sessions: the change figure step stopped on an "
                           "unexpected error, described in ")
    assert not EXCEPTION_NAME.search(line), line


def test_group_level_tables_and_agreement(study, capsys):
    manual = study["bids"] / "derivatives" / "manual"
    code = run([str(study["bids"]), str(study["out"]), "group", "--manual-masks", str(manual)])
    assert code == 0
    with open(study["out"] / "group_wmh.tsv") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    assert [(r["participant_id"], r["session_id"]) for r in rows] == [
        ("sub-01", "ses-1"), ("sub-01", "ses-2"), ("sub-02", "n/a")]
    with open(study["out"] / "group_agreement.tsv") as fh:
        agreement = list(csv.DictReader(fh, delimiter="\t"))
    assert sorted(r["mask"] for r in agreement) == ["anatomical"] * 3 + ["final"] * 3
    for row in agreement:  # synthetic lesions are bright ellipsoids: they must all be found
        # The anatomical stage draws the phantoms' unnaturally sharp lesions too large (80-140 % volume
        # difference, Dice 0.58-0.70); the network outlines them closely (0.90-0.94).
        assert float(row["dice"]) > (0.8 if row["mask"] == "final" else 0.5) and float(row["lesion_recall"]) == 1.0
    assert {"periventricular_wmh_volume_ml", "deep_wmh_count", "fazekas_deep", "quality_flagged",
            "qc_brain_coverage"} <= set(rows[0])
    report = (study["out"] / "group_report.html").read_text()
    assert report.count("<svg") >= 2 and "Periventricular versus deep" in report and 'href="sub-01.html"' in report
    changes = read_tsv(study["out"] / "group_longitudinal.tsv")
    assert [(r["participant_id"], r["sessions_compared"]) for r in changes] == [("sub-01", "2")]
    assert float(changes[0]["years"]) == pytest.approx(1.5, abs=0.01)
    assert "Change per participant" in report and "mL per year" in report
    summary = (study["out"] / "group_wmh_summary.txt").read_text()
    assert "agreement of the final masks with manual masks (3 scan(s))" in summary
    assert run([str(study["bids"]), str(study["out"]), "group", "--participant-label", "99"]) == 18


def test_a_failure_outside_every_step_is_reported_as_such(tmp_path, templateflow_home, monkeypatch, capsys):
    from nipype.pipeline import engine as pe

    def broken_engine(self, *args, **kwargs):
        raise RuntimeError("Traceback ...\nOSError: [Errno 28] No space left on device")

    monkeypatch.setattr(pe.Workflow, "run", broken_engine)
    bids_dir = write_dataset(tmp_path / "bids", resolution=2, scans=(("01", None, 1),))
    code = run([str(bids_dir), str(tmp_path / "out"), "participant", "-w", str(tmp_path / "work"),
                "--skip-bids-validation"])
    assert code == 1
    error = capsys.readouterr().err
    assert "the run stopped outside any processing step: OSError: [Errno 28] No space left on device" in error
