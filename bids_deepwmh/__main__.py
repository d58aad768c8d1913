"""Entry point for ``python -m bids_deepwmh``."""

from bids_deepwmh.cli.run import main

if __name__ == "__main__":
    main()
