"""Feature columns that are the label under other values: ``is_male`` = 1/0 beside a label
``sex`` = M/F, a class code beside the class name, the label copied. No name check can see
them, and each one leaks: the model reads the answer off the column (test accuracy 1.0) and
learns nothing it could use on rows that lack it.

A column is a copy when its values and the label's map one to one: every row of a label value
holds the same feature value, and no two label values share one (a missing feature cell counts
as a value of its own, so "1 or empty" is a copy too). The first rows name the candidates,
given enough rows beyond one per class that a column independent of the label cannot map one
to one by chance (:data:`training.limits.LABEL_COPY_MIN_REPEATS`); ``prepare`` then checks each
candidate on every later row against the mapping the first rows showed, so a column that
departs from it anywhere in the file is not reported. Memory: the mappings hold the first rows'
distinct values of the candidates only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from training.data.raw_csv import Numbers, RawChunk, Text
from training.errors import Problem
from training.limits import LABEL_COPY_MIN_REPEATS


def _key(value):
    """One spelling per value, whichever reader gave it: numbers as float, missing as None."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    if isinstance(value, (bool, np.bool_)):
        return ("bool", bool(value))
    if isinstance(value, (int, float, np.integer, np.floating)):
        return float(value)
    if type(value).__name__ in ("NAType", "NaTType"):
        return None
    return str(value)


@dataclass
class LabelCopies:
    """The candidate copies of the label, each with its mapping (label value -> feature value,
    and back), checked on every row :meth:`update` is given."""

    label: str
    positions: dict[str, int]  # column -> its 1-based position in the header
    forward: dict[str, dict] = field(default_factory=dict)
    backward: dict[str, dict] = field(default_factory=dict)
    rows: int = 0  # labelled rows checked

    @classmethod
    def among(cls, frame, label: str, drop=()) -> LabelCopies:
        """The columns of ``frame`` (the first rows, as pandas reads them) that map one to one
        onto the label, with rows enough to tell."""
        import pandas as pd

        positions = {str(col): i for i, col in enumerate(frame.columns, start=1)}
        copies = cls(label, positions)
        y = frame[label]
        present = y.notna().to_numpy()
        y_codes, y_values = pd.factorize(y[present])
        copies.rows = int(present.sum())
        if len(y_values) < 2 or copies.rows - len(y_values) < LABEL_COPY_MIN_REPEATS:
            return copies
        for col in frame.columns:
            if col == label or col in drop:
                continue
            x_codes, x_values = pd.factorize(frame[col][present], use_na_sentinel=False)
            if len(x_values) != len(y_values):
                continue
            pairs = np.unique(y_codes.astype(np.int64) * len(x_values) + x_codes)
            if len(pairs) != len(y_values):
                continue
            ys, xs = pairs // len(x_values), pairs % len(x_values)
            forward = {_key(y_values[a]): _key(x_values[b]) for a, b in zip(ys, xs)}
            copies.forward[str(col)] = forward
            copies.backward[str(col)] = {b: a for a, b in forward.items()}
        return copies

    def update(self, chunk: RawChunk) -> None:
        """Check the candidates on ``chunk``'s labelled rows; drop those that depart."""
        if not self.forward:
            return
        y = chunk.columns[self.label]
        labelled = np.flatnonzero(~y.missing)
        self.rows += len(labelled)
        y_codes, y_values = _codes(y.take(labelled))
        for col in list(self.forward):
            x_codes, x_values = _codes(chunk.columns[col].take(labelled))
            pairs = np.unique(y_codes * (len(x_values) + 1) + x_codes + 1)
            forward, backward = self.forward[col], self.backward[col]
            for pair in pairs:
                a, b = _key(y_values[pair // (len(x_values) + 1)]), pair % (len(x_values) + 1)
                b = None if b == 0 else _key(x_values[b - 1])
                if forward.get(a, b) != b or backward.get(b, a) != a:
                    del self.forward[col], self.backward[col]
                    break

    def problems(self, source: str) -> list[Problem]:
        found = []
        for col, forward in self.forward.items():
            pairs = [f"{_show(a)} -> {_show(b)}" for a, b in list(forward.items())[:4]]
            shown = ", ".join(pairs) + (", …" if len(forward) > 4 else "")
            same = all(a == b for a, b in forward.items())
            values = "with the same values" if same else f"under other values ({shown})"
            found.append(
                Problem(
                    source,
                    f"column '{col}' is the label '{self.label}' {values} in all {self.rows} "
                    "labelled rows: a copy of the label among the features "
                    "leaks the answer (test accuracy 1.0, a model that learns nothing)",
                    f"remove the column, or pass --drop '{col}'",
                    column=self.positions.get(col),
                )
            )
        return found


def _codes(column: Numbers | Text):
    """Per-row codes (-1: missing) and the distinct values they index."""
    if isinstance(column, Text):
        return column.codes.astype(np.int64), column.values
    missing = column.missing
    values, inverse = np.unique(column.values[~missing], return_inverse=True)
    codes = np.full(len(column), -1, np.int64)
    codes[~missing] = inverse
    return codes, values


def _show(key) -> str:
    if key is None:
        return "(empty)"
    if isinstance(key, tuple):
        return str(key[1])
    if isinstance(key, float) and key.is_integer():
        return str(int(key))
    return f"'{key}'"
