"""BIDS input and output helpers."""
