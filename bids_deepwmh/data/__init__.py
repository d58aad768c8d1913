"""Files shipped with the package: the model bundle and the report specification."""

from importlib import resources
from pathlib import Path


def load(*parts):
    """Path of a packaged data file, e.g. ``load("model")``."""
    return Path(str(resources.files(__name__).joinpath(*parts)))
