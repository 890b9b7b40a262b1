"""Feature columns that are the label under other values: ``is_male`` = 1/0 beside a label
``sex`` = M/F, a class code beside the class name, the label copied. No name check can see
them, and each one leaks: the model reads the answer off the column (test accuracy 1.0) and
learns nothing it could use on rows that lack it.

A column is a copy when its values and the label's map one to one: every row of a label value
holds the same feature value, and no two label values share one (a missing feature cell counts
as a value of its own, so "1 or empty" is a copy too). The first rows name the candidates,
given enough rows beyond one per class that a column independent of the label cannot map one
to one by chance (:data:`training.limits.LABEL_COPY_MIN_REPEATS`); ``prepare`` (and
``raw_checks.validate_raw_csv``, so that both say the same) then checks each candidate on every
row, chunk by chunk (:meth:`LabelCopies.update`), against the mapping the first rows showed, so
a column that departs from it anywhere in the file is not reported; a label value the first rows
never saw joins the mapping with the first feature value it is met with, and is held to it.
Memory: the mappings hold the candidates' distinct values (about the classes').

A regressor's label has about as many values as rows, so no mapping can tell a copy from any
other column: there a numeric column is a copy when it is the label on a straight line
(``price_cents`` = 100 x ``price``, the label itself under another name, or rounded), i.e.
when a line through it leaves at most :data:`~training.limits.LABEL_COPY_MAX_UNEXPLAINED` of
the label's variance unexplained, in the first rows and then over every row (running sums: a
few numbers per candidate).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from training.data.raw_csv import Numbers, RawChunk, Text
from training.errors import Problem
from training.limits import LABEL_COPY_MAX_UNEXPLAINED, LABEL_COPY_MIN_REPEATS


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
class _Line:
    """Running sums of a numeric feature ``x`` and the label ``y`` over the rows holding both,
    shifted by the first rows' means (no cancellation for values far from zero)."""

    shift_x: float
    shift_y: float
    sums: np.ndarray = field(default_factory=lambda: np.zeros(6))  # n, x, y, xx, yy, xy

    def add(self, x: np.ndarray, y: np.ndarray) -> None:
        both = ~(np.isnan(x) | np.isnan(y))
        x, y = x[both] - self.shift_x, y[both] - self.shift_y
        self.sums += (len(x), x.sum(), y.sum(), x @ x, y @ y, x @ y)

    def fit(self) -> tuple[int, float, float, float]:
        """(rows, 1 - r**2, slope, intercept) of the label on ``x``; 1 - r**2 is 1 when
        either is constant."""
        n, sx, sy, sxx, syy, sxy = self.sums
        vx, vy, cov = sxx - sx * sx / n, syy - sy * sy / n, sxy - sx * sy / n
        if n < 2 or vx <= 0 or vy <= 0:
            return int(n), 1.0, 0.0, 0.0
        slope = cov / vx
        intercept = (sy - slope * sx) / n + self.shift_y - slope * self.shift_x
        return int(n), max(0.0, 1.0 - cov * cov / (vx * vy)), slope, intercept

    def is_copy(self) -> bool:
        n, unexplained, _, _ = self.fit()
        return n >= LABEL_COPY_MIN_REPEATS and unexplained <= LABEL_COPY_MAX_UNEXPLAINED


@dataclass
class LabelCopies:
    """The candidate copies of the label, each with its mapping (label value -> feature value,
    and back), checked on every row :meth:`update` is given."""

    label: str
    positions: dict[str, int]  # column -> its 1-based position in the header
    forward: dict[str, dict] = field(default_factory=dict)
    backward: dict[str, dict] = field(default_factory=dict)
    rows: int = 0  # labelled rows checked
    lines: dict[str, _Line] = field(default_factory=dict)  # a numeric label's straight copies

    @property
    def found(self) -> bool:
        """Whether any column is (still) a candidate copy."""
        return bool(self.forward) or any(line.is_copy() for line in self.lines.values())

    @property
    def pending(self) -> bool:
        """Whether any candidate is left to check on later rows (a line is told only after
        the last row; a mapping is dropped at the first row that departs from it)."""
        return bool(self.forward) or bool(self.lines)

    def restarted(self) -> LabelCopies:
        """The same candidates with nothing counted, to check them on every row again (this
        object is left as it is: :meth:`update` drops candidates from the copy only)."""
        lines = {col: _Line(line.shift_x, line.shift_y) for col, line in self.lines.items()}
        forward = {col: dict(pairs) for col, pairs in self.forward.items()}  # update grows them
        backward = {col: dict(pairs) for col, pairs in self.backward.items()}
        return replace(self, rows=0, lines=lines, forward=forward, backward=backward)

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
        if y.dtype.kind in "iuf" and copies.rows - len(y_values) < LABEL_COPY_MIN_REPEATS:
            copies._find_lines(frame, label, drop)  # a regressor's: about a value a row
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
        if y.dtype.kind in "iuf":
            copies._find_lines(frame, label, drop)
        return copies

    def _find_lines(self, frame, label: str, drop) -> None:
        """The numeric columns on which the (numeric) label lies on a straight line."""
        y = frame[label].to_numpy(np.float64)
        for col in frame.columns:
            if col in (label, *drop, *self.forward) or frame[col].dtype.kind not in "iuf":
                continue
            x = frame[col].to_numpy(np.float64)
            with np.errstate(all="ignore"):
                line = _Line(float(np.nanmean(x)), float(np.nanmean(y)))
                line.add(x, y)
            if np.isfinite(line.sums).all() and line.is_copy():
                self.lines[str(col)] = line

    def update(self, chunk: RawChunk) -> None:
        """Check the candidates on ``chunk``'s labelled rows; drop those that depart (a pair
        the mapping lacks joins it, so a later row is held to it)."""
        for col in list(self.lines):
            x, y = chunk.columns[col], chunk.columns[self.label]
            if isinstance(x, Numbers) and isinstance(y, Numbers):
                self.lines[col].add(x.values.astype(np.float64), y.values.astype(np.float64))
            else:  # text in a later row: not a number column after all
                del self.lines[col]
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
                forward[a], backward[b] = b, a  # a value first met here: held to it from now

    def problems(self, source: str) -> list[Problem]:
        found = []
        for col, line in self.lines.items():
            if not line.is_copy():
                continue
            n, unexplained, slope, intercept = line.fit()
            offset = abs(intercept) > 1e-9 * (1 + abs(line.shift_y))
            line_text = f"{slope:.6g} x '{col}'" + (f" {intercept:+.6g}" if offset else "")
            how = (
                "itself"
                if abs(slope - 1) < 1e-9 and not offset
                else f"on a straight line ('{self.label}' = {line_text})"
            )
            rest = f", all but {unexplained:.1g} of its variance" if unexplained else ""
            found.append(
                Problem(
                    source,
                    f"column '{col}' is the label '{self.label}' {how} in all {n} rows holding "
                    f"both{rest}: a copy of the label among the features leaks the answer (a "
                    "perfect fit, a model that learns nothing)",
                    f"remove the column, or pass --drop '{col}'",
                    column=self.positions.get(col),
                )
            )
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
