"""Thin Nipype interfaces around :mod:`bids_deepwmh.core`; each is one stage of the graph."""
