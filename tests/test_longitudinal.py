"""Change across sessions on phantoms: the subject space, the consistent segmentation, the labels."""

import nibabel as nib
import numpy as np
import pytest
from phantoms import BLOBS, blob, brain_phantom
from scipy import ndimage

from bids_deepwmh.core import longitudinal

VOXEL_MM = 2.0  # the phantom's 64 x 72 x 60 voxels make a brain of about 1.2 L at this size
AFFINE = np.diag([VOXEL_MM] * 3 + [1.0])
AFFINE[:3, 3] = 0.3  # off the subject grid's whole millimetres: no voxel falls exactly between two of the phantom's
NEW_BLOB = ((30, 44, 24), 2.5)  # centre (voxels), radius (voxels): about 520 mm3, in white matter
SMALL_NEW_BLOB = ((30, 44, 24), 2.0)  # about 260 mm3


def _session(image, brain, lesions, wm):
    """Nibabel images of a phantom session: FLAIR, brain, WMH evidence (the lesions, faint white
    matter where WMH may be), ventricles (none)."""
    evidence = np.where(wm | brain, 0.01, 0.0) + 0.99 * lesions
    return [nib.Nifti1Image(np.asarray(a, np.float32), AFFINE) for a in (image * 500, brain, evidence,
                                                                           np.zeros(image.shape))]


def _moved(array, motion, order):
    """``array`` (on the phantom's grid) after the head moved by the RAS matrix ``motion``."""
    to_source = np.linalg.inv(AFFINE) @ np.linalg.inv(motion) @ AFFINE
    return ndimage.affine_transform(np.asarray(array, np.float32), to_source[:3, :3], to_source[:3, 3], order=order)


def _follow(sessions):
    """The whole longitudinal chain on nibabel sessions (first to last): registration, subject
    space, consistent masks, change between the first two; also the matrices and the grid."""
    (flairs, brains, evidence, ventricles) = zip(*sessions, strict=True)
    brain_arrays = [np.asanyarray(b.dataobj) > 0.5 for b in brains]
    to_sessions = [np.eye(4)] + [longitudinal.register_within_subject(flairs[0], brain_arrays[0], f, b)
                                 for f, b in zip(flairs[1:], brain_arrays[1:], strict=True)]
    from_subject = longitudinal.subject_transforms(to_sessions)
    grid = longitudinal.subject_grid(brains, from_subject)
    found = longitudinal.subject_space_wmh(flairs, brains, evidence, ventricles, from_subject, grid)
    dseg, rows = longitudinal.change_map(found["masks"][0], found["masks"][1], grid.affine,
                                         np.zeros(grid.shape, bool), np.zeros(grid.shape, bool))
    return found, dseg, rows, to_sessions, from_subject, grid


def _new_blob(spec, seen_only_centre=False):
    """Two sessions of the phantom, the second with a new blob (``spec``: centre, radius) in white
    matter, which the second session's WMH evidence holds whole or only at its centre voxel.
    Returns the chain's results (:func:`_follow`), the lesions that changed, the blob, and the blob
    in subject space (resampled as every mask is, 1 mm voxels)."""
    image, brain, wm, lesions = brain_phantom(seed=0)
    new = blob(image.shape, *spec) & wm & ~lesions
    seen = new
    if seen_only_centre:
        seen = np.zeros(new.shape, bool)
        seen[spec[0]] = True
    second = brain_phantom(seed=1)[0] + 0.6 * new
    found, dseg, rows, _, from_subject, grid = _follow([_session(image, brain, lesions, wm),
                                                        _session(second, brain, lesions | seen, wm)])
    changed = [row for row in rows if row["change"] != "stable"]
    blob_in_subject = longitudinal.to_subject(nib.Nifti1Image(new.astype(np.float32), AFFINE), grid,
                                              from_subject[1]) >= 0.5
    return found, dseg, rows, changed, new, blob_in_subject


def test_one_new_blob_is_one_new_lesion_of_its_volume():
    found, dseg, rows, changed, new, blob_in_subject = _new_blob(NEW_BLOB)
    assert [row["change"] for row in changed] == ["new"]
    # Its volume is the blob's, resampled into subject space as every mask is (1 mm voxels).
    assert changed[0]["volume_after_mm3"] == np.count_nonzero(dseg == 1)
    assert np.count_nonzero(dseg == 1) == pytest.approx(blob_in_subject.sum(), rel=0.05)
    assert np.count_nonzero((dseg == 1) & blob_in_subject) >= 0.9 * blob_in_subject.sum()
    assert np.count_nonzero(dseg == 1) == pytest.approx(new.sum() * VOXEL_MM**3, rel=0.1)
    assert sum(row["change"] == "stable" for row in rows) == len(BLOBS)
    assert np.array_equal(dseg == 5, found["masks"][0])  # the old lesions: the same voxels, all stable


def test_a_new_blob_the_network_saw_only_in_part_is_new_in_full():
    # the network's mask holds the blob's centre voxel (8 mm3) and no more
    _, dseg, _, changed, _, blob_in_subject = _new_blob(SMALL_NEW_BLOB, seen_only_centre=True)
    assert [row["change"] for row in changed] == ["new"]
    assert np.count_nonzero((dseg == 1) & blob_in_subject) >= 0.5 * blob_in_subject.sum()
    assert not ((dseg == 1) & ~ndimage.binary_dilation(blob_in_subject, iterations=2)).any()


def test_the_same_phantom_moved_and_resampled_is_unchanged():
    image, brain, wm, lesions = brain_phantom(seed=0)
    motion = np.eye(4)
    angle = np.deg2rad(3.0)
    motion[:3, :3] = [[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]]
    motion[:3, 3] = (2.5, -1.5, 2.0)
    noise = np.random.default_rng(1).normal(0, 0.02, image.shape) * brain
    second = [_moved(image, motion, 1) * 1.3 + noise, _moved(brain, motion, 0) > 0.5, _moved(lesions, motion, 1),
              _moved(wm, motion, 0) > 0.5]
    found, dseg, rows, to_sessions, *_ = _follow([_session(image, brain, lesions, wm), _session(*second)])
    # The motion found (mm, and radians), within a sixth of the 2 mm grid the brains are registered on.
    np.testing.assert_allclose(to_sessions[1], motion, atol=0.33)
    assert not any(row["change"] in longitudinal.CHANGED for row in rows)
    volumes = [mask.sum() for mask in found["masks"]]
    assert volumes[1] == pytest.approx(volumes[0], rel=0.01)
    assert volumes[0] == pytest.approx(lesions.sum() * VOXEL_MM**3, rel=0.15)


def test_change_labels_follow_the_rule():
    shape = (40, 40, 40)
    sphere = lambda centre, radius: blob(shape, centre, radius)  # noqa: E731
    before = sphere((8, 8, 8), 3) | sphere((20, 20, 20), 4) | sphere((30, 8, 30), 3) | sphere((8, 30, 20), 4)
    after = sphere((8, 8, 8), 3) | sphere((20, 20, 20), 5.5) | sphere((30, 30, 8), 2) | sphere((8, 30, 20), 2.5)
    dseg, rows = longitudinal.change_map(before, after, np.eye(4), np.zeros(shape, bool), np.zeros(shape, bool))
    by_change = {row["change"]: row for row in rows}
    assert sorted(by_change) == ["disappeared", "enlarging", "new", "shrinking", "stable"]
    assert by_change["enlarging"]["changed_mm3"] == np.count_nonzero(after & ~before & sphere((20, 20, 20), 6))
    assert np.array_equal(dseg == 1, sphere((30, 30, 8), 2))
    assert np.array_equal(dseg == 4, sphere((30, 8, 30), 3))
    assert np.array_equal(dseg == 3, (before & ~after) & sphere((8, 30, 20), 5))
    summary = longitudinal.change_summary(dseg, rows, 1.0)
    assert summary["new_wmh_count"] == summary["disappeared_wmh_count"] == summary["stable_wmh_count"] == 1
    assert summary["new_wmh_volume_ml"] == pytest.approx(sphere((30, 30, 8), 2).sum() / 1000)
    assert summary["shrinking_wmh_volume_ml"] == pytest.approx(np.count_nonzero(dseg == 3) / 1000)


def test_a_lesion_that_grows_in_one_place_and_shrinks_in_another_marks_both():
    shape = (40, 40, 40)
    before = np.zeros(shape, bool)
    before[10:30, 15:25, 15:25] = True
    after = np.zeros(shape, bool)
    after[14:34, 15:25, 15:25] = True  # moved by 4 voxels: the same volume
    after[20, 20, 25] = True  # and a speck on its side, under MIN_CHANGE_MM3
    dseg, rows = longitudinal.change_map(before, after, np.eye(4), np.zeros(shape, bool), np.zeros(shape, bool))
    assert [row["change"] for row in rows] == ["stable"]
    assert np.count_nonzero(dseg == 2) == np.count_nonzero(dseg == 3) == 400
    assert dseg[20, 20, 25] == 5


@pytest.mark.parametrize(("before", "after", "expected"), [
    (0, 12, "new"), (40, 0, "disappeared"), (100, 131, "enlarging"), (100, 129, "stable"),
    (20, 28, "stable"),  # 40 % more, but less than MIN_CHANGE_MM3
    (100, 69, "shrinking"),
])
def test_classify(before, after, expected):
    assert longitudinal.classify(before, after) == expected


def test_transforms_round_trip_through_itk_files(tmp_path):
    matrix = np.eye(4)
    matrix[:3, :3] = nib.eulerangles.euler2mat(0.05, -0.03, 0.02)
    matrix[:3, 3] = (1.5, -2.0, 3.25)
    path = longitudinal.write_transform(matrix, tmp_path / "xfm.txt")
    np.testing.assert_allclose(longitudinal.read_transform(path), matrix, atol=1e-9)
    halfway = longitudinal.subject_transforms([np.eye(4), matrix])
    np.testing.assert_allclose(halfway[1] @ np.linalg.inv(halfway[0]), matrix, atol=1e-9)
    np.testing.assert_allclose(halfway[1], np.linalg.inv(halfway[0]), atol=1e-9)  # halfway: equally far
    image = nib.Nifti1Image(np.zeros((20, 20, 20), np.float32), np.eye(4))
    larger = np.eye(4)
    larger[:3, 3] = -5
    covered = longitudinal.field_of_view(image, nib.Nifti1Image(np.zeros((30, 30, 30), np.uint8), larger),
                                         np.eye(4), 3.0)
    assert covered.sum() == 14**3 and covered[8:22, 8:22, 8:22].all()  # 3 mm inside the image's 20 mm


def test_sessions_in_time_order_with_those_that_cannot_be_compared(tmp_path):
    import json

    from bids_deepwmh.utils.bids import derivative_path
    from bids_deepwmh.utils.sessions import session_series
    from bids_deepwmh.utils.status import ScanStatus

    bids, out = tmp_path / "bids", tmp_path / "out"
    (bids / "sub-01").mkdir(parents=True)
    (bids / "sub-01" / "sub-01_sessions.tsv").write_text(
        "session_id\tacq_time\nses-a\t2021-01-01T09:00:00\nses-b\t2019-06-01T09:00:00\nses-c\t2020-01-01T09:00:00\n")

    def flair(subject, session, extra=""):
        return str(bids / f"sub-{subject}" / f"ses-{session}" / "anat" / f"sub-{subject}_ses-{session}{extra}_FLAIR.nii.gz")

    record = derivative_path(out, flair("01", "c"), suffix="quality", extension=".json")
    record.parent.mkdir(parents=True)
    record.write_text(json.dumps({"out_of_distribution": True, "flags": ["atypical_tissue_ml"]}))
    statuses = [ScanStatus(flair("01", "a"), True, "WMH 1 mL"),
                ScanStatus(flair("01", "b"), False, "conform: InvalidImageError: expected a 3D image"),
                ScanStatus(flair("01", "c"), True, "WMH 9 mL"),
                ScanStatus(flair("02", "10"), True, ""), ScanStatus(flair("02", "2"), True, ""),  # no sessions.tsv
                ScanStatus(flair("03", "1"), True, ""),  # one session
                *(ScanStatus(flair("04", s, f"_acq-{a}"), True, "") for s in "12" for a in ("2D", "3D"))]
    series = session_series(bids, out, statuses)
    assert [s.name for s in series] == ["sub_01", "sub_02", "sub_04_acquisition_2D", "sub_04_acquisition_3D"]
    assert [(s.label, s.acq_time) for s in series[0].scans] == [
        ("b", "2019-06-01T09:00:00"), ("c", "2020-01-01T09:00:00"), ("a", "2021-01-01T09:00:00")]
    assert [s.reason for s in series[0].scans] == [
        "its scan failed (conform: InvalidImageError: expected a 3D image)",
        "out of distribution (atypical_tissue_ml)", None]
    assert len(series[0].usable) == 1
    assert [s.label for s in series[1].scans] == ["2", "10"] and len(series[1].usable) == 2
