"""Sliding-window inference with Gaussian weighting, optional mirroring; ONNX Runtime on the CPU,
PyTorch on CUDA (and in training)."""

import itertools
import math

import numpy as np
from scipy.special import expit

from bids_deepwmh.core.images import voxel_volume_mm3
from bids_deepwmh.core.lesions import keep_in_tissue, remove_small_components, trim_faint_rims
from bids_deepwmh.model.working import from_grid, network_input

INFERENCE_DEFAULTS = {"window": [192, 192, 192], "overlap": 0.25, "threshold": 0.5, "min_lesion_mm3": 3.0}


def device_for(use_gpu):
    """CUDA when asked for and present, else the CPU."""
    import torch

    return torch.device("cuda" if use_gpu and torch.cuda.is_available() else "cpu")


def torch_forward(network, device="cpu"):
    """``forward(array) -> logits`` of a PyTorch ``network`` (evaluation mode) on ``device``."""
    import torch

    network = network.to(device).eval()

    def forward(array):
        with torch.inference_mode():
            tensor = torch.from_numpy(array).to(device).contiguous(memory_format=torch.channels_last_3d)
            return network(tensor).float().cpu().numpy()

    return forward


def bundle_forward(bundle, use_gpu=False):
    """``forward(array) -> logits`` of the bundle's network: PyTorch on CUDA when asked for and
    present, else ONNX Runtime on one CPU thread (its sums then never depend on ``--nprocs`` or
    ``--omp-nthreads``, so the probability map is the same bit for bit)."""
    if use_gpu:
        device = device_for(True)
        if device.type == "cuda":
            return torch_forward(bundle.network(), device)
    from bids_deepwmh.utils.onnx_models import cpu_session

    return cpu_session(bundle.onnx(), num_threads=1)


def gaussian_weights(shape, sigma_fraction=1 / 8):
    """Weights peaking at a window's centre, so that overlapping windows blend smoothly."""
    axes = [np.exp(-0.5 * ((np.arange(n) - (n - 1) / 2) / (n * sigma_fraction)) ** 2) for n in shape]
    weights = axes[0][:, None, None] * axes[1][None, :, None] * axes[2][None, None, :]
    return np.maximum(weights / weights.max(), 1e-3).astype(np.float32)


def window_starts(length, window, overlap):
    """Start indices of windows of ``window`` voxels covering ``length`` with at least ``overlap``."""
    if length <= window:
        return [0]
    count = math.ceil((length - window) / (window * (1 - overlap))) + 1
    return sorted({int(round(s)) for s in np.linspace(0, length - window, count)})


def _pad_to(volume, shape):
    pads = [(0, 0)] + [(0, target - size) for size, target in zip(volume.shape[1:], shape, strict=True)]
    return np.pad(volume, pads)


def predict_probability(forward, divisor, volume, window=(192, 192, 192), overlap=0.25, mirror=False):
    """WMH probability for a ``(channels, X, Y, Z)`` array, same spatial shape out; ``forward``
    (:func:`torch_forward`, :func:`bundle_forward`) runs the network, whose input sides must be
    multiples of ``divisor``.

    ``window`` bounds the voxels of one pass: a volume with no more voxels than it (a brain
    longer than the window along one axis, shorter along the others) is run in one pass.
    ``mirror`` averages the predictions of all 8 flips of the three axes (8 times slower)."""
    spatial = volume.shape[1:]
    padded_shape = [max(math.ceil(n / divisor) * divisor, divisor) for n in spatial]
    window = [math.ceil(w / divisor) * divisor for w in window]
    if math.prod(padded_shape) <= math.prod(window):
        window = padded_shape
    window = [min(w, n) for w, n in zip(window, padded_shape, strict=True)]
    padded = _pad_to(volume, padded_shape)
    weights = gaussian_weights(window)
    total = np.zeros(padded_shape, np.float32)
    weight_sum = np.zeros(padded_shape, np.float32)
    flips = [axes for r in range(4) for axes in itertools.combinations((1, 2, 3), r)] if mirror else [()]
    starts = [window_starts(n, w, overlap) for n, w in zip(padded_shape, window, strict=True)]
    for x, y, z in itertools.product(*starts):
        region = (slice(x, x + window[0]), slice(y, y + window[1]), slice(z, z + window[2]))
        patch = padded[(slice(None), *region)]
        probability = np.zeros(window, np.float32)
        for axes in flips:
            flipped = np.ascontiguousarray(np.flip(patch, axes)) if axes else np.ascontiguousarray(patch)
            logits = forward(flipped[None])[0]
            probability += expit(np.flip(logits, axes) if axes else logits)[0]
        total[region] += probability / len(flips) * weights
        weight_sum[region] += weights
    return (total / weight_sum)[: spatial[0], : spatial[1], : spatial[2]]


def segment_scan(bundle, flair_img, brain_img, score_img=None, forward=None, mirror=False):
    """``(probability, mask)`` on ``flair_img``'s grid: the network's WMH probability (0 outside
    the brain) and the mask where it reaches the bundle's threshold, small components removed.
    ``forward``: how the network runs (default: :func:`bundle_forward` on the CPU)."""
    settings = bundle.settings
    if bundle.uses_score and score_img is None:
        raise ValueError(f"the model {bundle.path} needs the anatomical score as its second input")
    image, grid, _ = network_input(
        flair_img, brain_img, settings["preprocessing"]["spacing_mm"], score_img if bundle.uses_score else None
    )
    inference = settings["inference"]
    working = predict_probability(
        forward or bundle_forward(bundle), bundle.divisor, image, inference["window"], inference["overlap"], mirror
    )
    brain = np.asanyarray(brain_img.dataobj) > 0
    probability = np.clip(from_grid(working, grid, flair_img), 0, 1) * brain
    mask = remove_small_components(
        probability >= inference["threshold"], voxel_volume_mm3(flair_img), inference["min_lesion_mm3"]
    )
    return probability.astype(np.float32), mask


def keep_where_wmh_can_be(bundle, probability, mask, tissue, score, flair_img):
    """``(probability, mask, outside_ml)`` as the participant level writes them: both kept to the
    boolean ``tissue`` where WMH can be (``outside_ml``: the mask's volume left out), and the mask
    less its lesions' faint rims, by the anatomical ``score`` array on ``flair_img``'s grid."""
    probability, mask, outside_ml = keep_in_tissue(probability, mask, tissue, voxel_volume_mm3(flair_img))
    zooms = flair_img.header.get_zooms()[:3]
    mask = trim_faint_rims(mask, score, zooms, bundle.settings["inference"]["min_lesion_mm3"])
    return probability, mask, outside_ml
