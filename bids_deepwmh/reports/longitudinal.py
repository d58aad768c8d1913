"""The longitudinal section of a participant's report: the sessions side by side in subject space
with what changed outlined, the volume curve, and the table as HTML."""

from html import escape

import nibabel as nib
import numpy as np


# Outline colours of the change dseg's labels, named in the captions (reports-spec.yml).
CHANGE_COLOURS = {1: "#39e639", 2: "#ff9f1a", 3: "#4fc3ff", 4: "#4fc3ff"}  # new, enlarging, shrinking, disappeared
WMH_COLOUR = "#c58cff"  # every WMH of the session, faint
CHANGED_LABELS = tuple(CHANGE_COLOURS)  # the slices with most of these voxels are shown first
FIGURE_SLICES = 5
MIN_SLICE_GAP_MM = 8.0  # slices chosen for their changes lie at least this far apart
CEREBRUM_SPAN = (0.3, 0.95)  # the part of the brains' height the other slices spread over: where WMH live


def _contour(ax, mask, colour, **style):
    if mask.any():
        ax.contour(mask.T.astype(float), levels=[0.5], colors=[colour], **style)


def figure_slices(brain, changed, count=FIGURE_SLICES, span=CEREBRUM_SPAN):
    """Axial slice indices of a subject-space grid (1 mm, world-aligned): those with the most
    ``changed`` voxels first (``MIN_SLICE_GAP_MM`` apart), the rest spread over ``span`` of the
    brain's height; bottom to top."""
    rows = np.flatnonzero(brain.any(axis=(0, 1)))
    per_slice = changed.sum(axis=(0, 1))
    chosen = []
    for k in np.argsort(-per_slice, kind="stable"):
        if per_slice[k] == 0 or len(chosen) == count:
            break
        if all(abs(k - c) >= MIN_SLICE_GAP_MM for c in chosen):
            chosen.append(int(k))
    for k in np.linspace(rows[0] + span[0] * np.ptp(rows), rows[0] + span[1] * np.ptp(rows), count * 3).astype(int):
        if len(chosen) == count:
            break
        if all(abs(k - c) >= MIN_SLICE_GAP_MM for c in chosen):
            chosen.append(int(k))
    return sorted(chosen)


def change_figure(flairs, brain_masks, wmh_masks, change_dsegs, labels, out_file):
    """Rows of axial slices, one column per session (``labels``), all in subject space and cropped
    to the brains: every WMH outlined faintly, and in each later session what changed since the one
    before (its change dseg) in colour.  Neurological convention (the patient's left on the left).
    Writes an SVG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    images = [nib.load(path).get_fdata(dtype=np.float32) for path in flairs]
    masks = [np.asanyarray(nib.load(path).dataobj) > 0 for path in wmh_masks]
    changes = [None] + [np.asanyarray(nib.load(path).dataobj) for path in change_dsegs]
    brain = np.logical_or.reduce([np.asanyarray(nib.load(path).dataobj) > 0 for path in brain_masks])
    changed = np.logical_or.reduce([np.isin(c, CHANGED_LABELS) for c in changes[1:]])
    slices = figure_slices(brain, changed)
    box = [np.flatnonzero(brain.any(axis=tuple(a for a in range(3) if a != axis))) for axis in (0, 1)]
    crop = tuple(slice(max(b[0] - 3, 0), b[-1] + 4) for b in box)
    vmax = float(np.percentile(images[0][brain], 99.5))
    fig, axes = plt.subplots(len(slices), len(images), figsize=(2.4 * len(images), 2.7 * len(slices)),
                             squeeze=False, facecolor="black")
    for row, k in zip(axes, slices, strict=True):
        for column, (ax, image, mask, change) in enumerate(zip(row, images, masks, changes, strict=True)):
            ax.imshow(image[crop + (k,)].T, origin="lower", cmap="gray", vmin=0, vmax=vmax, interpolation="none")
            _contour(ax, mask[crop + (k,)], WMH_COLOUR, linewidths=0.6, alpha=0.7)
            if change is not None:
                for label, colour in CHANGE_COLOURS.items():
                    _contour(ax, change[crop + (k,)] == label, colour, linewidths=1.0,
                             linestyles="dashed" if label in (3, 4) else "solid")
            ax.set_axis_off()
            if k == slices[0]:
                ax.set_title(labels[column], color="white", fontsize=10)
            if column == 0:
                ax.text(0.02, 0.02, "L", color="white", fontsize=8, transform=ax.transAxes)
                ax.text(0.93, 0.02, "R", color="white", fontsize=8, transform=ax.transAxes)
    fig.subplots_adjust(wspace=0.02, hspace=0.04)
    fig.savefig(out_file, format="svg", facecolor="black", bbox_inches="tight")
    plt.close(fig)
    return out_file


def _number(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def volume_curve(rows, out_file):
    """WMH volume per compared session (consistent segmentation, by region) against time (years
    since the first when every compared session is dated, else the sessions in order), with each
    session's own segmentation dashed.  Writes an SVG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    compared = [r for r in rows if r["status"] == "compared"]
    years = [_number(r["years_since_first"]) for r in compared]
    dated = all(np.isfinite(years))
    x = years if dated else list(range(len(compared)))
    fig, ax = plt.subplots(figsize=(6, 3.6))
    lines = (("wmh_volume_ml", "all WMH", "#222222", "-"), ("periventricular_wmh_volume_ml", "periventricular",
             "#d62020", "-"), ("deep_wmh_volume_ml", "deep", "#b89200", "-"),
             ("infratentorial_wmh_volume_ml", "infratentorial", "#9d4edd", "-"),
             ("cross_sectional_wmh_volume_ml", "each session on its own", "#888888", "--"))
    for column, label, colour, style in lines:
        ax.plot(x, [_number(r[column]) for r in compared], style, marker="o", color=colour, label=label, lw=1.4)
    ax.set_xticks(x, [f"{r['session_id']}\n{y:.2f} y" if dated else r["session_id"]
                      for r, y in zip(compared, years, strict=True)])
    ax.set_ylabel("WMH volume (mL)")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small", frameon=False, bbox_to_anchor=(1.02, 1), loc="upper left")
    fig.savefig(out_file, format="svg", bbox_inches="tight")
    plt.close(fig)
    return out_file


def _cell(row, name, digits=None):
    value = row.get(name)
    if value in (None, "", "n/a"):
        return "–"
    return f"{float(value):.{digits}f}" if digits is not None else escape(str(value))


def summary_html(rows):
    """HTML fragment: one line per session, its consistent volume and the change since the previous."""
    body = []
    for row in rows:
        if row["status"] != "compared":
            body.append(f"<tr><td>{escape(row['session_id'])}</td><td>{_cell(row, 'acq_time')}</td>"
                        f"<td colspan='7'>skipped: {_cell(row, 'reason')}</td></tr>")
            continue
        changes = "".join(f"<td>{_cell(row, f'{name}_wmh_count')} / {_cell(row, f'{name}_wmh_volume_ml', 2)}</td>"
                          for name in ("new", "enlarging", "shrinking", "disappeared"))
        body.append(f"<tr><td>{escape(row['session_id'])}</td><td>{_cell(row, 'acq_time')}</td>"
                    f"<td>{_cell(row, 'wmh_volume_ml', 2)}</td><td>{_cell(row, 'cross_sectional_wmh_volume_ml', 2)}</td>"
                    f"<td>{_cell(row, 'compared_with')}</td>{changes}</tr>")
    return ('<table class="table table-sm"><thead><tr><th>session</th><th>acq_time</th><th>WMH (mL)</th>'
            "<th>on its own (mL)</th><th>against</th><th>new (n / mL)</th><th>enlarging (n / mL gained)</th>"
            "<th>shrinking (n / mL lost)</th><th>disappeared (n / mL)</th></tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table>"
            "<p>WMH (mL): the consistent segmentation, every session judged with the others in view, measured in "
            "the participant's subject space; on its own: the session's cross-sectional volume. The change columns "
            "count lesions against the previous compared session and the volume of the voxels that changed.</p>")
