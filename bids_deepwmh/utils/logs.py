"""Log format, and logging inside Nipype's worker processes (which start without handlers)."""

import logging
import sys
from contextlib import contextmanager

LOG_FORMAT = "%(asctime)s %(name)s %(levelname)s: %(message)s"


@contextmanager
def worker_logging(log_file=None):
    """Send the ``deepwmh`` logger's messages to the terminal and append them to ``log_file``
    while a node runs in a worker process; a no-op where the logger is already set up."""
    logger = logging.getLogger("deepwmh")
    if logger.handlers:
        yield
        return
    handlers = [logging.StreamHandler(sys.stderr)]
    if log_file:
        handlers.append(logging.FileHandler(log_file, mode="a"))
    for handler in handlers:
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        yield
    finally:
        for handler in handlers:
            logger.removeHandler(handler)
            handler.close()
