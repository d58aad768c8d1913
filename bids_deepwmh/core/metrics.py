"""Agreement between a predicted and a manual WMH mask, as the MICCAI 2017 WMH challenge defines it.

- Dice similarity coefficient.
- HD95: the 95th percentile of the distances between the two masks' outlines, symmetric (max of
  both directions), in mm; outlines from an in-plane erosion, as in the challenge's script.
- AVD: absolute volume difference, in percent of the manual volume.
- Lesion recall and lesion F1: on 26-connected components; a manual lesion is detected when a
  predicted voxel touches it, a predicted lesion is correct when it touches a manual one.
"""

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from bids_deepwmh.core.lesions import label_components


def dice(pred, true):
    pred, true = np.asarray(pred, bool), np.asarray(true, bool)
    total = pred.sum() + true.sum()
    return 1.0 if total == 0 else 2.0 * np.logical_and(pred, true).sum() / total


def _outline_points(mask, affine):
    eroded = ndimage.binary_erosion(mask, structure=np.ones((3, 3, 1), bool))
    ijk = np.argwhere(mask & ~eroded)
    return ijk @ affine[:3, :3].T + affine[:3, 3]


def hd95(pred, true, affine):
    """95th-percentile symmetric Hausdorff distance in mm (NaN when a mask is empty)."""
    pred, true = np.asarray(pred, bool), np.asarray(true, bool)
    if not pred.any() or not true.any():
        return float("nan")
    a, b = _outline_points(pred, affine), _outline_points(true, affine)
    d_ab = cKDTree(b).query(a, k=1)[0]
    d_ba = cKDTree(a).query(b, k=1)[0]
    return float(max(np.percentile(d_ab, 95), np.percentile(d_ba, 95)))


def avd(pred, true):
    """Absolute volume difference in percent of the manual volume (NaN when that is empty)."""
    true_volume = np.count_nonzero(true)
    if true_volume == 0:
        return float("nan")
    return 100.0 * abs(np.count_nonzero(pred) - true_volume) / true_volume


def lesion_detection(pred, true):
    """Lesion-wise recall and F1."""
    pred, true = np.asarray(pred, bool), np.asarray(true, bool)
    true_labels, n_true = label_components(true)
    pred_labels, n_pred = label_components(pred)
    detected = len(np.setdiff1d(np.unique(true_labels[pred]), [0]))
    correct = len(np.setdiff1d(np.unique(pred_labels[true]), [0]))
    recall = detected / n_true if n_true else float("nan")
    precision = correct / n_pred if n_pred else float("nan")
    if not n_true or not n_pred or recall + precision == 0:
        return recall, 0.0 if n_true or n_pred else float("nan")
    return recall, 2 * recall * precision / (recall + precision)


def agreement(pred, true, affine):
    """All challenge metrics as a dict."""
    recall, f1 = lesion_detection(pred, true)
    return {
        "dice": dice(pred, true),
        "hd95_mm": hd95(pred, true, affine),
        "avd_percent": avd(pred, true),
        "lesion_recall": recall,
        "lesion_f1": f1,
    }
