"""Figures of one scan, drawn with nilearn and composed with nireports' SVG tools."""

import warnings
from uuid import uuid4

import nibabel as nib
import numpy as np

from bids_deepwmh.core.images import voxel_aligned, voxel_sizes

# Outline colours of the regions dseg's labels (periventricular, deep, ventricles, infratentorial, the
# ventricles' linings and caps), named in the captions.
REGION_COLOURS = {1: "#ff3b3b", 2: "#ffd21f", 3: "#30c8ff", 4: "#c77dff", 5: "#ff8c00"}
DISPLAY_MM = 1.0  # figures are drawn on voxels at least this large: finer ones only slow the plotting
DPI = 150  # each mosaic row is about 1500 pixels wide: sharp on screens, quick to draw
VIEW_CUTS = 7  # slices per view of the brain-mask and registration figures, as nireports draws them
# The part of the brain's height the slices span: from the pons, where infratentorial WMH and the normally
# bright medial temporal lobes are, to the vertex.
BRAIN_SPAN = (0.15, 0.95)


def axial_cuts(bbox_mask, count, span=BRAIN_SPAN):
    """``count`` axial world coordinates (mm) spread over ``span`` (fractions, bottom to top) of the
    mask's height."""
    img = nib.as_closest_canonical(nib.load(bbox_mask))
    mask = np.asanyarray(img.dataobj) > 0
    rows = np.flatnonzero(mask.any(axis=(0, 1)))
    if not len(rows):
        rows, mask = np.arange(img.shape[2]), np.ones(img.shape[:3], bool)
    # World heights along a line through the mask's centre: on a tilted grid, a corner voxel's
    # height is tens of millimetres off and the slices would fall to the skull base.
    centre_i, centre_j = (float(np.mean(idx)) for idx in np.nonzero(mask)[:2])
    slices = np.linspace(rows[0] + span[0] * np.ptp(rows), rows[0] + span[1] * np.ptp(rows), count)
    return [float((img.affine @ [centre_i, centre_j, k, 1])[2]) for k in slices]


def axial_mosaic(background, bbox_mask, out_file, contours=(), overlay=None, rows=3, per_row=6):
    """Rows of axial slices of ``background``; ``contours``: (image, level, colour) outlines;
    ``overlay``: a probability map in [0, 1] drawn in colour (0.05 dark purple to 1 yellow, see-through).
    Writes an SVG."""
    from nilearn import plotting
    from nireports._vendored.svgutils.transform import fromstring
    from nireports.reportlets.utils import compose_view, extract_svg

    data = nib.load(background).get_fdata(dtype=np.float32)
    bbox = np.asanyarray(nib.load(bbox_mask).dataobj) > 0
    vmax = float(np.percentile(data[bbox], 99.5)) if bbox.any() else None
    cuts = axial_cuts(bbox_mask, rows * per_row)
    panels = []
    for row in range(rows):
        display = plotting.plot_anat(background, display_mode="z", cut_coords=cuts[row * per_row:(row + 1) * per_row],
                                     colorbar=False, vmin=0, vmax=vmax, black_bg=True, dim=0)
        if overlay is not None:
            with warnings.catch_warnings():  # rows without any probability above the threshold
                warnings.filterwarnings("ignore", message="empty mask")
                display.add_overlay(overlay, cmap="inferno", vmin=0.0, vmax=1.0, threshold=0.05, transparency=0.7)
        for image, level, colour in contours:
            display.add_contours(image, levels=[level], colors=[colour], linewidths=0.8)
        panels.append(fromstring(extract_svg(display, dpi=DPI, compress=False)))
        display.close()
    return compose_view(panels, None, out_file=out_file)


def view_panels(image_file, contour, cuts, title=None):
    """SVG panels of ``image_file`` in axial, sagittal and coronal slices at ``cuts`` (nireports'
    ``cuts_from_bbox``), the 0.5 level of the nibabel image ``contour`` outlined in red, grey levels from the
    15th to the 99.8th percentile as nireports sets them; drawn at ``DPI``."""
    from nilearn import plotting
    from nireports._vendored.svgutils.transform import fromstring
    from nireports.reportlets.utils import extract_svg, robust_set_limits

    img = nib.load(image_file)
    limits = robust_set_limits(img.get_fdata(dtype=np.float32).reshape(-1), {})
    panels = []
    for mode in ("z", "x", "y"):
        display = plotting.plot_anat(img, display_mode=mode, cut_coords=cuts[mode], colorbar=False,
                                     title=title if mode == "z" else None, **limits)
        display.add_contours(contour, levels=[0.5], colors=["r"], linewidths=0.5)
        svg = extract_svg(display, dpi=DPI, compress=False)
        display.close()
        panels.append(fromstring(svg.replace("figure_1", f"panel-{mode}-{uuid4()}", 1)))  # ids unique in the report
    return panels


def brain_mask_figure(flair_file, mask_file, out_file):
    """The brain mask outlined on the FLAIR in three views."""
    from nireports.reportlets.utils import compose_view, cuts_from_bbox

    mask = nib.load(mask_file)
    compose_view(view_panels(flair_file, mask, cuts_from_bbox(mask, cuts=VIEW_CUTS)), None, out_file=out_file)


def registration_figure(flair_file, template_file, wm_mask_file, out_file, template_label):
    """The FLAIR and the template brought to it, one over the other (nireports' flicker figure),
    the template's white matter outlined on both."""
    from nireports.reportlets.utils import compose_view, cuts_from_bbox

    wm_mask = nib.load(wm_mask_file)
    cuts = cuts_from_bbox(wm_mask, cuts=VIEW_CUTS)
    compose_view(view_panels(flair_file, wm_mask, cuts, "FLAIR"),
                 view_panels(template_file, wm_mask, cuts, template_label), out_file=out_file)


def region_contours(regions_file):
    """(image, level, colour) outlines of each label of the regions dseg that is present."""
    img = nib.load(regions_file)
    labels = np.asanyarray(img.dataobj)
    outlines = []
    for label, colour in REGION_COLOURS.items():
        if (labels == label).any():
            outlines.append((nib.Nifti1Image((labels == label).astype(np.uint8), img.affine), 0.5, colour))
    return outlines


def display_grid(img):
    """The grid figures of ``img`` are drawn on: its voxels as acquired, laid on the world's axes
    (the header's rotation dropped: nilearn would otherwise resample an oblique image at each slice
    it draws), coarsened to voxels of at least ``DISPLAY_MM`` (finer ones only slow the plotting);
    None to draw its voxels as they are.  ``img`` is RAS+ (conformed), so the picture keeps its
    left and right."""
    zooms = voxel_sizes(img)
    scale = np.maximum(DISPLAY_MM / zooms, 1.0)
    if np.all(scale < 1.1):
        return None
    shape = tuple(int(n) for n in np.ceil(np.asarray(img.shape[:3]) / scale))
    to_old = np.diag([*scale, 1.0])
    to_old[:3, 3] = (scale - 1) / 2  # voxel centres of the coarse grid, in the old grid's indices
    return shape, voxel_aligned(img).affine @ to_old


def for_display(img, grid, order):
    """``img``'s voxels on the world's axes, resampled onto ``grid`` (from :func:`display_grid`;
    None keeps the voxels as they are)."""
    from nibabel.processing import resample_from_to

    aligned = voxel_aligned(img)
    return aligned if grid is None else resample_from_to(aligned, grid, order=order)
