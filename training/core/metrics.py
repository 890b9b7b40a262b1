"""Evaluation metrics with SageMaker's names, threshold calibration, and Linear Learner's log lines.

One home for the metrics' names and layout: a metric of one channel is ``<channel>:<name>``
(``validation:objective_loss``, ``test:binary_classification_accuracy``), as SageMaker's metric
definitions and tuning objectives spell them; :class:`Metrics` holds a run's metrics by
channel. :class:`MetricsParams` is the artifact's ``metrics_params`` (F-beta's beta, top-k's k,
the loss's parameter, the threshold): the model carries it, so a model is evaluated as it was
trained. The log lines match the regexes SageMaker's built-in metric definitions use, e.g.
``#quality_metric: host=algo-1, epoch=3, validation binary_classification_cross_entropy_objective
<loss>=0.2517``, so tools that parse real training logs parse ours.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields

import numpy as np

from training.core.losses import BINARY, LOSSES, REGRESSOR

HOST = "algo-1"
OBJECTIVE_LOSS = "objective_loss"  # the loss the model was trained on, per channel
CHANNELS = ("train", "validation", "test")  # what a training job reports metrics on


def metric_key(channel: str, name: str) -> str:
    """``validation:objective_loss``: how SageMaker names a metric of one channel."""
    return f"{channel}:{name}"


@dataclass(frozen=True)
class Metrics(Mapping):
    """A run's metrics by channel, each under SageMaker's name (no channel prefix); read as a
    mapping, its keys are SageMaker's ``<channel>:<name>``."""

    by_channel: dict[str, dict[str, float]]

    def __getitem__(self, key: str) -> float:
        channel, _, name = key.partition(":")
        try:
            return self.by_channel[channel][name]
        except KeyError:
            raise KeyError(key) from None

    def __iter__(self):
        return iter(self.flat())

    def __len__(self) -> int:
        return sum(len(values) for values in self.by_channel.values())

    @classmethod
    def of(cls, channels: Iterable[tuple[str, Mapping[str, float]]]) -> Metrics:
        return cls({channel: dict(values) for channel, values in channels})

    def flat(self) -> dict[str, float]:
        """``{"<channel>:<name>": value}``, SageMaker's spelling, as metrics.json holds it."""
        return {
            metric_key(channel, name): value
            for channel, values in self.by_channel.items()
            for name, value in values.items()
        }

    @classmethod
    def from_flat(cls, flat: Mapping[str, float]) -> Metrics:
        out: dict[str, dict[str, float]] = {}
        for key, value in flat.items():
            channel, _, name = key.partition(":")
            out.setdefault(channel, {})[name] = value
        return cls(out)

    def __or__(self, other: Metrics) -> Metrics:
        return Metrics({**self.by_channel, **other.by_channel})


@dataclass(frozen=True)
class MetricsParams:
    """``metrics_params`` of Linear Learner's ``additional-params.json``, in the container's
    key order: what the model's metrics are computed with. Each loss fills the parameter it
    uses; ``f_beta`` is null for regressors. Its last key, ``threshold``, is the model's
    decision threshold, kept on the model alone (:class:`training.core.model.LinearModel`)."""

    quantile: float | None = None
    huber_delta: float | None = None
    margin: float | None = None
    loss_insensitivity: float | None = None
    eps_insensitive_loss_type: str | None = None
    accuracy_top_k: int | None = 3
    f_beta: float | None = 1.0
    positive_example_weight_mult: float | None = 1.0
    class_weights: list | None = None

    @property
    def beta(self) -> float:
        return 1.0 if self.f_beta is None else float(self.f_beta)

    @property
    def top_k(self) -> int:
        return 3 if self.accuracy_top_k is None else int(self.accuracy_top_k)

    def to_json(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def of(cls, hyperparameters) -> MetricsParams:
        """What a model trained with these resolved hyperparameters carries: its loss's own
        parameter, top-k's k, F-beta's beta (classifiers), the positive weight."""
        parameter = LOSSES[hyperparameters.loss].parameter
        own = {parameter: float(getattr(hyperparameters, parameter))} if parameter else {}
        regressor = hyperparameters.predictor_type == REGRESSOR
        return cls(
            **own,
            accuracy_top_k=int(hyperparameters.accuracy_top_k),
            f_beta=None if regressor else float(hyperparameters.f_beta),
            positive_example_weight_mult=float(hyperparameters.positive_example_weight_mult),
        )


DEFAULT_PARAMS = MetricsParams()


@dataclass(frozen=True)
class SelectionCriterion:
    """How binary models are compared and their threshold calibrated
    (``binary_classifier_model_selection_criteria`` and the values it reads)."""

    name: str = "accuracy"
    f_beta: float = 1.0
    target_recall: float = 0.8
    target_precision: float = 0.8


# --------------------------------------------------------------------------- binary


def threshold_curve(score: np.ndarray, y: np.ndarray):
    """Every distinct threshold (predict 1 when score >= t) with TP, FP counts, vectorised.
    Only the ends of runs of equal scores are kept, whose counts do not depend on the order
    within a run: no stable sort needed (numpy's default is ~3x faster)."""
    order = np.argsort(-score)
    s, labels = score[order], y[order]
    tp = np.cumsum(labels)
    fp = np.cumsum(1 - labels)
    last = np.r_[np.flatnonzero(np.diff(s)), s.size - 1]  # end of each run of equal scores
    return s[last], tp[last], fp[last]


def calibrate_threshold(score, y, criterion: SelectionCriterion, default: float) -> float:
    """The threshold that optimises the selection criterion on (score, label) pairs."""
    y = np.asarray(y, dtype=np.float64)
    name = criterion.name
    if name == "loss_function" or y.size == 0 or y.min() == y.max():
        return default
    thresholds, tp, fp = threshold_curve(np.asarray(score, np.float64), y)
    pos, neg = y.sum(), y.size - y.sum()
    _fn, tn = pos - tp, neg - fp
    precision = tp / np.maximum(tp + fp, 1)
    recall = tp / max(pos, 1)
    if name == "accuracy":
        value = (tp + tn) / y.size
    elif name == "f_beta":
        b2 = float(criterion.f_beta) ** 2
        value = (1 + b2) * precision * recall / np.maximum(b2 * precision + recall, 1e-12)
    elif name == "precision_at_target_recall":
        value = np.where(recall >= float(criterion.target_recall), precision, -1.0)
    elif name == "recall_at_target_precision":
        value = np.where(precision >= float(criterion.target_precision), recall, -1.0)
    else:
        raise ValueError(f"unknown criterion {name}")
    if value.max() < 0:
        return default
    # midway to the next lower score, so the threshold does not sit on a training point
    lower = np.r_[thresholds[1:], thresholds[-1] - 1e-6]
    mids = (thresholds + lower) / 2
    # a small calibration set ties many thresholds: of the tied best, take the one nearest
    # the loss's natural threshold (0.5 for logistic), which generalises best
    tied = np.flatnonzero(value >= value.max() - 1e-12)
    return float(mids[tied[np.argmin(np.abs(mids[tied] - default))]])


def criterion_value(score, y, threshold, criterion: SelectionCriterion) -> float:
    """The selection criterion of one model at its threshold (higher is better)."""
    pred = (score > threshold).astype(np.float64)  # the container's rule
    b = binary_metrics(score, pred, y, float(criterion.f_beta), with_auc=False)
    name = criterion.name
    if name == "accuracy":
        return b["binary_classification_accuracy"]
    if name == "f_beta":
        return b["binary_f_beta"]
    if name == "precision_at_target_recall":
        return b["precision"] if b["recall"] >= float(criterion.target_recall) else -1.0
    if name == "recall_at_target_precision":
        return b["recall"] if b["precision"] >= float(criterion.target_precision) else -1.0
    raise ValueError(name)


def roc_auc(score, y) -> float:
    y = np.asarray(y, np.float64)
    pos, neg = y.sum(), y.size - y.sum()
    if pos == 0 or neg == 0:
        return float("nan")
    _, tp, fp = threshold_curve(np.asarray(score, np.float64), y)
    tpr = np.r_[0.0, tp / pos]
    fpr = np.r_[0.0, fp / neg]
    return float(np.trapezoid(tpr, fpr))


def binary_metrics(score, pred, y, beta: float = 1.0, with_auc: bool = True) -> dict:
    y = np.asarray(y, np.float64)
    pred = np.asarray(pred, np.float64)
    tp = float((pred * y).sum())
    fp = float((pred * (1 - y)).sum())
    fn = float(((1 - pred) * y).sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    b2 = beta * beta
    f = (1 + b2) * precision * recall / (b2 * precision + recall) if precision + recall else 0.0
    return {
        "binary_classification_accuracy": float((pred == y).mean()) if y.size else float("nan"),
        "binary_f_beta": f,
        "precision": precision,
        "recall": recall,
        **({"roc_auc_score": roc_auc(score, y)} if with_auc else {}),
    }


# --------------------------------------------------------------------------- multiclass


def multiclass_metrics(prob: np.ndarray, y: np.ndarray, k: int, beta: float = 1.0) -> dict:
    y = np.asarray(y, np.int64)
    n_classes = prob.shape[1]
    pred = prob.argmax(axis=1)
    ranks = np.argsort(-prob, axis=1)
    top_k = (ranks[:, :k] == y[:, None]).any(axis=1)
    position = np.argmax(ranks == y[:, None], axis=1)  # 0-based rank of the true class
    precisions, recalls = [], []
    for c in range(n_classes):
        tp = np.sum((pred == c) & (y == c))
        predicted, actual = np.sum(pred == c), np.sum(y == c)
        precisions.append(tp / predicted if predicted else 0.0)
        recalls.append(tp / actual if actual else 0.0)
    p, r = float(np.mean(precisions)), float(np.mean(recalls))
    b2 = beta * beta
    eps = 1e-12
    return {
        "multiclass_accuracy": float((pred == y).mean()),
        "multiclass_top_k_accuracy": float(top_k.mean()),
        "dcg": float(np.mean(1.0 / np.log2(position + 2))),
        "macro_recall": r,
        "macro_precision": p,
        "macro_f_beta": (1 + b2) * p * r / (b2 * p + r) if p + r else 0.0,
        "multiclass_log_loss": float(
            -np.mean(np.log(np.clip(prob[np.arange(y.size), y], eps, None)))
        ),
    }


# --------------------------------------------------------------------------- regression


def regression_metrics(pred, y) -> dict:
    r = np.asarray(pred, np.float64) - np.asarray(y, np.float64)
    mse = float(np.mean(r * r))
    return {"mse": mse, "rmse": float(np.sqrt(mse)), "absolute_loss": float(np.mean(np.abs(r)))}


# --------------------------------------------------------------------------- one entry point


def evaluate(
    predictor_type: str, score, predicted_label, y, params: MetricsParams = DEFAULT_PARAMS
) -> dict:
    """Every metric of one channel under SageMaker's documented names (no channel prefix).

    The one place metrics are computed: the trainer, the run's endpoint check and
    ``predict`` all call it, so the same predictions give the same names and values.
    ``f_beta`` and ``accuracy_top_k`` come from the model's metrics parameters (SageMaker's
    defaults 1.0 and 3 when it has none).
    """
    beta, k = params.beta, params.top_k
    if predictor_type == REGRESSOR:
        return regression_metrics(score, y)
    if predictor_type == BINARY:
        return binary_metrics(np.asarray(score), np.asarray(predicted_label), y, beta)
    return multiclass_metrics(np.asarray(score), y, k, beta)


# --------------------------------------------------------------------------- log lines


def log_name(name: str, params: MetricsParams = DEFAULT_PARAMS) -> str:
    """How the container spells a metric in its log: the parameter is in the name
    (``binary_f_2.000``, ``macro_f_1.000``, ``multiclass_top_k_accuracy_3``), which is why
    SageMaker's regexes end in ``\\S+``."""
    if name in ("binary_f_beta", "macro_f_beta"):
        return f"{name[: -len('beta')]}{params.beta:.3f}"
    if name == "multiclass_top_k_accuracy":
        return f"{name}_{params.top_k}"
    return name


def quality_line(
    channel: str,
    name: str,
    value: float,
    epoch: int | None = None,
    kind: str = "score",
    params: MetricsParams = DEFAULT_PARAMS,
) -> str:
    """``#quality_metric: host=algo-1[, epoch=E], <channel> <log name> <kind>=<value>``."""
    where = f"host={HOST}" + (f", epoch={epoch}" if epoch is not None else "")
    return f"#quality_metric: {where}, {channel} {log_name(name, params)} <{kind}>={value}"
