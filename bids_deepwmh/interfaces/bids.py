"""Writing BIDS-Derivatives: niworkflows' DerivativesDataSink with this App's file patterns."""

import os
import shutil
import tempfile
from pathlib import Path

from niworkflows.interfaces.bids import DerivativesDataSink as _DerivativesDataSink

from bids_deepwmh.utils.bids import PATH_PATTERNS, staging_prefix


class DerivativesDataSink(_DerivativesDataSink):
    """Save a derivative next to the others, named after its source FLAIR.

    Files are written in a hidden staging folder of the output folder, then renamed into place,
    so that the output folder never holds a half-written file (a run killed mid-write, two runs
    writing at once).
    """

    out_path_base = ""
    _file_patterns = PATH_PATTERNS

    def _run_interface(self, runtime):
        output_dir = Path(self.inputs.base_directory).absolute()
        output_dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=staging_prefix(), dir=output_dir))
        self.out_path_base = staging.name  # the parent class writes under base_directory/out_path_base
        try:
            runtime = super()._run_interface(runtime)
            for key in ("out_file", "out_meta"):
                if key in self._results:
                    self._results[key] = _move_into_place(self._results[key], staging, output_dir)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return runtime


def _move_into_place(staged, staging, output_dir):
    """Rename staged file(s) to the same relative path under ``output_dir``; return the new path(s)."""
    if isinstance(staged, (list, tuple)):
        return [_move_into_place(path, staging, output_dir) for path in staged]
    final = output_dir / Path(staged).relative_to(staging)
    final.parent.mkdir(parents=True, exist_ok=True)
    os.replace(staged, final)
    return str(final)
