"""Command line of the BIDS App."""
