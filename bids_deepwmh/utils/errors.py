"""The problems with a scan that the App foresees: each one's message is the sentence the user reads.

A message names what is wrong and what to do, in the user's terms; the run prints it as the scan's
summary line (:mod:`bids_deepwmh.utils.status`) and the crash file keeps the exception that caused it.
"""


class ScanError(ValueError):
    """A foreseen problem with one scan; its message is the plain sentence the user reads."""


class InvalidImageError(ScanError):
    """The input cannot be a 3D brain image."""


class NoBrainError(ScanError):
    """Neither HD-BET nor the registered template finds a brain in the image."""


# By name, as crash files give them: the workers that raised them are other processes.
FORESEEN = frozenset(cls.__name__ for cls in (ScanError, InvalidImageError, NoBrainError))
