"""The longitudinal nodes: the subject space, the consistent segmentation, the change and its table.

Their inputs are lists with one entry per session, in time order; every session's images are
its cross-sectional derivatives on its own grid."""

import nibabel as nib
import numpy as np
from nipype.interfaces.base import (
    BaseInterfaceInputSpec,
    File,
    InputMultiObject,
    SimpleInterface,
    TraitedSpec,
    traits,
)

from bids_deepwmh import DEFAULT_RANDOM_SEED
from bids_deepwmh.interfaces.utils import out_path


def _mask(path):
    return np.asanyarray(nib.load(path).dataobj) > 0


class _SubjectSpaceInputSpec(BaseInterfaceInputSpec):
    flairs = InputMultiObject(File(exists=True), mandatory=True, desc="bias-corrected FLAIRs")
    brain_masks = InputMultiObject(File(exists=True), mandatory=True)
    random_seed = traits.Int(DEFAULT_RANDOM_SEED, usedefault=True)


class _SubjectSpaceOutputSpec(TraitedSpec):
    transforms = traits.List(File(exists=True), desc="per session, the ITK affine from subject-space "
                                   "points to the session's (it brings the session's images into subject space)")
    reference = File(exists=True, desc="the subject-space grid")
    affine = traits.Bool(desc="the registration was affine (the brains' volumes differ), not rigid")


class SubjectSpace(SimpleInterface):
    """Each later session's brain registered to the first (both ways, averaged); the subject space is
    the sessions' mean position, on a 1 mm grid covering every brain."""

    input_spec = _SubjectSpaceInputSpec
    output_spec = _SubjectSpaceOutputSpec

    def _run_interface(self, runtime):
        from bids_deepwmh.core import longitudinal
        from bids_deepwmh.core.images import voxel_volume_mm3

        flairs = [nib.load(path) for path in self.inputs.flairs]
        brain_images = [nib.load(path) for path in self.inputs.brain_masks]
        brains = [np.asanyarray(img.dataobj) > 0 for img in brain_images]
        affine = longitudinal.needs_affine([(b, voxel_volume_mm3(img)) for b, img in zip(brains, brain_images,
                                                                                         strict=True)])
        to_sessions = [np.eye(4)] + [
            longitudinal.register_within_subject(flairs[0], brains[0], flair, brain, affine=affine,
                                                 random_seed=self.inputs.random_seed)
            for flair, brain in zip(flairs[1:], brains[1:], strict=True)
        ]
        from_subject = longitudinal.subject_transforms(to_sessions)
        transforms = [longitudinal.write_transform(m, out_path(runtime, f"session{k}_to_subject.txt"))
                      for k, m in enumerate(from_subject)]
        self._results.update(transforms=transforms, reference=out_path(runtime, "subject_grid.nii.gz"),
                             affine=bool(affine))
        nib.save(longitudinal.subject_grid(brain_images, from_subject), self._results["reference"])
        return runtime


class _ConsistentWMHInputSpec(BaseInterfaceInputSpec):
    flairs = InputMultiObject(File(exists=True), mandatory=True, desc="bias-corrected FLAIRs")
    brain_masks = InputMultiObject(File(exists=True), mandatory=True)
    probsegs = InputMultiObject(File(exists=True), mandatory=True, desc="WMH probabilities")
    wmh_masks = InputMultiObject(File(exists=True), mandatory=True, desc="each session's own WMH mask")
    regions = InputMultiObject(File(exists=True), mandatory=True, desc="regions dsegs (3: lateral ventricles)")
    transforms = InputMultiObject(File(exists=True), mandatory=True, desc="SubjectSpace's transforms")
    reference = File(exists=True, mandatory=True, desc="the subject-space grid")
    aseg = File(exists=True, mandatory=True, desc="the template's aseg on the first session's grid")


class _ConsistentWMHOutputSpec(TraitedSpec):
    wmh_masks = traits.List(File(exists=True), desc="consistent WMH masks in subject space")
    regions = traits.List(File(exists=True), desc="their regions dsegs (1 periventricular, 2 deep, "
                                "3 the sessions' shared lateral ventricles, 4 infratentorial)")
    aseg = File(exists=True, desc="the template's aseg in subject space, shared by every session")
    brain_masks = traits.List(File(exists=True), desc="brain masks in subject space")
    flairs = traits.List(File(exists=True), desc="FLAIRs in subject space, normal-appearing tissue = 1")
    mean_flair = File(exists=True, desc="the mean of those FLAIRs")


class ConsistentWMH(SimpleInterface):
    """Every session brought once into subject space, and its WMH judged with the others in view
    (:func:`bids_deepwmh.core.longitudinal.consistent_masks`)."""

    input_spec = _ConsistentWMHInputSpec
    output_spec = _ConsistentWMHOutputSpec

    def _run_interface(self, runtime):
        from bids_deepwmh.core import longitudinal, regions
        from bids_deepwmh.core.images import like, voxel_sizes

        grid = nib.load(self.inputs.reference)
        flairs = [nib.load(path) for path in self.inputs.flairs]
        evidence, ventricles = [], []
        for flair, probseg_file, mask_file, regions_file in zip(flairs, self.inputs.probsegs, self.inputs.wmh_masks,
                                                                self.inputs.regions, strict=True):
            probability = nib.load(probseg_file).get_fdata(dtype=np.float32)
            evidence.append(like(longitudinal.wmh_evidence(probability, _mask(mask_file)), flair))
            ventricles.append(like(np.asanyarray(nib.load(regions_file).dataobj) == 3, flair))
        found = longitudinal.subject_space_wmh(
            flairs, [nib.load(path) for path in self.inputs.brain_masks], evidence, ventricles,
            [longitudinal.read_transform(path) for path in self.inputs.transforms], grid)
        zone = regions.periventricular_zone(found["ventricles"], voxel_sizes(grid))
        aseg = like(np.rint(longitudinal.to_subject(nib.load(self.inputs.aseg), grid, longitudinal.read_transform(
            self.inputs.transforms[0]), "genericLabel")), grid, np.int16)
        infratentorial = np.isin(np.asanyarray(aseg.dataobj), regions.INFRATENTORIAL)
        self._results["aseg"] = out_path(runtime, "aseg.nii.gz")
        nib.save(aseg, self._results["aseg"])
        names = {"wmh_masks": "wmh", "regions": "regions", "brain_masks": "brain", "flairs": "flair"}
        self._results.update({key: [] for key in names})
        for k, (mask, brain, flair) in enumerate(zip(found["masks"], found["brains"], found["normalised"],
                                                     strict=True)):
            ventricles = found["ventricles"] & ~mask
            region_map = regions.region_map(mask, zone, ventricles, infratentorial, regions.ventricle_linings(
                mask & ~infratentorial, regions.wall_distance(ventricles, voxel_sizes(grid))))
            images = {"wmh_masks": like(mask, grid, np.uint8), "brain_masks": like(brain, grid, np.uint8),
                      "regions": like(region_map, grid, np.uint8), "flairs": like(flair, grid)}
            for key, img in images.items():
                self._results[key].append(out_path(runtime, f"session{k}_{names[key]}.nii.gz"))
                nib.save(img, self._results[key][-1])
        self._results["mean_flair"] = out_path(runtime, "mean_flair.nii.gz")
        nib.save(like(np.mean(found["normalised"], axis=0), grid), self._results["mean_flair"])
        return runtime


class _WMHChangeInputSpec(BaseInterfaceInputSpec):
    regions = InputMultiObject(File(exists=True), mandatory=True, desc="ConsistentWMH's regions dsegs")
    aseg = File(exists=True, mandatory=True, desc="ConsistentWMH's aseg (subject space)")
    transforms = InputMultiObject(File(exists=True), mandatory=True, desc="SubjectSpace's transforms")
    session_grids = InputMultiObject(File(exists=True), mandatory=True,
                                     desc="an image on each session's own grid (its bias-corrected FLAIR)")


class _WMHChangeOutputSpec(TraitedSpec):
    dsegs = traits.List(File(exists=True), desc="per later session: the change dseg on its own grid")
    subject_dsegs = traits.List(File(exists=True), desc="the same in subject space")
    tables = traits.List(File(exists=True), desc="per later session: one row per lesion (TSV)")
    labels = traits.List(File(exists=True), desc="per later session: the dseg's labels (TSV)")


class WMHChange(SimpleInterface):
    """Each lesion labelled between consecutive sessions (new, enlarging, shrinking, disappeared,
    stable), in subject space and on the later session's own grid."""

    input_spec = _WMHChangeInputSpec
    output_spec = _WMHChangeOutputSpec

    def _run_interface(self, runtime):
        from bids_deepwmh.core import longitudinal
        from bids_deepwmh.core.images import like
        from bids_deepwmh.core.regions import INFRATENTORIAL, WMH_LABELS
        from bids_deepwmh.utils.tables import write_tsv

        grid = nib.load(self.inputs.regions[0])
        dsegs = [np.asanyarray(nib.load(path).dataobj) for path in self.inputs.regions]
        periventricular = longitudinal.periventricular_of(dsegs)
        infratentorial = np.isin(np.asanyarray(nib.load(self.inputs.aseg).dataobj), INFRATENTORIAL)
        labels_file = out_path(runtime, "labels.tsv")
        write_tsv(labels_file, ("index", "name"),
                  [{"index": k, "name": v} for k, v in longitudinal.CHANGE_LABELS.items()])
        self._results.update({key: [] for key in ("dsegs", "subject_dsegs", "tables", "labels")})
        for k in range(1, len(dsegs)):
            before, after = (np.isin(d, WMH_LABELS) for d in (dsegs[k - 1], dsegs[k]))
            change, rows = longitudinal.change_map(before, after, grid.affine, periventricular, infratentorial)
            from_subject = longitudinal.read_transform(self.inputs.transforms[k])
            native = nib.load(self.inputs.session_grids[k])
            for row in rows:  # the centroid on the later session's scanner too
                point = from_subject @ [*(row[f"subject_{a}_mm"] for a in "xyz"), 1]
                row.update({f"native_{a}_mm": round(float(v), 2) for a, v in zip("xyz", point[:3], strict=True)})
            paths = {key: out_path(runtime, f"session{k}_{key}.{ext}") for key, ext in
                     (("dsegs", "nii.gz"), ("subject_dsegs", "nii.gz"), ("tables", "tsv"))}
            subject_img = like(change, grid, np.uint8)
            nib.save(subject_img, paths["subject_dsegs"])
            nib.save(like(longitudinal.to_session(subject_img, native, from_subject), native, np.uint8), paths["dsegs"])
            write_tsv(paths["tables"], longitudinal.CHANGE_COLUMNS + tuple(f"native_{a}_mm" for a in "xyz"), rows)
            for key, path in paths.items():
                self._results[key].append(path)
            self._results["labels"].append(labels_file)
        return runtime


class _LongitudinalTableInputSpec(BaseInterfaceInputSpec):
    sessions = traits.List(traits.Dict, mandatory=True,
                           desc="every session in time order: session_id, acq_time, reason (None: compared)")
    regions = InputMultiObject(File(exists=True), mandatory=True, desc="ConsistentWMH's regions, compared sessions")
    brain_masks = InputMultiObject(File(exists=True), mandatory=True, desc="ConsistentWMH's brain masks")
    aseg = File(exists=True, mandatory=True, desc="ConsistentWMH's aseg (subject space: its white matter)")
    change_tables = InputMultiObject(File(exists=True), mandatory=True, desc="WMHChange's tables")
    change_dsegs = InputMultiObject(File(exists=True), mandatory=True, desc="WMHChange's subject-space dsegs")
    cross_sectional = InputMultiObject(File(exists=True), mandatory=True,
                                       desc="each compared session's own volumes table (label-WMH_morph.tsv)")


class _LongitudinalTableOutputSpec(TraitedSpec):
    out_tsv = File(exists=True)


class LongitudinalTable(SimpleInterface):
    """One row per session in time order: consistent volumes by region, the change against the
    previous compared session; sessions not compared named, with the reason."""

    input_spec = _LongitudinalTableInputSpec
    output_spec = _LongitudinalTableOutputSpec

    def _run_interface(self, runtime):
        from bids_deepwmh.core.fazekas import fazekas_grades
        from bids_deepwmh.core.longitudinal import LONGITUDINAL_COLUMNS, change_summary
        from bids_deepwmh.core.regions import CEREBRAL_WHITE_MATTER, WMH_LABELS, lesion_rows
        from bids_deepwmh.core.volumes import wmh_volumes
        from bids_deepwmh.utils.sessions import years_between
        from bids_deepwmh.utils.tables import read_tsv, write_tsv

        compared = iter(zip(self.inputs.regions, self.inputs.brain_masks, self.inputs.cross_sectional, strict=True))
        changes = iter([None, *zip(self.inputs.change_dsegs, self.inputs.change_tables, strict=True)])
        white_matter = np.isin(np.asanyarray(nib.load(self.inputs.aseg).dataobj), CEREBRAL_WHITE_MATTER)
        first_time, previous, rows = None, None, []
        for session in self.inputs.sessions:
            reason = session.get("reason")
            row = {"session_id": f"ses-{session['session_id']}", "acq_time": session.get("acq_time"),
                   "status": "skipped" if reason else "compared", "reason": reason}
            if first_time is None and row["acq_time"] and not reason:
                first_time = row["acq_time"]
            row["years_since_first"] = years_between(first_time, row["acq_time"])
            if not reason:
                regions_file, brain_file, own_table = next(compared)
                img = nib.load(regions_file)
                regions = np.asanyarray(img.dataobj)
                wmh = np.isin(regions, WMH_LABELS).astype(np.float32)
                lesion_regions = [r["region"] for r in lesion_rows(regions, wmh, img.affine)]
                voxel_mm3 = float(abs(np.linalg.det(img.affine[:3, :3])))
                row.update(wmh_volumes(regions, _mask(brain_file), voxel_mm3, lesion_regions))
                row.update(fazekas_grades(regions, white_matter, img.header.get_zooms()[:3]).columns())
                row["cross_sectional_wmh_volume_ml"] = read_tsv(own_table)[0]["wmh_volume_ml"]
                change = next(changes)
                if change is not None:
                    dseg_file, lesions_file = change
                    row.update(compared_with=previous, **change_summary(
                        np.asanyarray(nib.load(dseg_file).dataobj), read_tsv(lesions_file), voxel_mm3))
                previous = row["session_id"]
            rows.append(row)
        self._results["out_tsv"] = out_path(runtime, "longitudinal.tsv")
        write_tsv(self._results["out_tsv"], LONGITUDINAL_COLUMNS, rows)
        return runtime
