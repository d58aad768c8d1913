"""Sliding-window inference with Gaussian weighting, optional mirroring, CPU or CUDA."""

import itertools
import math

import numpy as np
import torch

from bids_deepwmh.core.images import voxel_volume_mm3
from bids_deepwmh.core.lesions import keep_in_tissue, remove_small_components, trim_faint_rims
from bids_deepwmh.model.working import from_grid, network_input

INFERENCE_DEFAULTS = {"window": [192, 192, 192], "overlap": 0.25, "threshold": 0.5, "min_lesion_mm3": 3.0}


def device_for(use_gpu):
    """CUDA when asked for and present, else the CPU."""
    return torch.device("cuda" if use_gpu and torch.cuda.is_available() else "cpu")


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


def predict_probability(network, volume, window=(192, 192, 192), overlap=0.25, device="cpu", mirror=False):
    """WMH probability for a ``(channels, X, Y, Z)`` array, same spatial shape out.

    ``mirror`` averages the predictions of all 8 flips of the three axes (8 times slower)."""
    divisor = network.divisor
    spatial = volume.shape[1:]
    padded_shape = [max(math.ceil(n / divisor) * divisor, divisor) for n in spatial]
    window = [min(math.ceil(w / divisor) * divisor, n) for w, n in zip(window, padded_shape, strict=True)]
    padded = torch.from_numpy(_pad_to(volume, padded_shape))
    weights = torch.from_numpy(gaussian_weights(window))
    total = torch.zeros(padded_shape)
    weight_sum = torch.zeros(padded_shape)
    flips = [axes for r in range(4) for axes in itertools.combinations((2, 3, 4), r)] if mirror else [()]
    network = network.to(device).eval()
    starts = [window_starts(n, w, overlap) for n, w in zip(padded_shape, window, strict=True)]
    with torch.inference_mode():
        for x, y, z in itertools.product(*starts):
            region = (slice(x, x + window[0]), slice(y, y + window[1]), slice(z, z + window[2]))
            patch = padded[(slice(None), *region)][None].to(device).contiguous(memory_format=torch.channels_last_3d)
            probability = torch.zeros(window, device=device)
            for axes in flips:
                flipped = torch.flip(patch, axes) if axes else patch
                logits = network(flipped)
                probability += (torch.flip(logits, axes) if axes else logits)[0, 0].sigmoid()
            total[region] += (probability / len(flips)).cpu() * weights
            weight_sum[region] += weights
    out = (total / weight_sum).numpy()
    return out[: spatial[0], : spatial[1], : spatial[2]]


def segment_scan(bundle, flair_img, brain_img, score_img=None, use_gpu=False, mirror=False):
    """``(probability, mask)`` on ``flair_img``'s grid: the network's WMH probability (0 outside
    the brain) and the mask where it reaches the bundle's threshold, small components removed."""
    settings = bundle.settings
    if bundle.uses_score and score_img is None:
        raise ValueError(f"the model {bundle.path} needs the anatomical score as its second input")
    image, grid, _ = network_input(
        flair_img, brain_img, settings["preprocessing"]["spacing_mm"], score_img if bundle.uses_score else None
    )
    inference = settings["inference"]
    working = predict_probability(
        bundle.network(), image, inference["window"], inference["overlap"], device_for(use_gpu), mirror
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
