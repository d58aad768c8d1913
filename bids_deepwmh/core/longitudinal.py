"""What changed between a participant's sessions: one space for all of them, one segmentation
judged with all of them in view, and each lesion labelled between consecutive sessions.

Subject space.  Each later session's brain is registered rigidly to the first, both ways, the two
answers averaged; the subject space is the mean of the sessions' positions (log-Euclidean: for two
sessions the halfway point), on a 1 mm grid covering every brain, so that every session is
interpolated once and alike.

Consistent segmentation.  Where two consecutive sessions' WMH disagree, each piece of disagreement
is judged by how much the FLAIR changed there: its intensity change summed over the piece and its
surroundings (which a blur or a resampling only moves about, without changing the sum) against the
spread of such sums where nothing changed, with a focus of change as the evidence for pieces too
small for their sum to stand out.  A piece that did not change takes, in both sessions, the label of
their mean WMH evidence: an unchanged brain gets the same WMH twice.  Foci that changed where the
network saw nothing count as WMH of the brighter session.

Change.  Every 26-connected component of the union of two consecutive masks is one lesion:
``new`` (absent before), ``disappeared`` (absent after), ``enlarging`` or ``shrinking`` (by at
least ``ENLARGING_FRACTION`` of its former volume and ``MIN_CHANGE_MM3``), else ``stable``.
"""

import nibabel as nib
import numpy as np
from scipy import linalg, ndimage

from bids_deepwmh import DEFAULT_RANDOM_SEED
from bids_deepwmh.core.images import like
from bids_deepwmh.core.registration import RAS_TO_LPS
from bids_deepwmh.core.volumes import VOLUME_COLUMNS

SUBJECT_SPACING_MM = 1.0
SUBJECT_MARGIN_MM = 4.0  # the subject grid reaches this far beyond the union of the brains
# Rigid registration, unless the brains' volumes differ by more than this fraction (a protocol
# whose scale differs, or a growing head): then affine.
RIGID_VOLUME_TOLERANCE = 0.08
# Brains are registered on this grid, at two levels (twice as coarse, then this): rigid alignment
# of whole brains is as good there as at full resolution (within 0.05 mm and 0.1 degree on the
# openms-long pairs) and ten times faster.
REGISTRATION_SPACING_MM = 2.0


def _ras_matrix(transform):
    """The 4x4 RAS matrix of an ANTs affine transform (which maps fixed LPS points to moving ones)."""
    parameters = np.asarray(transform.parameters, float)
    centre = np.asarray(transform.fixed_parameters, float)
    linear, translation = parameters[:9].reshape(3, 3), parameters[9:12]
    lps = np.eye(4)
    lps[:3, :3] = linear
    lps[:3, 3] = translation + centre - linear @ centre
    flip = np.diag([*np.diag(RAS_TO_LPS), 1.0])
    return flip @ lps @ flip


def write_transform(matrix, path):
    """Write a 4x4 RAS matrix (points of the fixed space to the moving) as an ITK affine transform
    file (``.txt``) that antsApplyTransforms reads."""
    import ants

    flip = np.diag([*np.diag(RAS_TO_LPS), 1.0])
    lps = flip @ matrix @ flip
    transform = ants.create_ants_transform(transform_type="AffineTransform", dimension=3, matrix=lps[:3, :3],
                                           translation=lps[:3, 3])
    ants.write_transform(transform, str(path))
    return str(path)


def read_transform(path):
    """The 4x4 RAS matrix of an ITK affine transform file."""
    import ants

    return _ras_matrix(ants.read_transform(str(path)))


def _brain_image(img, brain):
    """The brain of a nibabel FLAIR, its brightest 0.5 % clipped, as an ANTs image."""
    from bids_deepwmh.core.images import to_ants

    data = np.asanyarray(img.dataobj, dtype=np.float32)
    ceiling = np.percentile(data[brain], 99.5)
    return to_ants(like(np.clip(data, 0, ceiling) * brain, img))


def register_within_subject(fixed, fixed_brain, moving, moving_brain, affine=False,
                            random_seed=DEFAULT_RANDOM_SEED):
    """The 4x4 RAS matrix that maps points of ``fixed`` to the same anatomy in ``moving`` (nibabel
    FLAIRs, boolean brains on their grids): their brains registered (Mattes mutual information,
    rigid or ``affine``) both ways and the two answers averaged, so that neither is favoured."""
    import tempfile

    import ants
    from ants.config import set_ants_deterministic

    kind = "Affine" if affine else "Rigid"
    images = [ants.resample_image(_brain_image(img, brain), (REGISTRATION_SPACING_MM,) * 3, use_voxels=False,
                                  interp_type=0) for img, brain in ((fixed, fixed_brain), (moving, moving_brain))]
    matrices = []
    for first, second in ((0, 1), (1, 0)):
        set_ants_deterministic(on=True, seed_value=random_seed)
        with tempfile.TemporaryDirectory() as folder:
            result = ants.registration(fixed=images[first], moving=images[second], type_of_transform=kind,
                                       aff_metric="mattes", aff_iterations=(100, 50), aff_shrink_factors=(2, 1),
                                       aff_smoothing_sigmas=(1, 0), outprefix=f"{folder}/reg_")
            matrices.append(_ras_matrix(ants.read_transform(result["fwdtransforms"][0])))
    return mean_matrix([matrices[0], np.linalg.inv(matrices[1])])


def mean_matrix(matrices):
    """Log-Euclidean mean of 4x4 affine matrices (of the identity and T: T's square root, halfway)."""
    logs = [np.real(linalg.logm(m)) for m in matrices]
    mean = np.real(linalg.expm(np.mean(logs, axis=0)))
    mean[3] = (0, 0, 0, 1)
    return mean


def needs_affine(brains):
    """Whether the sessions' brains (boolean arrays with their voxel volumes) differ in volume by
    more than ``RIGID_VOLUME_TOLERANCE``."""
    volumes = [np.count_nonzero(brain) * voxel_mm3 for brain, voxel_mm3 in brains]
    return max(volumes) > (1 + RIGID_VOLUME_TOLERANCE) * min(volumes)


def subject_transforms(to_sessions):
    """From ``to_sessions`` (4x4 RAS matrices mapping points of the first session to each session's,
    the first the identity) to the matrices mapping subject-space points to each session's points.
    The subject space is the sessions' mean position, so no session is closer to it than another."""
    mean = mean_matrix(to_sessions)
    return [m @ np.linalg.inv(mean) for m in to_sessions]


def subject_grid(brain_images, from_subject):
    """The subject-space grid (a nibabel image of zeros, ``SUBJECT_SPACING_MM`` voxels on the world's
    axes) covering every session's brain (nibabel masks) with ``SUBJECT_MARGIN_MM`` to spare;
    ``from_subject``: each session's matrix from subject-space points to its own."""
    corners = []
    for img, matrix in zip(brain_images, from_subject, strict=True):
        voxels = np.argwhere(np.asanyarray(img.dataobj) > 0)
        box = np.array([[lo, hi] for lo, hi in zip(voxels.min(0), voxels.max(0), strict=True)], float)
        grid = np.array(np.meshgrid(*box, indexing="ij")).reshape(3, -1).T
        world = nib.affines.apply_affine(img.affine, grid)
        corners.append(nib.affines.apply_affine(np.linalg.inv(matrix), world))
    corners = np.concatenate(corners)
    low = np.floor(corners.min(0) - SUBJECT_MARGIN_MM)
    shape = np.ceil((corners.max(0) + SUBJECT_MARGIN_MM - low) / SUBJECT_SPACING_MM).astype(int) + 1
    affine = np.diag([SUBJECT_SPACING_MM] * 3 + [1.0])
    affine[:3, 3] = low
    grid = nib.Nifti1Image(np.zeros(tuple(shape), np.uint8), affine)
    grid.set_qform(affine, code=1)
    grid.header.set_xyzt_units("mm", "sec")
    return grid


def _resample(image, grid, matrix, interpolation):
    """``image`` (nibabel) on ``grid``'s grid, ``matrix`` mapping ``grid``'s points to ``image``'s."""
    import tempfile

    from bids_deepwmh.core.registration import resample

    with tempfile.TemporaryDirectory() as folder:
        return resample(image, grid, write_transform(matrix, f"{folder}/transform.txt"), interpolation)


def to_subject(image, grid, from_subject, interpolation="linear"):
    """``image`` (nibabel, on its session's grid) resampled onto the subject ``grid`` through the
    session's matrix ``from_subject`` (subject-space points to the session's); a float32 array."""
    return _resample(image, grid, from_subject, interpolation).get_fdata(dtype=np.float32)


def to_session(image, session_grid, from_subject):
    """A subject-space label image (nibabel) on a session's grid (ANTs' genericLabel: each label
    interpolated linearly, the likeliest kept), through its ``from_subject`` matrix; an array."""
    return np.rint(_resample(image, session_grid, np.linalg.inv(from_subject), "genericLabel").get_fdata())


# --- Consistent segmentation -------------------------------------------------------------------

WMH_THRESHOLD = 0.5  # the network's probability at which a voxel is WMH, as in each session's own mask
# What a voxel the session's own mask left out (a faint rim, a piece too small) counts for: just
# under the threshold, so that it joins a lesion only with the other sessions' evidence.
LEFT_OUT_EVIDENCE = 0.49
MIN_LESION_MM3 = 3.0  # as in each session's own mask
NORMAL_DEPTH_MM = 8.0  # normal-appearing reference: brain deeper than this in every session ...
NORMAL_LESION_MARGIN_MM = 3.0  # ... and this far from any session's WMH
CSF_LEVEL = 0.6  # of the normal-appearing median: darker voxels are CSF, left out of the reference
BIAS_SMOOTHING_MM = 12.0  # a difference this smooth is what bias correction left, not a lesion
LOCAL_SPREAD_MM = 10.0  # the difference's spread is measured this close to each voxel ...
# ... leaving out about this much around it: a focus the network missed is part of the "quiet"
# tissue, and its own change would otherwise count as the noise it is measured against.
# Set on the same head scanned twice and the synthetic new lesions (benchmarks/longitudinal.py):
# 5 mm makes small bright spots of a blurred session read as lesions that disappeared.
SPREAD_HOLE_MM = 3.0
# A lesion's intensity is summed over it and its surroundings out to the coarsest voxel of the
# sessions (at least this far): resampling moves intensity by up to a voxel but keeps its sum, so a
# lesion blurred in one session and not in the other keeps its sum.
MIN_LESION_SURROUND_MM = 3.0
# The first and last slices of an acquisition differ in contrast (inflow, incomplete inversion in a 2D
# FLAIR): change is not judged within this many of a session's slices (its coarsest voxel) of the
# edge of its field of view, beyond the surroundings above.  Seen on openms-long sub-03, where a
# bright cerebellar edge 8 mm inside the first session's field of view read as a lesion that
# disappeared.
FOV_EDGE_SLICES = 2
BOX_SIDES = (3, 5, 7, 9, 13, 17, 21, 29)  # voxels: the boxes whose sums give the noise of a sum
# Sessions differ in how bright a lesion is against white matter by a few per cent (protocol,
# bias correction, partial volume): over a large lesion that is more than noise.  A lesion's sum
# may differ by this fraction of its excess over white matter without counting as change.
CONTRAST_TOLERANCE = 0.05
# A piece of disagreement changed when its summed change is beyond CHANGE_Z SDs of such sums, or
# beyond SUPPORT_Z with a focus of change (a peak beyond FOCUS_Z, below) inside: a piece too small for
# its sum to stand out is judged by its peak, with a sum that moved the same way.  Set on the same
# head scanned twice (benchmarks/longitudinal.py): lower, a blurred session's small bright spots
# read as lesions that disappeared.
CHANGE_Z = 8.0
SUPPORT_Z = 2.0
# Foci the network did not see: the change smoothed a little, beyond this many robust SDs ...
FOCUS_SMOOTHING_MM = 1.0
FOCUS_Z = 8.0
FOCUS_GROW_RATIO = 0.5  # ... joined to voxels beyond this fraction of it ...
FOCUS_LEVEL = 1.15  # ... where the brighter session is this bright (normal-appearing tissue: 1) ...
FOCUS_EXTENT = 0.5  # ... a focus being the voxels that changed by at least this fraction of its peak


def wmh_evidence(probability, mask):
    """A session's WMH evidence on its own grid: the network's probability where its mask has WMH,
    at most ``LEFT_OUT_EVIDENCE`` where it does not."""
    return np.where(mask, probability, np.minimum(probability, LEFT_OUT_EVIDENCE)).astype(np.float32)


def normal_appearing(brains, evidence, ventricles, zooms):
    """The voxels every session's intensity is measured on: inside every brain and deeper than
    ``NORMAL_DEPTH_MM``, at least ``NORMAL_LESION_MARGIN_MM`` from any session's WMH, not ventricle."""
    from bids_deepwmh.core.images import deeper_than, near_mask

    common = np.logical_and.reduce(brains)
    lesions = np.logical_or.reduce([e >= WMH_THRESHOLD for e in evidence])
    return deeper_than(common, zooms, NORMAL_DEPTH_MM) & ~near_mask(lesions, zooms, NORMAL_LESION_MARGIN_MM) \
        & ~ventricles


def normalise_sessions(flairs, normal):
    """Each FLAIR divided by the median of its normal-appearing tissue (the same voxels in every
    session, CSF-dark voxels of any session left out), and that tissue."""
    levels = [float(np.median(f[normal])) for f in flairs]
    tissue = normal & np.logical_and.reduce([f > CSF_LEVEL * level for f, level in zip(flairs, levels, strict=True)])
    return [(f / float(np.median(f[tissue]))).astype(np.float32) for f in flairs], tissue


def _smooth(array, sigma_mm, zooms):
    return ndimage.gaussian_filter(np.asarray(array, np.float32), sigma_mm / np.asarray(zooms, float))


def intensity_change(before, after, tissue, zooms):
    """``after - before`` (normalised FLAIRs), less its smooth part (what bias correction left,
    estimated over ``tissue``)."""
    difference = after - before
    weight = _smooth(tissue, BIAS_SMOOTHING_MM, zooms)
    bias = _smooth(np.where(tissue, difference, 0), BIAS_SMOOTHING_MM, zooms) / np.maximum(weight, 1e-3)
    return (difference - bias).astype(np.float32)


def sum_spread(change, tissue):
    """(voxels, SD) of sums of ``change`` over cubes of ``BOX_SIDES`` voxels lying in ``tissue``:
    how much a sum over so many voxels varies where nothing changed (robust SD)."""
    from bids_deepwmh.core.anatomical import robust_sd

    inside = np.where(tissue, change, 0).astype(np.float32)
    table = []
    for side in BOX_SIDES:
        every = max(1, side // 2)  # box centres this far apart: enough of them, quickly
        sums = ndimage.uniform_filter(inside, side)[::every, ::every, ::every] * side**3
        full = ndimage.uniform_filter(tissue.astype(np.float32), side)[::every, ::every, ::every] >= 0.95
        if full.sum() >= 20:
            table.append((side**3, robust_sd(sums[full])))
    if not table:
        raise ValueError("too little normal-appearing tissue lies deep in every session's brain to measure change")
    return np.array(table)


def lesion_neighbourhoods(lesions, surround_mm, allowed, zooms, labels=None):
    """26-connected components of ``lesions`` (or the given ``labels``) and, for each, its voxels
    and the ``allowed`` voxels within ``surround_mm`` nearer to it than to any other: (labels,
    neighbourhood labels, count)."""
    from bids_deepwmh.core.lesions import label_components

    labels, count = label_components(lesions) if labels is None else (labels, int(labels.max()))
    distance, nearest = ndimage.distance_transform_edt(~lesions, sampling=zooms, return_indices=True)
    around = labels[tuple(nearest)]
    around[(distance > surround_mm) | ~allowed] = 0
    around[lesions] = labels[lesions]
    return labels, around, count


def _around(array, zooms):
    """``array`` averaged around each voxel, leaving the voxel out: a Gaussian of ``LOCAL_SPREAD_MM``
    less the Gaussian of ``SPREAD_HOLE_MM`` scaled to the same weight at its centre (so the weight
    is zero at the voxel and rises within about ``SPREAD_HOLE_MM`` of it)."""
    return (_smooth(array, LOCAL_SPREAD_MM, zooms)
            - (SPREAD_HOLE_MM / LOCAL_SPREAD_MM) ** 3 * _smooth(array, SPREAD_HOLE_MM, zooms))


def spread_ratio(change, quiet, tissue, zooms):
    """How much more ``change`` varies near each voxel (RMS over the ``quiet`` voxels within about
    ``LOCAL_SPREAD_MM``, those within about ``SPREAD_HOLE_MM`` of it left out) than in the deep
    normal-appearing ``tissue`` (robust SD); at least 1."""
    from bids_deepwmh.core.anatomical import robust_sd

    local = np.sqrt(np.maximum(_around(np.where(quiet, change**2, 0), zooms), 0)
                    / np.maximum(_around(quiet.astype(np.float32), zooms), 1e-3))
    return np.maximum(local / max(robust_sd(change[tissue]), 1e-6), 1.0)


def change_foci(change, before, after, tissue, quiet, allowed, known, zooms):
    """Foci that brightened (``up``) or faded (``down``) between two normalised FLAIRs where the
    network saw nothing: the change smoothed by ``FOCUS_SMOOTHING_MM``, beyond ``FOCUS_Z`` of its
    robust SD (raised by :func:`spread_ratio` where it varies more), where the brighter session is at
    least ``FOCUS_LEVEL``; each over its joined voxels changed by at least ``FOCUS_EXTENT`` of its
    peak, all in ``allowed``; those touching a ``known`` lesion left to it.  Returns (up, down, the
    change in those SDs)."""
    from bids_deepwmh.core.anatomical import robust_sd
    from bids_deepwmh.core.lesions import label_components

    smoothed = _smooth(change, FOCUS_SMOOTHING_MM, zooms)
    z = smoothed / max(robust_sd(smoothed[tissue]), 1e-6) / spread_ratio(smoothed, quiet, tissue, zooms)
    foci = []
    for sign, brighter, fainter_wmh in ((1, after, known[0]), (-1, before, known[1])):
        touching = ndimage.binary_dilation(fainter_wmh, structure=np.ones((3, 3, 3), bool))
        signed = sign * smoothed
        candidates = (sign * z >= FOCUS_GROW_RATIO * FOCUS_Z) & (brighter >= FOCUS_LEVEL) & allowed
        labels, count = label_components(candidates)
        index = np.arange(1, count + 1)
        seeded = ndimage.maximum(sign * z, labels, index) >= FOCUS_Z
        clear = ~ndimage.maximum(touching, labels, index).astype(bool)
        peak = np.r_[np.inf, ndimage.maximum(signed, labels, index)]
        keep = np.r_[False, seeded & clear]
        foci.append(keep[labels] & (signed >= FOCUS_EXTENT * peak[labels]))
    return (*foci, z)


def lesion_change_z(change, excess, tissue, quiet, around, count, zooms):
    """For each neighbourhood (labels 1..``count`` of ``around``), its summed ``change`` in SDs of
    such sums where nothing changed: the SD of a sum over as many voxels (:func:`sum_spread`),
    raised by :func:`spread_ratio` there, and by ``CONTRAST_TOLERANCE`` of the summed ``excess`` of
    its lesions over white matter."""
    index = np.arange(1, count + 1)
    sums = ndimage.sum_labels(change, around, index)
    voxels = np.maximum(ndimage.sum_labels(np.ones(change.shape, np.float32), around, index), 1)
    table = sum_spread(change, tissue)
    spread = np.exp(np.interp(np.log(voxels), np.log(table[:, 0]), np.log(table[:, 1])))
    spread *= ndimage.mean(spread_ratio(change, quiet, tissue, zooms), around, index)
    spread = np.hypot(spread, CONTRAST_TOLERANCE * ndimage.sum_labels(excess, around, index))
    return sums / spread


def field_of_view(image, grid, from_subject, margin_mm):
    """Where a session's grid (``image``'s) covers the subject-space ``grid``, ``margin_mm`` inside
    its edge (the slices at the edge of a field of view are interpolated with nothing beyond)."""
    from bids_deepwmh.core.images import deeper_than

    covered = to_subject(like(np.ones(image.shape[:3], np.float32), image), grid, from_subject) >= 0.999
    return deeper_than(covered, (SUBJECT_SPACING_MM,) * 3, margin_mm)


def consistent_masks(flairs, brains, evidence, ventricles, covered, zooms, surround_mm):
    """The WMH mask of each session (time order), judged with the others in view.

    ``flairs``, ``brains``, ``evidence`` (:func:`wmh_evidence`): each session's, on one grid of
    ``zooms`` mm; ``ventricles``: the sessions' shared lateral ventricles; ``covered``: where every
    session's field of view holds the brain (:func:`field_of_view`); ``surround_mm``: how far around
    a piece its intensity is summed.  The foci that brightened or faded between consecutive sessions
    (:func:`change_foci`) count as WMH evidence of the brighter session.  Where two consecutive
    sessions' evidence disagree, each piece is judged (:func:`disagreement_changed`); in each voxel,
    the sessions between two changes share the label of their mean evidence, so that a changed piece
    keeps each session's own.  Returns the masks (components under ``MIN_LESION_MM3`` removed) and
    the normalised FLAIRs."""
    from bids_deepwmh.core.lesions import remove_small_components

    normal = normal_appearing(brains, evidence, ventricles, zooms)
    normalised, tissue = normalise_sessions(flairs, normal)
    brain = np.logical_and.reduce(brains) & ~ventricles & covered
    allowed = brain & np.logical_or.reduce([e > 0 for e in evidence])  # where the network may find WMH
    quiet = brain & np.logical_and.reduce([n > CSF_LEVEL for n in normalised]) & ~np.logical_or.reduce(
        [e >= WMH_THRESHOLD for e in evidence])
    changes = [intensity_change(before, after, tissue, zooms)
               for before, after in zip(normalised[:-1], normalised[1:], strict=True)]
    evidence = [e.copy() for e in evidence]
    peaks = []
    for k, change in enumerate(changes):
        known = [evidence[j] >= WMH_THRESHOLD for j in (k, k + 1)]
        up, down, z = change_foci(change, normalised[k], normalised[k + 1], tissue, quiet, allowed, known, zooms)
        evidence[k + 1][up] = 1.0
        evidence[k][down] = 1.0
        peaks.append(z)
    epochs = [np.zeros(flairs[0].shape, np.int8)]
    for k, (change, peak) in enumerate(zip(changes, peaks, strict=True)):
        before, after = (evidence[j] >= WMH_THRESHOLD for j in (k, k + 1))
        epochs.append(epochs[-1] + disagreement_changed(change, peak, before, after, normalised[k:k + 2], tissue,
                                                        quiet, brain, zooms, surround_mm))
    voxel_mm3 = float(np.prod(zooms))
    masks = []
    for k in range(len(flairs)):
        together = [epoch == epochs[k] for epoch in epochs]
        total = sum(np.where(t, e, 0) for t, e in zip(together, evidence, strict=True))
        mean = total / sum(t.astype(np.float32) for t in together)
        masks.append(remove_small_components(mean >= WMH_THRESHOLD, voxel_mm3, MIN_LESION_MM3))
    return masks, normalised


def disagreement_changed(change, peak, before, after, pair, tissue, quiet, brain, zooms, surround_mm):
    """Boolean: the voxels where two consecutive sessions' WMH (``before``, ``after``) differ
    because the brain changed.  Each 26-connected piece that only the later has (gained) or only the
    earlier (lost) is judged with its surroundings (:func:`lesion_change_z`): its summed intensity
    change in its own direction beyond ``CHANGE_Z``, or beyond ``SUPPORT_Z`` with a focus beyond
    ``FOCUS_Z`` (``peak``: the smoothed change in robust SDs) inside.  ``pair``: the two normalised
    FLAIRs, whose lesions' excess over white matter bounds a contrast change."""
    from bids_deepwmh.core.lesions import label_components

    gains, gain_count = label_components(after & ~before)
    losses, loss_count = label_components(before & ~after)
    pieces = np.where(before & ~after, losses + gain_count, gains)
    count = gain_count + loss_count
    if count == 0:
        return np.zeros(change.shape, bool)
    direction = np.r_[np.ones(gain_count), -np.ones(loss_count)]
    _, around, _ = lesion_neighbourhoods(pieces > 0, surround_mm, brain, zooms, labels=pieces)
    excess = np.clip((pair[0] + pair[1]) / 2 - 1, 0, None) * (before | after)
    z = direction * lesion_change_z(change, excess, tissue, quiet, around, count, zooms)
    index = np.arange(1, count + 1)
    strongest = np.where(direction > 0, ndimage.maximum(peak, pieces, index), -ndimage.minimum(peak, pieces, index))
    changed = (z >= CHANGE_Z) | ((z >= SUPPORT_Z) & (strongest >= FOCUS_Z))
    return np.r_[False, changed][pieces]


def subject_space_wmh(flairs, brains, evidence, ventricles, from_subject, grid):
    """Each session brought once into subject space and its WMH judged with the others in view.

    ``flairs``, ``brains``, ``evidence`` (:func:`wmh_evidence`) and ``ventricles``: nibabel images of
    each session on its own grid (time order); ``from_subject``: each session's matrix from
    subject-space points to its own; ``grid``: the subject-space grid.  Lesions are summed over their
    surroundings out to the coarsest session's voxel (resampling moves intensity that far), and
    change is judged only that far and ``FOV_EDGE_SLICES`` slices inside every field of view.  Returns
    the consistent masks, the brains, the sessions' shared lateral ventricles and the normalised
    FLAIRs in subject space."""
    from bids_deepwmh.core.images import voxel_sizes

    surround = max(MIN_LESION_SURROUND_MM, max(float(voxel_sizes(img).max()) for img in flairs))
    moved = {name: [to_subject(img, grid, m) for img, m in zip(images, from_subject, strict=True)]
             for name, images in (("flairs", flairs), ("brains", brains), ("evidence", evidence),
                                  ("ventricles", ventricles))}
    covered = np.logical_and.reduce([field_of_view(img, grid, m, surround + FOV_EDGE_SLICES * voxel_sizes(img).max())
                                     for img, m in zip(flairs, from_subject, strict=True)])
    brain_masks = [b >= 0.5 for b in moved["brains"]]
    shared_ventricles = np.mean(moved["ventricles"], axis=0) >= 0.5
    masks, normalised = consistent_masks(moved["flairs"], brain_masks, moved["evidence"], shared_ventricles, covered,
                                         (SUBJECT_SPACING_MM,) * 3, surround)
    return {"masks": masks, "brains": brain_masks, "ventricles": shared_ventricles, "normalised": normalised}


# --- Change between consecutive sessions -------------------------------------------------------

CHANGE_LABELS = {1: "new", 2: "enlarging", 3: "shrinking", 4: "disappeared", 5: "stable"}
ENLARGING_FRACTION = 0.3  # of the lesion's former volume (spinalcordtoolbox issue #4786)
MIN_CHANGE_MM3 = 10.0  # and at least this much


def classify(before_mm3, after_mm3):
    """The change of one lesion from its volumes before and after (mm³)."""
    if before_mm3 == 0:
        return "new"
    if after_mm3 == 0:
        return "disappeared"
    bar = max(ENLARGING_FRACTION * before_mm3, MIN_CHANGE_MM3)
    if after_mm3 - before_mm3 >= bar:
        return "enlarging"
    if before_mm3 - after_mm3 >= bar:
        return "shrinking"
    return "stable"


CHANGE_COLUMNS = ("lesion_id", "change", "volume_before_mm3", "volume_after_mm3", "changed_mm3", "region",
                  "subject_x_mm", "subject_y_mm", "subject_z_mm")
CHANGED = ("new", "enlarging", "shrinking", "disappeared")  # the labels that mark change
LONGITUDINAL_COLUMNS = (
    "session_id", "acq_time", "years_since_first", "status", "reason", *VOLUME_COLUMNS,
    "cross_sectional_wmh_volume_ml", "compared_with",
    *(f"{name}_wmh_{what}" for name in CHANGED for what in ("count", "volume_ml")), "stable_wmh_count",
)


def periventricular_of(regions):
    """The periventricular zone of the sessions' regions dsegs (subject space, 1 mm): within
    ``PERIVENTRICULAR_MM`` of the lateral ventricles (label 3) of any of them."""
    from bids_deepwmh.core.regions import periventricular_zone

    return periventricular_zone(np.logical_or.reduce([r == 3 for r in regions]), (SUBJECT_SPACING_MM,) * 3)


def change_map(before, after, affine, periventricular, infratentorial):
    """The change dseg (``CHANGE_LABELS``) between two boolean masks on one grid (``affine``), and
    one row per lesion (a 26-connected component of their union), largest first; a lesion's region
    is where most of its voxels lie: infratentorial (the boolean ``infratentorial`` brainstem and
    cerebellum), else periventricular (the boolean ``periventricular`` zone), else deep.

    Each lesion is classed by :func:`classify`.  The changed labels mark the voxels that changed:
    a new lesion's voxels, a disappeared lesion's former voxels and, in a lesion of both sessions,
    every piece it gained (enlarging) or lost (shrinking) of at least ``MIN_CHANGE_MM3``, whatever
    its class (a confluent lesion may grow in one place and shrink in another); the rest of every
    lesion is ``stable``."""
    from bids_deepwmh.core.lesions import label_components, remove_small_components

    code = {name: value for value, name in CHANGE_LABELS.items()}
    dseg = np.zeros(before.shape, np.uint8)
    union = before | after
    labels, count = label_components(union)
    if count == 0:
        return dseg, []
    index = np.arange(1, count + 1)
    voxel_mm3 = float(abs(np.linalg.det(affine[:3, :3])))
    volumes_before = ndimage.sum_labels(before, labels, index) * voxel_mm3
    volumes_after = ndimage.sum_labels(after, labels, index) * voxel_mm3
    changes = [classify(b, a) for b, a in zip(volumes_before, volumes_after, strict=True)]
    lesion_code = np.array([0] + [code[c] for c in changes], np.uint8)[labels]
    persisting = np.isin(lesion_code, [code[c] for c in ("enlarging", "shrinking", "stable")])
    dseg[union] = code["stable"]
    dseg[lesion_code == code["new"]] = code["new"]
    dseg[lesion_code == code["disappeared"]] = code["disappeared"]
    for name, piece in (("enlarging", after & ~before), ("shrinking", before & ~after)):
        dseg[remove_small_components(persisting & piece, voxel_mm3, MIN_CHANGE_MM3)] = code[name]
    changed_mm3 = ndimage.sum_labels(np.isin(dseg, [code[c] for c in CHANGED]), labels, index) * voxel_mm3
    near = ndimage.mean(periventricular, labels, index)
    below = ndimage.mean(infratentorial, labels, index)
    centroids = nib.affines.apply_affine(affine, np.array(ndimage.center_of_mass(union, labels, index)))
    rows = []
    for i in np.argsort(-np.maximum(volumes_before, volumes_after), kind="stable"):
        rows.append({
            "change": changes[i], "volume_before_mm3": round(float(volumes_before[i]), 2),
            "volume_after_mm3": round(float(volumes_after[i]), 2), "changed_mm3": round(float(changed_mm3[i]), 2),
            "region": "infratentorial" if below[i] >= 0.5 else "periventricular" if near[i] >= 0.5 else "deep",
            **{f"subject_{a}_mm": round(float(v), 2) for a, v in zip("xyz", centroids[i], strict=True)},
        })
    return dseg, [{"lesion_id": n, **row} for n, row in enumerate(rows, start=1)]


def change_summary(dseg, rows, voxel_mm3):
    """Per label, the number of lesions of that class (``rows``: :func:`change_map`'s) and, for
    the changed labels, the volume (mL) of the voxels the change ``dseg`` gives it."""
    summary = {}
    for value, name in CHANGE_LABELS.items():
        summary[f"{name}_wmh_count"] = sum(row["change"] == name for row in rows)
        if name in CHANGED:
            summary[f"{name}_wmh_volume_ml"] = round(np.count_nonzero(dseg == value) * voxel_mm3 / 1000.0, 4)
    return summary
