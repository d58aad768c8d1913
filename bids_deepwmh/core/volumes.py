"""Lesion volumes and counts."""

import numpy as np

from bids_deepwmh.core.lesions import label_components

VOLUME_COLUMNS = ("wmh_volume_ml", "wmh_count", "brain_volume_ml", "wmh_fraction_of_brain")


def wmh_volumes(wmh, brain, voxel_mm3):
    """Total WMH volume (mL), lesion count (26-connected), brain volume (mL) and WMH/brain."""
    wmh = np.asarray(wmh, bool) & np.asarray(brain, bool)
    wmh_ml = np.count_nonzero(wmh) * voxel_mm3 / 1000.0
    brain_ml = np.count_nonzero(brain) * voxel_mm3 / 1000.0
    return {
        "wmh_volume_ml": round(wmh_ml, 4),
        "wmh_count": int(label_components(wmh)[1]),
        "brain_volume_ml": round(brain_ml, 2),
        "wmh_fraction_of_brain": round(wmh_ml / brain_ml, 6) if brain_ml else float("nan"),
    }
