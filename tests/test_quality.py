"""Quality flags on real FLAIRs made deliberately bad (a tumour-like mass, a brain cut in half).

The good real scans staying quiet is checked in test_real_data.py and, for every real scan, by
benchmarks/benchmark.py.
"""

import json

from bids_deepwmh.utils.bids import derivative_path
from bids_deepwmh.utils.tables import read_tsv

# ``real_run`` (conftest.py): the one participant-level run of every real scan of the tests, among them
# ``sub-tumour`` and ``sub-cropped``, made from a real FLAIR here.


def _record(real_run, name):
    path = derivative_path(real_run["out"], f"sub-{name}/anat/sub-{name}_FLAIR.nii.gz", suffix="quality",
                           extension=".json")
    return json.loads(path.read_text())


def test_a_tumour_like_mass_is_out_of_distribution(real_run):
    assert real_run["code"] == 0  # flagged scans are still processed
    record = _record(real_run, "tumour")
    assert record["flagged"] and record["out_of_distribution"]
    assert "atypical_tissue_ml" in record["flags"]
    volumes = read_tsv(derivative_path(real_run["out"], "sub-tumour/anat/sub-tumour_FLAIR.nii.gz", label="WMH",
                                       suffix="morph", extension=".tsv"))[0]
    assert volumes["fazekas_periventricular"] in "0123" and volumes["fazekas_deep"] in "0123"  # graded all the same
    html = (real_run["out"] / "sub-tumour.html").read_text()
    grades = html.index("Fazekas grades")
    assert "This scan is out of distribution" in html[grades:grades + 1000]  # the flag beside the grades


def test_a_half_cropped_brain_is_flagged_at_the_top_of_its_report(real_run):
    # Registering half a brain is ill-posed: the template may keep its size (coverage fires) or
    # shrink into the half (coverage stays high), but its white matter then overlaps dark CSF.
    record = _record(real_run, "cropped")
    assert record["flagged"] and record["out_of_distribution"]
    assert {"brain_coverage", "wm_csf_contrast"} & set(record["flags"])
    html = (real_run["out"] / "sub-cropped.html").read_text()
    banner = html.index("Quality: FLAGGED")
    assert banner < html.index("WMH by region")
    assert all(flag in html[banner:banner + 2000] for flag in record["flags"])
