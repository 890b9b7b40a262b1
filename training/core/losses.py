"""Linear Learner's losses: one registry, from which every per-loss table derives.

Each loss is a class that says which predictor type it serves, the objective name the container
logs (``#quality_metric: … <objective_name> <loss>=…``), the output op its model graph ends in,
the hyperparameter it takes (also its key in the artifact's ``metrics_params``), and computes,
vectorised over a batch and every packed model at once, the per-example loss ``value``, its
gradient ``grad`` with respect to the raw prediction ``z`` = x·W + b ((batch, models) or
(batch, models, classes)), and the ``score`` an endpoint answers. The hyperparameter table,
the artifact's reader and writer, the trainer and the metrics all read :data:`LOSSES`.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

BINARY, MULTICLASS, REGRESSOR = "binary_classifier", "multiclass_classifier", "regressor"
PREDICTOR_TYPES = (BINARY, MULTICLASS, REGRESSOR)
# the graph heads of Linear Learner's model artifacts: what the op does to x.W + b
LOGISTIC_OUTPUT = "LogisticRegressionOutput"  # sigmoid
SOFTMAX_OUTPUT = "SoftmaxOutput"  # softmax over the classes
LINEAR_OUTPUT = "LinearRegressionOutput"  # the score is x.W + b itself


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


def softmax(z, out=None):
    """Softmax over the last axis, into ``out`` if given (which may be ``z`` itself)."""
    top = _class_max(z)
    out = np.subtract(z, top, out=out)
    np.exp(out, out=out)
    return np.divide(out, out.sum(axis=-1, keepdims=True), out=out)


def sigmoid(z):
    """1 / (1 + e^-z) to full relative precision in both tails, for the scores a user sees (the
    training gradient's form, 1 - 1/(1 + e^z) in float32, rounds scores below ~6e-8 to 0, and a
    log loss of such a score to infinity)."""
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e))


class Loss:
    """One of Linear Learner's losses; ``param`` is the value of its hyperparameter, if any."""

    name: ClassVar[str]
    predictor_type: ClassVar[str]
    objective_name: ClassVar[str]
    output_op: ClassVar[str] = LINEAR_OUTPUT
    parameter: ClassVar[str | None] = None  # its hyperparameter (and metrics_params key)
    auto: ClassVar[bool] = False  # loss=auto picks it for its predictor type

    def __init__(self, param: float | None = None):
        self.param = None if param is None else float(param)

    def value(self, z: np.ndarray, y: np.ndarray) -> np.ndarray:
        r = z - y[:, None]
        return self._value(r, np.abs(r))

    def grad(self, z: np.ndarray, y: np.ndarray, overwrite_z: bool = False) -> np.ndarray:
        """d loss / d z; with ``overwrite_z`` the result may be written into ``z`` (the
        training step's scratch buffer: no allocation per mini-batch)."""
        return self._grad(z - y[:, None])

    def score(self, z: np.ndarray) -> np.ndarray:
        """What the endpoint returns as ``score`` for raw predictions ``z``."""
        return z

    def _value(self, r, a):  # residual, its absolute value
        raise NotImplementedError

    def _grad(self, r):
        raise NotImplementedError


class Logistic(Loss):
    name, predictor_type, auto = "logistic", BINARY, True
    objective_name = "binary_classification_cross_entropy_objective"
    output_op = LOGISTIC_OUTPUT

    def value(self, z, y):
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

    def grad(self, z, y, overwrite_z=False):
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

    def score(self, z):
        return sigmoid(z)


class Hinge(Loss):
    name, predictor_type = "hinge_loss", BINARY
    objective_name = "binary_classification_hinge_loss_objective"
    parameter = "margin"

    def value(self, z, y):
        s = (2 * y - 1)[:, None]
        return np.maximum(0.0, self.param - s * z)

    def grad(self, z, y, overwrite_z=False):
        s = (2 * y - 1)[:, None].astype(z.dtype)
        return np.where(s * z < self.param, -s, 0.0).astype(z.dtype)


class Softmax(Loss):
    name, predictor_type, auto = "softmax_loss", MULTICLASS, True
    objective_name = "multiclass_cross_entropy_objective"
    output_op = SOFTMAX_OUTPUT

    def value(self, z, y):
        top = _class_max(z)
        log_norm = np.log(np.exp(z - top).sum(axis=-1)) + top[..., 0]
        return log_norm - z[np.arange(len(y)), :, y.astype(np.int64)]

    def grad(self, z, y, overwrite_z=False):
        # in the step's buffer: a (batch, models, classes) temporary per mini-batch
        # costs page faults on every step with many classes
        g = softmax(z, out=z if overwrite_z and z.dtype.kind == "f" else None)
        idx = y.astype(np.int64)
        g[np.arange(len(idx)), :, idx] -= 1.0
        return g

    def score(self, z):
        return softmax(z)


class Squared(Loss):
    name, predictor_type, auto = "squared_loss", REGRESSOR, True
    objective_name = "square_loss_objective"

    def _value(self, r, a):
        return 0.5 * r * r

    def _grad(self, r):
        return r


class Absolute(Loss):
    name, predictor_type = "absolute_loss", REGRESSOR
    objective_name = "absolute_loss_objective"

    def _value(self, r, a):
        return a

    def _grad(self, r):
        return np.sign(r)


class EpsInsensitiveSquared(Loss):
    name, predictor_type = "eps_insensitive_squared_loss", REGRESSOR
    objective_name = "eps_insensitive_squared_loss_objective"
    parameter = "loss_insensitivity"

    def _value(self, r, a):
        return 0.5 * np.maximum(0.0, a - self.param) ** 2

    def _grad(self, r):
        return np.sign(r) * np.maximum(0.0, np.abs(r) - self.param)


class EpsInsensitiveAbsolute(Loss):
    name, predictor_type = "eps_insensitive_absolute_loss", REGRESSOR
    objective_name = "eps_insensitive_absolute_loss_objective"
    parameter = "loss_insensitivity"

    def _value(self, r, a):
        return np.maximum(0.0, a - self.param)

    def _grad(self, r):
        return np.sign(r) * (np.abs(r) > self.param)


class Quantile(Loss):
    """Pinball loss: the prediction is the q-th quantile, true_label < prediction with
    probability q (the SDK docstring; the hyperparameter page states the reverse)."""

    name, predictor_type = "quantile_loss", REGRESSOR
    objective_name = "quantile_loss_objective"
    parameter = "quantile"

    def _value(self, r, a):
        return np.where(r <= 0, -self.param * r, (1 - self.param) * r)

    def grad(self, z, y, overwrite_z=False):
        r = z - y[:, None]
        return np.where(r <= 0, -self.param, 1 - self.param).astype(z.dtype)


class Huber(Loss):
    name, predictor_type = "huber_loss", REGRESSOR
    objective_name = "huber_loss_objective"
    parameter = "huber_delta"

    def _value(self, r, a):
        d = self.param
        return np.where(a <= d, 0.5 * r * r, d * (a - 0.5 * d))

    def _grad(self, r):
        return np.clip(r, -self.param, self.param)


LOSSES: dict[str, type[Loss]] = {
    cls.name: cls
    for cls in (
        Logistic,
        Hinge,
        Softmax,
        Squared,
        Absolute,
        EpsInsensitiveSquared,
        EpsInsensitiveAbsolute,
        Quantile,
        Huber,
    )
}
AUTO_LOSS = {cls.predictor_type: name for name, cls in LOSSES.items() if cls.auto}


def losses_for(predictor_type: str) -> tuple[str, ...]:
    """The loss names a predictor type accepts, in the registry's order."""
    return tuple(name for name, cls in LOSSES.items() if cls.predictor_type == predictor_type)


def make_loss(name: str, hyperparameters) -> Loss:
    """The loss ``name`` with its parameter read from (resolved) ``hyperparameters``."""
    cls = LOSSES[name]
    return cls(getattr(hyperparameters, cls.parameter) if cls.parameter else None)


def scores(loss_name: str, z: np.ndarray) -> np.ndarray:
    """What the endpoint returns as ``score`` for a model trained with ``loss_name``."""
    return LOSSES[loss_name]().score(z)
