from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from phantoms import SHAPE, brain_phantom, save

from bids_deepwmh.core.conform import InvalidImageError, conform, to_source_grid

LPS = np.array([[-1.0, 0, 0, 63], [0, -1.0, 0, 71], [0, 0, 1.0, -30], [0, 0, 0, 1]])


def test_reorients_to_ras_and_back_exactly(tmp_path):
    image = brain_phantom()[0]
    source = save(image * 100, tmp_path / "lps.nii.gz", LPS, np.int16)
    conformed = conform(source)
    assert nib.aff2axcodes(conformed.affine) == ("R", "A", "S")
    assert conformed.get_data_dtype() == np.float32
    back = to_source_grid(conformed, source)
    original = nib.load(source)
    assert back.shape == original.shape
    np.testing.assert_allclose(back.affine, original.affine)
    np.testing.assert_allclose(back.get_fdata(), original.get_fdata(), atol=1e-3)


def test_cleans_nan_and_inf(tmp_path):
    image = brain_phantom()[0]
    image[0, 0, 0], image[1, 1, 1] = np.nan, np.inf
    out = conform(save(image, tmp_path / "nan.nii.gz"))
    assert np.isfinite(out.get_fdata()).all()


def test_accepts_single_volume_4d(tmp_path):
    image = brain_phantom()[0][..., None]
    assert conform(save(image, tmp_path / "4d.nii.gz")).ndim == 3


@pytest.mark.parametrize(
    "array, message",
    [
        (np.ones((64, 64)), "it is a 2D image"),
        (np.ones((64, 64, 1)), "it is a 2D image"),
        (np.ones((64, 64, 60, 3)), "it holds 3 volumes"),
        (np.zeros((64, 72, 60)), "the image is empty"),
        (np.ones((30, 30, 30)), "too small for a brain"),
    ],
)
def test_rejects_what_is_not_a_brain_image(tmp_path, array, message):
    path = save(array, tmp_path / "sub-x_FLAIR.nii.gz")
    with pytest.raises(InvalidImageError, match=message) as info:
        conform(path)
    assert "sub-x_FLAIR.nii.gz" in str(info.value)


def test_rejects_unreadable_file(tmp_path):
    path = tmp_path / "sub-x_FLAIR.nii.gz"
    path.write_bytes(b"not a nifti")
    with pytest.raises(InvalidImageError, match="cannot be read as a NIfTI image") as info:
        conform(path)
    assert "dcm2niix" in str(info.value) and "Error" not in str(info.value)


def test_refuses_a_header_without_position_and_says_why(tmp_path):
    img = nib.Nifti1Image(brain_phantom()[0], np.eye(4))
    img.set_sform(None, code=0)
    img.set_qform(None, code=0)
    path = tmp_path / "sub-x_FLAIR.nii.gz"
    nib.save(img, path)
    with pytest.raises(InvalidImageError, match=r"sub-x_FLAIR.nii.gz: .*qform and sform codes are both 0"):
        conform(path)


@pytest.mark.parametrize("affine", [np.eye(4), LPS], ids=["ras", "lps"])
def test_refuses_a_truncated_file_and_says_so(tmp_path, affine):
    path = Path(save(brain_phantom()[0] * 100, tmp_path / "sub-x_FLAIR.nii.gz", affine, dtype=np.int16))
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(InvalidImageError, match="sub-x_FLAIR.nii.gz: the file is damaged or incomplete") as info:
        conform(path)
    assert "Error" not in str(info.value)  # the exception that caused it stays in the traceback


def test_the_result_does_not_depend_on_how_the_intensities_are_stored(tmp_path):
    """A scale, an offset that makes the background negative, float64: the same image, scaled."""
    image = np.round(brain_phantom()[0] * 400 + np.abs(np.random.default_rng(0).normal(0, 20, SHAPE)))  # noisy air
    original = conform(save(image, tmp_path / "original.nii.gz", LPS, np.int16)).get_fdata()
    stored = conform(save((image - 150) * 0.37, tmp_path / "offset.nii.gz", LPS, np.float64)).get_fdata()
    np.testing.assert_allclose(stored, original * 0.37, atol=1e-3)


def test_messages_give_plain_numbers(tmp_path):
    path = save(np.ones((30, 30, 30)), tmp_path / "sub-x_FLAIR.nii.gz")
    with pytest.raises(InvalidImageError) as info:
        conform(path)
    assert "(30 x 30 x 30 mm)" in str(info.value) and "np." not in str(info.value)
