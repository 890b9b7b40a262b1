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
callers can say "not finite: impute it" rather than "not a number"; every caller refuses them,
and a number beyond float32 (``1e39``) too: dmlc's reader parses into ``real_t``, float32, in
which it is infinity (:func:`nonfinite`).

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
# In ASCII text, what float() reads and NUMBER does not: underscores, and the ASCII spaces float()
# strips other than space and tab; text with them, or not ASCII, is parsed cell by cell.
_FLOAT_ONLY = "_\r\v\f\x1c\x1d\x1e\x1f"
_ASCII_BREAKS = "\r\v\f\x1c\x1d\x1e"  # OTHER_BREAKS within ASCII


def has_other_break(text: str) -> bool:
    """Whether ``text`` holds a line break other than ``\\n`` (:data:`OTHER_BREAKS`); fast for
    ASCII text, which is most of it."""
    if text.isascii():
        return any(char in text for char in _ASCII_BREAKS)
    return OTHER_BREAKS.search(text) is not None


def nonfinite(values: np.ndarray) -> np.ndarray:
    """Where ``values`` are not finite as Linear Learner reads them, in float32: NaN,
    infinities, and finite float64 numbers beyond float32's range (+-3.4e38)."""
    with np.errstate(over="ignore"):
        return ~np.isfinite(np.asarray(values).astype(np.float32))


def is_number(cell: str) -> bool:
    """Whether ``cell`` is a number by the rule above (non-finite spellings included)."""
    return NUMBER.fullmatch(cell) is not None


def parse_number(cell: str) -> float:
    """The cell's value; ValueError when it is not a number by the rule above."""
    if NUMBER.fullmatch(cell) is None:
        raise ValueError(f"not a number: {cell[:40]!r}")
    return float(cell)


# rows from which polars parses faster than the rule cell by cell (measured, 3 numbers a
# row: 1 row 78 us vs 3 us; 64 rows 90 us vs 153 us; 512 rows 160 us vs 1.3 ms)
POLARS_ROWS = 32


def parse_rows(lines: list[str]) -> np.ndarray:
    """Comma-separated lines (no line ends) as a float64 matrix: :func:`parse_text`."""
    return parse_text("\n".join(lines))


def parse_text(text: str) -> np.ndarray:
    """Lines of comma-separated numbers, joined by ``\\n``, as a float64 matrix; ValueError
    for a cell outside the rule, an empty cell or line, or rows of different lengths. ASCII
    text without what only float() reads (most files) of POLARS_ROWS rows or more is parsed
    by polars at once, whose float grammar is the rule's once spaces are left out (a test
    compares them); anything else cell by cell."""
    rows = text.count("\n") + 1
    if rows >= POLARS_ROWS and text.isascii() and not any(c in text for c in _FLOAT_ONLY):
        values = _polars_rows(text, rows)
        if values is not None:
            return values
    cells = [line.split(",") for line in text.split("\n")]
    return np.array([[parse_number(c) for c in row] for row in cells], dtype=np.float64)


def _polars_rows(text: str, rows: int) -> np.ndarray | None:
    """The rows parsed by polars; None when it refuses them or reads them differently (a space
    around a number, an empty cell, a quote, a ragged or blank line): the caller's
    cell-by-cell parse then says exactly what is wrong, if anything."""
    import polars as pl

    if not text or '"' in text:
        return None
    width = text.split("\n", 1)[0].count(",") + 1
    schema = {f"c{i}": pl.Float64 for i in range(width)}
    try:
        frame = pl.read_csv(text.encode(), has_header=False, schema=schema)
    except pl.exceptions.PolarsError:
        return None
    if frame.height != rows or any(frame.null_count().row(0)):
        return None
    return frame.to_numpy()
