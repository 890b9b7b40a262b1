"""Linear Learner's losses, vectorised over a batch and every packed model at once.

Each loss maps raw predictions ``z`` (batch, models) or (batch, models, classes) and labels to
per-example losses and their gradient with respect to ``z``. Gradients are what the optimizer
needs; losses are what validation, early stopping and model selection compare.
"""

from __future__ import annotations

import numpy as np

# The objective names SageMaker prints in "#quality_metric: … <task>_objective <loss>=…".
OBJECTIVE_NAMES = {
    "logistic": "binary_classification_cross_entropy_objective",
    "hinge_loss": "binary_classification_hinge_loss_objective",
    "softmax_loss": "multiclass_cross_entropy_objective",
    "squared_loss": "square_loss_objective",
    "absolute_loss": "absolute_loss_objective",
    "eps_insensitive_squared_loss": "eps_insensitive_squared_loss_objective",
    "eps_insensitive_absolute_loss": "eps_insensitive_absolute_loss_objective",
    "quantile_loss": "quantile_loss_objective",
    "huber_loss": "huber_loss_objective",
}
AUTO_LOSS = {
    "binary_classifier": "logistic",
    "multiclass_classifier": "softmax_loss",
    "regressor": "squared_loss",
}


def _class_max(z):
    """``z.max(axis=-1, keepdims=True)``, the same values (max is exact), faster for few
    classes: numpy reduces a short last axis one row at a time (1.4 ms for 1000 rows x 32
    models x 3 classes; 80 us as np.maximum over the class slices; equal at 32 classes)."""
    if z.ndim < 2 or z.shape[-1] > 16:
        return z.max(axis=-1, keepdims=True)
    top = z[..., 0].copy()
    for k in range(1, z.shape[-1]):
        np.maximum(top, z[..., k], out=top)
    return top[..., None]


def _softmax(z, out=None):
    """Softmax over the last axis, into ``out`` if given (which may be ``z`` itself)."""
    top = _class_max(z)
    out = np.subtract(z, top, out=out)
    np.exp(out, out=out)
    return np.divide(out, out.sum(axis=-1, keepdims=True), out=out)


class Loss:
    """``value(z, y)`` per example and model; ``grad(z, y)`` d loss / d z."""

    def __init__(self, name: str, hp: dict):
        self.name = name
        self.margin = float(hp.get("margin", 1.0))
        self.eps = float(hp.get("loss_insensitivity", 0.01))
        self.q = float(hp.get("quantile", 0.5))
        self.delta = float(hp.get("huber_delta", 1.0))

    @property
    def objective_name(self) -> str:
        return OBJECTIVE_NAMES[self.name]

    def value(self, z: np.ndarray, y: np.ndarray) -> np.ndarray:
        n = self.name
        if n == "logistic":
            # log(1 + e^z) - y z as max(z, 0) + log(1 + e^-|z|) - y z: stable, and ~5x faster
            # than log1p or np.logaddexp on float32 (this scores every model on validation
            # each epoch); the absolute error is float32's rounding of 1 + e^-|z|, <= 6e-8
            out = np.abs(z)
            np.negative(out, out=out)
            np.exp(out, out=out)
            out += 1
            np.log(out, out=out)
            out += np.maximum(z, 0)
            out -= y[:, None] * z
            return out
        if n == "hinge_loss":
            s = (2 * y - 1)[:, None]
            return np.maximum(0.0, self.margin - s * z)
        if n == "softmax_loss":
            top = _class_max(z)
            log_norm = np.log(np.exp(z - top).sum(axis=-1)) + top[..., 0]
            return log_norm - z[np.arange(len(y)), :, y.astype(np.int64)]
        r = z - y[:, None]
        a = np.abs(r)
        if n == "squared_loss":
            return 0.5 * r * r
        if n == "absolute_loss":
            return a
        if n == "eps_insensitive_squared_loss":
            return 0.5 * np.maximum(0.0, a - self.eps) ** 2
        if n == "eps_insensitive_absolute_loss":
            return np.maximum(0.0, a - self.eps)
        if n == "quantile_loss":
            # pinball loss: the prediction is the q-th quantile, true_label < prediction with
            # probability q (the SDK docstring; the hyperparameter page states the reverse)
            return np.where(r <= 0, -self.q * r, (1 - self.q) * r)
        if n == "huber_loss":
            return np.where(a <= self.delta, 0.5 * r * r, self.delta * (a - 0.5 * self.delta))
        raise ValueError(f"unknown loss {n}")

    def grad(self, z: np.ndarray, y: np.ndarray, overwrite_z: bool = False) -> np.ndarray:
        """d loss / d z; with ``overwrite_z`` the result may be written into ``z`` (the
        training step's scratch buffer: no allocation per mini-batch)."""
        n = self.name
        if n == "logistic":
            # sigmoid(z) - y as (1 - y) - 1 / (1 + e^z): four in-place passes over the batch,
            # the one transcendental numpy's exp (on an AVX2-only CPU its float32 tanh is
            # slower, and the tanh form 0.5 + 0.5 tanh(z / 2) takes five). e^z = inf gives
            # exactly 0; the absolute error is float32's, as in the tanh form.
            floating = z.dtype.kind == "f"
            g = z if overwrite_z and floating else z.astype(z.dtype if floating else np.float64)
            with np.errstate(over="ignore"):
                np.exp(g, out=g)
            g += 1
            np.reciprocal(g, out=g)
            np.subtract((1 - y).astype(g.dtype)[:, None], g, out=g)
            return g
        if n == "hinge_loss":
            s = (2 * y - 1)[:, None].astype(z.dtype)
            return np.where(s * z < self.margin, -s, 0.0).astype(z.dtype)
        if n == "softmax_loss":
            # in the step's buffer: a (batch, models, classes) temporary per mini-batch
            # costs page faults on every step with many classes
            g = _softmax(z, out=z if overwrite_z and z.dtype.kind == "f" else None)
            idx = y.astype(np.int64)
            g[np.arange(len(idx)), :, idx] -= 1.0
            return g
        r = z - y[:, None]
        if n == "squared_loss":
            return r
        if n == "absolute_loss":
            return np.sign(r)
        if n == "eps_insensitive_squared_loss":
            return np.sign(r) * np.maximum(0.0, np.abs(r) - self.eps)
        if n == "eps_insensitive_absolute_loss":
            return np.sign(r) * (np.abs(r) > self.eps)
        if n == "quantile_loss":
            return np.where(r <= 0, -self.q, 1 - self.q).astype(z.dtype)
        if n == "huber_loss":
            return np.clip(r, -self.delta, self.delta)
        raise ValueError(f"unknown loss {n}")


def sigmoid(z):
    """1 / (1 + e^-z) to full relative precision in both tails, for the scores a user sees (the
    training gradient's form, 1 - 1/(1 + e^z) in float32, rounds scores below ~6e-8 to 0, and a
    log loss of such a score to infinity)."""
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e))


def scores(loss_name: str, z: np.ndarray) -> np.ndarray:
    """What the endpoint returns as ``score``: probabilities for logistic / softmax."""
    if loss_name == "logistic":
        return sigmoid(z)
    if loss_name == "softmax_loss":
        return _softmax(z)
    return z
