"""The participant-level graph: one sub-workflow per FLAIR."""

import re
from pathlib import Path

from nipype.pipeline import engine as pe

from bids_deepwmh import DEFAULT_RANDOM_SEED
from bids_deepwmh.utils.status import mark_scan_nodes
from bids_deepwmh.workflows.outputs import init_outputs_wf
from bids_deepwmh.workflows.preprocessing import init_preprocessing_wf
from bids_deepwmh.workflows.priors import init_priors_wf, init_template_masks, template_mask_connections
from bids_deepwmh.workflows.quality import init_quality_wf
from bids_deepwmh.workflows.reports import init_report_wf
from bids_deepwmh.workflows.segmentation import init_segmentation_wf


def scan_workflow_name(flair_file):
    """``sub-01_ses-1_FLAIR.nii.gz`` -> ``sub_01_ses_1_FLAIR_wf`` (a valid Nipype name)."""
    stem = Path(flair_file).name.split(".")[0]
    return re.sub(r"\W", "_", stem.replace("-", "_")) + "_wf"


def init_deepwmh_wf(flair_files, output_dir, bundle, *, omp_nthreads=1, use_gpu=False, mirror=False,
                    random_seed=DEFAULT_RANDOM_SEED, name="deepwmh_wf"):
    """Every FLAIR gets its own independent branch, so a failure stays in its branch; the
    template's masks are made once for all of them.  ``bundle``: the loaded model bundle
    (:func:`bids_deepwmh.model.bundle.load_bundle`)."""
    wf = pe.Workflow(name=name)
    template_masks = init_template_masks()
    for flair_file in flair_files:
        scan_wf = init_single_flair_wf(flair_file, output_dir, bundle, omp_nthreads=omp_nthreads,
                                       use_gpu=use_gpu, mirror=mirror, random_seed=random_seed)
        wf.connect([(template_masks, scan_wf, template_mask_connections(prefix="priors_wf."))])
    return wf


def init_single_flair_wf(flair_file, output_dir, bundle, *, omp_nthreads=1, use_gpu=False, mirror=False,
                         random_seed=DEFAULT_RANDOM_SEED, name=None):
    """Preprocess, bring the template's priors to, segment, check and write the derivatives and
    figures of one FLAIR; its ``priors_wf`` takes the template's masks from
    :func:`~bids_deepwmh.workflows.priors.init_template_masks`."""
    wf = pe.Workflow(name=name or scan_workflow_name(flair_file))
    preprocessing_wf = init_preprocessing_wf(omp_nthreads=omp_nthreads, use_gpu=use_gpu, random_seed=random_seed)
    preprocessing_wf.inputs.inputnode.in_file = str(flair_file)
    priors_wf = init_priors_wf()
    priors_wf.inputs.inputnode.reference = str(bundle.reference_file)
    segmentation_wf = init_segmentation_wf(bundle, use_gpu=use_gpu, mirror=mirror)
    quality_wf = init_quality_wf(output_dir, flair_file)
    outputs_wf = init_outputs_wf(output_dir, flair_file, bundle)
    report_wf = init_report_wf(output_dir, flair_file)
    wf.connect([
        (preprocessing_wf, priors_wf, [
            ("outputnode.flair", "inputnode.flair"),
            ("outputnode.inverse_transform", "inputnode.inverse_transform"),
        ]),
        (preprocessing_wf, segmentation_wf, [
            ("outputnode.flair", "inputnode.flair"),
            ("outputnode.brain_mask", "inputnode.brain_mask"),
            ("outputnode.inverse_transform", "inputnode.inverse_transform"),
        ]),
        (priors_wf, segmentation_wf, [
            (f"outputnode.{prior}", f"inputnode.{prior}")
            for prior in ("reference", "wm_probability", "allowed_tissue", "wmh_tissue", "aseg")
        ]),
        (preprocessing_wf, quality_wf, [
            ("outputnode.brain_mask", "inputnode.brain_mask"),
            ("outputnode.brain_mask_metadata", "inputnode.brain_extraction"),
            ("outputnode.forward_transform", "inputnode.forward_transform"),
            ("outputnode.similarity", "inputnode.similarity"),
        ]),
        (priors_wf, quality_wf, [
            (f"outputnode.{prior}", f"inputnode.{prior}")
            for prior in ("reference", "wm_probability", "gm_probability", "aseg", "template_brain",
                          "right_hemisphere")
        ]),
        (segmentation_wf, quality_wf, [
            ("outputnode.normalised", "inputnode.normalised"),
            ("outputnode.outside_tissue_ml", "inputnode.outside_tissue_ml"),
            ("outputnode.unnulled_slice_count", "inputnode.unnulled_slice_count"),
        ]),
        (preprocessing_wf, outputs_wf, [
            ("outputnode.flair", "inputnode.flair"),
            ("outputnode.brain_mask", "inputnode.brain_mask"),
            ("outputnode.brain_mask_metadata", "inputnode.brain_mask_metadata"),
            ("outputnode.forward_transform", "inputnode.forward_transform"),
            ("outputnode.inverse_transform", "inputnode.inverse_transform"),
        ]),
        (segmentation_wf, outputs_wf, [
            ("outputnode.wmh_mask", "inputnode.wmh_mask"),
            ("outputnode.probseg", "inputnode.probseg"),
            ("outputnode.anatomical_mask", "inputnode.anatomical_mask"),
            ("outputnode.regions", "inputnode.regions"),
            ("outputnode.regions_table", "inputnode.regions_table"),
            ("outputnode.lesions", "inputnode.lesions"),
            ("outputnode.volumes", "inputnode.volumes"),
        ]),
        (preprocessing_wf, report_wf, [
            ("outputnode.flair", "inputnode.flair"),
            ("outputnode.brain_mask", "inputnode.brain_mask"),
        ]),
        (priors_wf, report_wf, [
            ("outputnode.template_t1w", "inputnode.template_t1w"),
            ("outputnode.wm_probability", "inputnode.wm_probability"),
        ]),
        (segmentation_wf, report_wf, [
            ("outputnode.regions", "inputnode.regions"),
            ("outputnode.probseg", "inputnode.probseg"),
            ("outputnode.volumes", "inputnode.volumes"),
        ]),
        (quality_wf, report_wf, [("outputnode.quality", "inputnode.quality")]),
    ])  # fmt: skip
    mark_scan_nodes(wf, flair_file)
    return wf
