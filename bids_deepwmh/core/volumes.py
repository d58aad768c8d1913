"""WMH volumes and lesion counts, in total and by region, normalised by brain volume."""

import numpy as np

VOLUME_COLUMNS = (
    "wmh_volume_ml", "wmh_count", "brain_volume_ml", "wmh_fraction_of_brain",
    "periventricular_wmh_volume_ml", "periventricular_wmh_count", "periventricular_wmh_fraction_of_brain",
    "deep_wmh_volume_ml", "deep_wmh_count", "deep_wmh_fraction_of_brain",
    "lateral_ventricles_volume_ml",
)


def wmh_volumes(regions, brain, voxel_mm3, lesion_regions):
    """Volumes (mL) and counts from the regions dseg (1 periventricular, 2 deep, 3 ventricles),
    the brain mask and the region of each lesion (its count is the number of lesions)."""
    brain_ml = np.count_nonzero(brain) * voxel_mm3 / 1000.0

    def volume(*labels):
        return np.count_nonzero(np.isin(regions, labels) & brain) * voxel_mm3 / 1000.0

    def fraction(ml):
        return round(ml / brain_ml, 6) if brain_ml else float("nan")

    values = {"wmh_volume_ml": round(volume(1, 2), 4), "wmh_count": len(lesion_regions),
              "brain_volume_ml": round(brain_ml, 2), "wmh_fraction_of_brain": fraction(volume(1, 2))}
    for label, region in ((1, "periventricular"), (2, "deep")):
        values[f"{region}_wmh_volume_ml"] = round(volume(label), 4)
        values[f"{region}_wmh_count"] = sum(r == region for r in lesion_regions)
        values[f"{region}_wmh_fraction_of_brain"] = fraction(volume(label))
    values["lateral_ventricles_volume_ml"] = round(volume(3), 2)
    return values
