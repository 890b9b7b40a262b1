"""Train / validation / test assignment of rows: seeded, and per class for classifiers."""

from __future__ import annotations

import numpy as np


def assign_splits(codes: np.ndarray, fractions, rng: np.random.Generator, stratify: bool):
    """0/1/2 (train/validation/test) per row; per class when stratified."""
    out = np.empty(codes.size, np.int8)
    groups = (
        [np.flatnonzero(codes == c) for c in np.unique(codes)]
        if stratify
        else [np.arange(codes.size)]
    )
    bounds = np.cumsum(fractions)[:-1]
    for idx in groups:
        idx = rng.permutation(idx)
        cuts = np.round(bounds * idx.size).astype(int)
        out[idx] = np.searchsorted(cuts, np.arange(idx.size), side="right")
    return out
