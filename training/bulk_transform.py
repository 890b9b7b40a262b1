"""The fitted preprocessor as vectorised numpy kernels, for transforming whole channels.

``prepare`` fits scikit-learn's ``ColumnTransformer`` (impute → scale numerics, impute →
one-hot categoricals) and persists it: the endpoint side applies that object to raw rows.
Applied chunk by chunk to millions of rows, the same object spends most of its time in
per-call validation and pipeline plumbing. :class:`BulkTransform` reads the fitted
parameters out of it and performs the same float64 operations in the same order, so its
float32 output is bit-for-bit what ``transformer.transform(frame).astype(float32)`` gives
(tests compare them row for row).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class BulkTransform:
    """Median-impute + standardise ``numeric``; mode-impute + one-hot ``categorical``."""

    numeric: list[str]
    medians: np.ndarray  # SimpleImputer.statistics_
    means: np.ndarray  # StandardScaler.mean_
    scales: np.ndarray  # StandardScaler.scale_
    categorical: list[str]
    modes: list  # SimpleImputer.statistics_ (most frequent)
    categories: list[np.ndarray]  # OneHotEncoder.categories_

    @classmethod
    def from_fitted(cls, transformer) -> BulkTransform:
        """Read the parameters of a fitted :func:`training.preprocessing.build_transformer`."""
        parts = {name: (pipe, list(cols)) for name, pipe, cols in transformer.transformers_}
        numeric, medians, means, scales = [], np.zeros(0), np.zeros(0), np.ones(0)
        if "num" in parts:
            pipe, numeric = parts["num"]
            imputer, scaler = pipe.steps[0][1], pipe.steps[1][1]
            medians, means, scales = imputer.statistics_, scaler.mean_, scaler.scale_
        categorical, modes, categories = [], [], []
        if "cat" in parts:
            pipe, categorical = parts["cat"]
            modes = list(pipe.steps[0][1].statistics_)
            categories = list(pipe.steps[1][1].categories_)
        bulk = cls(numeric, medians, means, scales, categorical, modes, categories)
        if bulk.width != len(transformer.get_feature_names_out()):
            raise ValueError("the fitted transformer has a layout BulkTransform does not know")
        return bulk

    @property
    def width(self) -> int:
        return len(self.numeric) + sum(len(c) for c in self.categories)

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        """Features as float32, columns in the transformer's output order."""
        out = np.zeros((len(frame), self.width), np.float32)
        k = len(self.numeric)
        if k:
            X = frame[self.numeric].to_numpy(dtype=np.float64, na_value=np.nan, copy=True)
            missing = np.isnan(X)
            if missing.any():
                X[missing] = np.broadcast_to(self.medians, X.shape)[missing]
            X -= self.means
            X /= self.scales
            out[:, :k] = X
        at = k
        for col, mode, cats in zip(self.categorical, self.modes, self.categories):
            values = frame[col]
            values = values.where(values.notna(), mode)
            # a hash lookup of each value among the categories, as sklearn's dict lookup;
            # unknown values (handle_unknown="ignore") get -1 and no 1 at all
            codes = pd.Index(cats).get_indexer(values)
            known = np.flatnonzero(codes >= 0)
            out[known, at + codes[known]] = 1.0
            at += len(cats)
        return out
