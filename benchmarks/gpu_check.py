"""CUDA against the CPU for the two stages that use a GPU: HD-BET's brain mask and the network.

``prepare`` copies, from finished participant-level work folders, each scan's conformed FLAIR,
N4-corrected FLAIR (both rounded to int16) and anatomical score: the inputs both devices share.  ``run``, on a
machine with CUDA, computes per scan the brain mask and the network's WMH probability and mask on
the CPU and on CUDA, and prints their agreement (Dice, largest probability difference) and the
seconds of each (the first CUDA call of each stage includes its warm-up, so it runs twice).

    python benchmarks/gpu_check.py prepare WORK_DIR [WORK_DIR ...] --cases .gpu/cases
    python benchmarks/gpu_check.py run --cases .gpu/cases      # see benchmarks/gpu_check.sh
"""

import argparse
import time
from pathlib import Path

import nibabel as nib
import numpy as np

INPUTS = {"conformed": "preprocessing_wf/conform/conformed.nii.gz", "n4": "preprocessing_wf/n4/n4.nii.gz",
          "score": "segmentation_wf/anatomical_wmh/score.nii.gz"}
ROUNDED = ("conformed", "n4")  # carried as int16 (half the bytes): both devices read the same values


def prepare(work_dirs, cases):
    """One folder per scan under ``cases`` with the stage inputs of every finished scan."""
    for work_dir in work_dirs:
        for scan_dir in sorted(Path(work_dir).glob("*/*_FLAIR_wf")):
            paths = {name: scan_dir / relative for name, relative in INPUTS.items()}
            if all(path.exists() for path in paths.values()):
                (Path(cases) / scan_dir.name).mkdir(parents=True, exist_ok=True)
                for name, path in paths.items():
                    img = nib.load(path)
                    if name in ROUNDED:
                        img = nib.Nifti1Image(np.rint(img.get_fdata()).astype(np.int16), img.affine, img.header)
                        img.header.set_data_dtype(np.int16)
                    nib.save(img, Path(cases) / scan_dir.name / f"{name}.nii.gz")
                print(f"prepared {scan_dir.name}")


def _timed(function, *args):
    start = time.perf_counter()
    result = function(*args)
    return result, time.perf_counter() - start


def run(cases):
    import torch

    from bids_deepwmh.core.images import like
    from bids_deepwmh.core.metrics import dice
    from bids_deepwmh.core.skullstrip import brain_from_probability, brain_probability, torch_brain_network
    from bids_deepwmh.model.bundle import load_bundle, packaged_bundle
    from bids_deepwmh.model.inference import segment_scan, torch_forward

    if not torch.cuda.is_available():
        raise SystemExit("no CUDA device: this check needs a GPU")
    print(f"torch {torch.__version__} on {torch.cuda.get_device_name()} against {torch.get_num_threads()} CPU threads")
    bundle = load_bundle(packaged_bundle())
    print("| scan | brain Dice CUDA/CPU | HD-BET s CPU / CUDA | WMH Dice CUDA/CPU | max prob. diff | "
          "WMH mL CPU / CUDA | network s CPU / CUDA |\n|---|---|---|---|---|---|---|")
    for case in sorted(Path(cases).iterdir()):
        conformed, n4, score = (nib.load(case / f"{name}.nii.gz") for name in INPUTS)
        # PyTorch on both (the App runs HD-BET and the network in ONNX Runtime on the CPU: the same
        # numbers to 1e-4, test_core and test_model)
        data, zooms = np.asanyarray(conformed.dataobj, np.float32), conformed.header.get_zooms()[:3]

        def brain_on(device):
            return brain_from_probability(brain_probability(data, zooms, torch_brain_network(device)))

        brain_cpu, brain_cpu_s = _timed(brain_on, "cpu")
        brain_on("cuda")  # warm-up
        brain_gpu, brain_gpu_s = _timed(brain_on, "cuda")
        brain_img = like(brain_cpu, conformed, np.uint8)  # the network gets the same brain on both
        cpu, cuda = (torch_forward(bundle.network(), device) for device in ("cpu", "cuda"))
        (prob_cpu, wmh_cpu), net_cpu_s = _timed(segment_scan, bundle, n4, brain_img, score, cpu)
        segment_scan(bundle, n4, brain_img, score, cuda)  # warm-up
        (prob_gpu, wmh_gpu), net_gpu_s = _timed(segment_scan, bundle, n4, brain_img, score, cuda)
        voxel_ml = abs(np.linalg.det(n4.affine[:3, :3])) / 1000
        print(f"| {case.name} | {dice(brain_gpu, brain_cpu):.4f} | {brain_cpu_s:.1f} / {brain_gpu_s:.1f} | "
              f"{dice(wmh_gpu, wmh_cpu):.4f} | {np.abs(prob_gpu - prob_cpu).max():.2e} | "
              f"{wmh_cpu.sum() * voxel_ml:.2f} / {wmh_gpu.sum() * voxel_ml:.2f} | {net_cpu_s:.1f} / {net_gpu_s:.1f} |")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("prepare", "run"))
    parser.add_argument("work_dirs", nargs="*", type=Path, help="prepare: participant-level work folders")
    parser.add_argument("--cases", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.action == "prepare":
        prepare(args.work_dirs, args.cases)
    else:
        run(args.cases)


if __name__ == "__main__":
    main()
