"""Train / validation / test assignment of rows: seeded, per class for classifiers, and held to
the requested fractions across the whole file, not chunk by chunk.

Rounding each chunk's share on its own puts a class's lone row in a chunk in train every time
(2M rows with 40 positives spread over chunks: no positive in test). Instead each class keeps
its counts per split across the file, and each chunk's rows of a class are shared out so that
the class's counts come as close as they can to its rows so far times the fractions (largest
remainder, never taking a row back): after any chunk every class's count of each split is
within one row of its share, and 40 positives one a chunk come out 28 / 6 / 6. Which of a
chunk's rows take those places is a seeded permutation; ties between splits are broken by a
seeded order per class.
"""

from __future__ import annotations

import numpy as np

from training.data.raw_csv import Numbers, Text


class Splitter:
    """Splits a file's chunks in order; the same file, fractions and seed give the same split."""

    def __init__(self, fractions, seed: int, stratify: bool):
        self.fractions = np.asarray(fractions, np.float64)
        self.seed, self.stratify = seed, stratify
        self.classes: dict = {}  # class value -> its number, numbered as met
        self._ties: list[np.ndarray] = []  # per class: a seeded order among the splits
        self._counts = np.zeros((0, 3), np.int64)  # per class: rows in train, validation, test

    def split(self, labels: Numbers | Text, chunk_index: int) -> np.ndarray:
        """0/1/2 (train/validation/test) for each row of one chunk's (present) labels."""
        codes = self._codes(labels)
        k = len(self.classes)
        if len(self._counts) < k:
            self._counts = np.vstack([self._counts, np.zeros((k - len(self._counts), 3), np.int64)])
        rows = np.bincount(codes, minlength=k)
        present = np.flatnonzero(rows)
        take = self._shares(present, rows[present])
        # the rows in a seeded random order, grouped by class; each class's first take[0] of
        # them go to train, the next take[1] to validation, the rest to test
        rng = np.random.default_rng([self.seed, chunk_index])
        order = rng.permutation(codes.size)
        order = order[np.argsort(codes[order], kind="stable")]
        grouped = codes[order]
        rank = np.arange(codes.size) - (np.cumsum(rows) - rows)[grouped]
        cuts = np.zeros((k, 2), np.int64)
        cuts[present] = np.cumsum(take, axis=1)[:, :2]
        out = np.empty(codes.size, np.int8)
        out[order] = (rank >= cuts[grouped, 0]).astype(np.int8) + (rank >= cuts[grouped, 1])
        self._counts[present] += take
        return out

    def _shares(self, classes: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Rows of each split for ``rows`` new rows of each of ``classes``: the counts so far
        brought toward (counts so far + rows) x fractions, by largest remainder; a split already
        past its share gets none."""
        held = self._counts[classes]
        need = np.clip((held.sum(axis=1) + rows)[:, None] * self.fractions - held, 0, None)
        share = need * (rows / need.sum(axis=1))[:, None]  # sums to rows
        take = np.floor(share).astype(np.int64)
        left = rows - take.sum(axis=1)
        ties = np.array([self._ties[c] for c in classes]).reshape(-1, 3)
        remainder = np.where(need > 0, np.round(share - take, 9), -1.0)
        order = np.lexsort((-ties, -remainder), axis=-1)  # largest remainder, then the tie order
        for r in range(3):
            more = np.flatnonzero(left > r)
            take[more, order[more, r]] += 1
        return take

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
            self._ties.append(np.random.default_rng([self.seed, 3 << 20, c]).random(3))
        return self.classes[value]
