"""The model card: what a bundle is, what it was trained on, how, and how well it fits."""

import platform

INTENDED_USE = (
    "Segmentation of white matter hyperintensities on brain FLAIR MRI of adults (2D or 3D, "
    "0.4-7 mm voxels), for research. Not a medical device."
)


def model_card(settings, scans, curve, seconds, command, validation, best_epoch, environment=None):
    """Markdown text.  ``scans``: dicts with ``name``, ``dataset``, ``license`` and ``group``;
    ``environment``: what the network was trained with, if not this process's versions."""
    import numpy
    import torch

    from bids_deepwmh import __version__

    environment = environment or (f"torch {torch.__version__}, numpy {numpy.__version__}, "
                                  f"Python {platform.python_version()}")
    lines = [
        "# bids-deepwmh model card",
        "",
        "A compact 3D U-Net that segments white matter hyperintensities (WMH) on FLAIR MRI, "
        "trained **without any manual annotation** by `deepwmh ... train` (DeepWMH-style: "
        "anatomical-knowledge pseudo-labels, label cleaning by a temporal ensemble, then the final "
        "network on the cleaned labels).",
        "",
        f"- Intended use: {INTENDED_USE}",
        f"- Command: `{command}`",
        f"- Trained by bids-deepwmh {__version__}, {environment}, in {seconds / 60:.1f} min.",
        f"- Network: {settings['network']}; working grid {settings['preprocessing']['spacing_mm']} mm; "
        f"inference {settings['inference']}.",
        f"- Training settings: {settings['training']}",
        f"- Checkpoint: final-stage epoch {best_epoch}, the best mean Dice against the cleaned labels of the "
        f"scans kept aside ({', '.join(validation)}).",
        "",
        "## Training scans (images only; no manual mask was read)",
        "",
        "| scan | dataset | group | licence |",
        "|---|---|---|---|",
        *[f"| {s['name']} | {s['dataset']} | {s['group']} | {s['license']} |" for s in scans],
        "",
        "The normal-appearing reference (`reference.nii.gz`) was built from the scans listed as `Sources` in "
        "`reference.json`: the controls named in participants.tsv when there were at least 4, else all of them.",
        "",
        "## Training curve",
        "",
        "| stage | epoch | loss | validation Dice (vs cleaned labels) | seconds |",
        "|---|---|---|---|---|",
        *[f"| {r['stage']} | {r['epoch']} | {r['loss']} | {r.get('validation_dice', '')} | {r['seconds']} |"
          for r in curve],
        "",
        "## Limitations",
        "",
        "- Learned from automatic pseudo-labels of a small cohort of multiple sclerosis FLAIRs; it inherits "
        "their biases (small lesions under-segmented, bright artefacts inside white matter possibly kept).",
        "- Accuracy against manual masks is reported in the project's README, not here, and was measured on "
        "scans that are not all independent of the training cohort.",
        "",
    ]
    return "\n".join(lines)


def reference_model_card(network_card, scans, command):
    """Markdown text of a bundle whose reference was built from ``scans`` (as in
    :func:`model_card`) by the reference level, before ``network_card``, the card of the bundle
    its network comes from (its headings one level down)."""
    from bids_deepwmh import __version__

    network_card = "\n".join("#" + line if line.startswith("#") else line for line in network_card.splitlines())
    lines = [
        "# bids-deepwmh model card",
        "",
        f"This bundle pairs a normal-appearing reference built from {len(scans)} FLAIRs by `deepwmh ... reference` "
        "(no manual mask read) with the network of an existing bundle, whose card follows: the network is "
        "unchanged; the anatomical score it reads, and the anatomical stage, measure each scan against this "
        "cohort's normal-appearing FLAIRs instead.",
        "",
        f"- Intended use: {INTENDED_USE} For scans like those of the reference (one scanner and protocol).",
        f"- Command: `{command}`",
        f"- Reference built by bids-deepwmh {__version__}.",
        "",
        "## Reference scans (images only; no manual mask was read)",
        "",
        "| scan | dataset | group | licence |",
        "|---|---|---|---|",
        *[f"| {s['name']} | {s['dataset']} | {s['group']} | {s['license']} |" for s in scans],
        "",
        network_card,
    ]
    return "\n".join(lines) + "\n"
