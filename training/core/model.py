"""The Linear Learner model: weights, bias, decision threshold, and what its metrics use.

A :class:`LinearModel` is what SageMaker's model artifact holds (:mod:`training.core.artifact`
reads and writes it), whoever trained it: the local trainer, or a SageMaker job. It predicts
as Linear Learner's endpoint does (:class:`Predictions`), and carries the ``metrics_params``
it was trained with, so its metrics are computed as the container computes them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np

from training.core.losses import BINARY, MULTICLASS, REGRESSOR, scores
from training.core.metrics import MetricsParams


def is_sparse(X) -> bool:
    """scipy.sparse.issparse without importing scipy (0.3 s) for dense input."""
    return type(X).__module__.startswith("scipy.sparse")


@dataclass(frozen=True)
class Predictions:
    """What the endpoint answers for n rows: ``score`` (n,) or, multiclass, (n, classes),
    ``predicted_label`` (n,) for classifiers (None for regressors), and ``predicted_class``,
    the class as the data spelled it, when the model was served behind its preprocessing."""

    score: np.ndarray
    predicted_label: np.ndarray | None = None
    predicted_class: list | None = None

    def __len__(self) -> int:
        return len(self.score)

    def rows(self) -> list[dict]:
        """Linear Learner's JSON answer, one object per row (and the class names)."""
        if self.predicted_label is None:
            return [{"score": float(s)} for s in self.score]
        if np.ndim(self.score) == 1:
            rows = [
                {"score": float(s), "predicted_label": int(p)}
                for s, p in zip(self.score, self.predicted_label)
            ]
        else:
            rows = [
                {"score": [float(v) for v in s], "predicted_label": int(p)}
                for s, p in zip(self.score, self.predicted_label)
            ]
        if self.predicted_class is not None:
            for row, name in zip(rows, self.predicted_class):
                row["predicted_class"] = name
        return rows

    def rows_json(self, classes=()) -> list[str]:
        """Each row as JSON text, ``predicted_class`` added from ``classes``: the text
        ``json.dumps`` gives the row's object (tests check), formatted here without building
        a dict per row (a batch transform renders millions)."""
        score = np.asarray(self.score, np.float64)
        if not np.isfinite(score).all():  # JSON has no NaN: the general encoder says so
            rows = self.rows()
            for row in rows if classes else ():
                row["predicted_class"] = classes[int(row["predicted_label"])]
            return [json.dumps(row) for row in rows]
        if score.ndim == 2:
            texts = ["[" + ", ".join(map(repr, row)) + "]" for row in score.tolist()]
        else:
            texts = list(map(repr, score.tolist()))
        if self.predicted_label is None:
            return ['{"score": ' + t + "}" for t in texts]
        names = [json.dumps(c) for c in classes]
        out = []
        for t, label in zip(texts, self.predicted_label.tolist()):
            name = f', "predicted_class": {names[label]}' if names else ""
            out.append(f'{{"score": {t}, "predicted_label": {label}{name}}}')
        return out

    @classmethod
    def from_rows(cls, rows: list[dict]) -> Predictions:
        """The inverse of :meth:`rows` (an endpoint's JSON answer)."""
        score = np.asarray([r["score"] for r in rows])
        if rows and "predicted_label" in rows[0]:
            names = [r["predicted_class"] for r in rows] if "predicted_class" in rows[0] else None
            return cls(score, np.asarray([r["predicted_label"] for r in rows]), names)
        return cls(score)

    @property
    def predictor_type(self) -> str:
        """Read off the answer's shape (what a client knows of a model it cannot see)."""
        if self.predicted_label is None:
            return REGRESSOR
        return MULTICLASS if np.ndim(self.score) == 2 else BINARY


@dataclass
class LinearModel:
    """Raw-feature weights (normalisation folded in), bias, the binary decision threshold."""

    predictor_type: str
    loss: str
    weights: np.ndarray  # (d,) or (d, K)
    bias: np.ndarray  # () or (K,)
    threshold: float = 0.5
    metrics_params: MetricsParams = field(default_factory=MetricsParams)

    @property
    def feature_dim(self) -> int:
        return self.weights.shape[0]

    @property
    def num_classes(self) -> int | None:
        return self.weights.shape[1] if self.predictor_type == MULTICLASS else None

    def raw(self, X, rows: int = 1 << 16) -> np.ndarray:
        """x.W + b in float64, as the container computes its metrics (float32 flips borderline
        rows of a real model), ``rows`` at a time so a float64 copy of X never exists whole."""
        W = np.asarray(self.weights, np.float64)
        if is_sparse(X) or X.shape[0] <= rows:
            return np.asarray(X @ W) + self.bias
        z = np.concatenate([np.asarray(X[i : i + rows] @ W) for i in range(0, X.shape[0], rows)])
        return z + self.bias

    def predict(self, X) -> Predictions:
        """As the endpoint answers: a binary label is 1 when the score is above the stored
        threshold, as in the container; multiclass the class of the highest score."""
        z = self.raw(X)
        if self.predictor_type == REGRESSOR:
            return Predictions(z)
        s = scores(self.loss, z)
        if self.predictor_type == BINARY:
            return Predictions(s, (s > self.threshold).astype(np.int64))
        return Predictions(s, s.argmax(axis=1))
