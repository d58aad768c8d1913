"""The training node: pseudo-labels in, model bundle out."""

import time
from pathlib import Path

import nibabel as nib
import numpy as np
from nipype.interfaces.base import (
    BaseInterfaceInputSpec,
    File,
    InputMultiObject,
    SimpleInterface,
    TraitedSpec,
    isdefined,
    traits,
)


class _TrainModelInputSpec(BaseInterfaceInputSpec):
    flairs = InputMultiObject(File(exists=True), mandatory=True, desc="bias-corrected FLAIRs (conformed grids)")
    brain_masks = InputMultiObject(File(exists=True), mandatory=True)
    pseudo_labels = InputMultiObject(File(exists=True), mandatory=True, desc="anatomical-stage WMH masks")
    scores = InputMultiObject(File(exists=True), mandatory=True, desc="anatomical-stage scores")
    scans = traits.List(traits.Dict, mandatory=True, desc="name, dataset and licence of each scan")
    reference_file = File(exists=True, mandatory=True, desc="the reference the pseudo-labels came from")
    settings = traits.Dict(desc="TrainingSettings fields to change")
    checkpoint_dir = traits.Str(mandatory=True, desc="checkpoints (kept across reruns, for resuming)")
    bundle_dir = traits.Str(mandatory=True, desc="where the model bundle is written")
    command = traits.Str("deepwmh", usedefault=True, desc="the command line, for the model card")
    use_gpu = traits.Bool(False, usedefault=True)
    num_threads = traits.Int(1, usedefault=True)
    progress_log = File(nohash=True, desc="the run's log file: epochs, loss and time left are appended to it")


class _TrainModelOutputSpec(TraitedSpec):
    bundle_dir = traits.Directory(exists=True)
    cleaned_labels = traits.List(File(exists=True), desc="cleaned labels on each FLAIR's conformed grid")


class TrainModel(SimpleInterface):
    """Label cleaning by temporal ensembling, then the final network; writes a bundle."""

    input_spec = _TrainModelInputSpec
    output_spec = _TrainModelOutputSpec

    def _run_interface(self, runtime):
        from bids_deepwmh.utils.logs import worker_logging

        with worker_logging(self.inputs.progress_log if isdefined(self.inputs.progress_log) else None):
            self._train()
        return runtime

    def _train(self):
        import torch

        from bids_deepwmh.core.images import like
        from bids_deepwmh.model.bundle import write_bundle
        from bids_deepwmh.model.card import model_card
        from bids_deepwmh.model.inference import device_for
        from bids_deepwmh.model.training import TrainingSettings, load_case, run_fingerprint, train
        from bids_deepwmh.model.working import from_grid

        started = time.monotonic()
        torch.set_num_threads(self.inputs.num_threads)
        settings = TrainingSettings.from_dict(self.inputs.settings)
        names = [scan["name"] for scan in self.inputs.scans]
        keys = [Path(f).name.split(".")[0] for f in names]
        cases = [
            load_case(key, *files, settings)
            for key, *files in zip(keys, self.inputs.flairs, self.inputs.brain_masks, self.inputs.pseudo_labels,
                                   self.inputs.scores, strict=True)
        ]
        run_dir = Path(self.inputs.checkpoint_dir) / run_fingerprint(settings, cases)
        state, curve, cleaned, validation, best = train(cases, settings, run_dir, device_for(self.inputs.use_gpu))
        labels_dir = run_dir / "cleaned-labels"
        labels_dir.mkdir(exist_ok=True)
        self._results["cleaned_labels"] = []
        for case, label in zip(cases, cleaned, strict=True):
            native = nib.load(case.native)
            out_file = labels_dir / f"{case.name}_desc-cleaned_mask.nii.gz"
            nib.save(like(from_grid(label, case.grid, native) >= 0.5, native, np.uint8), out_file)
            self._results["cleaned_labels"].append(str(out_file))
        bundle_settings = settings.bundle_settings(best, [names[i] for i in validation])
        card = model_card(bundle_settings, self.inputs.scans, curve, time.monotonic() - started,
                          self.inputs.command, [names[i] for i in validation], best)
        write_bundle(self.inputs.bundle_dir, state, bundle_settings, self.inputs.reference_file, curve, card)
        self._results["bundle_dir"] = self.inputs.bundle_dir
