"""Fazekas grades from the WMH segmentation and the lateral ventricles found on the scan.

The Fazekas scale (Fazekas et al., AJR 1987) reads periventricular and deep WMH apart:

- periventricular: 0 none, 1 caps or a pencil-thin lining, 2 a smooth halo, 3 irregular, extending
  into the deep white matter;
- deep: 0 none, 1 punctate foci, 2 beginning confluence, 3 large confluent areas.

Its words become distances as the scales that made it measurable did.  Periventricular WMH are
the lesions contiguous with the lateral ventricles (within ``CONTACT_MM`` of their wall, as
raters read continuity on a slice); how far they reach from the wall grades them: up to
``LINING_MM`` a lining or cap, up to ``HALO_MM`` a halo, beyond it into the deep white matter
(Scheltens et al., J Neurol Sci 1993: periventricular caps and bands up to 5 mm, and from 5 to
10 mm; 10 mm is also where periventricular becomes deep in Griffanti et al., NeuroImage 2018).
Deep WMH are those farther than ``HALO_MM`` from the ventricles' wall (the deep region of the
regions dseg) in the cerebral white matter, graded by the largest in-plane diameter of one
lesion, as raters measure on axial slices: under ``CONFLUENCE_MM`` punctate, up to
``CONFLUENT_MM`` beginning confluence, larger a confluent area (the LADIS study's operational
definition: Pantoni et al., Neuroepidemiology 2005).  A deep lesion counts when most of it lies in
the cerebral white matter (the scale rates the white matter: not the cortex, basal ganglia,
brainstem or cerebellum) and it is at least ``MIN_FOCUS_MM`` across; a periventricular lesion
counts from ``MIN_PERIVENTRICULAR_MM3``.  Distances are measured to the ventricles' wall
(:func:`~bids_deepwmh.core.images.distance_to_surface`), so that thick slices read as thin ones.
"""

from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from scipy.spatial import ConvexHull, QhullError

from bids_deepwmh.core.images import bounding_box, distance_to_surface
from bids_deepwmh.core.lesions import label_components

CONTACT_MM = 3.0
LINING_MM = 5.0
HALO_MM = 10.0
CONFLUENCE_MM = 10.0
CONFLUENT_MM = 20.0
MIN_FOCUS_MM = 3.0
MIN_PERIVENTRICULAR_MM3 = 10.0
EXTENT_PERCENTILE = 90  # how far they reach: the depth within which nine tenths of their volume lies

PERIVENTRICULAR_WORDS = {0: "none against the ventricles", 1: "caps or a pencil-thin lining", 2: "a smooth halo",
                         3: "irregular, extending into the deep white matter"}
FAZEKAS_COLUMNS = ("fazekas_periventricular", "fazekas_deep", "periventricular_extent_mm", "deep_largest_mm")
DEEP_WORDS = {0: "none in the deep white matter", 1: "punctate foci", 2: "beginning confluence", 3: "large confluent areas"}


@dataclass(frozen=True)
class FazekasGrades:
    periventricular: int
    deep: int
    periventricular_extent_mm: float  # how far the periventricular WMH reach from the ventricles' wall
    deep_largest_mm: float  # in-plane diameter of the largest deep lesion

    def columns(self):
        """The values as the volumes table's :data:`FAZEKAS_COLUMNS`."""
        values = (self.periventricular, self.deep, round(self.periventricular_extent_mm, 1),
                  round(self.deep_largest_mm, 1))
        return dict(zip(FAZEKAS_COLUMNS, values, strict=True))


def grade(value, bounds):
    """1 + how many of the increasing ``bounds`` ``value`` exceeds (the grade of a present finding)."""
    return 1 + int(np.searchsorted(bounds, value, side="right"))


def in_plane_diameter(points_mm):
    """Largest distance (mm) between two points of one axial slice, plus one voxel: the
    lesion's diameter as a ruler on the slice measures it; ``points_mm``: (n, 2) voxel centres."""
    points = np.asarray(points_mm, float)
    if len(points) > 3:
        try:
            points = points[ConvexHull(points).vertices]
        except QhullError:  # collinear voxels: every point is a vertex
            pass
    if len(points) < 2:
        return 0.0
    return float(np.max(np.linalg.norm(points[:, None] - points[None], axis=-1)))


def lesion_diameter(voxels, zooms):
    """Largest in-plane (axial) diameter in mm of one lesion given its (n, 3) RAS voxel indices."""
    in_plane = float(np.mean(zooms[:2]))
    widest = 0.0
    for k in np.unique(voxels[:, 2]):
        slice_points = voxels[voxels[:, 2] == k, :2] * np.asarray(zooms[:2], float)
        widest = max(widest, in_plane_diameter(slice_points))
    return widest + in_plane


def fazekas_grades(regions, white_matter, zooms):
    """:class:`FazekasGrades` of a regions dseg (:data:`bids_deepwmh.core.regions.REGION_LABELS`:
    1 periventricular, 2 deep, 3 lateral ventricles, 5 the ventricles' linings and caps;
    infratentorial WMH are not read) with the
    boolean cerebral ``white_matter``, on a RAS grid of voxel size ``zooms`` (mm)."""
    zooms = tuple(float(z) for z in zooms)
    cerebral = (1, 2, 5)  # periventricular, deep, linings and caps
    if not np.isin(regions, cerebral).any():
        return FazekasGrades(0, 0, 0.0, 0.0)
    box = bounding_box(regions > 0)  # every lesion and the ventricles: where distances are read
    regions, white_matter = regions[box], np.asarray(white_matter, bool)[box]
    labels, count = label_components(np.isin(regions, cerebral))
    distance = distance_to_surface(regions == 3, zooms)
    index = np.arange(1, count + 1)
    volumes = ndimage.sum_labels(labels > 0, labels, index) * float(np.prod(zooms))
    touching = index[(ndimage.minimum(distance, labels, index) <= CONTACT_MM) & (volumes >= MIN_PERIVENTRICULAR_MM3)]
    if touching.size:
        extent = float(np.percentile(distance[np.isin(labels, touching)], EXTENT_PERCENTILE))
        pv_grade = grade(extent, (LINING_MM, HALO_MM))
    else:
        extent, pv_grade = 0.0, 0
    deep_labels, _ = label_components(regions == 2)
    largest = 0.0
    for lesion, box in enumerate(ndimage.find_objects(deep_labels), start=1):
        inside = deep_labels[box] == lesion
        if np.mean(white_matter[box][inside]) >= 0.5:
            voxels = np.argwhere(inside) + [b.start for b in box]
            largest = max(largest, lesion_diameter(voxels, zooms))
    deep_grade = grade(largest, (CONFLUENCE_MM, CONFLUENT_MM)) if largest >= MIN_FOCUS_MM else 0
    return FazekasGrades(pv_grade, deep_grade, extent, largest)


def describe(columns):
    """One sentence per grade, for the report, from the volumes table's columns (strings or numbers)."""
    pv, deep = int(columns["fazekas_periventricular"]), int(columns["fazekas_deep"])
    extent, largest = float(columns["periventricular_extent_mm"]), float(columns["deep_largest_mm"])
    pv_text = f"periventricular {pv}: {PERIVENTRICULAR_WORDS[pv]}"
    if pv:
        pv_text += f", up to {extent:.0f} mm from the ventricles"
    deep_text = f"deep {deep}: {DEEP_WORDS[deep]}"
    if deep:
        deep_text += f", the largest {largest:.0f} mm across"
    return pv_text, deep_text
