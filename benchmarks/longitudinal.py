"""Longitudinal change against exact truth made from real scans, and its cost.

``pairs``: each real whole-head 2D FLAIR of ``SCANS`` becomes a participant with two sessions:
session 1 the scan as it is, session 2 the same head re-positioned (turned by up to ``TURN_DEG``
about each axis, shifted by up to ``SHIFT_MM``), resampled onto the scan's own grid (linear or
cubic, in turn), its intensities rescaled and noise added.  A second dataset gives each the same
session 2 with ``NEW_LESIONS`` synthetic new lesions of 10 to 200 mm³ (``model.synthetic.blob``,
drawn at 0.25 mm and averaged into the voxels) in deep normal-appearing tissue of session 1's run.
Both datasets run through the participant level, then they are scored: (a) same head: ``new``
plus ``enlarging`` mL and the two sessions' WMH volume difference, against the same two sessions
segmented independently (their own masks, brought into subject space and labelled alike); (b)
synthetic lesions: the fraction found as ``new`` (a ``new`` voxel of the change dseg within the
lesion's reach), and ``new`` lesions nowhere near one (false, per pair).

``summary``: counts and volumes by class per participant of any output folder (e.g. openms-long).

``cost``: one two-session participant run whole (both sessions and the change) against its two
sessions run one by one, each in a cold work folder.

    python benchmarks/longitudinal.py pairs --out bench-long [--nprocs 1]
    python benchmarks/longitudinal.py summary --derivatives OUT
    python benchmarks/longitudinal.py cost --out bench-long [--nprocs 1]
"""

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage
from scipy.spatial.transform import Rotation

from bids_deepwmh.utils.tables import read_tsv

SHARED_BIDS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "bids"
SCANS = {  # label -> real whole-head 2D FLAIR: 3, 3, 4.4 and 3.3 mm slices, then 7.4 mm
    "msa": "openms-long/sub-04/ses-1/anat/sub-04_ses-1_FLAIR.nii.gz",
    "msb": "openms-long/sub-20/ses-2/anat/sub-20_ses-2_FLAIR.nii.gz",
    "tr5": "dev-native/sub-tr5/anat/sub-tr5_FLAIR.nii.gz",
    "msc": "openms-long/sub-09/ses-2/anat/sub-09_ses-2_FLAIR.nii.gz",
    "thick": "misc/sub-thick/anat/sub-thick_FLAIR.nii.gz",
}
TURN_DEG = 4.0
SHIFT_MM = 4.0
SCALE = (0.7, 1.4)  # intensities of session 2 multiplied by a factor in this range
NOISE = 0.02  # Gaussian noise, SD as a fraction of the median brain-level intensity
NEW_LESIONS = 6
NEW_LESION_MM3 = (10.0, 200.0)  # log-uniform
NEW_LESION_CONTRAST = (0.5, 1.0)  # added at the core, as a fraction of the surrounding tissue's level
LESION_DEPTH_MM = 12.0
SEED = 34


def head_motion(img, rng):
    """A 4x4 RAS matrix: the head turned and shifted about the centre of the field of view."""
    centre = img.affine @ np.r_[(np.array(img.shape[:3]) - 1) / 2, 1]
    motion = np.eye(4)
    motion[:3, :3] = Rotation.from_euler("xyz", rng.uniform(-TURN_DEG, TURN_DEG, 3), degrees=True).as_matrix()
    motion[:3, 3] = centre[:3] - motion[:3, :3] @ centre[:3] + rng.uniform(-SHIFT_MM, SHIFT_MM, 3)
    return motion


def moved(data, affine, motion, order):
    """``data`` (on ``affine``'s grid) after the head moved by ``motion``, on the same grid."""
    to_source = np.linalg.inv(affine) @ np.linalg.inv(motion) @ affine
    return ndimage.affine_transform(data, to_source[:3, :3], to_source[:3, 3], order=order, mode="constant")


def brain_level(data):
    return float(np.median(data[data > data.mean()]))


def rescaled_with_noise(data, rng):
    level = brain_level(data)
    out = data * rng.uniform(*SCALE) + rng.normal(0, NOISE * level, data.shape) * (data > 0.05 * level)
    return np.clip(np.rint(out), 0, np.iinfo(np.uint16).max).astype(np.uint16)


FINE_MM = 0.25  # synthetic lesions are drawn on this grid, then averaged into the scan's voxels


def lesion_occupancy(shape, affine, centre_mm, volume_mm3, rng):
    """Fraction of each voxel of the grid (``shape``, ``affine``) inside an irregular lesion
    (``model.synthetic.blob``) of about ``volume_mm3`` centred at ``centre_mm``, and its volume."""
    from bids_deepwmh.model.synthetic import blob

    radius_mm = (3 * volume_mm3 / (4 * np.pi)) ** (1 / 3)
    solid = blob(radius_mm / FINE_MM, rng)
    fine_mm = (np.argwhere(solid) - solid.shape[0] // 2) * FINE_MM + centre_mm
    voxels = np.rint(nib.affines.apply_affine(np.linalg.inv(affine), fine_mm)).astype(int)
    inside = np.all((voxels >= 0) & (voxels < np.array(shape)), axis=1)
    counts = np.zeros(shape, np.float32)
    np.add.at(counts, tuple(voxels[inside].T), 1.0)
    voxel_mm3 = abs(np.linalg.det(affine[:3, :3]))
    return np.clip(counts * FINE_MM**3 / voxel_mm3, 0, 1), float(inside.sum() * FINE_MM**3)


def _save(data, affine, path):
    img = nib.Nifti1Image(data, affine)
    img.set_qform(affine, code=1)
    img.set_sform(affine, code=1)
    img.header.set_xyzt_units("mm", "sec")
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(img, path)


def _dataset(bids_dir, name):
    bids_dir.mkdir(parents=True, exist_ok=True)
    (bids_dir / "dataset_description.json").write_text(json.dumps({"Name": name, "BIDSVersion": "1.10.0"}))


def write_pairs(bids_dir, rng):
    """Session 1: each scan as it is; session 2: the same head moved, resampled, rescaled, noisier.
    Returns, per label, the motion (RAS matrix) and the interpolation order."""
    _dataset(bids_dir, "same head twice")
    made = {}
    for index, (label, scan) in enumerate(SCANS.items()):
        img = nib.load(SHARED_BIDS / scan)
        data = np.asanyarray(img.dataobj).astype(np.float32)
        motion, order = head_motion(img, rng), (1, 3)[index % 2]
        second = rescaled_with_noise(moved(data, img.affine, motion, order), rng)
        anat = bids_dir / f"sub-{label}"
        _save(np.asanyarray(img.dataobj), img.affine, anat / "ses-1" / "anat" / f"sub-{label}_ses-1_FLAIR.nii.gz")
        _save(second, img.affine, anat / "ses-2" / "anat" / f"sub-{label}_ses-2_FLAIR.nii.gz")
        made[label] = {"motion": motion.tolist(), "order": order}
    return made


def lesion_sites(out_dir, source, count, rng):
    """``count`` centres (scanner mm of session 1) in deep normal-appearing tissue of session 1's
    run: deeper than ``LESION_DEPTH_MM`` in the brain, 5 mm from its WMH and ventricles, of
    white-matter intensity, at least 15 mm apart."""
    from bids_deepwmh.core.images import deeper_than, near_mask
    from bids_deepwmh.utils.bids import derivative_path

    def load(**entities):
        return nib.load(derivative_path(out_dir, source, extension=".nii.gz", **entities))

    flair = load(desc="preproc", suffix="FLAIR")
    zooms = flair.header.get_zooms()[:3]
    brain = np.asanyarray(load(desc="brain", suffix="mask").dataobj) > 0
    regions = np.asanyarray(load(desc="wmhregions", suffix="dseg").dataobj)
    data = flair.get_fdata(dtype=np.float32)
    candidates = deeper_than(brain, zooms, LESION_DEPTH_MM) & ~near_mask(regions > 0, zooms, 5.0)
    level = float(np.median(data[candidates]))
    candidates &= np.abs(data / level - 1) < 0.15
    points = nib.affines.apply_affine(flair.affine, np.argwhere(candidates))
    chosen = []
    for index in rng.permutation(len(points)):
        if all(np.linalg.norm(points[index] - c) >= 15.0 for c in chosen):
            chosen.append(points[index])
        if len(chosen) == count:
            break
    return chosen


def write_new_lesions(pairs_bids, pairs_out, bids_dir, truth_dir, made, rng):
    """Participants ``<label>new``: session 1 as in the pairs, session 2 the pair's session 2 with
    ``NEW_LESIONS`` synthetic lesions; their exact extent (fraction of each voxel) in ``truth_dir``."""
    import shutil

    _dataset(bids_dir, "same head twice, new lesions in session 2")
    truth = {}
    for label in SCANS:
        first = pairs_bids / f"sub-{label}" / "ses-1" / "anat" / f"sub-{label}_ses-1_FLAIR.nii.gz"
        second = nib.load(pairs_bids / f"sub-{label}" / "ses-2" / "anat" / f"sub-{label}_ses-2_FLAIR.nii.gz")
        data = second.get_fdata(dtype=np.float32)
        motion = np.array(made[label]["motion"])
        occupancy = np.zeros(second.shape, np.float32)
        lesions = []
        for centre in lesion_sites(pairs_out, first, NEW_LESIONS, rng):
            centre = nib.affines.apply_affine(motion, centre)
            volume = float(np.exp(rng.uniform(*np.log(NEW_LESION_MM3))))
            fraction, actual = lesion_occupancy(second.shape, second.affine, centre, volume, rng)
            core = fraction > 0.5
            level = float(np.median(data[ndimage.binary_dilation(fraction > 0, iterations=2) & ~(fraction > 0)]))
            data += fraction * rng.uniform(*NEW_LESION_CONTRAST) * level
            occupancy = np.maximum(occupancy, fraction)
            lesions.append({"centre_mm": centre.tolist(), "volume_mm3": round(actual, 1),
                            "voxels_over_half": int(core.sum())})
        name = f"{label}new"
        target = bids_dir / f"sub-{name}"
        (target / "ses-1" / "anat").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(first, target / "ses-1" / "anat" / f"sub-{name}_ses-1_FLAIR.nii.gz")
        _save(np.clip(np.rint(data), 0, np.iinfo(np.uint16).max).astype(np.uint16), second.affine,
              target / "ses-2" / "anat" / f"sub-{name}_ses-2_FLAIR.nii.gz")
        _save(occupancy, second.affine, truth_dir / f"sub-{name}_ses-2_occupancy.nii.gz")
        truth[name] = lesions
    return truth


def participant(bids_dir, out_dir, work_dir, nprocs, extra=()):
    """Run the participant level; return its wall seconds."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "bids_deepwmh", str(bids_dir), str(out_dir), "participant", "-w",
                    str(work_dir), "--nprocs", str(nprocs), "--skip-bids-validation", *extra], check=True)
    return time.perf_counter() - start


def _native(out_dir, subject, session, **entities):
    from bids_deepwmh.utils.bids import derivative_path

    source = f"sub-{subject}/ses-{session}/anat/sub-{subject}_ses-{session}_FLAIR.nii.gz"
    return nib.load(derivative_path(out_dir, source, extension=".nii.gz", **entities))


def independent_change(out_dir, subject):
    """The two sessions' own masks brought into the subject space through the run's transforms and
    labelled as the consistent ones are: (change summary, own volumes in mL)."""
    from bids_deepwmh.core import longitudinal
    from bids_deepwmh.utils.bids import derivative_path

    grid = nib.load(out_dir / f"sub-{subject}" / "anat" / f"sub-{subject}_space-subject_desc-mean_FLAIR.nii.gz")
    masks = []
    for session in ("1", "2"):
        source = f"sub-{subject}/ses-{session}/anat/sub-{subject}_ses-{session}_FLAIR.nii.gz"
        xfm = derivative_path(out_dir, source, suffix="xfm", extension=".txt", mode="image",
                              **{"from": "FLAIR", "to": "subject"})
        mask = _native(out_dir, subject, session, label="WMH", suffix="mask")
        masks.append(longitudinal.to_subject(mask, grid, longitudinal.read_transform(xfm)) >= 0.5)
    dseg, rows = longitudinal.change_map(masks[0], masks[1], grid.affine, *(np.zeros(grid.shape, bool),) * 2)
    return longitudinal.change_summary(dseg, rows, 1.0), [m.sum() / 1000 for m in masks]


def score_pairs(out_dir, labels):
    """(a): per pair, the consistent and the independent volumes and new plus enlarging mL."""
    rows = []
    for label in labels:
        table = read_tsv(out_dir / f"sub-{label}" / "anat" / f"sub-{label}_desc-longitudinal_morph.tsv")
        volumes = [float(r["wmh_volume_ml"]) for r in table]
        own = [float(r["cross_sectional_wmh_volume_ml"]) for r in table]
        independent, _ = independent_change(out_dir, label)
        rows.append({
            "pair": label, "consistent_ml": volumes, "consistent_difference_percent": 100 * (volumes[1] / volumes[0] - 1),
            "consistent_new_enlarging_ml": float(table[1]["new_wmh_volume_ml"]) + float(table[1]["enlarging_wmh_volume_ml"]),
            "own_ml": own, "own_difference_percent": 100 * (own[1] / own[0] - 1),
            "independent_new_enlarging_ml": independent["new_wmh_volume_ml"] + independent["enlarging_wmh_volume_ml"],
        })
    return rows


def score_new_lesions(out_dir, truth, label):
    """(b): the synthetic lesions of one pair found as new, and the new lesions near none of them."""
    from bids_deepwmh.core.lesions import label_components

    change = _native(out_dir, label, "2", desc="wmhchange", suffix="dseg")
    new_labels, count = label_components(np.asanyarray(change.dataobj) == 1)
    voxels = np.argwhere(new_labels > 0)
    points = nib.affines.apply_affine(change.affine, voxels)
    owner = new_labels[tuple(voxels.T)]
    half_voxel = float(np.max(change.header.get_zooms()[:3])) / 2
    found, touched = [], set()
    for lesion in truth:
        reach = (3 * lesion["volume_mm3"] / (4 * np.pi)) ** (1 / 3) + half_voxel
        near = np.linalg.norm(points - lesion["centre_mm"], axis=1) <= reach
        found.append(bool(near.any()))
        touched |= set(owner[near].tolist())
    voxel_mm3 = float(np.prod(change.header.get_zooms()[:3]))
    return {"pair": label, "volumes_mm3": [lesion["volume_mm3"] for lesion in truth], "found": found,
            "false_new": count - len(touched), "new_mm3": round(len(voxels) * voxel_mm3, 1)}


def run_pairs(args):
    out = args.out.resolve()
    rng = np.random.default_rng(SEED)
    made = write_pairs(out / "pairs" / "bids", rng)
    seconds = participant(out / "pairs" / "bids", out / "pairs" / "out", out / "pairs" / "work", args.nprocs)
    truth = write_new_lesions(out / "pairs" / "bids", out / "pairs" / "out", out / "new" / "bids",
                              out / "new" / "truth", made, rng)
    seconds += participant(out / "new" / "bids", out / "new" / "out", out / "new" / "work", args.nprocs)
    same_head = score_pairs(out / "pairs" / "out", SCANS)
    new_lesions = [score_new_lesions(out / "new" / "out", truth[f"{label}new"], f"{label}new") for label in SCANS]
    (out / "pairs.json").write_text(json.dumps({"made": made, "truth": truth, "same_head": same_head,
                                                "new_lesions": new_lesions, "seconds": seconds}, indent=1))
    print(f"{len(SCANS)} pairs, twice, in {seconds:.0f} s ({args.nprocs} processes)")
    print("| pair | consistent WMH (mL) | difference | new + enlarging (mL) | own WMH (mL) | difference | "
          "independent new + enlarging (mL) |\n|---|---|---|---|---|---|---|")
    for r in same_head:
        print(f"| {r['pair']} | {r['consistent_ml'][0]:.2f} / {r['consistent_ml'][1]:.2f} | "
              f"{r['consistent_difference_percent']:+.1f} % | {r['consistent_new_enlarging_ml']:.3f} | "
              f"{r['own_ml'][0]:.2f} / {r['own_ml'][1]:.2f} | {r['own_difference_percent']:+.1f} % | "
              f"{r['independent_new_enlarging_ml']:.3f} |")
    print("| pair | synthetic lesions (mm3) | found as new | false new | new (mm3) / added (mm3) |\n|---|---|---|---|---|")
    for r in new_lesions:
        sizes = ", ".join(f"{v:.0f}{'' if f else ' (missed)'}" for v, f in zip(r["volumes_mm3"], r["found"], strict=True))
        print(f"| {r['pair']} | {sizes} | {sum(r['found'])}/{len(r['found'])} | {r['false_new']} | "
              f"{r['new_mm3']:.0f} / {sum(r['volumes_mm3']):.0f} |")
    big = [f for r in new_lesions for v, f in zip(r["volumes_mm3"], r["found"], strict=True) if v >= 10]
    print(f"lesions of 10 mm3 or more found as new: {sum(big)}/{len(big)}; false new per pair: "
          f"{sum(r['false_new'] for r in new_lesions) / len(new_lesions):.2f}")


def summarise(args):
    """Counts and volumes by class per participant of an output folder."""
    for table in sorted(args.derivatives.glob("sub-*/anat/sub-*_desc-longitudinal_morph.tsv")):
        for row in read_tsv(table):
            if row["compared_with"] in ("", "n/a"):
                print(f"{table.name.split('_')[0]} {row['session_id']}: WMH {float(row['wmh_volume_ml']):.2f} mL "
                      f"(on its own {float(row['cross_sectional_wmh_volume_ml']):.2f})" if row["status"] == "compared"
                      else f"{table.name.split('_')[0]} {row['session_id']}: skipped, {row['reason']}")
                continue
            counts = ", ".join(f"{row[f'{c}_wmh_count']} {c} ({float(row[f'{c}_wmh_volume_ml']):.2f} mL)"
                               for c in ("new", "enlarging", "shrinking", "disappeared"))
            print(f"{table.name.split('_')[0]} {row['session_id']}: WMH {float(row['wmh_volume_ml']):.2f} mL (on its "
                  f"own {float(row['cross_sectional_wmh_volume_ml']):.2f}); against {row['compared_with']}: {counts}, "
                  f"{row['stable_wmh_count']} stable")


def node_seconds(work_dir, names):
    """Seconds the named nodes took (Nipype's result files), summed by name."""
    import pickle
    import gzip

    total = dict.fromkeys(names, 0.0)
    for name in names:
        for result in Path(work_dir).glob(f"**/{name}/result_{name}.pklz"):
            with gzip.open(result) as fh:
                total[name] += float(pickle.load(fh).runtime.duration)
    return total


def cost(args):
    out = args.out.resolve() / "cost"
    bids_dir = args.out.resolve() / "pairs" / "bids"
    if not bids_dir.exists():
        sys.exit(f"{bids_dir} not found: run the pairs first")
    label = next(iter(SCANS))
    whole = participant(bids_dir, out / "whole" / "out", out / "whole" / "work", args.nprocs,
                        ["--participant-label", label])
    alone = [participant(bids_dir, out / f"ses-{s}" / "out", out / f"ses-{s}" / "work", args.nprocs,
                         ["--participant-label", label, "--session-label", s]) for s in ("1", "2")]
    steps = node_seconds(out / "whole" / "work", ("subject_space", "consistent_wmh", "wmh_change",
                                                  "longitudinal_table", "change_figure", "volume_curve"))
    print(f"sub-{label}: both sessions and their change in one run {whole:.0f} s; the sessions one by one "
          f"{alone[0]:.0f} + {alone[1]:.0f} = {sum(alone):.0f} s; ratio {whole / sum(alone):.2f}")
    print("longitudinal steps (s): " + ", ".join(f"{k} {v:.1f}" for k, v in steps.items()))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=("pairs", "summary", "cost"))
    parser.add_argument("--out", type=Path, default=Path("bench-long"))
    parser.add_argument("--derivatives", type=Path, help="summary: the output folder to summarise")
    parser.add_argument("--nprocs", type=int, default=1)
    args = parser.parse_args(argv)
    missing = [scan for scan in SCANS.values() if not (SHARED_BIDS / scan).exists()]
    if args.step != "summary" and missing:
        sys.exit(f"{missing[0]} not found in {SHARED_BIDS}: put ../shared beside the repository")
    {"pairs": run_pairs, "summary": summarise, "cost": cost}[args.step](args)


if __name__ == "__main__":
    main()
