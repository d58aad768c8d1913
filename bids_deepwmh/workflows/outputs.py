"""Write one scan's derivatives: native-grid images, template-space mask, transforms, table."""

from nipype.interfaces import utility as niu
from nipype.pipeline import engine as pe

from bids_deepwmh import TEMPLATE
from bids_deepwmh.core import fazekas, template
from bids_deepwmh.core.anatomical import MIN_LESION_MM3
from bids_deepwmh.core.brainmask import PLAUSIBLE_BRAIN_ML, RETRY_MIN_DICE, ROUGH_TEMPLATE_MIN_DICE
from bids_deepwmh.core.lesions import LESION_CORE_FRACTION, LESION_CORE_RADIUS_MM
from bids_deepwmh.interfaces.bids import DerivativesDataSink
from bids_deepwmh.interfaces.utils import ApplyTransform, ToSourceGrid

_REGION = {"periventricular": "periventricular WMH (within 10 mm of the lateral ventricles' wall, their linings "
                              "and caps included)",
           "deep": "deep WMH (further than 10 mm from the lateral ventricles' wall, above the tentorium)",
           "infratentorial": "infratentorial WMH (brainstem and cerebellum)"}
_LINING = (f"the WMH lesions that only line or cap the lateral ventricles (within {fazekas.CONTACT_MM:g} mm of "
           f"their wall, 90 percent of their volume within {fazekas.LINING_MM:g} mm: Fazekas grade 1)")
VOLUMES_SIDECAR = {
    "wmh_volume_ml": {"Description": "Total WMH volume", "Units": "mL"},
    "wmh_count": {"Description": "Number of WMH lesions (26-connected components)"},
    "brain_volume_ml": {"Description": "Brain volume (the brain mask, ventricles included)", "Units": "mL"},
    "wmh_fraction_of_brain": {"Description": "WMH volume divided by brain volume"},
    **{key: value for region, text in _REGION.items() for key, value in (
        (f"{region}_wmh_volume_ml", {"Description": f"Volume of {text}", "Units": "mL"}),
        (f"{region}_wmh_count", {"Description": f"Number of lesions with most of their voxels in {text}"}),
        (f"{region}_wmh_fraction_of_brain", {"Description": f"Volume of {text} divided by brain volume"}),
    )},
    "ventricle_lining_wmh_volume_ml": {"Description": f"Volume of {_LINING}, part of the periventricular WMH; "
                                       "multiple sclerosis raters usually leave these out", "Units": "mL"},
    "ventricle_lining_wmh_count": {"Description": f"Number of {_LINING}"},
    "ventricle_lining_wmh_fraction_of_brain": {"Description": f"Volume of {_LINING} divided by brain volume"},
    "lateral_ventricles_volume_ml": {"Description": "Volume of the lateral ventricles (template's aseg brought to "
                                     "the FLAIR, refined on its CSF)", "Units": "mL"},
    "fazekas_periventricular": {
        "Description": "Fazekas periventricular grade read from the segmentation (Fazekas et al., AJR 1987): how far "
        "the WMH touching the ventricles reach from their wall (90th percentile of their depth)",
        "Levels": {str(g): words for g, words in fazekas.PERIVENTRICULAR_WORDS.items()},
    },
    "fazekas_deep": {
        "Description": "Fazekas deep grade read from the segmentation: the largest in-plane diameter of one deep "
        "WMH lesion lying mostly in the cerebral white matter",
        "Levels": {str(g): words for g, words in fazekas.DEEP_WORDS.items()},
    },
    "periventricular_extent_mm": {"Description": "How far the periventricular WMH reach from the ventricles' wall: "
                                  "the depth within which 90 percent of their volume lies", "Units": "mm"},
    "deep_largest_mm": {"Description": "In-plane (axial) diameter of the largest deep WMH lesion in the cerebral "
                        "white matter", "Units": "mm"},
}
LESIONS_SIDECAR = {
    "lesion_id": {"Description": "Lesion number, largest first (26-connected components of the WMH mask)"},
    "volume_mm3": {"Description": "Lesion volume", "Units": "mm^3"},
    **{f"native_{a}_mm": {"Description": f"Centroid, scanner {a} coordinate (RAS)", "Units": "mm"} for a in "xyz"},
    **{f"template_{a}_mm": {"Description": f"Centroid, MNI152NLin2009cAsym {a} coordinate (RAS)", "Units": "mm"}
       for a in "xyz"},
    "region": {"Description": "Region holding most of the lesion's voxels",
               "Levels": dict(_REGION)},
    "periventricular_fraction": {"Description": "Fraction of the lesion's voxels within 10 mm of the ventricles"},
    "mean_probability": {"Description": "Mean network probability over the lesion"},
    "max_probability": {"Description": "Maximum network probability over the lesion"},
}
ANATOMICAL_DESCRIPTION = (
    "Anatomical-knowledge WMH (the pseudo-labels the network learned from): voxels of white or "
    "deep grey matter brighter than a normal-appearing FLAIR reference (one-sided robust z-score, "
    f"hysteresis threshold), less each lesion's faint rim (score under {LESION_CORE_FRACTION:g} of the highest "
    f"within {LESION_CORE_RADIUS_MM:g} mm), components under {MIN_LESION_MM3:g} mm3 removed."
)


def _network_description(bundle):
    return (
        f"a 3D U-Net trained without manual annotations (bids-deepwmh {bundle.settings['deepwmh_version']} "
        f"model bundle, weights sha256 {bundle.weights_sha256[:16]})"
    )


def init_outputs_wf(output_dir, source_file, bundle, name="outputs_wf"):
    """Inputs on the conformed grid: ``flair``, ``brain_mask`` (with ``brain_mask_metadata`` for its
    sidecar), ``wmh_mask``, ``probseg``,
    ``anatomical_mask``, ``regions`` (with its ``regions_table``), the ``lesions`` and ``volumes``
    tables, and the ``forward_transform`` and ``inverse_transform``."""
    wf = pe.Workflow(name=name)
    inputnode = pe.Node(
        niu.IdentityInterface(
            fields=["flair", "brain_mask", "brain_mask_metadata", "wmh_mask", "probseg", "anatomical_mask", "regions",
                    "regions_table", "lesions", "volumes", "forward_transform", "inverse_transform"]
        ),
        name="inputnode",
    )
    inference = bundle.settings["inference"]
    wmh_description = (
        f"White matter hyperintensities: probability >= {inference['threshold']} from "
        f"{_network_description(bundle)}, inside the brain mask and within {template.WMH_TISSUE_MARGIN_MM:g} mm of "
        f"the template's white and deep grey matter, brainstem and cerebellar white matter, less each lesion's "
        f"faint rim (anatomical score under {LESION_CORE_FRACTION:g} of the highest within "
        f"{LESION_CORE_RADIUS_MM:g} mm), components under {inference['min_lesion_mm3']} mm3 removed."
    )

    def sink(node_name, **entities_and_metadata):
        return pe.Node(
            DerivativesDataSink(
                base_directory=str(output_dir), source_file=str(source_file), **entities_and_metadata
            ),
            name=node_name, run_without_submitting=True,
        )

    native = {  # conformed-grid input -> (data type on the source grid, its sink)
        "flair": ("float32", sink(
            "ds_flair", desc="preproc", suffix="FLAIR", compress=True, SkullStripped=False,
            Description="FLAIR after N4 bias-field correction",
        )),
        "brain_mask": ("uint8", sink(
            "ds_brain_mask", desc="brain", suffix="mask", compress=True, Type="Brain",
            Description="Brain mask: HD-BET (Isensee et al., Hum Brain Mapp 2019) on the FLAIR; for a FLAIR its "
            "source had already skull-stripped, that brain. An HD-BET mask that is empty, of a volume outside "
            f"{PLAUSIBLE_BRAIN_ML[0]:g}-{PLAUSIBLE_BRAIN_ML[1]:g} mL or unlike the template's brain brought to the "
            f"FLAIR by an affine registration (Dice under {ROUGH_TEMPLATE_MIN_DICE:g}) is replaced by HD-BET's mask "
            f"of a denoised, mirrored input if that one passes (with Dice {RETRY_MIN_DICE:g}), else by that "
            "template brain refined on the FLAIR. "
            "BrainExtraction says which (HD-BET, given, HD-BET (denoised input, mirrored), template); "
            "BrainExtractionRejected lists the masks rejected and why.",
        )),
        "wmh_mask": ("uint8", sink(
            "ds_wmh_mask", label="WMH", suffix="mask", compress=True, Type="Lesion",
            Description=wmh_description,
        )),
        "probseg": ("float32", sink(
            "ds_probseg", label="WMH", suffix="probseg", compress=True,
            Description=f"Probability of white matter hyperintensity (0 outside the brain mask and outside "
            f"{template.WMH_TISSUE_MARGIN_MM:g} mm of white and deep grey matter), from "
            f"{_network_description(bundle)}.",
        )),
        "anatomical_mask": ("uint8", sink(
            "ds_anatomical_mask", label="WMH", desc="anatomical", suffix="mask", compress=True, Type="Lesion",
            Description=ANATOMICAL_DESCRIPTION,
        )),
        "regions": ("uint8", sink(
            "ds_regions", desc="wmhregions", suffix="dseg", compress=True,
            Description="WMH by region: 1 periventricular (within 10 mm of the lateral ventricles' wall), 2 deep "
            "(the rest of the cerebrum), 3 the lateral ventricles themselves (template aseg through the inverse "
            "transform, refined on the FLAIR's CSF), 4 infratentorial (WMH in the template's brainstem and "
            "cerebellum brought to the FLAIR). Labels in the .tsv of the same name.",
        )),
    }
    for field_name, (dtype, ds) in native.items():
        to_native = pe.Node(ToSourceGrid(source_file=str(source_file), dtype=dtype), name=f"native_{field_name}")
        wf.connect([
            (inputnode, to_native, [(field_name, "in_file")]),
            (to_native, ds, [("out_file", "in_file")]),
        ])  # fmt: skip

    wf.connect(inputnode, "brain_mask_metadata", native["brain_mask"][1], "meta_dict")
    wmh_template = pe.Node(
        ApplyTransform(reference=template.brain_mask(), binarize=True), name="wmh_to_template"
    )
    ds_wmh_template = sink(
        "ds_wmh_template", space=TEMPLATE, resolution="1", label="WMH", suffix="mask", compress=True,
        Type="Lesion", Description=wmh_description + " Resampled to the template (linear, >= 0.5).",
    )
    ds_forward = sink("ds_forward_xfm", suffix="xfm", extension=".h5", **{"from": "FLAIR", "to": TEMPLATE},
                      mode="image", Description="ANTs composite transform: affine, SyN")
    ds_inverse = sink("ds_inverse_xfm", suffix="xfm", extension=".h5", **{"from": TEMPLATE, "to": "FLAIR"},
                      mode="image", Description="ANTs composite transform: inverse SyN, affine")
    ds_volumes = sink("ds_volumes", label="WMH", suffix="morph", extension=".tsv", **VOLUMES_SIDECAR)
    ds_lesions = sink("ds_lesions", label="WMH", desc="lesions", suffix="morph", extension=".tsv", **LESIONS_SIDECAR)
    ds_regions_table = sink("ds_regions_table", desc="wmhregions", suffix="dseg", extension=".tsv")
    wf.connect([
        (inputnode, wmh_template, [("wmh_mask", "in_file"), ("forward_transform", "transform")]),
        (wmh_template, ds_wmh_template, [("out_file", "in_file")]),
        (inputnode, ds_forward, [("forward_transform", "in_file")]),
        (inputnode, ds_inverse, [("inverse_transform", "in_file")]),
        (inputnode, ds_volumes, [("volumes", "in_file")]),
        (inputnode, ds_lesions, [("lesions", "in_file")]),
        (inputnode, ds_regions_table, [("regions_table", "in_file")]),
    ])  # fmt: skip
    return wf
