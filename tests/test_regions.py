"""Periventricular and deep WMH on a phantom with lateral ventricles and lesions at known distances."""

import nibabel as nib
import numpy as np
import pytest
from phantoms import ellipsoid, identity_transform, save
from scipy import ndimage

from bids_deepwmh.core.anatomical import normalise
from bids_deepwmh.core.metrics import dice
from bids_deepwmh.core import regions
from bids_deepwmh.core.regions import refine_ventricles
from bids_deepwmh.interfaces.segmentation import RegionalWMH, WMHVolumes
from bids_deepwmh.utils.tables import read_tsv

SHAPE = (96, 96, 80)
CENTRE = (48, 48, 40)
PERIVENTRICULAR_BLOB = ((42, 48, 50), 2.5)  # 1.5 to 6.5 mm above the left ventricle's roof
DEEP_BLOB = ((20, 48, 40), 2.5)  # at least 16 mm lateral to the ventricles
INFRATENTORIAL_BLOB = ((48, 48, 14), 2.5)  # in the brainstem
BRAINSTEM = ((48, 48, 14), 6)


def _ball(centre, radius):
    return ellipsoid(SHAPE, centre, (radius,) * 3)


@pytest.fixture(scope="module")
def phantom(tmp_path_factory):
    """Grey rim (1.3), white matter (1.0), dark ventricles (0.2), two bright lesions (1.8); the
    ventricle prior (as a registration would give it) is shifted by 2-3 mm and too small."""
    tmp = tmp_path_factory.mktemp("regions")
    brain = ellipsoid(SHAPE, CENTRE, (40, 44, 34))
    wm = ellipsoid(SHAPE, CENTRE, (36, 40, 30))
    ventricles = ellipsoid(SHAPE, (42, 48, 40), (3, 12, 6)) | ellipsoid(SHAPE, (54, 48, 40), (3, 12, 6))
    lesions = _ball(*PERIVENTRICULAR_BLOB) | _ball(*DEEP_BLOB) | _ball(*INFRATENTORIAL_BLOB)
    image = np.where(brain, 1.3, 0.0) - 0.3 * wm
    image[ventricles] = 0.2
    image[lesions] = 1.8
    image += np.random.default_rng(0).normal(0, 0.02, SHAPE) * brain
    prior = ndimage.binary_erosion(np.roll(ventricles, (2, 0, 2), axis=(0, 1, 2)))
    aseg = np.where(wm, 2, 0)
    aseg[_ball(*BRAINSTEM)] = 16
    aseg[prior & (np.indices(SHAPE)[0] < 48)] = 4
    aseg[prior & (np.indices(SHAPE)[0] >= 48)] = 43
    return {
        "image": image, "brain": brain, "wm": wm, "ventricles": ventricles, "prior": prior, "lesions": lesions,
        "flair": save(image * 500, tmp / "flair.nii.gz"),
        "brain_mask": save(brain, tmp / "brain.nii.gz", dtype=np.uint8),
        "wmh": save(lesions, tmp / "wmh.nii.gz", dtype=np.uint8),
        "probseg": save(0.9 * lesions, tmp / "probseg.nii.gz"),
        "aseg": save(aseg, tmp / "aseg.nii.gz", dtype=np.int16),
        "identity": identity_transform(tmp / "identity.txt"),
        "tmp": tmp,
    }


def test_ventricles_are_refined_on_the_scan(phantom):
    refined = refine_ventricles(phantom["image"], phantom["prior"], phantom["brain"], (1.0, 1.0, 1.0))
    assert dice(phantom["prior"], phantom["ventricles"]) < 0.7
    assert dice(refined, phantom["ventricles"]) > 0.95


def test_regions_lesion_table_and_volumes(phantom):
    tmp = phantom["tmp"]
    (tmp / "regional").mkdir()
    normalised = save(normalise(phantom["image"] * 500, phantom["brain"], phantom["wm"].astype(np.float32)),
                      tmp / "normalised.nii.gz")
    regional = RegionalWMH(
        normalised=normalised, brain_mask=phantom["brain_mask"], wmh_mask=phantom["wmh"],
        probseg=phantom["probseg"], inverse_transform=phantom["identity"], aseg=phantom["aseg"],
    ).run(cwd=str(tmp / "regional")).outputs
    regions = np.asanyarray(nib.load(regional.regions).dataobj)
    periventricular, deep = _ball(*PERIVENTRICULAR_BLOB), _ball(*DEEP_BLOB)
    infratentorial = _ball(*INFRATENTORIAL_BLOB)
    assert np.all(regions[periventricular] == 1) and np.all(regions[deep] == 2)
    assert np.all(regions[infratentorial] == 4)
    assert dice(regions == 3, phantom["ventricles"]) > 0.95
    assert [r["name"] for r in read_tsv(regional.regions_table)] == ["periventricular", "deep", "lateral_ventricles",
                                                                      "infratentorial", "ventricle_lining"]

    rows = {r["region"]: r for r in read_tsv(regional.lesions)}
    assert sorted(rows) == ["deep", "infratentorial", "periventricular"]
    for region, (centre, _), mask in (("periventricular", PERIVENTRICULAR_BLOB, periventricular),
                                      ("deep", DEEP_BLOB, deep), ("infratentorial", INFRATENTORIAL_BLOB, infratentorial)):
        row = rows[region]
        assert float(row["volume_mm3"]) == pytest.approx(mask.sum())
        native = [float(row[f"native_{a}_mm"]) for a in "xyz"]
        template = [float(row[f"template_{a}_mm"]) for a in "xyz"]
        assert native == pytest.approx(centre, abs=0.01)  # identity affine: voxels are millimetres
        assert template == pytest.approx(native, abs=0.01)  # identity transform
        assert float(row["mean_probability"]) == pytest.approx(0.9)
    assert float(rows["periventricular"]["periventricular_fraction"]) == 1.0

    (tmp / "volumes").mkdir()
    volumes = WMHVolumes(regions=regional.regions, lesions=regional.lesions, brain_mask=phantom["brain_mask"],
                         aseg=phantom["aseg"]).run(cwd=str(tmp / "volumes")).outputs
    row = read_tsv(volumes.out_tsv)[0]
    assert int(row["wmh_count"]) == 3
    assert int(row["periventricular_wmh_count"]) == int(row["deep_wmh_count"]) == int(row["infratentorial_wmh_count"]) == 1
    assert float(row["periventricular_wmh_volume_ml"]) == pytest.approx(periventricular.sum() / 1000)
    assert float(row["deep_wmh_volume_ml"]) == pytest.approx(deep.sum() / 1000)
    assert float(row["infratentorial_wmh_volume_ml"]) == pytest.approx(infratentorial.sum() / 1000)
    # the periventricular blob touches the ventricle's roof and reaches 6.5 mm above it: a halo, grade 2;
    # the deep blob, 5 mm across in the white matter, a punctate focus
    assert (row["fazekas_periventricular"], row["fazekas_deep"]) == ("2", "1")
    assert float(row["wmh_volume_ml"]) == pytest.approx(phantom["lesions"].sum() / 1000)
    assert float(row["deep_wmh_fraction_of_brain"]) == pytest.approx(deep.sum() / phantom["brain"].sum(), abs=1e-6)


def test_linings_and_caps_are_labelled_apart(phantom):
    ventricles = phantom["ventricles"]
    shell = ndimage.binary_dilation(ventricles, iterations=2) & ~ventricles
    lining = shell & (np.indices(SHAPE)[0] >= 48) & (np.indices(SHAPE)[1] < 44)  # 2 mm thick, along the right one
    halo, deep = _ball(*PERIVENTRICULAR_BLOB), _ball(*DEEP_BLOB)
    wmh = lining | halo | deep
    linings = regions.ventricle_linings(wmh, regions.wall_distance(ventricles, (1.0, 1.0, 1.0)))
    assert np.array_equal(linings, lining)  # the halo reaches 6.5 mm from the wall, the deep blob 16 mm away
    zone = regions.periventricular_zone(ventricles, (1.0, 1.0, 1.0))
    dseg = regions.region_map(wmh, zone, ventricles, np.zeros(SHAPE, bool), linings)
    assert np.all(dseg[lining] == regions.VENTRICLE_LINING) and np.all(dseg[halo] == 1) and np.all(dseg[deep] == 2)
    (row,) = [r for r in regions.lesion_rows(dseg, 0.9 * wmh, np.eye(4)) if r["volume_mm3"] == lining.sum()]
    assert row["region"] == "periventricular"
