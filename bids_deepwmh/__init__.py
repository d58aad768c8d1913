"""bids-deepwmh: annotation-free white matter hyperintensity segmentation on FLAIR, as a BIDS App."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("bids-deepwmh")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

__url__ = "https://github.com/bids-deepwmh/bids-deepwmh"
TEMPLATE = "MNI152NLin2009cAsym"
DEFAULT_RANDOM_SEED = 20240101  # of registration and training: the same input gives the same outputs
