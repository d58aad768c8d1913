"""The WMH nodes (anatomical-knowledge and learned), the regional split and the volumes table."""

import nibabel as nib
import numpy as np
from nipype.interfaces.base import BaseInterfaceInputSpec, File, SimpleInterface, TraitedSpec, traits

from bids_deepwmh.interfaces.utils import out_path


class _AnatomicalWMHInputSpec(BaseInterfaceInputSpec):
    in_file = File(exists=True, mandatory=True, desc="bias-corrected FLAIR (conformed grid)")
    brain_mask = File(exists=True, mandatory=True)
    reference = File(exists=True, mandatory=True, desc="normal-appearing reference (expected, spread) on the FLAIR")
    wm_probability = File(exists=True, mandatory=True, desc="template white-matter probseg on the FLAIR")
    allowed_tissue = File(exists=True, mandatory=True, desc="template white and deep grey matter on the FLAIR")
    aseg = File(exists=True, mandatory=True, desc="template seg-aseg labels on the FLAIR (its cortex)")


class _AnatomicalWMHOutputSpec(TraitedSpec):
    normalised = File(exists=True, desc="the FLAIR divided by its white matter's level")
    score = File(exists=True, desc="one-sided hyperintensity z-score")
    network_score = File(exists=True, desc="the score as the network reads it: 0 in the template's cortex")
    wmh_mask = File(exists=True, desc="binary WMH mask")
    unnulled_slices = File(exists=True, desc="the lowest slices whose CSF is not nulled (no WMH judged there)")
    unnulled_slice_count = traits.Int(desc="how many such slices")


class AnatomicalWMH(SimpleInterface):
    """Voxels far brighter than normal-appearing brains, in white and deep grey matter; and the
    score the network reads, which says nothing in the cortex, where this stage never calls WMH
    (given there, it made the network mark a bright cortical ribbon as lesions).  The lowest slices
    whose CSF is not nulled (``anatomical.unnulled_slices``) score 0."""

    input_spec = _AnatomicalWMHInputSpec
    output_spec = _AnatomicalWMHOutputSpec

    def _run_interface(self, runtime):
        from bids_deepwmh.core import anatomical
        from bids_deepwmh.core.images import like
        from bids_deepwmh.core.reference import reference_volumes
        from bids_deepwmh.core.regions import CEREBRAL_CORTEX

        flair = nib.load(self.inputs.in_file)
        brain = np.asanyarray(nib.load(self.inputs.brain_mask).dataobj) > 0
        allowed = np.asanyarray(nib.load(self.inputs.allowed_tissue).dataobj) > 0
        wm_probability = nib.load(self.inputs.wm_probability).get_fdata(dtype=np.float32)
        expected, spread = (img.get_fdata(dtype=np.float32)
                            for img in reference_volumes(nib.load(self.inputs.reference)))
        normalised = anatomical.normalise(flair.get_fdata(dtype=np.float32), brain, wm_probability)
        axis, indices = anatomical.unnulled_slices(normalised, brain, flair.affine)
        unnulled = np.zeros(normalised.shape, bool)
        np.moveaxis(unnulled, axis, 0)[indices] = True
        score = np.where(unnulled, 0, anatomical.hyperintensity_score(
            normalised, brain, wm_probability, expected, spread, flair.header.get_zooms()[:3]
        ))
        wmh = anatomical.segment(score, allowed & brain, flair.header.get_zooms()[:3])
        cortex = np.isin(np.rint(nib.load(self.inputs.aseg).get_fdata(dtype=np.float32)), CEREBRAL_CORTEX)
        self._results.update(
            normalised=out_path(runtime, "normalised.nii.gz"),
            score=out_path(runtime, "score.nii.gz"),
            network_score=out_path(runtime, "network_score.nii.gz"),
            wmh_mask=out_path(runtime, "wmh.nii.gz"),
            unnulled_slices=out_path(runtime, "unnulled_slices.nii.gz"),
            unnulled_slice_count=len(indices),
        )
        nib.save(like(unnulled, flair, np.uint8), self._results["unnulled_slices"])
        nib.save(like(normalised, flair), self._results["normalised"])
        nib.save(like(score, flair), self._results["score"])
        nib.save(like(np.where(cortex, 0, score), flair), self._results["network_score"])
        nib.save(like(wmh, flair, np.uint8), self._results["wmh_mask"])
        return runtime


class _RegionalWMHInputSpec(BaseInterfaceInputSpec):
    normalised = File(exists=True, mandatory=True, desc="white-matter-normalised FLAIR (AnatomicalWMH)")
    brain_mask = File(exists=True, mandatory=True)
    wmh_mask = File(exists=True, mandatory=True, desc="final WMH mask")
    probseg = File(exists=True, mandatory=True, desc="WMH probability")
    inverse_transform = File(exists=True, mandatory=True, desc="template-to-FLAIR transform (lesion centroids)")
    aseg = File(exists=True, mandatory=True, desc="template seg-aseg labels on the FLAIR grid")


class _RegionalWMHOutputSpec(TraitedSpec):
    regions = File(exists=True, desc="dseg: 1 periventricular WMH, 2 deep WMH, 3 lateral ventricles, "
                   "4 infratentorial WMH")
    regions_table = File(exists=True, desc="the dseg's labels (index, name)")
    lesions = File(exists=True, desc="one row per lesion (TSV)")


class RegionalWMH(SimpleInterface):
    """Periventricular (within 10 mm of the lateral ventricles), deep and infratentorial WMH, and a
    lesion table."""

    input_spec = _RegionalWMHInputSpec
    output_spec = _RegionalWMHOutputSpec

    def _run_interface(self, runtime):
        from bids_deepwmh.core import regions
        from bids_deepwmh.core.images import like
        from bids_deepwmh.core.registration import points_to_template
        from bids_deepwmh.utils.tables import write_tsv

        flair = nib.load(self.inputs.normalised)
        zooms = flair.header.get_zooms()[:3]
        brain = np.asanyarray(nib.load(self.inputs.brain_mask).dataobj) > 0
        wmh = np.asanyarray(nib.load(self.inputs.wmh_mask).dataobj) > 0
        normalised = flair.get_fdata(dtype=np.float32)
        aseg = np.rint(nib.load(self.inputs.aseg).get_fdata(dtype=np.float32))
        prior = np.isin(aseg, regions.LATERAL_VENTRICLES)
        ventricles = regions.refine_ventricles(normalised, prior, brain, zooms) & ~wmh
        infratentorial = np.isin(aseg, regions.INFRATENTORIAL)
        distance = regions.wall_distance(ventricles, zooms)
        region_map = regions.region_map(wmh, distance <= regions.PERIVENTRICULAR_MM, ventricles, infratentorial,
                                        regions.ventricle_linings(wmh & ~infratentorial, distance))
        rows = regions.lesion_rows(
            region_map, nib.load(self.inputs.probseg).get_fdata(dtype=np.float32), flair.affine,
            lambda points: points_to_template(points, self.inputs.inverse_transform),
        )
        self._results.update(regions=out_path(runtime, "regions.nii.gz"), lesions=out_path(runtime, "lesions.tsv"),
                             regions_table=out_path(runtime, "regions.tsv"))
        nib.save(like(region_map, flair, np.uint8), self._results["regions"])
        write_tsv(self._results["regions_table"], ("index", "name"),
                  [{"index": k, "name": v} for k, v in regions.REGION_LABELS.items()])
        write_tsv(self._results["lesions"], regions.LESION_COLUMNS, rows)
        return runtime


class _VolumesInputSpec(BaseInterfaceInputSpec):
    regions = File(exists=True, mandatory=True, desc="regions dseg (RegionalWMH), on the conformed (RAS) grid")
    lesions = File(exists=True, mandatory=True, desc="lesion table (RegionalWMH)")
    brain_mask = File(exists=True, mandatory=True)
    aseg = File(exists=True, mandatory=True, desc="template seg-aseg labels on the FLAIR grid (white matter)")


class _VolumesOutputSpec(TraitedSpec):
    out_tsv = File(exists=True)


class WMHVolumes(SimpleInterface):
    """One-row table: WMH volumes and lesion counts, in total and by region, and as brain
    fractions; Fazekas grades."""

    input_spec = _VolumesInputSpec
    output_spec = _VolumesOutputSpec

    def _run_interface(self, runtime):
        from bids_deepwmh.core.fazekas import fazekas_grades
        from bids_deepwmh.core.images import voxel_volume_mm3
        from bids_deepwmh.core.regions import CEREBRAL_WHITE_MATTER
        from bids_deepwmh.core.volumes import VOLUME_COLUMNS, wmh_volumes
        from bids_deepwmh.utils.tables import read_tsv, write_tsv

        regions_img = nib.load(self.inputs.regions)
        regions = np.asanyarray(regions_img.dataobj)
        values = wmh_volumes(
            regions,
            np.asanyarray(nib.load(self.inputs.brain_mask).dataobj) > 0,
            voxel_volume_mm3(regions_img),
            [row["region"] for row in read_tsv(self.inputs.lesions)],
        )
        white_matter = np.isin(np.rint(nib.load(self.inputs.aseg).get_fdata(dtype=np.float32)), CEREBRAL_WHITE_MATTER)
        values.update(fazekas_grades(regions, white_matter, regions_img.header.get_zooms()[:3]).columns())
        self._results["out_tsv"] = out_path(runtime, "volumes.tsv")
        write_tsv(self._results["out_tsv"], VOLUME_COLUMNS, [values])
        return runtime


class _LearnedWMHInputSpec(BaseInterfaceInputSpec):
    in_file = File(exists=True, mandatory=True, desc="bias-corrected FLAIR (conformed grid)")
    brain_mask = File(exists=True, mandatory=True)
    tissue = File(exists=True, mandatory=True, desc="where WMH can be, on the FLAIR (the priors' wmh_tissue)")
    score = File(exists=True, mandatory=True, desc="anatomical score: the rims' trim")
    network_score = File(exists=True, mandatory=True,
                         desc="anatomical score as the network reads it (AnatomicalWMH): its second input when the "
                         "model takes it")
    unnulled_slices = File(exists=True, mandatory=True, desc="slices whose CSF is not nulled (AnatomicalWMH): no WMH")
    model = traits.Directory(exists=True, mandatory=True, desc="model bundle")
    use_gpu = traits.Bool(False, usedefault=True, desc="run on CUDA when present (a GPU node for Nipype)")
    mirror = traits.Bool(False, usedefault=True, desc="average the 8 mirrored predictions")


class _LearnedWMHOutputSpec(TraitedSpec):
    probseg = File(exists=True, desc="WMH probability")
    wmh_mask = File(exists=True, desc="binary WMH mask")
    outside_tissue_ml = traits.Float(desc="volume the network found outside the tissue where WMH can be")


class LearnedWMH(SimpleInterface):
    """The trained network's WMH probability and mask, none in slices whose CSF is not nulled, kept
    to the tissue where WMH can be; the mask also loses the faint partial-volume rims of its lesions
    (``lesions.trim_faint_rims``)."""

    input_spec = _LearnedWMHInputSpec
    output_spec = _LearnedWMHOutputSpec

    def _run_interface(self, runtime):
        from bids_deepwmh.core.images import like
        from bids_deepwmh.model.bundle import load_bundle
        from bids_deepwmh.model.inference import bundle_forward, keep_where_wmh_can_be, segment_scan

        bundle = load_bundle(self.inputs.model)
        score = nib.load(self.inputs.score)
        flair = nib.load(self.inputs.in_file)
        probability, mask = segment_scan(
            bundle, flair, nib.load(self.inputs.brain_mask), nib.load(self.inputs.network_score),
            bundle_forward(bundle, self.inputs.use_gpu), self.inputs.mirror,
        )
        unnulled = np.asanyarray(nib.load(self.inputs.unnulled_slices).dataobj) > 0
        probability, mask = np.where(unnulled, 0, probability), mask & ~unnulled
        tissue = np.asanyarray(nib.load(self.inputs.tissue).dataobj) > 0
        probability, mask, outside_ml = keep_where_wmh_can_be(
            bundle, probability, mask, tissue, score.get_fdata(dtype=np.float32), flair
        )
        self._results.update(probseg=out_path(runtime, "probseg.nii.gz"), wmh_mask=out_path(runtime, "wmh.nii.gz"),
                             outside_tissue_ml=outside_ml)
        nib.save(like(probability, flair), self._results["probseg"])
        nib.save(like(mask, flair, np.uint8), self._results["wmh_mask"])
        return runtime
