"""Writing BIDS-Derivatives: niworkflows' DerivativesDataSink with this App's file patterns."""

from niworkflows.interfaces.bids import DerivativesDataSink as _DerivativesDataSink

from bids_deepwmh.utils.bids import PATH_PATTERNS


class DerivativesDataSink(_DerivativesDataSink):
    """Save a derivative next to the others, named after its source FLAIR."""

    out_path_base = ""
    _file_patterns = PATH_PATTERNS
