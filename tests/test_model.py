"""The learned stage on synthetic data: training, cleaning, bundles and inference."""

import json

import nibabel as nib
import numpy as np
import pytest
import torch

from bids_deepwmh.model import synthetic, training
from bids_deepwmh.model.bundle import BundleError, load_bundle, write_bundle
from bids_deepwmh.model.inference import (
    INFERENCE_DEFAULTS,
    predict_probability,
    segment_scan,
    torch_forward,
    window_starts,
)
from bids_deepwmh.model.network import UNet3D
from bids_deepwmh.model.working import Grid, network_input, to_grid
from bids_deepwmh.utils import onnx_models
from tests.phantoms import brain_phantom, save

TINY = training.TrainingSettings(score_channel=False, base_channels=4, levels=3, patch=24, batch_size=2,
                                 learning_rate=1e-2,
                                 steps_per_epoch=15, cleaning_epochs=2, ensemble_epochs=2, final_epochs=2,
                                 validation_scans=1)


def _cases(count=3):
    cases = []
    for seed in range(count):
        image, brain, _, lesions = brain_phantom(seed=seed, noise=0.05)
        flair = nib.Nifti1Image(image, np.eye(4))
        channels, grid, brain_w = network_input(flair, nib.Nifti1Image(brain.astype(np.uint8), np.eye(4)), 1.0)
        coarse = to_grid(nib.Nifti1Image(lesions.astype(np.float32), np.eye(4)), grid) >= 0.5
        cases.append(training.Case(f"case{seed}", channels, brain_w, coarse & brain_w, grid, None))
    return cases


def test_training_steps_lower_the_loss(tmp_path):
    torch.set_num_threads(1)
    cases = _cases()
    labels = [c.coarse for c in cases]
    rng = np.random.default_rng(123)
    x, y = training.sample_batch(cases, labels, rng, TINY)
    before = training.new_network(TINY, "cleaning")
    training.train_stage("cleaning", cases, labels, TINY, tmp_path, 1, "cpu")
    after = training.load_weights(tmp_path, "cleaning", 1, TINY, "cpu")
    with torch.no_grad():
        before.eval()
        assert training.loss_function(after(x), y) < training.loss_function(before(x), y)


def test_both_stages_resume_and_clean_labels(tmp_path):
    torch.set_num_threads(1)
    cases = _cases()
    state, curve, cleaned, validation, best = training.train(cases, TINY, tmp_path, "cpu")
    assert [r["stage"] for r in curve] == ["cleaning"] * 2 + ["final"] * 2
    assert all("validation_dice" in r for r in curve if r["stage"] == "final")
    assert len(cleaned) == 3 and all(c.shape == case.brain.shape for c, case in zip(cleaned, cases, strict=True))
    assert len(validation) == 1 and best in (1, 2)
    again = training.train(cases, TINY, tmp_path, "cpu")  # everything checkpointed: nothing retrained
    assert again[1] == curve
    assert all(torch.equal(state[k], again[0][k]) for k in state)


def test_new_pseudo_labels_start_a_new_run_instead_of_resuming():
    cases = _cases(2)
    first = training.run_fingerprint(TINY, cases)
    assert training.run_fingerprint(TINY, _cases(2)) == first
    cases[1].coarse[tuple(np.argwhere(cases[1].brain)[0])] ^= True  # one voxel of one pseudo-label
    assert training.run_fingerprint(TINY, cases) != first


def test_synthetic_lesions_are_deep_exactly_labelled_and_scored_alike():
    image, brain, _, lesions = brain_phantom(seed=0, noise=0.05)
    flair_img = nib.Nifti1Image(image, np.eye(4))
    channels, _, brain_w = network_input(flair_img, nib.Nifti1Image(brain.astype(np.uint8), np.eye(4)), 1.0)
    score = np.where(channels[0] > 1.0, (channels[0] - 1.0) * 0.3, 0).astype(np.float32)  # a known relation
    image_w = np.stack([channels[0], score])
    label = score > 0.3
    where = synthetic.canvas(image_w, brain_w, label, 1.0)
    assert where.score(0.5) == 0 and where.score(2.0) == pytest.approx(0.3, abs=0.05)
    assert not (where.normal & label).any() and not (where.normal & (score > 0)).any()
    rng = np.random.default_rng(7)
    new_image, new_label = synthetic.add_lesions(image_w, label, where.normal, where, rng, 1.0)
    added = new_label & ~label
    assert added.sum() > 0 and not (new_label & ~brain_w).any()
    raised = new_image[0] - image_w[0]
    assert (raised >= 0).all() and np.median(raised[added]) > 1.0 and (raised[brain_w & ~new_label] < 0.5 * synthetic.CONTRAST[1]).all()
    assert (new_image[0][~brain_w] == 0).all()  # nothing written outside the brain
    known = added & (new_image[0] <= where.flair_levels.max())
    assert known.any() and np.allclose(new_image[1][known], np.clip(0.3 * new_image[0][known] - 0.3, 0, 2), atol=0.05)
    assert np.array_equal(label, label & new_label) and np.array_equal(image_w[1], score)  # inputs untouched
    volumes = [synthetic.blob(radius, np.random.default_rng(s)).sum() for radius in (1, 9) for s in range(3)]
    assert min(volumes) < 20 and max(volumes) > 1500  # from a few mm3 to mL


def test_sliding_window_covers_the_volume():
    assert window_starts(100, 64, 0.25) == [0, 36]
    assert window_starts(40, 64, 0.25) == [0]
    network = UNet3D(1, 4, 3).eval()
    forward = torch_forward(network)
    volume = np.random.default_rng(0).normal(size=(1, 37, 50, 29)).astype(np.float32)
    tiled = predict_probability(forward, network.divisor, volume, window=(16, 24, 16), overlap=0.5)
    whole = predict_probability(forward, network.divisor, volume, window=(64, 64, 64))
    assert tiled.shape == whole.shape == volume.shape[1:]
    assert 0 <= tiled.min() and tiled.max() <= 1
    assert np.corrcoef(tiled.ravel(), whole.ravel())[0, 1] > 0.5  # same network, different context
    passes = []

    def counted(array):
        passes.append(array.shape)
        return forward(array)

    longer_than_window = predict_probability(counted, network.divisor, volume, window=(64, 32, 64))
    assert len(passes) == 1 and np.array_equal(longer_than_window, whole)  # fewer voxels than the window: one pass
    even = volume[:, :32, :48, :24].copy()  # no padding, so flipping the input only flips the output
    mirrored = predict_probability(forward, network.divisor, even, window=(64, 64, 64), mirror=True)
    assert mirrored.shape == even.shape[1:] and 0 <= mirrored.min() and mirrored.max() <= 1
    flipped = predict_probability(forward, network.divisor, even[:, ::-1].copy(), window=(64, 64, 64), mirror=True)
    assert np.allclose(flipped[::-1], mirrored, atol=1e-5)  # the 8-flip average does not depend on a flip


def _bundle(tmp_path, network):
    reference = save(np.zeros((4, 4, 4, 2)), tmp_path / "reference.nii.gz")
    settings = {
        "bundle_format": 1, "deepwmh_version": "test", "network": {"in_channels": 1, "base_channels": 4, "levels": 3},
        "preprocessing": {"spacing_mm": 1.0, "score_channel": False}, "inference": INFERENCE_DEFAULTS,
    }
    return write_bundle(tmp_path / "bundle", network.state_dict(), settings, reference, [], "# card\n")


def test_bundle_round_trip_and_checks(tmp_path):
    network = UNet3D(1, 4, 3)
    path = _bundle(tmp_path, network)
    loaded = load_bundle(path).network()
    assert all(torch.equal(a, b) for a, b in zip(network.state_dict().values(), loaded.state_dict().values(),
                                                  strict=True))
    weights = path / "weights.pt"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(BundleError, match="weights.pt fails its sha256 check"):
        load_bundle(path)


def test_bundle_of_another_format_is_refused(tmp_path):
    from bids_deepwmh.model.bundle import SETTINGS, write_checksums

    path = _bundle(tmp_path, UNet3D(1, 4, 3))
    settings = json.loads((path / SETTINGS).read_text())
    settings["bundle_format"] = 99
    (path / SETTINGS).write_text(json.dumps(settings))
    write_checksums(path)
    with pytest.raises(BundleError, match="format 99"):
        load_bundle(path)


def test_segment_scan_returns_the_input_grid_deterministically_and_onnx_runtime_matches_pytorch(
        tmp_path, monkeypatch):
    monkeypatch.setenv(onnx_models.CACHE_ENV, str(tmp_path / "cache"))
    bundle = load_bundle(_bundle(tmp_path, UNet3D(1, 4, 3)))
    image, brain, _, _ = brain_phantom()
    affine = np.diag([0.9, 0.9, 3.0, 1.0])
    flair = nib.Nifti1Image(image, affine)
    mask = nib.Nifti1Image(brain.astype(np.uint8), affine)
    probability, wmh = segment_scan(bundle, flair, mask)  # ONNX Runtime, converted into the cache
    assert bundle.onnx().parent.parent == tmp_path / "cache"
    assert probability.shape == wmh.shape == image.shape
    assert probability[~brain].max() == 0 and 0 <= probability.min() and probability.max() <= 1
    again, wmh_again = segment_scan(bundle, flair, mask)
    assert np.array_equal(probability, again) and np.array_equal(wmh, wmh_again)
    in_pytorch, _ = segment_scan(bundle, flair, mask, torch_forward(bundle.network()))
    np.testing.assert_allclose(in_pytorch, probability, atol=1e-4)


def test_working_grid_is_isotropic_and_covers_the_brain():
    image, brain, _, _ = brain_phantom()
    channels, grid, brain_w = network_input(
        nib.Nifti1Image(image, np.diag([0.5, 0.5, 4, 1])),
        nib.Nifti1Image(brain.astype(np.uint8), np.diag([0.5, 0.5, 4, 1])), 1.0,
    )
    assert isinstance(grid, Grid) and np.allclose(np.diag(grid.affine)[:3], 1.0)
    assert abs(brain_w.sum() - brain.sum() * 0.5 * 0.5 * 4) / (brain.sum() * 0.5 * 0.5 * 4) < 0.05
    assert channels.shape == (1, *grid.shape)
