"""Learning from noisy pseudo-labels, as in DeepWMH.

1. Label cleaning: a network is trained briefly on the anatomical-knowledge pseudo-labels; the
   predictions of its last epochs' checkpoints are averaged (a temporal ensemble, which
   memorises label noise far less than any single network) and thresholded.
2. The final network is trained afresh on the cleaned labels.  The scans whose coarse and
   cleaned labels agree best are kept aside, and the epoch that segments them best is kept.

Every epoch ends with a checkpoint; a rerun of the same run (``run_fingerprint``) resumes from the last one.
"""

import hashlib
import json
import logging
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import nibabel as nib
import numpy as np
import torch
from scipy import ndimage

from bids_deepwmh.core.lesions import remove_small_components
from bids_deepwmh.core.metrics import dice
from bids_deepwmh.model import synthetic
from bids_deepwmh.model.inference import predict_probability, torch_forward
from bids_deepwmh.model.network import UNet3D
from bids_deepwmh.model.working import network_input, to_grid

logger = logging.getLogger("deepwmh")
MIN_LESION_MM3 = 3.0


@dataclass(frozen=True)
class TrainingSettings:
    spacing_mm: float = 1.0  # working grid
    score_channel: bool = True  # feed the anatomical score as a second channel (measured: it helps)
    base_channels: int = 8
    levels: int = 4
    patch: int = 64
    batch_size: int = 2
    learning_rate: float = 2e-3
    weight_decay: float = 1e-4
    steps_per_epoch: int = 100
    cleaning_epochs: int = 8
    ensemble_epochs: int = 3  # the cleaning network's last epochs averaged into cleaned labels
    final_epochs: int = 12
    validation_scans: int = 2
    lesion_patch_fraction: float = 0.5  # patches centred on a (pseudo-)lesion voxel
    synthetic_lesion_fraction: float = 0.0  # patches given synthetic lesions (measured: more false positives)
    threshold: float = 0.5
    seed: int = 0

    @classmethod
    def from_dict(cls, values):
        known = {f.name for f in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown training setting(s): {', '.join(sorted(unknown))}")
        return cls(**values)

    def network(self):
        return {"in_channels": 2 if self.score_channel else 1, "base_channels": self.base_channels,
                "levels": self.levels}

    def bundle_settings(self, best_epoch, validation_scans):
        """A bundle's ``settings.json`` for a network trained with these settings."""
        from bids_deepwmh import __version__
        from bids_deepwmh.model.bundle import BUNDLE_FORMAT
        from bids_deepwmh.model.inference import INFERENCE_DEFAULTS

        return {
            "bundle_format": BUNDLE_FORMAT,
            "deepwmh_version": __version__,
            "network": self.network(),
            "preprocessing": {"spacing_mm": self.spacing_mm, "score_channel": self.score_channel},
            "inference": {**INFERENCE_DEFAULTS, "threshold": self.threshold},
            "training": {**asdict(self), "best_epoch": best_epoch, "validation_scans": list(validation_scans)},
        }


@dataclass
class Case:
    """One training scan on its working grid; ``coarse`` holds the pseudo-labels."""

    name: str
    image: np.ndarray
    brain: np.ndarray
    coarse: np.ndarray
    grid: object
    native: Path  # the conformed FLAIR (for writing labels back)


def load_case(name, flair_file, brain_file, label_file, score_file, settings):
    brain_img = nib.load(brain_file)
    image, grid, brain = network_input(
        nib.load(flair_file), brain_img, settings.spacing_mm,
        nib.load(score_file) if settings.score_channel else None,
    )
    coarse = (to_grid(nib.load(label_file), grid) >= 0.5) & brain
    return Case(name, image, brain, coarse, grid, Path(flair_file))


def run_fingerprint(settings, cases):
    """Names a training run's checkpoint folder: other settings, scans, images or pseudo-labels
    (a rebuilt reference) start afresh instead of resuming from stale checkpoints."""
    digest = hashlib.sha1(json.dumps([asdict(settings), [case.name for case in cases]]).encode())
    for case in cases:
        digest.update(case.image.tobytes())
        digest.update(np.packbits(case.coarse).tobytes())
    return digest.hexdigest()[:12]


def _crop(array, centre, size):
    """A ``size``-cube of the last three axes of ``array`` centred on ``centre``, zero-padded."""
    starts = [int(c) - size // 2 for c in centre]
    spatial = array.shape[-3:]
    src = tuple(slice(max(s, 0), min(s + size, n)) for s, n in zip(starts, spatial, strict=True))
    out = np.zeros(array.shape[:-3] + (size,) * 3, array.dtype)
    dst = tuple(slice(sl.start - s, sl.stop - s) for sl, s in zip(src, starts, strict=True))
    out[(..., *dst)] = array[(..., *src)]
    return out


def augment(image, label, rng):
    """Left-right flips, intensity changes, noise and simulated thick slices (2D acquisitions)."""
    if rng.random() < 0.5:
        image, label = image[:, ::-1], label[::-1]
    flair = image[0].copy()
    inside = flair != 0
    flair[inside] = flair[inside] * rng.uniform(0.85, 1.15) + rng.uniform(-0.2, 0.2)
    if rng.random() < 0.3:
        axis = 2 if rng.random() < 0.7 else int(rng.integers(0, 2))
        flair = ndimage.uniform_filter1d(flair, size=int(rng.integers(2, 7)), axis=axis)
    if rng.random() < 0.2:
        flair = flair + rng.normal(0, rng.uniform(0.05, 0.2), flair.shape).astype(np.float32) * inside
    image = np.concatenate([flair[None], image[1:]])
    return np.ascontiguousarray(image), np.ascontiguousarray(label)


def sample_batch(cases, labels, rng, settings, canvases=None):
    """Random patches; a fraction centred on labelled voxels so that lesions are seen often, a
    fraction given synthetic lesions (``canvases``: each case's :class:`synthetic.Canvas`)."""
    images, targets = [], []
    for _ in range(settings.batch_size):
        i = int(rng.integers(len(cases)))
        case, label = cases[i], labels[i]
        pool = label if rng.random() < settings.lesion_patch_fraction and label.any() else case.brain
        candidates = np.flatnonzero(pool)
        centre = np.unravel_index(candidates[rng.integers(candidates.size)], pool.shape)
        image, target = _crop(case.image, centre, settings.patch), _crop(label, centre, settings.patch)
        if canvases is not None and rng.random() < settings.synthetic_lesion_fraction:
            image, target = synthetic.add_lesions(image, target, _crop(canvases[i].normal, centre, settings.patch),
                                                  canvases[i], rng, settings.spacing_mm)
        image, target = augment(image, target, rng)
        images.append(image)
        targets.append(target[None].astype(np.float32))
    as_tensor = lambda arrays: torch.from_numpy(np.stack(arrays)).contiguous(memory_format=torch.channels_last_3d)  # noqa: E731
    return as_tensor(images), as_tensor(targets)


def loss_function(logits, target):
    """Binary cross-entropy plus soft Dice over the batch."""
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, target)
    probability = logits.sigmoid()
    overlap = (probability * target).sum()
    soft_dice = (2 * overlap + 1) / (probability.sum() + target.sum() + 1)
    return bce + 1 - soft_dice


def new_network(settings, stage):
    torch.manual_seed(settings.seed + (0 if stage == "cleaning" else 1))
    return UNet3D(**settings.network()).to(memory_format=torch.channels_last_3d)


def predict_case(network, case, device):
    return predict_probability(torch_forward(network, device), network.divisor, case.image)


def _checkpoint(directory, stage, epoch):
    return Path(directory) / f"{stage}-epoch-{epoch:03d}.pt"


def _last_checkpoint(directory, stage, epochs):
    for epoch in range(epochs, 0, -1):
        if _checkpoint(directory, stage, epoch).exists():
            return epoch
    return 0


def train_stage(stage, cases, labels, settings, checkpoint_dir, epochs, device, validate=None):
    """Train a fresh network for ``epochs``, resuming from the last checkpoint; returns the curve."""
    network = new_network(settings, stage).to(device)
    optimiser = torch.optim.AdamW(network.parameters(), settings.learning_rate,
                                  weight_decay=settings.weight_decay)
    total_steps = epochs * settings.steps_per_epoch
    schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda step: (1 - step / total_steps) ** 0.9)
    curve = []
    done = _last_checkpoint(checkpoint_dir, stage, epochs)
    if done:
        state = torch.load(_checkpoint(checkpoint_dir, stage, done), map_location=device, weights_only=False)
        network.load_state_dict(state["network"])
        optimiser.load_state_dict(state["optimiser"])
        schedule.load_state_dict(state["schedule"])
        curve = state["curve"]
        logger.info("%s: resuming after epoch %d of %d", stage, done, epochs)
    canvases = None
    if settings.synthetic_lesion_fraction > 0:
        canvases = [synthetic.canvas(c.image, c.brain, label, settings.spacing_mm)
                    for c, label in zip(cases, labels, strict=True)]
    started = time.monotonic()
    for epoch in range(done + 1, epochs + 1):
        rng = np.random.default_rng([settings.seed, epoch, 0 if stage == "cleaning" else 1])
        torch.manual_seed(int(rng.integers(2**31)))
        network.train()
        losses = []
        epoch_start = time.monotonic()
        for _ in range(settings.steps_per_epoch):
            x, y = sample_batch(cases, labels, rng, settings, canvases)
            loss = loss_function(network(x.to(device)), y.to(device))
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            schedule.step()
            losses.append(loss.item())
        row = {"stage": stage, "epoch": epoch, "loss": round(float(np.mean(losses)), 4),
               "seconds": round(time.monotonic() - epoch_start, 1)}
        if validate is not None:
            row["validation_dice"] = round(validate(network), 4)
        curve.append(row)
        path = _checkpoint(checkpoint_dir, stage, epoch)
        torch.save({"network": network.state_dict(), "optimiser": optimiser.state_dict(),
                    "schedule": schedule.state_dict(), "curve": curve}, path.with_suffix(".tmp"))
        path.with_suffix(".tmp").replace(path)
        elapsed = time.monotonic() - started
        left = elapsed / (epoch - done) * (epochs - epoch)
        logger.info("%s epoch %d/%d: loss %.4f%s (%.0f s; about %.0f min left in this stage)", stage, epoch,
                    epochs, row["loss"],
                    f", validation Dice {row['validation_dice']:.3f}" if "validation_dice" in row else "",
                    row["seconds"], left / 60)
    return curve


def load_weights(checkpoint_dir, stage, epoch, settings, device):
    network = new_network(settings, stage)
    state = torch.load(_checkpoint(checkpoint_dir, stage, epoch), map_location="cpu", weights_only=False)
    network.load_state_dict(state["network"])
    return network.to(device).eval()


def clean_labels(cases, settings, checkpoint_dir, device):
    """Average the last ``ensemble_epochs`` checkpoints' predictions; threshold into labels."""
    last = settings.cleaning_epochs
    epochs = range(max(last - settings.ensemble_epochs + 1, 1), last + 1)
    voxel_mm3 = settings.spacing_mm**3
    networks = [load_weights(checkpoint_dir, "cleaning", epoch, settings, device) for epoch in epochs]
    cleaned = []
    for case in cases:
        probability = np.zeros(case.brain.shape, np.float32)
        for network in networks:
            probability += predict_case(network, case, device)
        mask = (probability / len(epochs) >= settings.threshold) & case.brain
        cleaned.append(remove_small_components(mask, voxel_mm3, MIN_LESION_MM3))
        logger.info("cleaned labels of %s: %.1f mL coarse, %.1f mL cleaned, Dice between them %.3f", case.name,
                    case.coarse.sum() * voxel_mm3 / 1000, cleaned[-1].sum() * voxel_mm3 / 1000,
                    dice(case.coarse, cleaned[-1]))
    return cleaned


def pick_validation(cases, cleaned, count):
    """The scans whose coarse and cleaned labels agree best: their labels are the most trustworthy."""
    agreement = [dice(c.coarse, label) if label.any() else -1.0 for c, label in zip(cases, cleaned, strict=True)]
    order = np.argsort(agreement)[::-1]
    return sorted(int(i) for i in order[: min(count, len(cases) - 1)])


def train(cases, settings, checkpoint_dir, device):
    """Both stages.  Returns ``(state_dict, curve, cleaned labels, validation indices, best epoch)``."""
    checkpoint_dir = Path(checkpoint_dir)
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    curve = train_stage("cleaning", cases, [c.coarse for c in cases], settings, checkpoint_dir,
                        settings.cleaning_epochs, device)
    cleaned_file = checkpoint_dir / "cleaned-labels.npz"
    if cleaned_file.exists():
        stored = np.load(cleaned_file)
        cleaned = [stored[c.name] for c in cases]
    else:
        cleaned = clean_labels(cases, settings, checkpoint_dir, device)
        partial = checkpoint_dir / "cleaned-labels.tmp.npz"
        np.savez_compressed(partial, **{c.name: m for c, m in zip(cases, cleaned, strict=True)})
        partial.replace(cleaned_file)
    validation = pick_validation(cases, cleaned, settings.validation_scans)
    training = [i for i in range(len(cases)) if i not in validation]
    logger.info("final network: %d training scan(s); checkpoint chosen on %s", len(training),
                ", ".join(cases[i].name for i in validation))

    def validate(network):
        scores = [dice(predict_case(network, cases[i], device) >= settings.threshold, cleaned[i]) for i in validation]
        return float(np.mean(scores))

    curve += train_stage("final", [cases[i] for i in training], [cleaned[i] for i in training], settings,
                         checkpoint_dir, settings.final_epochs, device, validate)
    final_rows = [row for row in curve if row["stage"] == "final"]
    best = max(final_rows, key=lambda row: row["validation_dice"])["epoch"]
    network = load_weights(checkpoint_dir, "final", best, settings, "cpu")
    state = {k: v.contiguous() for k, v in network.state_dict().items()}
    return state, curve, cleaned, validation, best
