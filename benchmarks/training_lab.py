"""Training variants side by side: what each lever of the network's training does on every
annotated set, measured on scans it never trained on.

``prepare`` reads a finished ``train``-level work folder and stores every training scan's network
input on its working grid (FLAIR quantised to 1/32 of a robust SD, the score to 1/100) with its
brain and pseudo-labels, in one compressed file small enough to carry to a GPU machine.  Other
pseudo-labels and scores of the same scans (``--labels NAME=DIR``, files
``DIR/<scan folder>/{network_score,wmh}.nii.gz``) are stored beside them.

``train`` trains each variant of a JSON list (``name``, ``settings`` as in
``TrainingSettings``, optional ``exclude``: scan-name prefixes left out, ``labels``: which
pseudo-labels, ``cases``: another prepared file) in its own process, several at once, and writes
each network under ``OUT/<name>/`` with its settings and curve.  ``bundle`` makes a model bundle
of one of them.

``evaluate`` runs each trained network as the participant level does (same inputs, kept to the
tissue where WMH can be) on the scans of finished participant-level work folders
(``benchmarks/accuracy.py``'s), and prints Dice against every manual mask, per set, beside the
anatomical stage's, and the volumes found on scans without manual masks (``healthy``).

    python benchmarks/training_lab.py prepare TRAIN_WORK --out .lab/cases.npz [--labels hybrid=DIR]
    python benchmarks/training_lab.py train --cases .lab/cases.npz --variants V.json --out .lab/runs --device cuda
    python benchmarks/training_lab.py bundle .lab/runs/NAME --reference REF --train-bids DIR --command C --out DIR
    python benchmarks/training_lab.py evaluate --runs .lab/runs --work ACC/work --data ../shared/data/bids
"""

import argparse
import json
import logging
import multiprocessing
import os
import sys
import time
from pathlib import Path

import nibabel as nib
import numpy as np

FLAIR_STEP, SCORE_STEP = 1 / 32, 1 / 100  # quantisation of the carried channels


def prepare(train_work, out, label_dirs):
    from bids_deepwmh.model.training import TrainingSettings
    from bids_deepwmh.model.working import network_input, to_grid

    arrays = {}
    root = Path(train_work) / "deepwmh_wf"
    for scan_dir in sorted(p for p in root.glob("*_FLAIR_wf") if p.is_dir()):
        pre = scan_dir / "preprocessing_wf"
        flair, brain_img = nib.load(pre / "n4" / "n4.nii.gz"), nib.load(pre / "brain_extraction" / "brain_mask.nii.gz")
        sources = {"main": root / f"{scan_dir.name}_pseudo_labels"}
        sources.update({name: Path(d) / scan_dir.name for name, d in label_dirs.items()})
        name = scan_dir.name.removesuffix("_FLAIR_wf")
        for label_name, folder in sources.items():
            score, wmh = (nib.load(folder / f"{kind}.nii.gz") for kind in ("network_score", "wmh"))
            image, grid, brain = network_input(flair, brain_img, TrainingSettings().spacing_mm, score)
            coarse = (to_grid(wmh, grid) >= 0.5) & brain
            if label_name == "main":
                arrays[f"{name}/flair"] = np.clip(np.rint(image[0] / FLAIR_STEP), -32768, 32767).astype(np.int16)
                arrays[f"{name}/brain"] = brain
            arrays[f"{name}/{label_name}_score"] = np.rint(image[1] / SCORE_STEP).astype(np.uint8)
            arrays[f"{name}/{label_name}_coarse"] = coarse
        print(f"prepared {name} {image.shape[1:]}", flush=True)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, **arrays)
    print(f"{out}: {Path(out).stat().st_size / 2**20:.1f} MiB")


def load_cases(cases_file, labels, excluded, settings):
    from bids_deepwmh.model.training import Case

    stored = np.load(cases_file)
    names = sorted({key.split("/")[0] for key in stored.files})
    cases = []
    for name in names:
        if any(name.startswith(prefix) for prefix in excluded):
            continue
        brain = stored[f"{name}/brain"]
        channels = [stored[f"{name}/flair"].astype(np.float32) * FLAIR_STEP]
        if settings.score_channel:
            channels.append(stored[f"{name}/{labels}_score"].astype(np.float32) * SCORE_STEP)
        cases.append(Case(name, np.stack(channels), brain, stored[f"{name}/{labels}_coarse"] & brain, None, None))
    return cases


def train_variant(variant, cases_file, out, device, threads):
    import torch

    from bids_deepwmh.model.training import TrainingSettings, train

    torch.set_num_threads(threads)
    logging.basicConfig(level=logging.INFO, format=f"{variant['name']}: %(message)s")
    settings = TrainingSettings.from_dict(variant.get("settings", {}))
    cases = load_cases(variant.get("cases", cases_file), variant.get("labels", "main"), variant.get("exclude", []),
                       settings)
    folder = Path(out) / variant["name"]
    folder.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    state, curve, _, validation, best = train(cases, settings, folder / "checkpoints", device)
    torch.save(state, folder / "weights.pt")
    (folder / "settings.json").write_text(json.dumps({
        **settings.bundle_settings(best, [cases[i].name for i in validation]),
        "variant": variant, "training_scans": [c.name for c in cases], "curve": curve,
        "seconds": round(time.monotonic() - started, 1),
        "environment": f"torch {torch.__version__} on {torch.cuda.get_device_name() if device == 'cuda' else 'CPU'}, "
                       f"numpy {np.__version__}",
    }, indent=1))
    for checkpoint in (folder / "checkpoints").glob("*.pt"):
        checkpoint.unlink()
    return variant["name"], round(time.monotonic() - started, 1)


def _train_one(job):
    return train_variant(*job)


def write_run_bundle(run, reference, train_bids, command, out):
    """A model bundle of a trained variant: its weights, the reference its pseudo-labels were scored
    against, and a model card naming its training scans (``train_bids/participants.tsv``)."""
    import torch

    from bids_deepwmh.model.bundle import write_bundle
    from bids_deepwmh.model.card import model_card
    from bids_deepwmh.model.training import TrainingSettings
    from bids_deepwmh.utils.tables import read_tsv

    run = Path(run)
    trained = json.loads((run / "settings.json").read_text())
    settings = TrainingSettings.from_dict(trained["variant"].get("settings", {}))
    flairs = {f.name.split("_FLAIR")[0].replace("-", "_"): f.relative_to(Path(train_bids).parent)
              for f in sorted(Path(train_bids).glob("sub-*/**/anat/*_FLAIR.nii*"))}
    participants = {row["participant_id"]: row for row in read_tsv(Path(train_bids) / "participants.tsv")}
    scans = [{"name": str(flairs[name]), "dataset": participants[flairs[name].parts[1]]["source_dataset"],
              "license": participants[flairs[name].parts[1]]["license"], "group": "n/a"}
             for name in trained["training_scans"]]
    best = trained["training"]["best_epoch"]
    validation = [str(flairs[name]) for name in trained["training"]["validation_scans"]]
    bundle_settings = settings.bundle_settings(best, validation)
    card = model_card(bundle_settings, scans, trained["curve"], trained["seconds"], command, validation, best,
                      trained["environment"])
    state = torch.load(run / "weights.pt", map_location="cpu", weights_only=True)
    write_bundle(out, state, bundle_settings, reference, trained["curve"], card)
    print(f"{out}: bundle of {run.name}")


def train_all(cases_file, variants_file, out, device, jobs):
    variants = json.loads(Path(variants_file).read_text())
    with multiprocessing.get_context("spawn").Pool(jobs) as pool:
        threads = 1 if device == "cuda" else max(1, (os.cpu_count() or 1) // jobs)
        jobs_args = [(v, cases_file, out, device, threads) for v in variants]
        for name, seconds in pool.imap_unordered(_train_one, jobs_args):
            print(f"trained {name} in {seconds:.0f} s", flush=True)


def evaluation_scans(work_roots, data, teacher=None):
    """``(set, scan, inputs, manual masks by rater)`` of every finished scan (no raters where it has
    no manual mask); the anatomical stage's ``score``, ``network_score`` and mask from ``teacher/<set>/<scan folder>/``
    if given."""
    for root in work_roots:
        for scan_dir in sorted(Path(root).glob("*/deepwmh_wf/*_FLAIR_wf")):
            dataset = scan_dir.parents[1].name
            scan = scan_dir.name.removesuffix("_FLAIR_wf").replace("_ses_", "_ses-").replace("sub_", "sub-")
            manual = sorted((Path(data) / dataset / "derivatives" / "manual").rglob(f"{scan}_*mask.nii*"))
            seg, pre = scan_dir / "segmentation_wf", scan_dir / "preprocessing_wf"
            files = {"flair": pre / "n4" / "n4.nii.gz", "brain": pre / "brain_extraction" / "brain_mask.nii.gz",
                     "score": seg / "anatomical_wmh" / "score.nii.gz",
                     "network_score": seg / "anatomical_wmh" / "network_score.nii.gz",
                     "anatomical": seg / "anatomical_wmh" / "wmh.nii.gz",
                     "tissue": scan_dir / "priors_wf" / "wmh_tissue" / "resampled.nii.gz",
                     "unnulled": seg / "anatomical_wmh" / "unnulled_slices.nii.gz"}
            if teacher:
                files.update(score=Path(teacher, dataset, scan_dir.name, "score.nii.gz"),
                             network_score=Path(teacher, dataset, scan_dir.name, "network_score.nii.gz"),
                             anatomical=Path(teacher, dataset, scan_dir.name, "wmh.nii.gz"))
            if all(f.exists() for f in files.values()):
                raters = {m.name.split("desc-")[1].split("_")[0]: np.asanyarray(
                    nib.as_closest_canonical(nib.load(m)).dataobj) > 0 for m in manual}
                yield dataset, scan, files, raters


def evaluate(runs, work_roots, data, teacher):
    from bids_deepwmh.core.images import voxel_volume_mm3
    from bids_deepwmh.core.metrics import dice
    from bids_deepwmh.model.bundle import Bundle
    from bids_deepwmh.model.inference import keep_where_wmh_can_be, segment_scan

    bundles = {p.parent.name: Bundle(p.parent, json.loads(p.read_text()))
               for p in sorted(Path(runs).glob("*/settings.json")) if (p.parent / "weights.pt").exists()}
    results = {}
    for dataset, scan, files, raters in evaluation_scans(work_roots, data, teacher):
        flair, brain = nib.load(files["flair"]), nib.load(files["brain"])
        score = nib.load(files["score"])
        score_data = score.get_fdata(dtype=np.float32)
        unnulled = np.asanyarray(nib.load(files["unnulled"]).dataobj) > 0
        tissue = (np.asanyarray(nib.load(files["tissue"]).dataobj) > 0) & ~unnulled  # as LearnedWMH
        voxel_ml = voxel_volume_mm3(flair) / 1000
        masks = {"anatomical": np.asanyarray(nib.load(files["anatomical"]).dataobj) > 0}
        for name, bundle in bundles.items():
            probability, mask = segment_scan(bundle, flair, brain, nib.load(files["network_score"]))
            masks[name] = keep_where_wmh_can_be(bundle, probability, mask, tissue, score_data, flair)[1]
        if not raters:
            print(f"{dataset} {scan} (no manual mask): " + ", ".join(
                f"{n} {mask.sum() * voxel_ml:.2f} mL" for n, mask in masks.items()), flush=True)
        for rater, truth in raters.items():
            row = results.setdefault((dataset, scan, rater), {"manual_ml": truth.sum() * voxel_ml})
            for name, mask in masks.items():
                row[name] = (dice(mask, truth), mask.sum() * voxel_ml)
        print(f"{dataset} {scan}: " + ", ".join(f"{n} {results[(dataset, scan, r)][n][0]:.3f}"
                                                 for n in masks for r in raters), flush=True)
    names = ["anatomical", *bundles]
    print("\n| scan | rater | manual mL | " + " | ".join(names) + " |\n|" + "---|" * (3 + len(names)))
    for (dataset, scan, rater), row in sorted(results.items()):
        print(f"| {dataset}/{scan} | {rater} | {row['manual_ml']:.1f} | "
              + " | ".join(f"{row[n][0]:.3f} ({row[n][1]:.1f} mL)" for n in names) + " |")
    print("\nmean Dice per set\n| set | pairs | " + " | ".join(names) + " |\n|" + "---|" * (2 + len(names)))
    for dataset in sorted({key[0] for key in results}):
        rows = [row for key, row in results.items() if key[0] == dataset]
        means = (f"{np.mean([r[n][0] for r in rows]):.3f}" for n in names)
        print(f"| {dataset} | {len(rows)} | " + " | ".join(means) + " |")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="action", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("train_work", type=Path)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--labels", nargs="*", default=[], metavar="NAME=DIR")
    t = sub.add_parser("train")
    t.add_argument("--cases", type=Path, required=True)
    t.add_argument("--variants", type=Path, required=True)
    t.add_argument("--out", type=Path, required=True)
    t.add_argument("--device", default="cpu")
    t.add_argument("--jobs", type=int, default=1)
    b = sub.add_parser("bundle")
    b.add_argument("run", type=Path)
    b.add_argument("--reference", type=Path, required=True)
    b.add_argument("--train-bids", type=Path, required=True, help="the train level's input (for the model card)")
    b.add_argument("--command", required=True, help="how the run was made (for the model card)")
    b.add_argument("--out", type=Path, required=True)
    e = sub.add_parser("evaluate")
    e.add_argument("--runs", type=Path, required=True)
    e.add_argument("--work", type=Path, nargs="+", required=True, help="accuracy benchmark work folders")
    e.add_argument("--data", type=Path, required=True)
    e.add_argument("--teacher", type=Path, help="the anatomical stage's outputs to use instead of the work folders'")
    args = parser.parse_args(argv)
    if args.action == "prepare":
        prepare(args.train_work, args.out, dict(item.split("=", 1) for item in args.labels))
    elif args.action == "bundle":
        write_run_bundle(args.run, args.reference, args.train_bids, args.command, args.out)
    elif args.action == "train":
        train_all(args.cases, args.variants, args.out, args.device, args.jobs)
    else:
        evaluate(args.runs, args.work, args.data, args.teacher)


if __name__ == "__main__":
    sys.exit(main())
