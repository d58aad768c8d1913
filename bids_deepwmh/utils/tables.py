"""Tab-separated tables as BIDS writes them: a header row, ``n/a`` for missing values."""

import csv
import io
import math


def _missing(value):
    return value is None or (isinstance(value, float) and math.isnan(value))


def table_text(columns, rows):
    """The TSV text of ``rows`` (dicts) with ``columns`` in that order."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, delimiter="\t", lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({c: ("n/a" if _missing(row.get(c)) else row.get(c)) for c in columns})
    return out.getvalue()


def write_tsv(path, columns, rows):
    with open(path, "w") as fh:
        fh.write(table_text(columns, rows))


def read_tsv(path):
    """The rows of a TSV file as dicts of strings."""
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))
