"""Synthetic lesions with exact labels, written into the normal-appearing tissue of training scans.

The pseudo-labels miss what the anatomical score cannot see (small and faint lesions) and the
network learns their misses.  A training patch may get hyperintense blobs of irregular shape
(a few mm³ to a few mL), with a soft partial-volume edge and a contrast drawn from the range of
real lesions, deep in the brain where the scan has no hyperintensity of its own.  The label is
exact, and the anatomical score channel follows the new intensities through the scan's own
relation between FLAIR and score (the median score of its deep voxels at each FLAIR level), so
that both channels tell the same story.
"""

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

DEPTH_MM = 8.0  # lesions are placed at least this deep in the brain (no cortex, no scalp)
NORMAL_INTENSITY = (-1.5, 1.5)  # standardised FLAIR of normal-appearing tissue (not CSF, not lesion)
RADIUS_MM = (1.0, 9.0)  # log-uniform: from 4 mm³ to about 3 mL
CONTRAST = (1.5, 5.0)  # added intensity at the lesion's core, in robust SDs of the brain
LESIONS_PER_PATCH = (1, 6)
EDGE_SIGMA_MM = 0.6  # partial volume at the lesion's edge
SCORE_CURVE_STEP = 0.25  # standardised FLAIR units between the points of a scan's FLAIR-to-score curve
MIN_CURVE_VOXELS = 20  # a curve point needs this many deep voxels at its FLAIR level


@dataclass(frozen=True)
class Canvas:
    """Where a scan's synthetic lesions may go, and how its score channel follows its FLAIR."""

    normal: np.ndarray  # deep normal-appearing tissue on the working grid
    flair_levels: np.ndarray  # the scan's score channel at these FLAIR levels (empty without one)
    score_levels: np.ndarray

    def score(self, flair):
        """The score channel the scan shows, in the median, where its FLAIR is ``flair``."""
        return np.interp(flair, self.flair_levels, self.score_levels)


def canvas(image, brain, label, spacing_mm):
    """The :class:`Canvas` of a scan's network input ``image`` (channels first) and ``label``."""
    flair = image[0]
    deep = ndimage.distance_transform_edt(brain) * spacing_mm >= DEPTH_MM
    normal = deep & ~label & (flair > NORMAL_INTENSITY[0]) & (flair < NORMAL_INTENSITY[1])
    levels, scores = [], []
    if image.shape[0] > 1 and deep.any():
        normal &= image[1] == 0
        deep_scores = image[1][deep]
        bins = np.floor(flair[deep] / SCORE_CURVE_STEP).astype(int)
        lowest = bins.min()
        for index in np.flatnonzero(np.bincount(bins - lowest) >= MIN_CURVE_VOXELS):
            levels.append((index + lowest + 0.5) * SCORE_CURVE_STEP)
            scores.append(float(np.median(deep_scores[bins == index + lowest])))
    if image.shape[0] > 1 and not levels:  # no curve to score lesions by (too little deep brain): none go here
        normal = np.zeros_like(normal)
    return Canvas(normal, np.array(levels), np.maximum.accumulate(np.array(scores)))


def blob(radius, rng):
    """An irregular solid of about ``radius`` voxels: a randomly stretched ellipsoid whose
    boundary is roughened by smooth noise."""
    half = int(np.ceil(radius * 1.6)) + 2
    axes = np.mgrid[-half:half + 1, -half:half + 1, -half:half + 1].astype(np.float32)
    stretch = rng.uniform(0.6, 1.4, 3)
    rotation = np.linalg.qr(rng.normal(size=(3, 3)))[0]
    coords = np.tensordot(rotation, axes, axes=1) / (radius * stretch)[:, None, None, None]
    distance = np.sqrt((coords**2).sum(axis=0))
    noise = ndimage.gaussian_filter(rng.normal(size=distance.shape).astype(np.float32), max(radius / 3, 0.8))
    noise /= noise.std() + 1e-6
    return distance + 0.25 * noise < 1


def add_lesions(image, label, normal, where, rng, spacing_mm):
    """Write 1-5 synthetic lesions into a patch (``image`` channels first, ``label``, ``normal``:
    where their centres may go, ``where``: the scan's :class:`Canvas`); returns new arrays."""
    image, label = image.copy(), label.copy()
    for _ in range(int(rng.integers(*LESIONS_PER_PATCH))):
        candidates = np.flatnonzero(normal & ~label)
        if not candidates.size:
            break
        centre = np.unravel_index(candidates[rng.integers(candidates.size)], label.shape)
        radius = np.exp(rng.uniform(*np.log(RADIUS_MM))) / spacing_mm
        solid = blob(radius, rng)
        half = solid.shape[0] // 2
        src = tuple(slice(max(half - c, 0), solid.shape[0] - max(c + half + 1 - n, 0))
                    for c, n in zip(centre, label.shape, strict=True))
        dst = tuple(slice(max(c - half, 0), min(c + half + 1, n)) for c, n in zip(centre, label.shape, strict=True))
        brain = image[0][dst] != 0
        soft = ndimage.gaussian_filter(solid.astype(np.float32), EDGE_SIGMA_MM / spacing_mm)[src] * brain
        flair = image[0][dst] + rng.uniform(*CONTRAST) * soft
        image[0][dst] = flair
        label[dst] |= soft >= 0.5
        if image.shape[0] > 1:
            follows = where.score(flair)
            image[1][dst] = np.where(soft > 0.05, np.maximum(image[1][dst], follows), image[1][dst])
    return image, label
