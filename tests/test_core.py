"""The science functions on phantoms with known answers."""

import nibabel as nib
import numpy as np
import pytest
from phantoms import BLOBS, SHAPE, blob, brain_phantom, ellipsoid
from scipy import ndimage

from bids_deepwmh.core import anatomical, metrics
from bids_deepwmh.core.bias import n4_correct
from bids_deepwmh.core.brainmask import head_mask, refine_brain_mask, rough_brain_mask
from bids_deepwmh.core.lesions import remove_small_components
from bids_deepwmh.core.reference import build_reference, load_reference, save_reference
from bids_deepwmh.core.volumes import wmh_volumes


def test_n4_removes_a_smooth_bias_field():
    image, brain, wm, _ = brain_phantom(noise=0.005)
    x = np.linspace(-1, 1, SHAPE[0])[:, None, None]
    biased = image * np.exp(0.4 * x) * 100
    corrected = n4_correct(nib.Nifti1Image(biased.astype(np.float32), np.eye(4)))
    inner = wm & ~blob(SHAPE, BLOBS[0][0], 5)
    cv = lambda a: a[inner].std() / a[inner].mean()  # noqa: E731
    assert cv(corrected.get_fdata()) < 0.5 * cv(biased)
    assert head_mask(biased)[brain].mean() > 0.95


def test_brain_mask_follows_the_image_not_the_misplaced_prior():
    image, brain, _, _ = brain_phantom()
    prior = np.roll(ellipsoid(radii=(28, 32, 26)), 3, axis=0).astype(np.float32)
    mask = refine_brain_mask(image * 1000, prior, (1, 1, 1))
    assert metrics.dice(mask, brain) > 0.95
    assert not mask[~np.roll(ellipsoid(radii=(28, 32, 26)), 3, axis=0)].any()


def test_score_and_segment_find_the_blobs():
    image, brain, wm, lesions = brain_phantom()
    normalised = anatomical.normalise(image, brain, wm.astype(np.float32))
    # A reference is blurred by registration across people: smooth the expected map too.
    expected = ndimage.gaussian_filter(np.where(wm, 1.0, 1.3), 1.5).astype(np.float32)
    spread = np.full(SHAPE, 0.10, np.float32)  # the packaged reference's spread in white matter
    score = anatomical.hyperintensity_score(normalised, brain, expected, spread, (1, 1, 1))
    assert score[lesions].mean() > anatomical.THRESHOLD
    assert np.median(score[wm & ~lesions]) == 0
    found = anatomical.segment(score, wm, voxel_mm3=1.0)
    assert metrics.dice(found, lesions) > 0.8
    assert metrics.lesion_detection(found, lesions) == (1.0, 1.0)


def test_reference_raises_the_bar_where_normal_tissue_is_bright():
    image, brain, wm, lesions = brain_phantom()
    normalised = anatomical.normalise(image, brain, wm.astype(np.float32))
    spread = np.full(SHAPE, 0.05, np.float32)
    flat = anatomical.hyperintensity_score(normalised, brain, np.ones(SHAPE, np.float32), spread, (1, 1, 1))
    expected = np.where(lesions, 1.6, 1.0).astype(np.float32)  # 'normally bright' where the blobs are
    knowing = anatomical.hyperintensity_score(normalised, brain, expected, spread, (1, 1, 1))
    assert knowing[lesions].mean() < 0.3 * flat[lesions].mean()


def test_small_components_are_removed():
    mask = np.zeros((20, 20, 20), bool)
    mask[2, 2, 2] = True  # 1 mm3
    mask[10:12, 10:12, 10:12] = True  # 8 mm3
    kept = remove_small_components(mask, voxel_mm3=1.0, min_mm3=3.0)
    assert not kept[2, 2, 2] and kept[10:12, 10:12, 10:12].all()
    assert remove_small_components(mask, voxel_mm3=0.25, min_mm3=3.0).sum() == 0


def test_reference_is_robust_to_lesions_in_different_places(tmp_path):
    rng = np.random.default_rng(1)
    _, brain, _, _ = brain_phantom()
    scans = []
    for i, (centre, radius) in enumerate(BLOBS * 3):
        scan = 1 + rng.normal(0, 0.05, SHAPE)
        scan[blob(SHAPE, np.add(centre, i), radius)] += 0.8  # each scan's lesion elsewhere
        scans.append(np.where(brain, scan, np.nan))
    expected, spread = build_reference(np.array(scans), (1, 1, 1))
    assert np.nanmax(np.abs(expected[brain] - 1)) < 0.25
    assert np.nanmedian(spread[brain]) == pytest.approx(0.05, rel=0.3)
    assert np.isnan(expected[~brain]).all()
    path, sidecar = save_reference(tmp_path / "ref.nii.gz", expected, spread, np.eye(4), {"Template": "x"})
    loaded_expected, loaded_spread, meta = load_reference(path)
    assert meta["Template"] == "x" and sidecar.exists()
    np.testing.assert_allclose(loaded_expected.get_fdata()[brain], expected[brain], atol=1e-3)
    np.testing.assert_allclose(loaded_spread.get_fdata()[brain], spread[brain], atol=1e-3)


def test_reference_leaves_out_lesions_common_in_the_cohort():
    rng = np.random.default_rng(2)
    _, brain, _, _ = brain_phantom()
    site = blob(SHAPE, BLOBS[0][0], 4) & brain  # a lesion site shared by 4 of 10 scans (like MS caps)
    scans = []
    for i in range(10):
        scan = 1 + rng.normal(0, 0.05, SHAPE)
        scan[site] += 0.8 if i < 4 else 0
        scans.append(np.where(brain, scan, np.nan))
    expected, spread = build_reference(np.array(scans), (1, 1, 1))
    assert np.median(expected[site]) == pytest.approx(1.0, abs=0.02)
    assert np.median(spread[site]) == pytest.approx(np.median(spread[brain & ~site]), rel=0.2)
    faint = np.where(brain, 1 + rng.normal(0, 0.05, SHAPE), 0)
    faint[site] += 0.25  # five noise SDs brighter than normal tissue
    score = anatomical.hyperintensity_score(faint, brain, expected, spread, (1, 1, 1))
    assert np.median(score[site]) > anatomical.THRESHOLD


def test_metrics_on_known_cases():
    a = np.zeros((30, 30, 30), bool)
    a[5:10, 5:10, 5:10] = True  # 125 voxels
    b = np.zeros_like(a)
    b[5:10, 5:10, 6:11] = True  # shifted by 1 voxel in z: overlap 100
    b[20:23, 20:23, 20:23] = True  # a false-positive lesion
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    assert metrics.dice(a, a) == 1.0
    assert metrics.dice(a, b) == pytest.approx(2 * 100 / (125 + 152))
    assert metrics.hd95(a, a, affine) == 0.0
    assert metrics.avd(b, a) == pytest.approx(100 * 27 / 125)
    recall, f1 = metrics.lesion_detection(b, a)
    assert recall == 1.0 and f1 == pytest.approx(2 * 1 * 0.5 / 1.5)
    assert np.isnan(metrics.hd95(a, np.zeros_like(a), affine))


def test_volumes_match_the_regions():
    regions = np.zeros((10, 10, 10), np.uint8)
    regions[1:3, 1:3, 1:3] = 1  # a periventricular lesion of 8 voxels
    regions[6:8, 6:8, 6:9] = 2  # a deep one of 12
    regions[4, 4, 4:6] = 3  # ventricles
    values = wmh_volumes(regions, np.ones(regions.shape, bool), voxel_mm3=2.0,
                         lesion_regions=["periventricular", "deep"])
    assert values == {
        "wmh_volume_ml": 0.04, "wmh_count": 2, "brain_volume_ml": 2.0, "wmh_fraction_of_brain": 0.02,
        "periventricular_wmh_volume_ml": 0.016, "periventricular_wmh_count": 1,
        "periventricular_wmh_fraction_of_brain": 0.008,
        "deep_wmh_volume_ml": 0.024, "deep_wmh_count": 1, "deep_wmh_fraction_of_brain": 0.012,
        "lateral_ventricles_volume_ml": 0.0,
    }


def test_rough_brain_mask_cuts_the_scalp_off():
    image, brain, _, _ = brain_phantom()
    scalp = ellipsoid(radii=(31, 35, 29)) & ~ellipsoid(radii=(29, 33, 27))  # bright shell, dark gap
    head = np.where(scalp, 1.4, image) * 100
    rough = rough_brain_mask(head, (1, 1, 1))
    assert metrics.dice(rough, brain) > 0.95 and not rough[scalp].any()
