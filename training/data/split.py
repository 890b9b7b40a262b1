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
        self._offsets: list[float] = []
        self._counts = np.zeros((0, 3), np.int64)  # per class: rows in train, validation, test

    def split(self, labels: Numbers | Text, chunk_index: int) -> np.ndarray:
        """0/1/2 (train/validation/test) for each row of one chunk's (present) labels."""
        codes = self._codes(labels)
        k = len(self.classes)
        if len(self._counts) < k:
            self._counts = np.vstack([self._counts, np.zeros((k - len(self._counts), 3), np.int64)])
        # the rows in a seeded random order, grouped by class: each class's rows take its
        # next places in that order
        rng = np.random.default_rng([self.seed, chunk_index])
        order = rng.permutation(codes.size)
        order = order[np.argsort(codes[order], kind="stable")]
        grouped = codes[order]
        sizes = np.bincount(grouped, minlength=k)
        rank = np.arange(codes.size) - (np.cumsum(sizes) - sizes)[grouped]
        place = self._counts.sum(axis=1)[grouped] + rank
        u = (np.asarray(self._offsets)[grouped] + place * _PHI) % 1.0
        out = np.empty(codes.size, np.int8)
        out[order] = np.searchsorted(self.bounds, u, side="right")
        self._counts += np.bincount(codes * 3 + out, minlength=3 * k).reshape(k, 3)
        return out

    def per_class(self) -> dict:
        """Class value -> rows in (train, validation, test); regressors: one entry, None."""
        return {value: tuple(self._counts[c].tolist()) for value, c in self.classes.items()}

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
            self._offsets.append(float(np.random.default_rng([self.seed, 3 << 20, c]).random()))
        return self.classes[value]
