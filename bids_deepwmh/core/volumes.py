"""WMH volumes and lesion counts, in total and by region, normalised by brain volume; Fazekas grades."""

import numpy as np

from bids_deepwmh.core.fazekas import FAZEKAS_COLUMNS
from bids_deepwmh.core.lesions import label_components
from bids_deepwmh.core.regions import REGION_LABELS, VENTRICLE_LINING, WMH_LABELS, WMH_REGIONS, labels_of

LINING = REGION_LABELS[VENTRICLE_LINING]

VOLUME_COLUMNS = (
    "wmh_volume_ml", "wmh_count", "brain_volume_ml", "wmh_fraction_of_brain",
    *(f"{region}_wmh_{measure}" for region in WMH_REGIONS.values()
      for measure in ("volume_ml", "count", "fraction_of_brain")),
    *(f"{LINING}_wmh_{measure}" for measure in ("volume_ml", "count", "fraction_of_brain")),
    "lateral_ventricles_volume_ml",
    *FAZEKAS_COLUMNS,
)


def wmh_volumes(regions, brain, voxel_mm3, lesion_regions):
    """Volumes (mL) and counts from the regions dseg (:data:`~bids_deepwmh.core.regions.REGION_LABELS`),
    the brain mask and the region of each lesion (its count is the number of lesions).  The
    periventricular WMH include the ventricles' linings and caps, also given on their own."""
    brain_ml = np.count_nonzero(brain) * voxel_mm3 / 1000.0

    def volume(*labels):
        return np.count_nonzero(np.isin(regions, labels) & brain) * voxel_mm3 / 1000.0

    def fraction(ml):
        return round(ml / brain_ml, 6) if brain_ml else float("nan")

    total = volume(*WMH_LABELS)
    values = {"wmh_volume_ml": round(total, 4), "wmh_count": len(lesion_regions),
              "brain_volume_ml": round(brain_ml, 2), "wmh_fraction_of_brain": fraction(total)}
    for label, region in WMH_REGIONS.items():
        values[f"{region}_wmh_volume_ml"] = round(volume(*labels_of(label)), 4)
        values[f"{region}_wmh_count"] = sum(r == region for r in lesion_regions)
        values[f"{region}_wmh_fraction_of_brain"] = fraction(volume(*labels_of(label)))
    values[f"{LINING}_wmh_volume_ml"] = round(volume(VENTRICLE_LINING), 4)
    values[f"{LINING}_wmh_count"] = label_components(regions == VENTRICLE_LINING)[1]
    values[f"{LINING}_wmh_fraction_of_brain"] = fraction(volume(VENTRICLE_LINING))
    values["lateral_ventricles_volume_ml"] = round(volume(3), 2)
    return values
