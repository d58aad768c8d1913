"""Quality flags: can this scan's segmentation be trusted?

Each check measures one thing, has a documented threshold and says what it means when it fires.
The thresholds are set from physiology and the method's assumptions, with a margin; the real
scans of the development data with MS lesions or small-vessel WMH (1 mm 3D and 2.2-8.1 mm 2D FLAIRs)
all pass; tumours, a chronic infarct and deliberately broken inputs (a tumour-like mass, a brain cut
in half) do not.
"""

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from bids_deepwmh.core.anatomical import UNNULLED_EDGE_SLICES, robust_sd
from bids_deepwmh.core.brainmask import PLAUSIBLE_BRAIN_ML, RETRY_MIN_DICE, ROUGH_TEMPLATE_MIN_DICE
from bids_deepwmh.core.images import deeper_than
from bids_deepwmh.core.lesions import label_components

ATYPICAL_Z = 5.0  # robust SDs brighter than the normal-appearing reference
ATYPICAL_SMOOTHING_MM = 2.0
# Oedema around a mass is less bright than a lesion core, but large, one-sided and deep.
MASS_Z = 2.0
# Only voxels this deep in the brain count for a mass: at the brain's edge, where the cortex and the
# sulci meet the reference's, a registration a voxel off makes one side brighter than expected by
# several mL (`tumour/sub-tcgadu`: 5.6 or 13.8 mL at the left edge in two registrations of the same
# scan, 0.02 or 0.06 mL deeper), and a mass's oedema lies deeper.
MASS_DEPTH_MM = 5.0
SIGNAL_LEVEL = 0.3  # of the white-matter median: below it a voxel holds no brain signal
# The fewest voxels of a tissue for its median and spread to mean something.
MIN_TISSUE_VOXELS = {"white matter": 100, "cortex": 100, "lateral ventricles": 20}


@dataclass(frozen=True)
class NotMeasurable:
    """A check that cannot be computed on this scan, and why (in the user's words)."""

    reason: str


@dataclass(frozen=True)
class Check:
    name: str
    description: str
    low: float = None  # flagged below this
    high: float = None  # flagged above this
    meaning: str = ""

    def threshold(self):
        bounds = ([f">= {self.low:g}"] if self.low is not None else []) + (
            [f"<= {self.high:g}"] if self.high is not None else [])
        return " and ".join(bounds)

    def fires(self, value):
        """Whether the (finite) ``value`` is outside the threshold."""
        return (self.low is not None and value < self.low) or (self.high is not None and value > self.high)


CHECKS = (
    Check("registration_similarity",
          "Mattes mutual information between the registered FLAIR and the template brain (more negative is better)",
          high=-0.18, meaning="the registration to the template may have failed: tissue priors, brain mask "
          "and regions may be misplaced"),
    Check("brain_volume_ml", "Volume of the brain mask (ventricles included)",
          low=PLAUSIBLE_BRAIN_ML[0], high=PLAUSIBLE_BRAIN_ML[1],
          meaning="implausible brain volume: the brain mask (and so the WMH and their fractions) is suspect"),
    Check("brain_masks_rejected",
          f"Brain masks rejected before the one kept: HD-BET's, then its retry on a denoised, mirrored input, "
          f"when empty, of a volume outside {PLAUSIBLE_BRAIN_ML[0]:g}-{PLAUSIBLE_BRAIN_ML[1]:g} mL or unlike the "
          f"template's brain registered to the scan (Dice under {ROUGH_TEMPLATE_MIN_DICE:g}, for the retry "
          f"{RETRY_MIN_DICE:g}); the brain mask's sidecar (BrainExtraction) says which mask was kept",
          high=0, meaning="HD-BET found no plausible brain (often strong noise or motion): the brain mask is its "
          "retry or the template's brain registered to the scan and refined on it; check the brain-mask figure"),
    Check("brain_template_dice",
          "Dice of the brain mask with the template's brain mask brought to the scan by the registration",
          low=0.9, meaning="the brain mask and the registered template disagree: the mask may reach into the "
          "scalp or orbits or miss part of the brain, or the registration failed"),
    Check("wmh_outside_tissue_ml",
          "Volume the network marked outside the white and deep grey matter (with a margin), left out of the WMH",
          high=5.0, meaning="bright tissue outside where WMH can be (scalp, orbits, cortex): the brain mask or "
          "the registration may be wrong, or the scan holds other pathology"),
    Check("slice_thickness_mm", "Largest voxel dimension", high=8.0,
          meaning="slices thicker than 8 mm: lesions smaller than a slice are missed and volumes are coarse"),
    Check("unnulled_csf_slices",
          "Lowest slices whose CSF is not nulled (CSF flowing in from the spinal canal was never inverted, the "
          "inflow artefact of 2D FLAIRs): no WMH is called in them", high=UNNULLED_EDGE_SLICES - 1,
          meaning="the lowest slices look like a T2w, not a FLAIR: no WMH is called in them, and the slice above "
          "them may be affected too; look at the lowest slices"),
    Check("brain_coverage", "Fraction of the template's brain tissue that has signal in the scan", low=0.9,
          meaning="part of the brain is outside the field of view or has no signal: WMH there are missed"),
    Check("wm_csf_contrast",
          "(white matter - lateral ventricles) / white-matter SD; FLAIR suppresses CSF, so it is large",
          low=2.0, meaning="CSF is not dark: this may not be a FLAIR (e.g. a T2w), or its contrast is poor"),
    Check("gm_wm_contrast",
          "(cortex - white matter) / white-matter SD; grey matter is brighter than white matter on FLAIR",
          low=-1.5, meaning="white matter brighter than grey matter: this may not be a FLAIR (e.g. a T1w)"),
    Check("atypical_tissue_ml",
          f"Largest connected region more than {ATYPICAL_Z:g} SD brighter than normal-appearing FLAIRs",
          high=15.0, meaning="a large bright region unlike WMH (a mass, oedema, a haemorrhage or an artefact): "
          "out of distribution, it may be counted as WMH"),
    Check("one_sided_hyperintensity_ml",
          f"Volume more than {MASS_Z:g} SD brighter than normal-appearing FLAIRs, deeper than {MASS_DEPTH_MM:g} mm "
          "in the brain, in the more affected hemisphere beyond twice that in the other", high=6.0,
          meaning="a large one-sided bright region, as oedema around a tumour or an infarct: out of distribution, "
          "it is not WMH but may be counted as WMH"),
)
OUT_OF_DISTRIBUTION = ("brain_coverage", "wm_csf_contrast", "gm_wm_contrast", "atypical_tissue_ml",
                       "one_sided_hyperintensity_ml")


def _not_measurable(value):
    """Why ``value`` is no number to judge, or ``None`` when it is one."""
    if isinstance(value, NotMeasurable):
        return value.reason
    if value is None:
        return "not computed for this scan"
    if not np.isfinite(float(value)):
        return "the computation gave no finite number"
    return None


def assess(values):
    """The quality record of one scan: every check's value, threshold and verdict.  A check that
    cannot be measured (:class:`NotMeasurable`, or no finite number) is said so, with why, and
    flags nothing: the checks that can be measured judge the scan."""
    checks = {}
    for check in CHECKS:
        value = values.get(check.name)
        entry = {"threshold": check.threshold(), "description": check.description, "meaning": check.meaning}
        reason = _not_measurable(value)
        if reason:
            checks[check.name] = {"value": None, **entry, "flagged": False, "not_measurable": reason}
        else:
            value = round(float(value), 4)
            checks[check.name] = {"value": value, **entry, "flagged": bool(check.fires(value))}
    flags = [name for name, c in checks.items() if c["flagged"]]
    return {"flagged": bool(flags), "flags": flags,
            "out_of_distribution": any(name in OUT_OF_DISTRIBUTION for name in flags),
            "not_measurable": [name for name, c in checks.items() if "not_measurable" in c], "checks": checks}


def tissue_contrast(normalised, wm, cortex, ventricles):
    """WM-CSF and GM-WM separations of a white-matter-normalised FLAIR, in white-matter SDs; each
    :class:`NotMeasurable` where one of its tissues has too few voxels (``MIN_TISSUE_VOXELS``)."""
    tissues = {"white matter": wm, "cortex": cortex, "lateral ventricles": ventricles}
    too_few = {name: f"{int(mask.sum())} voxels of {name} inside the brain mask "
                     f"(at least {MIN_TISSUE_VOXELS[name]} needed)"
               for name, mask in tissues.items() if mask.sum() < MIN_TISSUE_VOXELS[name]}

    def separation(brighter, darker):
        reasons = [too_few[name] for name in dict.fromkeys(("white matter", brighter, darker)) if name in too_few]
        if reasons:
            return NotMeasurable("; ".join(reasons))
        scale = max(robust_sd(normalised[wm]), 1e-6)
        return (float(np.median(normalised[tissues[brighter]])) - float(np.median(normalised[tissues[darker]]))) / scale

    return separation("white matter", "lateral ventricles"), separation("cortex", "white matter")


def brain_coverage(signal_in_template, template_tissue):
    """Fraction of the template's brain tissue where the scan, brought to the template, has signal."""
    if not template_tissue.any():
        return NotMeasurable("the template's tissue maps hold no brain tissue")
    return float(np.mean(signal_in_template[template_tissue] >= 0.5))


def excess_over_reference(normalised, brain, expected, spread, zooms):
    """How many robust SDs the smoothed scan lies above the normal-appearing reference; NaN where
    the reference knows nothing or outside the brain."""
    smoothed = ndimage.gaussian_filter(normalised.astype(np.float32), ATYPICAL_SMOOTHING_MM / np.asarray(zooms, float))
    z = (smoothed - expected) / np.maximum(spread, robust_sd(smoothed[brain]))
    return np.where(brain & (spread > 0), z, np.nan)


def atypical_tissue_ml(excess, zooms):
    """Volume (mL) of the largest connected region brighter than the normal-appearing reference by
    more than ``ATYPICAL_Z`` robust SDs (``excess``: :func:`excess_over_reference`).  Dark regions are
    left to the coverage check: enlarged ventricles and sulci of atrophied brains are dark, and normal."""
    labels, count = label_components(excess > ATYPICAL_Z)
    if count == 0:
        return 0.0
    return float(np.bincount(labels.ravel())[1:].max() * np.prod(zooms) / 1000.0)


def one_sided_hyperintensity_ml(excess, brain, right_hemisphere, zooms):
    """Volume (mL) above ``MASS_Z`` in the more affected hemisphere beyond twice that in the other,
    counting only voxels deeper than ``MASS_DEPTH_MM`` in the ``brain`` (``right_hemisphere``,
    ``brain``: boolean, on the same grid), 0 when there is no such excess.  Small-vessel disease and
    multiple sclerosis, however confluent, affect both hemispheres; a mass does not."""
    hyperintense = (excess > MASS_Z) & deeper_than(brain, zooms, MASS_DEPTH_MM)
    less, more = sorted((np.count_nonzero(hyperintense & right_hemisphere),
                         np.count_nonzero(hyperintense & ~right_hemisphere)))
    return float(max(0, more - 2 * less) * np.prod(zooms) / 1000.0)
