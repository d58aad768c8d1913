"""Put the TemplateFlow files bids-deepwmh requests, and only those, into a TemplateFlow home.

Run at image build time::

    python install_templates.py --source SOURCE_HOME --dest /opt/templateflow

SOURCE_HOME is a TemplateFlow home: an empty or missing folder to download into from TemplateFlow,
or a local home that already has the files (builds without a network).  The destination holds
no TemplateFlow skeleton: its queries see only the files copied, so nothing is fetched at run
time.  The package's own template accessors are then run on the destination as a check.
"""

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

TEMPLATE = "MNI152NLin2009cAsym"
# (resolution, entities) of every file the package asks TemplateFlow for (core/template.py's
# accessors, as called by the workflows, the reports and deepwmh-demo).  atlas/desc set to None
# leave out the atlases that share a suffix with a file needed.
REQUESTED_FILES = [
    *[(resolution, {"desc": "brain", "suffix": "T1w"}) for resolution in (1, 2)],
    *[(resolution, {"desc": "brain", "suffix": "mask"}) for resolution in (1, 2)],
    *[(resolution, {"label": label, "suffix": "probseg", "atlas": None}) for resolution, label in
      ((1, "WM"), (1, "GM"), (1, "CSF"), (2, "WM"), (2, "GM"))],
    (1, {"suffix": "dseg", "atlas": None, "desc": None}),  # the seg-aseg segmentation
]
# The package's accessors, run on the destination home to check that it has all they need.
CHECK_ACCESSORS = """
from bids_deepwmh.core import template as t
paths = [t.registration_target(), t.brain_mask(1), t.brain_mask(2), t.aseg(1), t.template_file(1, desc="brain",
         suffix="T1w")] + [t.tissue_probability(label, resolution) for label, resolution in
         (("WM", 1), ("GM", 1), ("CSF", 1), ("WM", 2), ("GM", 2))]
print("\\n".join(sorted(set(paths))))
"""


def requested_paths():
    """The files of REQUESTED_FILES in the current TEMPLATEFLOW_HOME, downloaded if missing."""
    from templateflow import api

    paths = []
    for resolution, entities in REQUESTED_FILES:
        found = api.get(TEMPLATE, resolution=resolution, extension=".nii.gz", **entities)
        found = found if isinstance(found, list) else [found]
        if len(found) != 1 or not Path(found[0]).is_file() or Path(found[0]).stat().st_size == 0:
            sys.exit(f"install_templates: TemplateFlow gave {found or 'nothing'} for {TEMPLATE} "
                     f"res-{resolution} {entities} (one non-empty file expected)")
        paths.append(Path(found[0]))
    return paths


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, required=True, help="TemplateFlow home to take the files from")
    parser.add_argument("--dest", type=Path, required=True, help="TemplateFlow home to create (must not exist)")
    args = parser.parse_args(argv)
    if args.dest.exists():
        sys.exit(f"install_templates: {args.dest} exists already")
    os.environ["TEMPLATEFLOW_HOME"] = str(args.source.resolve())  # read when templateflow is imported
    source_folder = args.source / f"tpl-{TEMPLATE}"
    target_folder = args.dest / f"tpl-{TEMPLATE}"
    target_folder.mkdir(parents=True)
    for path in requested_paths():
        shutil.copy2(path, target_folder / path.name)
    description = source_folder / "template_description.json"
    if description.is_file():
        shutil.copy2(description, target_folder / description.name)
    check = subprocess.run([sys.executable, "-c", CHECK_ACCESSORS], capture_output=True, text=True,
                           env={**os.environ, "TEMPLATEFLOW_HOME": str(args.dest.resolve())})
    if check.returncode != 0:
        sys.exit(f"install_templates: the package's template accessors fail on {args.dest}:\n{check.stderr}")
    copied = sorted(p.name for p in target_folder.iterdir())
    print(f"install_templates: {len(copied)} files in {target_folder}:\n  " + "\n  ".join(copied))


if __name__ == "__main__":
    main()
