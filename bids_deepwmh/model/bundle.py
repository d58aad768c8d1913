"""Model bundles: a folder with the weights, the normal-appearing reference, the settings,
a model card, the training curve and sha256 checksums of all of them."""

import hashlib
import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

BUNDLE_FORMAT = 1  # bumped whenever the code can no longer read older bundles
WEIGHTS = "weights.pt"
REFERENCE = "reference.nii.gz"
REFERENCE_SIDECAR = "reference.json"
CARD = "model_card.md"
SETTINGS = "settings.json"
CHECKSUMS = "sha256sums.txt"


class BundleError(ValueError):
    """A model bundle is missing, corrupted, or written for another version of the code."""


def packaged_bundle():
    """The model shipped with the package."""
    from bids_deepwmh.data import load

    return load("model")


def sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_checksums(bundle_dir):
    """Checksum every file of the bundle (but the checksum list itself)."""
    bundle_dir = Path(bundle_dir)
    lines = [f"{sha256(p)}  {p.name}" for p in sorted(bundle_dir.iterdir()) if p.is_file() and p.name != CHECKSUMS]
    (bundle_dir / CHECKSUMS).write_text("\n".join(lines) + "\n")


@dataclass(frozen=True)
class Bundle:
    path: Path
    settings: dict

    @property
    def reference_file(self):
        return self.path / REFERENCE

    @cached_property
    def weights_sha256(self):
        return sha256(self.path / WEIGHTS)

    @property
    def uses_score(self):
        return self.settings["network"]["in_channels"] == 2

    @property
    def divisor(self):
        """The network's input sides must be multiples of this (``UNet3D.divisor``)."""
        return 2 ** (self.settings["network"]["levels"] - 1)

    def network(self):
        """The network with its trained weights, in evaluation mode, on the CPU."""
        import torch

        from bids_deepwmh.model.network import UNet3D

        network = UNet3D(**self.settings["network"])
        network.load_state_dict(torch.load(self.path / WEIGHTS, map_location="cpu", weights_only=True))
        return network.eval()

    def onnx(self):
        """The network as an ONNX file, converted once into the cache folder (named by its weights)."""
        from bids_deepwmh.utils import onnx_models

        return onnx_models.converted(
            f"wmh-{self.weights_sha256[:16]}.onnx",
            lambda path: onnx_models.export(self.network(), path, self.settings["network"]["in_channels"], self.divisor),
        )


def load_bundle(path):
    """Check a bundle's checksums and format, and return it; :class:`BundleError` if unusable."""
    from bids_deepwmh import __version__

    path = Path(path)
    checksums = path / CHECKSUMS
    if not checksums.is_file():
        raise BundleError(f"model bundle {path}: no {CHECKSUMS} (not a bids-deepwmh model folder)")
    for line in checksums.read_text().splitlines():
        expected, name = line.split(maxsplit=1)
        member = path / name
        if not member.is_file():
            raise BundleError(f"model bundle {path}: {name} is missing")
        if sha256(member) != expected:
            raise BundleError(f"model bundle {path}: {name} fails its sha256 check (corrupted or modified)")
    settings = json.loads((path / SETTINGS).read_text())
    if settings.get("bundle_format") != BUNDLE_FORMAT:
        raise BundleError(
            f"model bundle {path}: written by bids-deepwmh {settings.get('deepwmh_version', '?')} in bundle "
            f"format {settings.get('bundle_format')}; bids-deepwmh {__version__} reads format {BUNDLE_FORMAT}"
        )
    return Bundle(path, settings)


def _copy_reference(reference_file, bundle_dir):
    """The reference and, where there is one, its sidecar, into the bundle."""
    import shutil

    shutil.copyfile(reference_file, bundle_dir / REFERENCE)
    sidecar = Path(str(reference_file).replace(".nii.gz", ".json"))
    if sidecar.exists():
        shutil.copyfile(sidecar, bundle_dir / REFERENCE_SIDECAR)


def write_bundle(bundle_dir, state_dict, settings, reference_file, curve, card):
    """Write a complete bundle (weights, reference, settings, curve, card, checksums)."""
    import torch

    from bids_deepwmh.utils.tables import write_tsv

    bundle_dir = Path(bundle_dir)
    bundle_dir.mkdir(parents=True, exist_ok=True)
    torch.save(state_dict, bundle_dir / WEIGHTS)
    _copy_reference(reference_file, bundle_dir)
    (bundle_dir / SETTINGS).write_text(json.dumps(settings, indent=2) + "\n")
    write_tsv(bundle_dir / "training_curve.tsv", ("stage", "epoch", "loss", "validation_dice", "seconds"), curve)
    (bundle_dir / CARD).write_text(card)
    write_checksums(bundle_dir)
    return bundle_dir


def write_reference_bundle(bundle_dir, base_bundle_dir, reference_file, scans, command):
    """Write a bundle of ``reference_file`` (built from ``scans``, by ``command``) and the network
    of the bundle in ``base_bundle_dir``: its weights, settings and training curve, its model card
    after one that names the reference's scans."""
    import shutil

    from bids_deepwmh.model.card import reference_model_card

    base = load_bundle(base_bundle_dir).path
    bundle_dir = Path(bundle_dir)
    bundle_dir.mkdir(parents=True, exist_ok=True)
    for name in (WEIGHTS, SETTINGS, "training_curve.tsv"):
        shutil.copyfile(base / name, bundle_dir / name)
    _copy_reference(reference_file, bundle_dir)
    (bundle_dir / CARD).write_text(reference_model_card((base / CARD).read_text(), scans, command))
    write_checksums(bundle_dir)
    return bundle_dir
