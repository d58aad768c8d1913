"""The science functions on phantoms with known answers."""

import nibabel as nib
import numpy as np
import pytest
from phantoms import BLOBS, SHAPE, blob, brain_phantom, ellipsoid
from scipy import ndimage

from bids_deepwmh.core import anatomical, metrics, quality, skullstrip
from bids_deepwmh.core.bias import n4_correct
from bids_deepwmh.core.brainmask import implausible_brain, skull_stripped_brain
from bids_deepwmh.core.images import deeper_than, near_mask
from bids_deepwmh.core.lesions import keep_in_tissue, remove_small_components
from bids_deepwmh.core.reference import build_reference, load_reference, save_reference
from bids_deepwmh.core.volumes import wmh_volumes
from bids_deepwmh.utils import onnx_models
from bids_deepwmh.utils.errors import NoBrainError


def test_n4_removes_a_smooth_bias_field():
    image, brain, wm, _ = brain_phantom(noise=0.005)
    x = np.linspace(-1, 1, SHAPE[0])[:, None, None]
    biased = image * np.exp(0.4 * x) * 100
    corrected = n4_correct(nib.Nifti1Image(biased.astype(np.float32), np.eye(4)), brain)
    inner = wm & ~blob(SHAPE, BLOBS[0][0], 5)
    cv = lambda a: a[inner].std() / a[inner].mean()  # noqa: E731
    assert cv(corrected.get_fdata()) < 0.5 * cv(biased)
    assert np.median(corrected.get_fdata()[brain]) == pytest.approx(1000, rel=0.01)


def test_a_skull_stripped_brain_is_kept_and_a_whole_head_is_not_taken_for_one():
    image, brain, _, _ = brain_phantom()
    zooms = (2.5, 2.5, 2.5)  # the phantom's brain is then 1.2 L, its field of view 4.3 L
    assert metrics.dice(skull_stripped_brain(image * 1000, zooms), brain) > 0.99
    rng = np.random.default_rng(0)
    scalp = ellipsoid(radii=(31, 35, 29)) & ~ellipsoid(radii=(29, 33, 27))
    head = np.where(scalp, 1.4, image) * 1000 + np.abs(rng.normal(0, 30, SHAPE))  # scanner noise around the head
    assert skull_stripped_brain(head, zooms) is None


def test_hd_bet_in_onnx_runtime_gives_pytorchs_brain_probability_and_is_converted_once(tmp_path, monkeypatch):
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    monkeypatch.setenv(onnx_models.CACHE_ENV, str(blocked / "cache"))  # not a folder: a temporary one instead
    assert skullstrip.hd_bet_onnx().is_file()
    monkeypatch.setenv(onnx_models.CACHE_ENV, str(tmp_path / "cache"))
    converted = skullstrip.hd_bet_onnx()
    assert converted.is_relative_to(tmp_path / "cache")
    modified = converted.stat().st_mtime_ns
    assert skullstrip.hd_bet_onnx() == converted and converted.stat().st_mtime_ns == modified
    image = np.random.default_rng(0).normal(size=(32, 48, 32)).astype(np.float32)
    onnx_probability = skullstrip.onnx_brain_network(num_threads=1)(image)
    torch_probability = skullstrip.torch_brain_network("cpu")(image)
    assert onnx_probability.shape == image.shape
    np.testing.assert_allclose(onnx_probability, torch_probability, atol=1e-4)


def _template(shape=SHAPE):
    """A phantom 'template': white matter, its aseg labels (2 white matter, 3 cortex), on a 1 mm grid."""
    _, brain, wm, _ = brain_phantom(shape=shape)
    return (nib.Nifti1Image(wm.astype(np.float32), np.eye(4)),
            nib.Nifti1Image(np.where(wm, 2, np.where(brain, 3, 0)).astype(np.int16), np.eye(4)), brain, wm)


def test_the_tissue_restriction_keeps_a_deep_lesion_and_drops_a_scalp_blob():
    from bids_deepwmh.core.template import WMH_TISSUE_MARGIN_MM, wmh_tissue

    wm_img, aseg_img, brain, wm = _template()
    tissue = wmh_tissue(wm_img, aseg_img).get_fdata() > 0.5
    deep = blob(SHAPE, (32, 36, 30), 3)
    juxtacortical = blob(SHAPE, (32, 36 + 27 + WMH_TISSUE_MARGIN_MM - 1, 30), 1)  # just outside the white matter
    scalp = blob(SHAPE, (32, 36, 30 + 24 + 3), 2) & ~brain  # beyond the phantom's brain, above its vertex
    found = deep | juxtacortical | scalp
    probability = found.astype(np.float32) * 0.9
    kept_probability, kept, outside_ml = keep_in_tissue(probability, found, tissue, voxel_mm3=1.0)
    assert kept[deep].all() and kept[juxtacortical & ~wm].all()
    assert not kept[scalp].any() and not kept_probability[scalp].any()
    assert outside_ml == pytest.approx(scalp.sum() / 1000.0)


def test_flags_fire_on_a_brain_mask_grown_over_the_scalp():
    _, brain, _, _ = brain_phantom()
    grown = ndimage.binary_dilation(brain, iterations=4)  # over a 4 mm scalp, as a mask that spilled
    good = quality.assess({"brain_template_dice": metrics.dice(brain, ndimage.binary_dilation(brain))})
    bad = quality.assess({"brain_template_dice": metrics.dice(grown, brain)})
    assert "brain_template_dice" in bad["flags"] and "brain_template_dice" not in good["flags"]
    assert "brain_template_dice" not in quality.OUT_OF_DISTRIBUTION  # flagged, to be looked at


def test_a_one_sided_mass_is_out_of_distribution_and_large_lesions_on_both_sides_or_at_the_edge_are_not():
    zooms = (2.0, 2.0, 2.0)
    _, brain, wm, _ = brain_phantom()
    right = np.zeros(SHAPE, bool)
    right[SHAPE[0] // 2:] = True
    expected, spread = np.ones(SHAPE, np.float32), np.full(SHAPE, 0.1, np.float32)

    def one_sided_ml(hyperintense):
        normalised = np.where(brain, 1.0, 0.0) + 0.5 * hyperintense
        excess = quality.excess_over_reference(normalised.astype(np.float32), brain, expected, spread, zooms)
        return quality.one_sided_hyperintensity_ml(excess, brain, right, zooms)

    oedema = ellipsoid(centre=(44, 36, 30), radii=(8, 12, 9)) & wm  # 29 mL on this 2 mm grid, right only
    # Confluent caps of about 14 mL each, one per hemisphere and not joined (each one-sided on its own).
    caps = ellipsoid(centre=(20, 36, 30), radii=(5, 12, 6)) | ellipsoid(centre=(43, 36, 30), radii=(5, 12, 6))
    # A bright rim at the brain's edge on one side only, as a registration a voxel off leaves it.
    edge = brain & ~ndimage.binary_erosion(brain, iterations=2) & right
    mass, bilateral, rim = one_sided_ml(oedema), one_sided_ml(caps & wm), one_sided_ml(edge)
    assert mass == pytest.approx(oedema.sum() * 8 / 1000, rel=0.1) and bilateral < 1.0
    assert edge.sum() * 8 / 1000 > 20 and rim == 0.0
    assert "one_sided_hyperintensity_ml" in quality.assess({"one_sided_hyperintensity_ml": mass})["flags"]
    assert "one_sided_hyperintensity_ml" in quality.OUT_OF_DISTRIBUTION
    assert "one_sided_hyperintensity_ml" not in quality.assess({"one_sided_hyperintensity_ml": bilateral})["flags"]


def test_faint_rims_are_trimmed_and_faint_lesions_far_from_bright_ones_are_kept():
    from bids_deepwmh.core.lesions import LESION_CORE_FRACTION, ball, trim_faint_rims

    bright_core, bright = blob(SHAPE, (20, 36, 30), 3), blob(SHAPE, (20, 36, 30), 5)
    faint = blob(SHAPE, (44, 36, 30), 3)  # 24 mm away, a tenth as bright as the other's core
    score = np.where(bright_core, 20.0, np.where(bright, 0.5 * LESION_CORE_FRACTION * 20.0, 0))
    score = np.where(faint, 2.0, score).astype(np.float32)
    kept = trim_faint_rims(bright | faint, score, (1.0, 1.0, 1.0), min_mm3=3.0)
    assert kept[bright_core].all() and not kept[bright & ~bright_core].any()
    assert kept[faint].all()
    assert not trim_faint_rims(np.zeros(SHAPE, bool), score, (1.0, 1.0, 1.0), min_mm3=3.0).any()
    # the radius is in millimetres: 6 mm slices compare a voxel with its own slice only
    assert ball((1.0, 1.0, 6.0), 4.0).shape == (9, 9, 1) and ball((2.0, 2.0, 2.0), 4.0).sum() == 33


def test_score_and_segment_find_the_blobs():
    image, brain, wm, lesions = brain_phantom()
    normalised = anatomical.normalise(image, brain, wm.astype(np.float32))
    # A reference is blurred by registration across people: smooth the expected map too.
    expected = ndimage.gaussian_filter(np.where(wm, 1.0, 1.3), 1.5).astype(np.float32)
    spread = np.full(SHAPE, 0.10, np.float32)  # the packaged reference's spread in white matter
    score = anatomical.hyperintensity_score(normalised, brain, wm, expected, spread, (1, 1, 1))
    assert score[lesions].mean() > anatomical.THRESHOLD
    assert np.median(score[wm & ~lesions]) == 0
    found = anatomical.segment(score, wm, zooms=(1, 1, 1))
    assert metrics.dice(found, lesions) > 0.8
    assert metrics.lesion_detection(found, lesions) == (1.0, 1.0)


def test_bright_cortex_and_lesion_load_do_not_widen_the_spread():
    """A 3D FLAIR's cortex is bright and small-vessel disease can fill much of the white matter:
    neither may widen the spread that divides the score and hide the lesions."""
    image, brain, wm, lesions = brain_phantom(contrast=0.6, noise=0.05)
    texture = ndimage.gaussian_filter(np.random.default_rng(5).normal(0, 1, SHAPE), 2.0)
    image = (image + 0.08 * texture / texture.std() * brain).astype(np.float32)  # white matter is not uniform
    expected, spread = np.ones(SHAPE, np.float32), np.full(SHAPE, 0.02, np.float32)

    def lesion_score(scan):
        normalised = anatomical.normalise(scan, brain, wm.astype(np.float32))
        return anatomical.hyperintensity_score(normalised, brain, wm, expected, spread, (1, 1, 1))[lesions].mean()

    plain = lesion_score(image)
    bright_cortex = np.where(brain & ~wm, image + np.random.default_rng(3).normal(0.3, 0.25, SHAPE), image)
    confluent = image + 0.4 * (blob(SHAPE, (32, 36, 20), 8) & wm & ~lesions)
    assert plain > anatomical.THRESHOLD
    assert lesion_score(bright_cortex.astype(np.float32)) == pytest.approx(plain, rel=0.15)
    assert lesion_score(confluent.astype(np.float32)) == pytest.approx(plain, rel=0.15)


def test_a_smooth_white_matter_gets_the_floor_spread():
    uniform = np.random.default_rng(0).normal(1.0, 0.005, 10_000)
    assert anatomical.white_matter_spread(uniform) == pytest.approx(anatomical.MIN_WHITE_MATTER_SPREAD, rel=0.01)


def test_reference_raises_the_bar_where_normal_tissue_is_bright():
    image, brain, wm, lesions = brain_phantom()
    normalised = anatomical.normalise(image, brain, wm.astype(np.float32))
    spread = np.full(SHAPE, 0.05, np.float32)
    flat = anatomical.hyperintensity_score(normalised, brain, wm, np.ones(SHAPE, np.float32), spread, (1, 1, 1))
    expected = np.where(lesions, 1.6, 1.0).astype(np.float32)  # 'normally bright' where the blobs are
    knowing = anatomical.hyperintensity_score(normalised, brain, wm, expected, spread, (1, 1, 1))
    assert knowing[lesions].mean() < 0.3 * flat[lesions].mean()


def test_only_the_lowest_slices_whose_csf_is_not_nulled_are_found():
    image, brain, wm, _ = brain_phantom()
    normalised = anatomical.normalise(image, brain, wm.astype(np.float32))
    lowest, top = np.flatnonzero(brain.any((0, 1)))[[0, -1]]
    around = near_mask(brain, (1, 1, 1), 2.0) & ~brain
    inflow = normalised.copy()
    inflow[..., lowest][around[..., lowest] | brain[..., lowest]] = 2.5  # CSF bright, as on a T2w
    assert anatomical.unnulled_slices(normalised, brain, np.eye(4)) == (2, [])
    assert anatomical.unnulled_slices(inflow, brain, np.eye(4)) == (2, [lowest])
    flipped = np.diag([1.0, 1.0, -1.0, 1.0])  # the lowest slice last on the grid
    assert anatomical.unnulled_slices(inflow[..., ::-1], brain[..., ::-1], flipped) == (2, [SHAPE[2] - 1 - lowest])
    bright_top = normalised.copy()
    bright_top[..., top][brain[..., top]] = 2.5  # lesions at the top of the field of view are kept
    assert anatomical.unnulled_slices(bright_top, brain, np.eye(4)) == (2, [])


def test_one_unnulled_slice_is_said_in_the_report_and_two_are_flagged():
    from bids_deepwmh.reports.summary import _quality_banner

    one, two = (quality.assess({"brain_volume_ml": 1200, "unnulled_csf_slices": n}) for n in (1, 2))
    assert not one["flagged"] and "The lowest slice shows CSF bright" in _quality_banner(one)
    assert two["flags"] == ["unnulled_csf_slices"] and "The lowest 2 slices show" in _quality_banner(two)
    assert "CSF bright" not in _quality_banner(quality.assess({"brain_volume_ml": 1200, "unnulled_csf_slices": 0}))


def test_small_components_are_removed():
    mask = np.zeros((20, 20, 20), bool)
    mask[2, 2, 2] = True  # 1 mm3
    mask[10:12, 10:12, 10:12] = True  # 8 mm3
    kept = remove_small_components(mask, voxel_mm3=1.0, min_mm3=3.0)
    assert not kept[2, 2, 2] and kept[10:12, 10:12, 10:12].all()
    assert remove_small_components(mask, voxel_mm3=0.25, min_mm3=3.0).sum() == 0


@pytest.mark.parametrize("zooms", [(1.0, 1.0, 1.0), (0.45, 0.45, 6.5)])
def test_distances_on_the_bounding_box_match_those_over_the_whole_grid(zooms):
    rng = np.random.default_rng(0)
    mask = np.zeros((60, 50, 30), bool)
    mask[20:35, 10:30, 5:20] = rng.random((15, 20, 15)) > 0.3  # ragged, and off the grid's centre
    mask[0:3, 0:4, 0:2] = True  # at the grid's corner
    for distance in (0.5, 2.0, 7.0):
        assert np.array_equal(near_mask(mask, zooms, distance),
                              ndimage.distance_transform_edt(~mask, sampling=zooms) <= distance)
        assert np.array_equal(deeper_than(mask, zooms, distance),
                              ndimage.distance_transform_edt(mask, sampling=zooms) > distance)
    assert not near_mask(np.zeros_like(mask), zooms, 3.0).any()
    assert not deeper_than(np.zeros_like(mask), zooms, 3.0).any()


def test_reference_is_robust_to_lesions_in_different_places(tmp_path):
    rng = np.random.default_rng(1)
    _, brain, _, _ = brain_phantom()
    scans = []
    for i, (centre, radius) in enumerate(BLOBS * 3):
        scan = 1 + rng.normal(0, 0.05, SHAPE)
        scan[blob(SHAPE, np.add(centre, i), radius)] += 0.8  # each scan's lesion elsewhere
        scans.append(np.where(brain, scan, np.nan))
    expected, spread = build_reference(np.array(scans), (1, 1, 1), brain.astype(np.float32))
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
    expected, spread = build_reference(np.array(scans), (1, 1, 1), brain.astype(np.float32))
    assert np.median(expected[site]) == pytest.approx(1.0, abs=0.02)
    assert np.median(spread[site]) == pytest.approx(np.median(spread[brain & ~site]), rel=0.2)
    faint = np.where(brain, 1 + rng.normal(0, 0.05, SHAPE), 0)
    faint[site] += 0.4  # five times the least spread the score allows (MIN_WHITE_MATTER_SPREAD)
    score = anatomical.hyperintensity_score(faint, brain, brain.astype(np.float32), expected, spread, (1, 1, 1))
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
    regions[8, 1, 1] = 4  # an infratentorial lesion of 1 voxel
    values = wmh_volumes(regions, np.ones(regions.shape, bool), voxel_mm3=2.0,
                         lesion_regions=["periventricular", "deep", "infratentorial"])
    assert values == {
        "wmh_volume_ml": 0.042, "wmh_count": 3, "brain_volume_ml": 2.0, "wmh_fraction_of_brain": 0.021,
        "periventricular_wmh_volume_ml": 0.016, "periventricular_wmh_count": 1,
        "periventricular_wmh_fraction_of_brain": 0.008,
        "deep_wmh_volume_ml": 0.024, "deep_wmh_count": 1, "deep_wmh_fraction_of_brain": 0.012,
        "infratentorial_wmh_volume_ml": 0.002, "infratentorial_wmh_count": 1,
        "infratentorial_wmh_fraction_of_brain": 0.001,
        "ventricle_lining_wmh_volume_ml": 0.0, "ventricle_lining_wmh_count": 0,
        "ventricle_lining_wmh_fraction_of_brain": 0.0,
        "lateral_ventricles_volume_ml": 0.0,
    }


def test_linings_are_periventricular_and_counted_apart():
    regions = np.zeros((10, 10, 10), np.uint8)
    regions[1:3, 1:3, 1:3] = 1  # a periventricular lesion of 8 voxels ...
    regions[1:3, 1:3, 3] = 5  # ... whose top is a lining (4 voxels)
    regions[6, 6, 6:8] = 5  # a lining of its own, 2 voxels
    values = wmh_volumes(regions, np.ones(regions.shape, bool), voxel_mm3=1.0,
                         lesion_regions=["periventricular", "periventricular"])
    assert values["wmh_volume_ml"] == values["periventricular_wmh_volume_ml"] == 0.014
    assert values["ventricle_lining_wmh_volume_ml"] == 0.006
    assert values["ventricle_lining_wmh_count"] == 2 and values["periventricular_wmh_count"] == 2


def _noisy_head(sigma):
    """The phantom brain in a scalp, 2.5 mm voxels, with Rician noise of ``sigma`` (brain at 1000-1300)."""
    image, brain, _, _ = brain_phantom()
    scalp = ellipsoid(radii=(31, 35, 29)) & ~ellipsoid(radii=(29, 33, 27))
    rng = np.random.default_rng(0)
    head = np.where(scalp, 1.4, image) * 1000
    noisy = np.hypot(head + rng.normal(0, sigma, SHAPE), rng.normal(0, sigma, SHAPE)).astype(np.float32)
    return nib.Nifti1Image(noisy, np.diag([2.5, 2.5, 2.5, 1.0])), brain


def test_where_hd_bet_finds_no_brain_the_registered_template_brain_is_kept():
    img, brain = _noisy_head(sigma=600)  # so noisy that HD-BET finds nothing, even on its retry
    extraction = skullstrip.extract_brain(img, template_prior=lambda: ndimage.gaussian_filter(brain * 1.0, 1))
    assert extraction.method == skullstrip.TEMPLATE
    assert [r["Method"] for r in extraction.rejected] == [skullstrip.LEARNED, skullstrip.LEARNED_RETRY]
    assert extraction.rejected[0]["Reason"] == "empty" or "outside" in extraction.rejected[0]["Reason"]
    assert metrics.dice(extraction.mask, brain) > 0.95
    assert extraction.metadata()["BrainExtraction"] == "template"


def test_a_brain_mask_is_implausible_when_empty_too_small_or_unlike_the_registered_template_brain():
    _, brain, _, _ = brain_phantom()
    zooms = (2.5, 2.5, 2.5)  # the phantom's brain is then 1.2 L
    upper_half = brain.copy()
    upper_half[..., : SHAPE[2] // 2] = False
    assert implausible_brain(brain, brain, zooms) is None
    assert implausible_brain(np.zeros_like(brain), brain, zooms) == "empty"
    assert "outside the 600-2200 mL" in implausible_brain(brain, brain, (1.0, 1.0, 1.0))
    assert "Dice 0.6" in implausible_brain(upper_half, brain, zooms)  # 600 mL, as HD-BET cut sub-u79


def test_an_image_where_neither_hd_bet_nor_the_template_finds_a_brain_fails_in_plain_words(monkeypatch):
    img, brain = _noisy_head(sigma=30)
    monkeypatch.setattr(skullstrip, "brain_probability", lambda data, *args, **kwargs: np.zeros(data.shape))
    with pytest.raises(NoBrainError, match="no brain found in the image: .*; check in a viewer"):
        skullstrip.extract_brain(img, template_prior=lambda: np.zeros(brain.shape))


def test_a_check_that_cannot_be_measured_says_why_and_flags_nothing():
    image, brain, wm, _ = brain_phantom()
    no_ventricles = np.zeros_like(brain)
    wm_csf, gm_wm = quality.tissue_contrast(image, wm, brain & ~wm, no_ventricles)
    assert isinstance(wm_csf, quality.NotMeasurable) and "0 voxels of lateral ventricles" in wm_csf.reason
    assert np.isfinite(gm_wm)
    record = quality.assess({"wm_csf_contrast": wm_csf, "gm_wm_contrast": float("nan"), "brain_volume_ml": 1200})
    assert {"wm_csf_contrast", "gm_wm_contrast"} <= set(record["not_measurable"])
    for name in ("wm_csf_contrast", "gm_wm_contrast"):
        check = record["checks"][name]
        assert check["value"] is None and not check["flagged"] and check["not_measurable"]
    assert not record["flagged"] and not record["out_of_distribution"]
    assert all(c["value"] is None or np.isfinite(c["value"]) for c in record["checks"].values())
