"""Encoding raw columns into Linear Learner's features with the fitted preprocessing.

The fitted preprocessing is :class:`training.core.featurizer.Featurizer` (``preprocessing.json``);
its kernel imputes, scales and one-hot encodes with the same float64 operations in the same
order as scikit-learn's fitted ``ColumnTransformer``, so the float32 output is bit for bit
what ``transformer.transform(frame).astype(float32)`` gives (tests compare them row for row).
:class:`FeatureEncoder` feeds that kernel whole chunks of millions of rows: a pandas hash
lookup per distinct category instead of a Python one per cell, and the numeric columns as
one float64 matrix. The endpoints feed the same kernel from raw request rows, so the features
a model is served are the features it was trained on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from training.core.featurizer import Featurizer
from training.data.raw_csv import Numbers, Text


@dataclass(frozen=True)
class FeatureEncoder:
    """Median-impute + standardise the numeric columns; mode-impute + one-hot the
    categorical ones, as ``featurizer`` describes them."""

    featurizer: Featurizer

    @property
    def numeric(self) -> list[str]:
        return [c.name for c in self.featurizer.numeric]

    @property
    def categorical(self) -> list[str]:
        return [c.name for c in self.featurizer.categorical]

    @property
    def width(self) -> int:
        return self.featurizer.width

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        """Features as float32, columns in the transformer's output order."""
        X = frame[self.numeric].to_numpy(dtype=np.float64, na_value=np.nan, copy=True)
        return self.transform_arrays(X, [frame[col] for col in self.categorical])

    def transform_arrays(self, X: np.ndarray, categorical: list) -> np.ndarray:
        """The same, from a float64 matrix of the numeric columns (imputed in place) and, per
        categorical column, a pandas Series or a :class:`training.data.raw_csv.Text` /
        ``Numbers`` chunk column."""
        codes = [
            _category_codes(column, c.fill, pd.Index(c.categories))
            for column, c in zip(categorical, self.featurizer.categorical)
        ]
        return self.featurizer.encode(X, codes)


def _category_codes(column, mode, index: pd.Index) -> np.ndarray:
    """Position of each value among the categories, missing values taken as ``mode``; a hash
    lookup like scikit-learn's dict lookup (so 1, 1.0 and True are one value, as there);
    -1 for a value not among them (all zeros, as ``handle_unknown="ignore"``)."""
    mode_code = index.get_indexer([mode])[0]
    if isinstance(column, Text):
        found = np.append(index.get_indexer(column.values), mode_code)
        return found[column.codes]  # code -1 (missing) picks the appended mode
    if isinstance(column, Numbers):
        column = pd.Series(column.values)
    return index.get_indexer(column.where(column.notna(), mode))
