"""Linear Learner's CSV cells and rows: one rule for what ``validate``, ``predict`` and the local
endpoint accept as a number, and where a row ends.

AWS documents the ``text/csv`` body only by example ("a string with commas separating the
values for each feature … 1.5,16.0,14,23.0": Common data formats for inference,
https://docs.aws.amazon.com/sagemaker/latest/dg/cdf-inference.html) and the container's own
parser is not public. It is built on MXNet, whose CSV reader (dmlc-core
``src/data/strtonum.h``) reads ASCII only: spaces before, a sign, digits, a ``.``, an
exponent, and no INF or NAN. numpy reads the same grammar from ASCII text. Python's
``float()`` reads more: ``1_0``, Arabic-Indic or full-width digits, any Unicode space around
the number. Those are refused here; a cell that reads differently in the container is a bug
to report, not to guess at. So a number is, with spaces or tabs around it:

    [+-] (digits [. [digits]] | . digits) [(e|E) [+-] digits]     digits: 0-9 only

``nan``, ``inf`` and ``infinity`` (any case, signed) are recognised as what they are, so the
callers can say "not finite: impute it" rather than "not a number"; every caller refuses them.

A row ends at ``\\n`` (a ``\\r`` before it is dropped): Batch Transform's SplitType ``Line``
splits records "on a newline character boundary" (TransformInput, SageMaker API reference,
https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_TransformInput.html), so a lone
``\\r`` or another line break inside a row is refused (:data:`OTHER_BREAKS`), never taken as a
row end.
"""

from __future__ import annotations

import re

import numpy as np

NUMBER = re.compile(
    r"[ \t]*[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|inf|infinity|nan)[ \t]*",
    re.ASCII | re.IGNORECASE,
)
# Line breaks other than "\n" (with an optional "\r" before it): Linear Learner's CSV is one
# row per line, and a row split by a stray CR, form feed or U+2028 is a client bug to report.
OTHER_BREAKS = re.compile("[\r\v\f\x1c\x1d\x1e\x85\u2028\u2029]")
# Text made only of these characters reads the same with numpy (float()) as by NUMBER; any
# other character sends a block through the cell-by-cell check.
_OUTSIDE = re.compile(r"[^0-9eE+\-.,\n \tnaiftyNAIFTY]")


def is_number(cell: str) -> bool:
    """Whether ``cell`` is a number by the rule above (non-finite spellings included)."""
    return NUMBER.fullmatch(cell) is not None


def parse_number(cell: str) -> float:
    """The cell's value; ValueError when it is not a number by the rule above."""
    if NUMBER.fullmatch(cell) is None:
        raise ValueError(f"not a number: {cell[:40]!r}")
    return float(cell)


def parse_rows(rows: list[list[str]]) -> np.ndarray:
    """Rows of cells as a float64 matrix, fast (numpy) where the text allows nothing but the
    rule's characters; ValueError for a cell outside the rule or rows of different lengths."""
    if not any(_OUTSIDE.search(",".join(cells)) for cells in rows):
        return np.array(rows, dtype=np.float64)
    return np.array([[parse_number(c) for c in cells] for cells in rows], dtype=np.float64)
