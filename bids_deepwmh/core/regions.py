"""Periventricular, deep and infratentorial WMH from the FLAIR alone, and one row per lesion.

The lateral ventricles come from the template's ``seg-aseg`` brought to the scan, refined on
the scan itself: within a few millimetres of the warped ventricles, the connected dark (CSF-like)
voxels that touch them.  Infratentorial WMH are those in the brainstem and cerebellum (the
template's ``seg-aseg`` brought to the scan).  Of the others, periventricular WMH are the voxels
within 10 mm of the ventricles' wall (the 10 mm distance rule compared by Griffanti et al.,
NeuroImage 2018; measured to the wall, not between voxel centres, so that a thick slice does
not add half its thickness); deep WMH are the rest.  A lesion belongs to the region holding
most of its voxels.  Periventricular lesions that are only a lining or a cap of the ventricles
(contiguous with their wall and reaching no farther than the Fazekas scale's grade 1 allows) are
labelled apart: raters of small-vessel disease draw them, raters of multiple sclerosis leave them
out, and their volume read on its own serves both.
"""

import numpy as np
from scipy import ndimage

from bids_deepwmh.core.images import bounding_box, deeper_than, distance_to_surface, near_mask
from bids_deepwmh.core.lesions import label_components

LATERAL_VENTRICLES = (4, 43, 5, 44)  # aseg: left and right lateral ventricles and their inferior horns
PERIVENTRICULAR_MM = 10.0
VENTRICLE_SEARCH_MM = 5.0  # how far the refined ventricles may reach beyond the warped ones
# aseg: brainstem, cerebellar white matter and cortex, fourth ventricle
INFRATENTORIAL = (16, 7, 46, 8, 47, 15)
CEREBRAL_CORTEX = (3, 42)  # aseg
# aseg: cerebral white matter, its hypointensities and the corpus callosum
CEREBRAL_WHITE_MATTER = (2, 41, 77, 251, 252, 253, 254, 255)
VENTRICLE_LINING = 5  # the regions dseg's label of periventricular WMH that are a lining or cap
REGION_LABELS = {1: "periventricular", 2: "deep", 3: "lateral_ventricles", 4: "infratentorial",
                 VENTRICLE_LINING: "ventricle_lining"}  # the regions dseg
WMH_REGIONS = {1: "periventricular", 2: "deep", 4: "infratentorial"}  # the regions a lesion is counted in
WMH_LABELS = (1, 2, 4, VENTRICLE_LINING)  # the labels that are WMH


def labels_of(region_label):
    """The regions dseg's labels that make up a region of :data:`WMH_REGIONS`: the periventricular
    WMH include their linings and caps."""
    return (1, VENTRICLE_LINING) if region_label == 1 else (region_label,)


def refine_ventricles(normalised, prior, brain, zooms):
    """Lateral ventricles on the scan: the warped ``prior`` (boolean) refined on the normalised
    FLAIR (white matter ~ 1).  Keeps the dark voxels near the prior that connect to its core; falls
    back to the prior when the scan gives no clear CSF contrast there."""
    prior = prior & brain
    if not prior.any():
        return prior
    core = deeper_than(prior, zooms, 2.0)  # 2 mm inside the prior's surface
    core = core if core.sum() >= 20 else prior
    csf_level = float(np.median(normalised[core]))
    if csf_level >= 0.8:  # not darker than white matter: nothing to refine on
        return prior
    smoothed = ndimage.gaussian_filter(normalised.astype(np.float32), 1.0 / np.asarray(zooms, float))
    near = near_mask(prior, zooms, VENTRICLE_SEARCH_MM)
    dark = near & brain & (smoothed < (csf_level + 1.0) / 2)
    labels, _ = label_components(dark)
    touching = np.unique(labels[core & dark])
    refined = np.isin(labels, touching[touching > 0])
    return refined if refined.sum() >= 0.25 * prior.sum() else prior


def wall_distance(ventricles, zooms, reach_mm=PERIVENTRICULAR_MM):
    """Each voxel's distance (mm) to the ventricles' wall (:func:`distance_to_surface`), measured
    within ``reach_mm`` of the ventricles; voxels beyond get 1e6."""
    ventricles = np.asarray(ventricles, bool)
    distance = np.full(ventricles.shape, 1e6, np.float32)
    if ventricles.any():
        box = bounding_box(ventricles, reach_mm + max(zooms), zooms)
        distance[box] = distance_to_surface(ventricles[box], zooms)
    return distance


def periventricular_zone(ventricles, zooms, distance_mm=PERIVENTRICULAR_MM):
    """Voxels within ``distance_mm`` of the ventricles' wall (:func:`wall_distance`)."""
    return wall_distance(ventricles, zooms, distance_mm) <= distance_mm


def ventricle_linings(wmh, distance):
    """The ``wmh`` voxels of lesions that line or cap the ventricles (``distance``: :func:`wall_distance`):
    26-connected lesions within the Fazekas scale's contact distance of the ventricles' wall, nine
    tenths of which lie no farther from it than its grade 1 (caps or a pencil-thin lining) allows
    (:mod:`~bids_deepwmh.core.fazekas`)."""
    from bids_deepwmh.core.fazekas import CONTACT_MM, EXTENT_PERCENTILE, LINING_MM

    labels, count = label_components(wmh)
    if count == 0:
        return np.zeros(labels.shape, bool)
    index = np.arange(1, count + 1)
    touching = ndimage.minimum(distance, labels, index) <= CONTACT_MM
    extent = ndimage.labeled_comprehension(distance, labels, index,
                                           lambda d: np.percentile(d, EXTENT_PERCENTILE), np.float64, np.inf)
    return np.r_[False, touching & (extent <= LINING_MM)][labels]


def region_map(wmh, zone, ventricles, infratentorial, linings=None):
    """The regions dseg: 1 periventricular WMH, 2 deep WMH, 3 lateral ventricles, 4 infratentorial
    WMH (``wmh`` in the boolean ``infratentorial`` brainstem and cerebellum), 5 periventricular WMH
    of the boolean ``linings`` (:func:`ventricle_linings`), 0 elsewhere."""
    regions = np.zeros(wmh.shape, np.uint8)
    regions[ventricles] = 3
    regions[wmh & zone] = 1
    if linings is not None:
        regions[wmh & zone & linings] = VENTRICLE_LINING
    regions[wmh & ~zone] = 2
    regions[wmh & infratentorial] = 4
    return regions


LESION_COLUMNS = ("lesion_id", "volume_mm3", "native_x_mm", "native_y_mm", "native_z_mm",
                  "template_x_mm", "template_y_mm", "template_z_mm", "region",
                  "periventricular_fraction", "mean_probability", "max_probability")


def lesion_rows(regions, probability, affine, to_template=None):
    """One row per 26-connected WMH lesion of the regions dseg, largest first.

    ``affine`` maps voxels to scanner millimetres (RAS); ``to_template`` maps an (n, 3) array of
    scanner RAS millimetres to template millimetres (None leaves the template columns empty).
    """
    wmh = np.isin(regions, WMH_LABELS)
    if not wmh.any():
        return []
    box = bounding_box(wmh)  # the lesions' bounding box: all that counts
    wmh, regions, probability = wmh[box], regions[box], probability[box]
    labels, count = label_components(wmh)
    index = np.arange(1, count + 1)
    voxels = ndimage.sum_labels(wmh, labels, index)
    fractions = {label: ndimage.sum_labels(np.isin(regions, labels_of(label)), labels, index) / voxels
                 for label in WMH_REGIONS}
    periventricular = fractions[1]
    majority = np.argmax(np.stack(list(fractions.values())), axis=0)  # ties: the first, as listed
    centroids = np.array(ndimage.center_of_mass(wmh, labels, index)).reshape(-1, 3) + [b.start for b in box]
    native = centroids @ affine[:3, :3].T + affine[:3, 3]
    template = to_template(native) if to_template is not None else np.full_like(native, np.nan)
    mean_p = ndimage.mean(probability, labels, index)
    max_p = ndimage.maximum(probability, labels, index)
    voxel_mm3 = float(abs(np.linalg.det(affine[:3, :3])))
    rows = []
    for i in np.argsort(-voxels, kind="stable"):
        rows.append({
            "volume_mm3": round(float(voxels[i]) * voxel_mm3, 2),
            **{f"native_{a}_mm": round(float(v), 2) for a, v in zip("xyz", native[i], strict=True)},
            **{f"template_{a}_mm": round(float(v), 2) for a, v in zip("xyz", template[i], strict=True)},
            "region": list(WMH_REGIONS.values())[majority[i]],
            "periventricular_fraction": round(float(periventricular[i]), 3),
            "mean_probability": round(float(mean_p[i]), 3),
            "max_probability": round(float(max_p[i]), 3),
        })
    return [{"lesion_id": n, **row} for n, row in enumerate(rows, start=1)]
