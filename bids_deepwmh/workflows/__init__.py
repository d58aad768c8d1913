"""Nipype graphs: wiring only; the work is in :mod:`bids_deepwmh.interfaces`."""
