"""Encoding raw columns into Linear Learner's features with the fitted preprocessing.

``prepare`` fits scikit-learn's ``ColumnTransformer`` (impute → scale numerics, impute →
one-hot categoricals, :mod:`training.data.fit`). Applied chunk by chunk to millions of rows,
that object spends most of its time in per-call validation and pipeline plumbing.
:class:`FeatureEncoder` reads the fitted parameters out of it and performs the same float64
operations in the same order, so its float32 output is bit-for-bit what
``transformer.transform(frame).astype(float32)`` gives (tests compare them row for row).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from training.data.raw_csv import Numbers, Text


@dataclass(frozen=True)
class FeatureEncoder:
    """Median-impute + standardise ``numeric``; mode-impute + one-hot ``categorical``."""

    numeric: list[str]
    medians: np.ndarray  # SimpleImputer.statistics_
    means: np.ndarray  # StandardScaler.mean_
    scales: np.ndarray  # StandardScaler.scale_
    categorical: list[str]
    modes: list  # SimpleImputer.statistics_ (most frequent)
    categories: list[np.ndarray]  # OneHotEncoder.categories_

    @classmethod
    def from_fitted(cls, transformer) -> FeatureEncoder:
        """Read the parameters of a fitted :func:`training.data.fit.build_transformer`."""
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
        encoder = cls(numeric, medians, means, scales, categorical, modes, categories)
        if encoder.width != len(transformer.get_feature_names_out()):
            raise ValueError("the fitted transformer has a layout FeatureEncoder does not know")
        return encoder

    @property
    def width(self) -> int:
        return len(self.numeric) + sum(len(c) for c in self.categories)

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        """Features as float32, columns in the transformer's output order."""
        X = frame[self.numeric].to_numpy(dtype=np.float64, na_value=np.nan, copy=True)
        return self.transform_arrays(X, [frame[col] for col in self.categorical])

    def transform_arrays(self, X: np.ndarray, categorical: list) -> np.ndarray:
        """The same, from a float64 matrix of the numeric columns (imputed in place) and, per
        categorical column, a pandas Series or a :class:`training.data.raw_csv.Text` /
        ``Numbers`` chunk column."""
        out = np.zeros((len(X), self.width), np.float32)
        k = len(self.numeric)
        if k:
            missing = np.isnan(X)
            if missing.any():
                X[missing] = np.broadcast_to(self.medians, X.shape)[missing]
            X -= self.means
            X /= self.scales
            out[:, :k] = X
        at = k
        for column, mode, cats in zip(categorical, self.modes, self.categories):
            codes = _category_codes(column, mode, pd.Index(cats))
            known = np.flatnonzero(codes >= 0)  # unknown values (handle_unknown="ignore"): none
            out[known, at + codes[known]] = 1.0
            at += len(cats)
        return out


def _category_codes(column, mode, index: pd.Index) -> np.ndarray:
    """Position of each value among the categories, missing values taken as ``mode``; a hash
    lookup like scikit-learn's dict lookup (so 1, 1.0 and True are one value, as there)."""
    mode_code = index.get_indexer([mode])[0]
    if isinstance(column, Text):
        found = np.append(index.get_indexer(column.values), mode_code)
        return found[column.codes]  # code -1 (missing) picks the appended mode
    if isinstance(column, Numbers):
        column = pd.Series(column.values)
    return index.get_indexer(column.where(column.notna(), mode))
