"""The label's values <-> the numbers Linear Learner trains on (0/1, 0..k-1, or the value), and
which numbers are valid labels for each predictor type.

Classes are sorted (numbers before text); ``--positive-class`` makes one binary value the 1.
The mapping is what the manifest lists as the label's classes and what answers are decoded by.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from training.core.losses import BINARY, MULTICLASS, REGRESSOR
from training.data.raw_csv import Numbers, Text
from training.errors import Problem, ValidationError


@dataclass
class LabelEncoding:
    """Original label values <-> the numbers Linear Learner trains on."""

    predictor_type: str
    classes: list = field(default_factory=list)  # index = encoded value (classifiers)

    @classmethod
    def fit(cls, predictor_type: str, values: set, positive_class: str | None) -> LabelEncoding:
        if predictor_type == REGRESSOR:
            return cls(predictor_type)
        classes = sorted(values, key=_sort_key)
        if predictor_type == BINARY and positive_class is not None:
            match = [c for c in classes if str(c) == str(positive_class)]
            if not match:
                raise ValidationError(
                    [
                        Problem(
                            "--positive-class",
                            f"'{positive_class}' is not one of the label values "
                            f"({', '.join(map(str, classes))})",
                            "pass one of those values",
                        )
                    ]
                )
            classes = [c for c in classes if c is not match[0]] + match
        return cls(predictor_type, [plain(c) for c in classes])

    def encode(self, labels: pd.Series) -> np.ndarray:
        if self.predictor_type == REGRESSOR:
            return pd.to_numeric(labels).to_numpy(np.float32)
        codes = pd.Categorical(labels, categories=self.classes).codes
        if (codes < 0).any():
            unknown = labels[codes < 0].iloc[0]
            raise ValueError(f"label value {unknown!r} is not one of {self.classes}")
        return codes.astype(np.float32)

    def encode_column(self, column: Numbers | Text) -> np.ndarray:
        """:meth:`encode` for a chunk's label column (no missing values), once per value."""
        if isinstance(column, Text):
            return self.encode(pd.Series(column.values, dtype=object))[column.codes]
        return self.encode(pd.Series(column.values))


def plain(value):
    """numpy scalars -> Python values, so the mapping is JSON."""
    return value.item() if hasattr(value, "item") else value


def _sort_key(value):
    value = plain(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return (isinstance(value, str), value if not isinstance(value, str) else value)


def label_problems(
    file: str,
    labels: np.ndarray,
    predictor_type: str,
    num_classes: int | None,
    row_of=lambda i: i + 1,
    unit: str = "row",
) -> list[Problem]:
    """Labels valid for the predictor type; ``row_of`` maps an index to a row number."""
    y = np.asarray(labels, dtype=np.float64)
    problems: list[Problem] = []

    def report(mask: np.ndarray, message, fix):
        idx = np.flatnonzero(mask)
        for i in idx[:3]:
            problems.append(Problem(file, message(y[i]), fix, row=row_of(i), unit=unit))
        if idx.size > 3:
            problems.append(Problem(file, f"... and {idx.size - 3} more {unit}s like that", fix))

    bad = ~np.isfinite(y)
    if bad.any():
        report(bad, lambda v: f"label is {v}", "drop or fix rows without a valid label")
        return problems
    if predictor_type == BINARY:
        report(
            (y != 0) & (y != 1),
            lambda v: f"label {v:g} is not 0 or 1 (binary_classifier)",
            "map the classes to 0/1 (python -m training prepare does), or use "
            "predictor_type=multiclass_classifier / regressor",
        )
    elif predictor_type == MULTICLASS:
        report(
            (y != np.round(y)) | (y < 0),
            lambda v: f"label {v:g} is not a class index 0..num_classes-1",
            "map the classes to 0..num_classes-1 (python -m training prepare does)",
        )
        if num_classes is not None:
            report(
                (y >= num_classes) & (y == np.round(y)),
                lambda v: f"label {v:g} >= num_classes={num_classes}",
                f"set num_classes to {int(y.max()) + 1} or fix the labels",
            )
    return problems
