"""Every Nipype interface, run on phantom files (identity transforms where one is needed)."""

import json

import nibabel as nib
import numpy as np
import pytest
from phantoms import SHAPE, brain_phantom, ellipsoid, identity_transform, save
from scipy import ndimage

from bids_deepwmh.core.metrics import dice
from bids_deepwmh.core.reference import save_reference
from bids_deepwmh.core.template import WMH_TISSUE_MARGIN_MM
from bids_deepwmh.interfaces.preprocessing import BrainExtraction, Conform, N4BiasCorrection, RegisterToTemplate
from bids_deepwmh.interfaces.reference import BuildReference
from bids_deepwmh.interfaces.priors import TemplateMasks
from bids_deepwmh.interfaces.segmentation import AnatomicalWMH
from bids_deepwmh.interfaces.utils import ApplyTransform, ToSourceGrid


@pytest.fixture
def phantom(tmp_path):
    image, brain, wm, lesions = brain_phantom()
    return {
        "image": image, "brain": brain, "wm": wm, "lesions": lesions,
        "flair": save(image * 500, tmp_path / "flair.nii.gz"),
        "brain_mask": save(brain, tmp_path / "brain.nii.gz", dtype=np.uint8),
        "wm_prob": save(wm, tmp_path / "wm.nii.gz"),
        "aseg": save(np.where(wm, 2, np.where(ellipsoid(), 3, 0)), tmp_path / "aseg.nii.gz", dtype=np.int16),
        "identity": identity_transform(tmp_path / "identity.txt"),
    }


def run(interface, tmp_path, name):
    (tmp_path / name).mkdir()
    return interface.run(cwd=str(tmp_path / name)).outputs


def test_conform_and_n4(phantom, tmp_path):
    conformed = run(Conform(in_file=phantom["flair"]), tmp_path, "conform")
    n4 = run(N4BiasCorrection(in_file=conformed.out_file, brain_mask=phantom["brain_mask"]), tmp_path, "n4")
    corrected = nib.load(n4.out_file).get_fdata()
    assert np.median(corrected[phantom["brain"]]) == pytest.approx(1000, rel=0.05)


def test_conform_names_the_file_when_it_fails(tmp_path):
    bad = save(np.ones((64, 64)), tmp_path / "sub-bad_FLAIR.nii.gz")
    with pytest.raises(Exception, match="sub-bad_FLAIR.nii.gz: it is a 2D image"):
        run(Conform(in_file=bad), tmp_path, "conform")


def test_registration_recovers_a_shift(phantom, tmp_path):
    shifted = save(ndimage.shift(phantom["image"] * 500, (4, -3, 2), order=1), tmp_path / "moved.nii.gz")
    shifted_brain = save(ndimage.shift(phantom["brain"], (4, -3, 2), order=0), tmp_path / "moved_brain.nii.gz",
                         dtype=np.uint8)
    reg = run(
        RegisterToTemplate(in_file=shifted, brain_mask=shifted_brain, template=phantom["flair"]),
        tmp_path, "register",
    )
    back = run(
        ApplyTransform(in_file=shifted, reference=phantom["flair"], transform=reg.forward_transform),
        tmp_path, "apply",
    )
    moved_back = nib.load(back.out_file).get_fdata()
    assert dice(moved_back > 300, phantom["image"] * 500 > 300) > 0.9
    assert reg.inverse_transform.endswith(".h5") and reg.similarity < 0


def _turned(angle_deg, centre):
    """A rotation of the world by ``angle_deg`` about the left-right axis through ``centre``: what an
    oblique acquisition's header adds to the same voxels."""
    angle = np.deg2rad(angle_deg)
    turn = np.eye(4)
    turn[1:3, 1:3] = [[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]
    to_centre, back = np.eye(4), np.eye(4)
    to_centre[:3, 3], back[:3, 3] = -np.asarray(centre), centre
    return back @ turn @ to_centre


def test_n4_and_registration_do_not_change_when_only_the_header_turns(phantom, tmp_path):
    shifted = ndimage.shift(phantom["image"] * 500, (4, -3, 2), order=1)
    brain = ndimage.shift(phantom["brain"], (4, -3, 2), order=0)
    corrected, template_wm = {}, {}
    for name, affine in (("plain", np.eye(4)), ("oblique", _turned(25, np.array(SHAPE) / 2))):
        flair = save(shifted, tmp_path / f"{name}.nii.gz", affine)
        brain_mask = save(brain, tmp_path / f"{name}_brain.nii.gz", affine, dtype=np.uint8)
        n4 = run(N4BiasCorrection(in_file=flair, brain_mask=brain_mask), tmp_path, f"n4_{name}")
        reg = run(RegisterToTemplate(in_file=n4.out_file, brain_mask=brain_mask, template=phantom["flair"]),
                  tmp_path, f"register_{name}")
        back = run(ApplyTransform(in_file=phantom["wm_prob"], reference=flair, transform=reg.inverse_transform),
                   tmp_path, f"apply_{name}")
        corrected[name], template_wm[name] = nib.load(n4.out_file).get_fdata(), nib.load(back.out_file).get_fdata()
    assert np.array_equal(corrected["plain"], corrected["oblique"])  # the same voxels, bit for bit
    assert dice(template_wm["plain"] > 0.5, ndimage.shift(phantom["wm"], (4, -3, 2), order=0)) > 0.95
    plain, oblique = template_wm["plain"], template_wm["oblique"]
    assert dice(plain > 0.5, oblique > 0.5) > 0.99 and np.abs(plain - oblique).mean() < 0.01


def test_brain_extraction_keeps_a_skull_stripped_brain_and_binarised_resampling(phantom, tmp_path):
    out = run(BrainExtraction(in_file=phantom["flair"], template=phantom["flair"], template_mask=phantom["brain_mask"]),
              tmp_path, "brain_extraction")
    mask = np.asarray(nib.load(out.out_mask).dataobj)
    assert mask.dtype == np.uint8 and dice(mask > 0, phantom["brain"]) > 0.99
    assert out.metadata == {"BrainExtraction": "given", "BrainExtractionRejected": []}
    moved = run(
        ApplyTransform(in_file=out.out_mask, reference=phantom["flair"], transform=phantom["identity"],
                       binarize=True),
        tmp_path, "apply",
    )
    assert set(np.unique(nib.load(moved.out_file).dataobj)) <= {0, 1}


def _template_masks_on_flair(phantom, tmp_path):
    """The phantom's template masks, brought to the FLAIR as the priors workflow does (identity)."""
    masks = run(TemplateMasks(wm_probability=phantom["wm_prob"], aseg=phantom["aseg"]), tmp_path, "template_masks")
    return {
        name: run(ApplyTransform(in_file=getattr(masks, name), reference=phantom["flair"],
                                 transform=phantom["identity"], binarize=True), tmp_path, name).out_file
        for name in ("allowed_tissue", "wmh_tissue", "right_hemisphere")
    }


def test_anatomical_wmh(phantom, tmp_path):
    expected = ndimage.gaussian_filter(np.where(phantom["wm"], 1.0, 1.3), 1.5) * phantom["brain"]
    reference, _ = save_reference(tmp_path / "ref.nii.gz", expected, np.full(SHAPE, 0.1), np.eye(4), {})
    reference_on_flair = run(
        ApplyTransform(in_file=str(reference), reference=phantom["flair"], transform=phantom["identity"]),
        tmp_path, "reference",
    ).out_file
    assert nib.load(reference_on_flair).shape == (*SHAPE, 2)
    out = run(
        AnatomicalWMH(in_file=phantom["flair"], brain_mask=phantom["brain_mask"], reference=reference_on_flair,
                      wm_probability=phantom["wm_prob"], aseg=phantom["aseg"],
                      allowed_tissue=_template_masks_on_flair(phantom, tmp_path)["allowed_tissue"]),
        tmp_path, "anatomical",
    )
    wmh = np.asarray(nib.load(out.wmh_mask).dataobj) > 0
    assert dice(wmh, phantom["lesions"]) > 0.75
    score, network_score = (nib.load(path).get_fdata() for path in (out.score, out.network_score))
    cortex = np.asarray(nib.load(phantom["aseg"]).dataobj) == 3
    assert score[cortex].max() > 0 and not network_score[cortex].any()  # the network reads no score in the cortex
    assert np.array_equal(network_score[~cortex], score[~cortex])
    normalised = nib.load(out.normalised).get_fdata()
    assert np.median(normalised[phantom["wm"] & ~phantom["lesions"]]) == pytest.approx(1.0, abs=0.05)


def test_template_masks_keep_white_matter_with_its_margin_and_split_the_hemispheres(phantom, tmp_path):
    masks = _template_masks_on_flair(phantom, tmp_path)
    tissue = np.asarray(nib.load(masks["wmh_tissue"]).dataobj) > 0
    distance_mm = ndimage.distance_transform_edt(~phantom["wm"])  # 1 mm grid
    assert tissue[distance_mm <= WMH_TISSUE_MARGIN_MM].all()
    assert not tissue[distance_mm > WMH_TISSUE_MARGIN_MM + 1].any()
    assert phantom["brain"][~tissue].any()  # the outer cortex of the phantom is left out
    allowed = np.asarray(nib.load(masks["allowed_tissue"]).dataobj) > 0
    assert np.array_equal(allowed, phantom["wm"])  # aseg label 2: cerebral white matter
    right = np.asarray(nib.load(masks["right_hemisphere"]).dataobj) > 0
    x = nib.affines.apply_affine(nib.load(phantom["flair"]).affine, np.argwhere(right | ~right))[:, 0]
    assert np.array_equal(right.reshape(-1), x > 0)


def test_to_source_grid_restores_shape_and_affine(phantom, tmp_path):
    lps = np.array([[-1.0, 0, 0, 63], [0, -1.0, 0, 71], [0, 0, 1.0, 0], [0, 0, 0, 1]])
    source = save(phantom["image"], tmp_path / "source.nii.gz", lps)
    conformed = run(Conform(in_file=source), tmp_path, "conform")
    out = run(ToSourceGrid(in_file=conformed.out_file, source_file=source, dtype="uint8"), tmp_path, "native")
    img = nib.load(out.out_file)
    assert img.shape == SHAPE and np.allclose(img.affine, lps) and img.get_data_dtype() == np.uint8


def test_build_reference(phantom, tmp_path):
    flairs = [save(phantom["image"] * (1 + 0.01 * i), tmp_path / f"f{i}.nii.gz") for i in range(4)]
    out = run(
        BuildReference(flairs=flairs, brain_masks=[phantom["brain_mask"]] * 4, source_files=flairs,
                       template_mask=phantom["brain_mask"], wm_probability=phantom["wm_prob"],
                       out_file=str(tmp_path / "ref.nii.gz"), metadata={"Licenses": {"f0": "CC0"}}),
        tmp_path, "build",
    )
    meta = json.loads(open(out.out_json).read())
    assert meta["Licenses"] == {"f0": "CC0"} and len(meta["Sources"]) == 4
    expected = nib.load(out.out_file).get_fdata()[..., 0]
    assert np.median(expected[phantom["wm"] & ~phantom["lesions"]]) == pytest.approx(1.0, abs=0.02)
