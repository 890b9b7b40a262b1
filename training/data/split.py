"""Train / validation / test assignment of rows: seeded, per class for classifiers, and held to
the requested fractions across the whole file, not chunk by chunk.

Rounding each chunk's share on its own puts a class's lone row in a chunk in train every time
(2M rows with 40 positives spread over chunks: no positive in test). Instead each class counts
its rows across the file: its k-th row takes the split that the golden-ratio sequence
``(offset + k·φ) mod 1`` falls in (cut at the cumulative fractions). Every prefix of that
sequence covers each interval in proportion to its length, within a row or two, so a class
of n rows gets about n·fraction rows of each split however the file is chunked; the offset
(seeded per class) decides where a class's first rows go, and a seeded permutation within
each chunk decides which of its rows take those places.
"""

from __future__ import annotations

import numpy as np

from training.data.raw_csv import Numbers, Text

_PHI = (5**0.5 - 1) / 2  # the golden ratio's fraction: the most evenly spread sequence


class Splitter:
    """Splits a file's chunks in order; the same file, fractions and seed give the same split."""

    def __init__(self, fractions, seed: int, stratify: bool):
        self.fractions = tuple(fractions)
        self.bounds = np.cumsum(fractions)[:-1]
        self.seed, self.stratify = seed, stratify
        self.classes: dict = {}  # class value -> its number, numbered as met
        self._seen: list[int] = []  # rows of each class so far
        self._offsets: list[float] = []
        self.counts: list[np.ndarray] = []  # per class: rows in train, validation, test

    def split(self, labels: Numbers | Text, chunk_index: int) -> np.ndarray:
        """0/1/2 (train/validation/test) for each row of one chunk's (present) labels."""
        codes = self._codes(labels)
        out = np.empty(codes.size, np.int8)
        rng = np.random.default_rng([self.seed, chunk_index])
        for c in np.unique(codes):
            rows = rng.permutation(np.flatnonzero(codes == c))
            place = self._seen[c] + np.arange(rows.size)
            u = (self._offsets[c] + place * _PHI) % 1.0
            out[rows] = np.searchsorted(self.bounds, u, side="right")
            self._seen[c] += rows.size
            self.counts[c] += np.bincount(out[rows], minlength=3)
        return out

    def per_class(self) -> dict:
        """Class value -> rows in (train, validation, test); regressors: one entry, None."""
        return {value: tuple(self.counts[c].tolist()) for value, c in self.classes.items()}

    def _codes(self, labels: Numbers | Text) -> np.ndarray:
        """Each row's class number (0 for every row when not stratified)."""
        if not self.stratify:
            self._number(None)
            return np.zeros(len(labels), np.int64)
        if isinstance(labels, Text):
            present = np.unique(labels.codes)
            lookup = np.zeros(len(labels.values), np.int64)
            lookup[present] = [self._number(labels.values[i]) for i in present]
            return lookup[labels.codes]
        values, inverse = np.unique(labels.values, return_inverse=True)
        return np.array([self._number(v.item()) for v in values], np.int64)[inverse]

    def _number(self, value) -> int:
        if value not in self.classes:
            c = len(self.classes)
            self.classes[value] = c
            self._seen.append(0)
            self._offsets.append(float(np.random.default_rng([self.seed, 3 << 20, c]).random()))
            self.counts.append(np.zeros(3, np.int64))
        return self.classes[value]
