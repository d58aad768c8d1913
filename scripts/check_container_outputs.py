"""Check the outputs of a containerised run on the synthetic test dataset (used by test_container.sh).

Run inside the image, which has the package, nibabel and the BIDS validator::

    python check_container_outputs.py BIDS_DIR OUTPUT_DIR

Every FLAIR of BIDS_DIR must have its derivatives under BIDS-Derivatives names, on the FLAIR's
grid (the template-space mask on the template's), masks binary, probabilities in [0, 1], the
participant and group HTML reports written and self-contained, the group tables one row per scan,
and the output folder must pass the BIDS validator.  Prints one line per problem; exits 1 if any.
"""

import re
import sys
from html.parser import HTMLParser
from pathlib import Path

import nibabel as nib
import numpy as np

from bids_deepwmh.core.template import brain_mask
from bids_deepwmh.utils.bids import derivative_path, validate_dataset
from bids_deepwmh.utils.tables import read_tsv

NATIVE_OUTPUTS = {  # entities of each native-grid image, and the values its voxels may take
    "preprocessed FLAIR": ({"desc": "preproc", "suffix": "FLAIR"}, None),
    "brain mask": ({"desc": "brain", "suffix": "mask"}, {0, 1}),
    "WMH mask": ({"label": "WMH", "suffix": "mask"}, {0, 1}),
    "anatomical WMH mask": ({"label": "WMH", "desc": "anatomical", "suffix": "mask"}, {0, 1}),
    "WMH probability": ({"label": "WMH", "suffix": "probseg"}, "probability"),
    "WMH regions": ({"desc": "wmhregions", "suffix": "dseg"}, {0, 1, 2, 3}),
}
REMOTE = re.compile(r"^\s*(?:https?:)?//", re.IGNORECASE)


class _Resources(HTMLParser):
    """The files a page loads: scripts, stylesheets, images and embedded objects."""

    def __init__(self):
        super().__init__()
        self.urls = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for name in ("src", "data") if tag in ("script", "img", "iframe", "object", "embed") else ():
            if attrs.get(name):
                self.urls.append(attrs[name])
        if tag == "link" and "stylesheet" in (attrs.get("rel") or "") and attrs.get("href"):
            self.urls.append(attrs["href"])


def check_image(path, like, allowed, problems):
    if not path.is_file():
        problems.append(f"missing: {path}")
        return
    img = nib.load(path)
    if img.shape[:3] != like.shape[:3] or not np.allclose(img.affine, like.affine, atol=1e-4):
        problems.append(f"{path.name}: grid {img.shape} differs from {like.shape} (or its affine does)")
    if allowed is None:
        return
    data = np.asanyarray(img.dataobj)
    if allowed == "probability":
        if not np.isfinite(data).all() or data.min() < 0 or data.max() > 1:
            problems.append(f"{path.name}: values outside [0, 1]")
    elif not set(np.unique(data).tolist()) <= allowed:
        problems.append(f"{path.name}: values {sorted(np.unique(data).tolist())[:6]} not within {sorted(allowed)}")
    if not path.with_name(path.name.replace(".nii.gz", ".json")).is_file():
        problems.append(f"{path.name}: no JSON sidecar")


def check_report(path, output_dir, problems):
    if not path.is_file():
        problems.append(f"missing report: {path}")
        return
    parser = _Resources()
    parser.feed(path.read_text(encoding="utf-8"))
    for url in parser.urls:
        if REMOTE.match(url):
            problems.append(f"{path.name} loads {url} from the network")
        elif not url.startswith("data:") and not (output_dir / url).is_file():
            problems.append(f"{path.name} refers to {url}, which is missing")


def main(bids_dir, output_dir):
    bids_dir, output_dir = Path(bids_dir), Path(output_dir)
    problems = []
    flairs = sorted(bids_dir.glob("sub-*/**/anat/*_FLAIR.nii.gz"))
    if not flairs:
        problems.append(f"no FLAIR in {bids_dir}")
    template_grid = nib.load(brain_mask(1))
    for flair in flairs:
        source = nib.load(flair)
        relative = str(flair.relative_to(bids_dir))
        for entities, allowed in NATIVE_OUTPUTS.values():
            check_image(derivative_path(output_dir, relative, extension=".nii.gz", **entities), source, allowed,
                        problems)
        check_image(derivative_path(output_dir, relative, space="MNI152NLin2009cAsym", resolution="1", label="WMH",
                                    suffix="mask", extension=".nii.gz"), template_grid, {0, 1}, problems)
        for entities in ({"label": "WMH", "suffix": "morph", "extension": ".tsv"},
                         {"suffix": "quality", "extension": ".json"}):
            if not derivative_path(output_dir, relative, **entities).is_file():
                problems.append(f"missing: {derivative_path(output_dir, relative, **entities)}")
    for subject in sorted({f.name.split("_")[0] for f in flairs}):
        check_report(output_dir / f"{subject}.html", output_dir, problems)
    check_report(output_dir / "group_report.html", output_dir, problems)
    for table, rows_per_scan in (("group_wmh.tsv", 1), ("group_agreement.tsv", 2)):  # agreement: anatomical, final
        path = output_dir / table
        rows = read_tsv(path) if path.is_file() else []
        if len(rows) != rows_per_scan * len(flairs):
            problems.append(f"{table}: {len(rows)} rows for {len(flairs)} scans")
    problems += [f"BIDS validator: {error}" for error in validate_dataset(output_dir)]
    for problem in problems:
        print(f"PROBLEM {problem}")
    print(f"checked {len(flairs)} scans in {output_dir}: {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    sys.exit(main(*sys.argv[1:]))
