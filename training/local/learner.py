"""The Linear Learner algorithm as published, on one machine: model packing in one pass.

``num_models`` linear models (auto: 32) are trained together as one weight matrix, so every
mini-batch costs one matrix product for all of them. They differ in learning rate, L2 (wd) and
L1 around the given values (model 0 uses exactly the given or default values). Features (and,
for regression, the label) are normalised from a sample of ``num_point_for_scaler`` rows; the
normalisation is folded into the weights each step (no extra pass over the data) and into the
exported model at the end. The models are ranked on validation data (or a training sample)
per ``binary_classifier_model_selection_criteria``; the export is the average of the best ones
that data cannot tell apart (see ``AVERAGED_MODELS``; SageMaker exports the single best), its
decision threshold calibrated.

Values the SageMaker docs leave to ``auto`` and do not document are this project's choices,
listed in ``AUTO`` below.
"""

from __future__ import annotations

import json
import os
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields

import numpy as np
from threadpoolctl import threadpool_limits

from training.core import metrics as lm
from training.core.hyperparameters import AUTO as AUTO_VALUE
from training.core.hyperparameters import BALANCED, Hyperparameters, Resolved
from training.core.losses import AUTO_LOSS, BINARY, MULTICLASS, REGRESSOR, make_loss, scores
from training.core.metrics import MetricsParams, SelectionCriterion
from training.core.model import LinearModel, is_sparse
from training.data.channels import Data
from training.local.training_record import SelectedModel

# What `auto` means here (SageMaker does not document most of these; see the module docstring).
FEW_STEPS = 300.0  # runs with fewer updates than this get larger learning rates to try
MIN_BETA_1 = 0.5  # the least Adam momentum auto uses, however few the updates
# The exported model averages the weights of up to AVERAGED_MODELS best packed models (by the
# selection criterion) that the selection data cannot tell from the best: mean paired loss
# difference within AVERAGE_WITHIN_SE standard errors. Not when the user asked for L1 (an
# average keeps only the zeros all members share). The loss is convex in the weights, so the
# average's loss is at most its members' mean; it depends less on which model a small
# validation set happened to favour. Measured (100 splits, vs LogisticRegression on the train
# split): glass -1.8 -> -0.7 pp, wine -1.6 -> -1.3, penguins -0.5 -> -0.2, diabetes MSE +2.3
# -> +0.4 %, others within 0.15 pp; without the standard-error test (the 8 best, always) a
# Carseats-like synthetic problem lost 2.8 pp, the slow models diluting the fast one.
AVERAGED_MODELS = 8
AVERAGE_WITHIN_SE = 2.0
LOSS_ROWS = 16_384  # rows per batch when losses are measured: bounds their float64 temporaries
LR_DECAYS = 15  # auto lr_scheduler_step: the rate decays this many times in a run
# With the scheduler on, the rate ramps up over the first updates (1/6, 2/6, ... of it). Adam's
# first bias-corrected step is lr * sign(gradient) in every coordinate, noise features
# included; with the large rates few-update runs need, that first jump is what their small
# validation sets then choose between. Measured (300 splits, vs LogisticRegression on the
# train split; 100 for digits and Default): wine -1.45 -> -0.82 pp, penguins' sex -1.33 ->
# -0.96, breast cancer -0.74 -> -0.49, OJ -0.76 -> -0.60, glass -0.82 -> -0.92, Carseats
# +0.67 -> +0.29, diabetes MSE +0.5 -> +1.1 %; 3, 4, 5 and 8 updates were measured too.
WARMUP_UPDATES = 6

AUTO = {
    "num_models": 32,
    "learning_rate": {"adam": 0.01, "rmsprop": 0.01, "sgd": 0.1},
    "beta_1": 0.9,  # runs with under 200 updates in all use less (down to 0.5): see resolve()
    "beta_2": 0.999,
    "momentum": 0.0,
    "bias_lr_mult": 1.0,
    "bias_wd_mult": 0.0,
    "wd": 1e-6,
    "l1": 0.0,
    "lr_scheduler_factor": 0.9,  # per lr_scheduler_step updates; auto step: see LR_DECAYS
    "lr_scheduler_minimum_lr": 1e-5,
    "num_calibration_samples": 10_000_000,
}


@dataclass
class Scaling:
    """Feature (and regression label) normalisation learned from the scaler sample."""

    mean: np.ndarray
    std: np.ndarray
    y_mean: float = 0.0
    y_std: float = 1.0

    def effective(self, W: np.ndarray, b: np.ndarray):
        """Weights and bias that apply the normalisation to raw features."""
        w_eff = W / self.std[:, None]
        return w_eff, b - self.mean @ w_eff

    def target(self, y: np.ndarray, predictor: str) -> np.ndarray:
        """The labels the models fit: standardised for a regressor, as given otherwise."""
        return (y - self.y_mean) / self.y_std if predictor == REGRESSOR else y


@dataclass
class Best:
    """Per packed model: the parameters of its best epoch so far, that loss, that epoch."""

    W: np.ndarray
    b: np.ndarray
    loss: np.ndarray
    epoch: np.ndarray

    @classmethod
    def start(cls, W: np.ndarray, b: np.ndarray, m: int) -> Best:
        return cls(W.copy(), b.copy(), np.full(m, np.inf), np.zeros(m, np.int64))

    def update(self, loss: np.ndarray, W, b, epoch: int, k: int, tol: float) -> bool:
        """Keep each model's parameters where its loss is its best yet; True when some
        model beat its best by the relative tolerance (early stopping's "progress")."""
        progressed = loss < np.where(np.isfinite(self.loss), self.loss * (1 - tol), np.inf)
        improved = loss < self.loss
        self.loss = np.where(improved, loss, self.loss)
        columns = np.repeat(improved, k)
        self.W[:, columns] = W[:, columns]
        self.b[columns] = b[columns]
        self.epoch[improved] = epoch
        return bool(progressed.any())


def _prox_l1(param, shrink):
    """Soft-threshold in place: the L1 proximal step, which makes exact zeros."""
    a = np.abs(param)
    a -= shrink
    np.maximum(a, 0.0, out=a)
    np.copysign(a, param, out=param)


class _Adam:
    """In place, with scratch buffers: this runs once per mini-batch.

    The moments are kept unnormalised (m / (1 - beta_1), v / (1 - beta_2)), their constants
    folded into the one per-step scalar with the bias correction: the same update in fewer
    numpy calls, which is what a step of small matrices costs.

    ``l1`` (per parameter, 0 for the bias row) is applied as a proximal step scaled by the
    same per-coordinate step size as the gradient, so its strength relates to the loss the
    way the user's value says whatever the gradient's scale (a plain ``lr * l1`` shrink is
    negligible next to Adam's normalised steps)."""

    def __init__(self, shape, b1, b2):
        self.m, self.v, self.tmp, self.rate = (np.zeros(shape, np.float32) for _ in range(4))
        self.b1, self.b2, self.t = float(b1), float(b2), 0
        self.eps = np.float32(1e-8 / np.sqrt(1 - self.b2))

    def step(self, param, grad, lr, l1=None):
        self.t += 1
        m, v, tmp, rate = self.m, self.v, self.tmp, self.rate
        b1, b2, t = self.b1, self.b2, self.t
        m *= np.float32(b1)
        m += grad
        np.multiply(grad, grad, out=tmp)
        v *= np.float32(b2)
        v += tmp
        corr = np.sqrt(1 - b2**t) / (1 - b1**t) * (1 - b1) / np.sqrt(1 - b2)
        np.multiply(lr, np.float32(corr), out=rate)  # each coordinate's step size
        np.sqrt(v, out=tmp)
        tmp += self.eps
        shrink = None
        if l1 is not None:  # l1 times the step size of a unit (normalised) momentum
            shrink = l1 * rate
            shrink /= tmp
            shrink *= np.float32(1 / (1 - b1))
        np.divide(m, tmp, out=tmp)
        tmp *= rate
        param -= tmp
        if shrink is not None:
            _prox_l1(param, shrink)


class _RMSProp:
    def __init__(self, shape, rho=0.9):
        self.v, self.tmp = np.zeros(shape, np.float32), np.zeros(shape, np.float32)
        self.rho = np.float32(rho)

    def step(self, param, grad, lr, l1=None):
        v, tmp = self.v, self.tmp
        v *= self.rho
        np.multiply(grad, grad, out=tmp)
        tmp *= 1 - self.rho
        v += tmp
        np.sqrt(v, out=tmp)
        tmp += np.float32(1e-8)
        shrink = None if l1 is None else l1 / tmp * lr
        np.divide(grad, tmp, out=tmp)
        tmp *= lr
        param -= tmp
        if shrink is not None:
            _prox_l1(param, shrink)


class _SGD:
    def __init__(self, shape, momentum):
        self.vel, self.tmp = np.zeros(shape, np.float32), np.zeros(shape, np.float32)
        self.mu = np.float32(momentum)

    def step(self, param, grad, lr, l1=None):
        np.multiply(grad, lr, out=self.tmp)
        if self.mu:
            self.vel *= self.mu
            self.vel -= self.tmp
            param += self.vel
        else:
            param -= self.tmp
        if l1 is not None:
            _prox_l1(param, l1 * lr)


def _optimizer(name, shape, hp: Resolved):
    if name == "adam":
        return _Adam(shape, hp.beta_1, hp.beta_2)
    if name == "rmsprop":
        return _RMSProp(shape)
    return _SGD(shape, hp.momentum)


@dataclass(frozen=True)
class RunShape:
    """What auto values depend on besides the other hyperparameters: the run's size, and
    which of the searched values (learning_rate, wd, l1) the user gave rather than left auto."""

    n_train: int
    total_steps: int  # optimizer updates in the whole run
    given: frozenset[str]

    @classmethod
    def of(cls, hp: Hyperparameters, n_train: int) -> RunShape:
        steps_per_epoch = max(1, -(-n_train // int(hp.mini_batch_size)))
        given = frozenset(k for k in ("learning_rate", "wd", "l1") if hp.given(k))
        return cls(n_train, steps_per_epoch * int(hp.epochs), given)


def resolve(hp: Hyperparameters, y: np.ndarray, feature_dim: int) -> Resolved:
    """The hyperparameters with every ``auto`` replaced by the value this run uses, for
    training labels ``y`` of ``feature_dim`` features."""
    predictor = hp.predictor_type
    n_train = len(y)
    total_steps = RunShape.of(hp, n_train).total_steps
    r = {f.name: getattr(hp, f.name) for f in fields(hp)}
    r["feature_dim"] = feature_dim if hp.feature_dim == AUTO_VALUE else hp.feature_dim
    r["loss"] = AUTO_LOSS[predictor] if hp.loss == AUTO_VALUE else hp.loss
    r["optimizer"] = "adam" if hp.optimizer == AUTO_VALUE else hp.optimizer
    if hp.beta_1 == AUTO_VALUE:
        # Adam's momentum averages over ~1/(1 - beta_1) updates (10 at 0.9); a run with few
        # updates in all (small data: one per epoch) spends them lagging behind its own
        # gradient, so the average is capped at total/20 updates, but never below 2 (0.5):
        # with the large rates such runs need (see _model_grid), some momentum damps the
        # zig-zag between correlated features. Measured (benchmarks/local_learner_bench.py
        # splits, 100, vs LogisticRegression on the train split, with the boost below):
        # a floor of 0 -> 0.5 took Carseats -1.4 -> +0.4 pp, glass -3.8 -> -1.8, OJ -1.3 ->
        # -0.9, wine -1.8 -> -1.6; the 1M-row runs keep 0.9.
        r["beta_1"] = min(AUTO["beta_1"], max(MIN_BETA_1, 1.0 - 20.0 / total_steps))
    for key in (
        "beta_2",
        "momentum",
        "bias_lr_mult",
        "bias_wd_mult",
        "lr_scheduler_factor",
        "lr_scheduler_minimum_lr",
        "num_calibration_samples",
        "num_models",
        "wd",
        "l1",
    ):
        if r[key] == AUTO_VALUE:
            r[key] = AUTO[key]
    if hp.learning_rate == AUTO_VALUE:
        r["learning_rate"] = AUTO["learning_rate"][r["optimizer"]]
    if hp.lr_scheduler_step == AUTO_VALUE:
        # LR_DECAYS decays per run, whatever its length: once per epoch at the default 15
        # epochs (measured better than the 2017 default of 1% per 100 updates), and the same
        # profile stretched over longer runs, so more epochs are never a frozen model
        r["lr_scheduler_step"] = max(1, round(total_steps / LR_DECAYS))
    regression = predictor == REGRESSOR
    r["normalize_data"] = hp.normalize_data is not False
    r["normalize_label"] = regression and hp.normalize_label is not False
    r["unbias_label"] = regression and hp.use_bias and hp.unbias_label is not False
    # auto shifts whenever there is a bias to absorb the mean, sparse data included (the
    # current docs; the 2017 text exempted sparse data, where shifting would densify it)
    r["unbias_data"] = hp.unbias_data is True or (hp.unbias_data == AUTO_VALUE and hp.use_bias)
    mult = hp.positive_example_weight_mult
    if predictor != BINARY:
        mult = 1.0
    elif mult in (BALANCED, AUTO_VALUE):  # the negatives' weight against the positives'
        pos = max(1.0, float(y.sum()))
        mult = (y.size - pos) / pos
    r["positive_example_weight_mult"] = float(mult)
    return Resolved(**r)


def _model_grid(r: Resolved, shape: RunShape, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Per-model learning rate, wd and l1: model 0 as given, the rest spread around it."""
    m = int(r.num_models)
    lr = np.full(m, r.learning_rate, np.float64)
    wd = np.full(m, r.wd, np.float64)
    l1 = np.full(m, r.l1, np.float64)
    if m > 1:
        # 10x below to 10x above the given rate; an auto rate is shifted up in proportion
        # when the run has under FEW_STEPS updates in all (small data: 15 updates at the
        # default 15 epochs), so the summed steps still reach the weights a converged fit has.
        # Measured (100 splits, vs LogisticRegression on the train split): sqrt(300/n) ->
        # 300/n took Carseats -4.6 -> +0.4 pp, OJ -1.1 -> -0.9, glass -2.1 -> -1.8, and cost
        # wine -0.7 -> -1.6 pp (its 25 validation rows pick the fastest models)
        boost = 1.0
        if "learning_rate" not in shape.given:
            boost = max(1.0, FEW_STEPS / max(1, shape.total_steps))
        rates = r.learning_rate * boost * 10 ** np.linspace(-1.0, 1.0, m - 1)
        lr[1:] = rng.permutation(rates)
        if "wd" in shape.given:
            base_wd = r.wd if r.wd > 0 else 1e-4
            wd[1:] = np.where(
                rng.random(m - 1) < 0.25, 0.0, base_wd * 10 ** rng.uniform(-1, 1, m - 1)
            )
        else:
            # auto: L2 on the scale of 1/n (as C=1 is for scikit-learn), 0.01/n to 10/n, and
            # some models with none: small data needs it, big data barely notices it
            n = max(1, shape.n_train)
            wd[1:] = np.where(rng.random(m - 1) < 0.1, 0.0, 10 ** rng.uniform(-2.0, 1.0, m - 1) / n)
        if r.l1 > 0:
            l1[1:] = r.l1 * 10 ** rng.uniform(-1, 1, m - 1)
        elif "l1" not in shape.given:
            l1[1:] = np.where(rng.random(m - 1) < 0.25, 10 ** rng.uniform(-6, -3, m - 1), 0.0)
    return {"learning_rate": lr, "wd": wd, "l1": l1}


def _feature_stats(X, rows: np.ndarray, r: Resolved, sparse: bool):
    d = X.shape[1]
    if not r.normalize_data:
        return np.zeros(d, np.float32), np.ones(d, np.float32)
    sample = X[rows]
    if sparse:
        mean = np.asarray(sample.mean(axis=0)).ravel()
        sq = np.asarray(sample.multiply(sample).mean(axis=0)).ravel()
        std = np.sqrt(np.maximum(sq - mean * mean, 0))
    else:
        mean, std = sample.mean(axis=0), sample.std(axis=0)
    # The shift (unbias_data) is folded into the bias every step, so CSR batches stay sparse
    # here; without it, digits (8 vs rest) as CSR scored 0.935 against 0.975 dense.
    std = np.where(std > 1e-12, std, 1.0)
    return (mean if r.unbias_data else np.zeros(d)).astype(np.float32), std.astype(np.float32)


def _class_weights(y: np.ndarray, r: Resolved, k: int) -> np.ndarray | None:
    """Per-class example weights, or None when all examples weigh 1."""
    if r.predictor_type == BINARY:
        mult = r.positive_example_weight_mult
        return None if mult == 1.0 else np.array([1.0, mult], np.float32)
    if r.predictor_type == MULTICLASS and r.balance_multiclass_weights:
        counts = np.maximum(np.bincount(y.astype(np.int64), minlength=k), 1)
        return (y.size / (k * counts)).astype(np.float32)
    return None


def _selection_data(train: Data, validation: Data | None, X, y, rng) -> tuple[Data, str]:
    """What models are selected and stopped on: the validation channel, or without one a
    sample of up to 10 000 training rows (named ``train_sample`` in the logs)."""
    if validation is not None and validation.n:
        return Data(validation.X, np.asarray(validation.y, np.float32)), "validation"
    rows = rng.choice(train.n, min(train.n, 10_000), replace=False)
    return Data(X[rows], y[rows]), "train_sample"


class _Updater:
    """One optimizer step for all packed models at once.

    One parameter matrix ``P`` holds every model's feature weights (rows 0..d-1) and bias
    (row d), m x k columns, so one step updates everything; ``bias_lr_mult`` and
    ``bias_wd_mult`` act on the bias row. Weights live in the normalised feature space; each
    step folds the normalisation into them instead of normalising the batch (sparse rows
    stay sparse). With the scheduler on, the rate ramps up over the first WARMUP_UPDATES
    updates, then decays every ``lr_scheduler_step`` updates.
    """

    def __init__(
        self, r: Resolved, grid: dict, scaling: Scaling, d: int, k: int, rng, loss, weights
    ):
        self.r, self.k, self.loss, self.weights = r, k, loss, weights
        self.cols = int(r.num_models) * k
        self.P = np.empty((d + 1, self.cols), np.float32)
        if r.init_method == "normal":
            self.P[:d] = rng.normal(0, r.init_sigma, (d, self.cols))
        else:
            self.P[:d] = rng.uniform(-r.init_scale, r.init_scale, (d, self.cols))
        self.P[d] = r.init_bias if r.use_bias else 0.0
        self.W, self.b = self.P[:d], self.P[d]
        self.opt = _optimizer(r.optimizer, self.P.shape, r)
        self.grad = np.empty_like(self.P)
        self.row_lr = np.ones((d + 1, 1), np.float32)
        self.row_lr[d] = r.bias_lr_mult if r.use_bias else 0.0
        wd = np.repeat(grid["wd"], k).astype(np.float32)
        self.decay = np.repeat(wd[None, :], d + 1, axis=0)
        self.decay[d] *= r.bias_wd_mult
        l1 = np.repeat(grid["l1"], k).astype(np.float32)
        self.l1 = None  # per parameter; the bias row is never L1-penalised
        if l1.any():
            self.l1 = np.zeros_like(self.P)
            self.l1[:d] = l1[None, :]
        self.lr0 = np.repeat(grid["learning_rate"], k).astype(np.float32)
        self.lr = self.lr0.copy()
        self.lr_mat = self.row_lr * self.lr[None, :]
        self.min_lr = np.float32(r.lr_scheduler_minimum_lr)
        self.updates = 0
        self.mean_col = scaling.mean[:, None].astype(np.float32)
        self.inv_std = (1.0 / scaling.std)[:, None].astype(np.float32)
        self.mean_s = (scaling.mean / scaling.std).astype(np.float32)
        self.shifted = bool(scaling.mean.any())
        self.row_scale = np.vstack([self.inv_std, np.ones((1, 1), np.float32)])
        self.row_scale_n = np.empty_like(self.row_scale)
        self.w_eff, self.b_eff = np.empty_like(self.W), np.empty_like(self.b)
        self.scratch = np.empty_like(self.P)
        self.z, self.ones = np.empty((0, self.cols), np.float32), np.ones(0, np.float32)

    def step(self, xb, yb: np.ndarray) -> None:
        n_b, k, cols = xb.shape[0], self.k, self.cols
        if self.z.shape[0] < n_b:  # the batch's raw predictions, then its loss gradient
            self.z = np.empty((n_b, cols), np.float32)
            self.ones = np.ones(n_b, np.float32)
        np.multiply(self.W, self.inv_std, out=self.w_eff)
        np.dot(self.mean_s, self.W, out=self.b_eff)
        np.subtract(self.b, self.b_eff, out=self.b_eff)
        z, sparse = self.z[:n_b], is_sparse(xb)
        if sparse:
            z[:] = xb @ self.w_eff
        else:
            np.matmul(xb, self.w_eff, out=z)
        z += self.b_eff
        g = self.loss.grad(z if k == 1 else z.reshape(n_b, cols // k, k), yb, overwrite_z=True)
        g = g.reshape(n_b, cols)
        if self.weights is not None:
            ex_w = self.weights[yb.astype(np.int64)]
            g = g * ex_w[:, None]
            norm = float(ex_w.sum())
        else:
            norm = float(n_b)
        g = g.astype(np.float32, copy=False)
        gw, gb = self.grad[:-1], self.grad[-1]
        np.dot(self.ones[:n_b], g, out=gb)  # column sums; BLAS beats a strided reduce
        if sparse:
            gw[:] = xb.T @ g
        else:
            np.matmul(xb.T, g, out=gw)
        if self.shifted:
            np.multiply(self.mean_col, gb, out=self.scratch[:-1])
            gw -= self.scratch[:-1]
        # the mean over the batch and the normalisation, on the small gradient, not on g
        np.multiply(self.row_scale, np.float32(1.0 / norm), out=self.row_scale_n)
        self.grad *= self.row_scale_n
        np.multiply(self.decay, self.P, out=self.scratch)
        self.grad += self.scratch
        r, lr_mat = self.r, self.lr_mat
        if r.use_lr_scheduler and self.updates < WARMUP_UPDATES:
            lr_mat = lr_mat * np.float32((self.updates + 1) / WARMUP_UPDATES)
        self.opt.step(self.P, self.grad, lr_mat, self.l1)
        self.updates += 1
        if r.use_lr_scheduler and self.updates % int(r.lr_scheduler_step) == 0:
            floor = np.minimum(self.min_lr, self.lr0)
            self.lr = np.maximum(self.lr * np.float32(r.lr_scheduler_factor), floor)
            self.lr_mat = self.row_lr * self.lr[None, :]

    def mean_loss(self, X, y: np.ndarray, scaling: Scaling, W=None, b=None) -> np.ndarray:
        """Mean (weighted) loss of each model on a dataset: the packed models as they are, or
        the models given as ``W``, ``b`` (normalised space)."""
        total, norm = 0.0, 0.0
        for v, ex in self._row_losses(X, y, scaling, W, b):
            total = total + (v.sum(axis=0) if ex is None else ex @ v)
            norm += v.shape[0] if ex is None else ex.sum()
        out = total / max(norm, 1.0)
        return np.where(np.isfinite(out), out, np.inf)  # a diverged model is never the best

    def loss_gap(self, X, y: np.ndarray, scaling: Scaling, W, b, ref: int):
        """Each model's mean (weighted) loss minus model ``ref``'s, row by row on the same
        rows, and the standard error of that mean: how surely the data tell them apart."""
        wd = wd2 = w2d = w2 = w1 = 0.0  # sums of w d, w^2 d^2, w^2 d, w^2, w
        for v, ex in self._row_losses(X, y, scaling, W, b):
            d = v - v[:, [ref]]
            ex = np.ones(v.shape[0]) if ex is None else ex
            sq = ex * ex
            wd, wd2, w2d = wd + ex @ d, wd2 + sq @ (d * d), w2d + sq @ d
            w2, w1 = w2 + sq.sum(), w1 + ex.sum()
        w1 = max(w1, 1.0)
        mean = wd / w1
        var = np.maximum(wd2 - 2 * mean * w2d + mean * mean * w2, 0.0) / (w1 * w1)
        return mean, np.sqrt(var)

    def _row_losses(self, X, y: np.ndarray, scaling: Scaling, W=None, b=None):
        """(per-row loss of each model, per-row example weight or None), LOSS_ROWS rows at a
        time so the memory stays bounded whatever the data's size, in order.

        This runs on the whole validation set every epoch, so two batches are computed at
        once on worker threads (numpy releases the GIL in its loops), BLAS on one thread
        each (its own second thread would compete with them)."""
        W, b = (self.W, self.b) if W is None else (W, b)
        k, weights = self.k, self.weights
        m = W.shape[1] // k
        w_eff, b_eff = scaling.effective(W, b)

        def batch(s: int):
            xb, yb = X[s : s + LOSS_ROWS], y[s : s + LOSS_ROWS]
            z = np.asarray(xb @ w_eff) + b_eff
            if k > 1:
                z = z.reshape(xb.shape[0], m, k)
            v = self.loss.value(z, yb).astype(np.float64)
            return v, None if weights is None else weights[yb.astype(np.int64)].astype(np.float64)

        starts = range(0, X.shape[0], LOSS_ROWS)
        if len(starts) < 2:
            yield from map(batch, starts)
            return
        with threadpool_limits(limits=1, user_api="blas"):
            ahead: deque = deque()
            for s in starts:
                ahead.append(_loss_workers().submit(batch, s))
                if len(ahead) > 2:  # bounded: two batches computed ahead of the caller
                    yield ahead.popleft().result()
            while ahead:
                yield ahead.popleft().result()


_WORKERS: dict[int, ThreadPoolExecutor] = {}


def _loss_workers() -> ThreadPoolExecutor:
    """Two threads for the losses and the models' thresholds, started once per process
    (each epoch would otherwise start them again). Per process id: a child made by fork
    inherits the pool but not its threads, and would wait on it forever."""
    pid = os.getpid()
    if pid not in _WORKERS:
        _WORKERS[pid] = ThreadPoolExecutor(max_workers=2, thread_name_prefix="loss")
    return _WORKERS[pid]


class PackedTrainer:
    """Trains ``num_models`` models together; ``fit`` returns the selected :class:`LinearModel`.

    What a fit learned besides the model, as scikit-learn names fitted state: ``resolved_``
    (the hyperparameters with every auto decided), ``history_`` (one entry per epoch),
    ``selected_`` (which packed models the export averages, and why)."""

    def __init__(
        self,
        hyperparameters: Hyperparameters,
        seed: int = 0,
        log: Callable[[str], None] = print,
        progress=None,
        on_epoch: Callable[[int, float], bool] | None = None,
    ):
        self.hp = hyperparameters
        self.seed = seed
        self.log = log
        self.progress = progress
        # called after each epoch with its best selection loss (what Linear Learner reports
        # per epoch); False stops training there, as a tuner stops a hopeless trial
        self.on_epoch = on_epoch
        self.stopped_by_tuner_ = False

    # ------------------------------------------------------------------ fit

    def fit(self, train: Data, validation: Data | None = None) -> LinearModel:
        rng = np.random.default_rng(self.seed)  # drawn in a fixed order: runs repeat
        X = train.X.tocsr() if is_sparse(train.X) else np.ascontiguousarray(train.X, np.float32)
        y = np.asarray(train.y, np.float32)
        r = self.resolved_ = resolve(self.hp, y, X.shape[1])
        self.history_: list[dict] = []
        predictor = r.predictor_type
        k = int(r.num_classes or 1) if predictor == MULTICLASS else 1
        scaling = self._scaling(X, y, r, rng)
        shape = RunShape.of(self.hp, train.n)
        grid = _model_grid(r, shape, rng)
        weights = _class_weights(y, r, k)
        updater = _Updater(r, grid, scaling, X.shape[1], k, rng, make_loss(r.loss, r), weights)
        val, val_name = _selection_data(train, validation, X, y, rng)
        y_fit, val_fit = scaling.target(y, predictor), scaling.target(val.y, predictor)
        best = Best.start(updater.W, updater.b, int(r.num_models))
        self.best, self.scaling = best, scaling  # the packed models, for inspection

        # even batches (1005 rows at 1000 -> 502 + 503, not 1000 + 5)
        n_batches = max(1, -(-train.n // int(r.mini_batch_size)))
        bounds = np.linspace(0, train.n, n_batches + 1).astype(np.int64)
        epochs, stale = int(r.epochs), 0
        bar = self.progress(total=epochs, desc="train", unit="epoch") if self.progress else None
        for epoch in range(epochs):
            t0 = time.perf_counter()
            for i in rng.permutation(n_batches):
                updater.step(X[bounds[i] : bounds[i + 1]], y_fit[bounds[i] : bounds[i + 1]])
            val_loss = updater.mean_loss(val.X, val_fit, scaling)
            tol = r.early_stopping_tolerance
            progressed = best.update(val_loss, updater.W, updater.b, epoch, k, tol)
            top = int(np.argmin(val_loss))
            sample, cols = slice(0, min(train.n, 5_000)), slice(top * k, (top + 1) * k)
            W_top, b_top = updater.W[:, cols], updater.b[cols]  # the log reports this model's
            train_loss = updater.mean_loss(X[sample], y_fit[sample], scaling, W_top, b_top)
            self._log_epoch(
                epoch,
                epochs,
                updater.loss.objective_name,
                float(train_loss[0]),
                float(val_loss[top]),
                val_name,
                train.n,
                time.perf_counter() - t0,
            )
            if bar is not None:
                bar.update(1)
                bar.set_postfix_str(f"{val_name} loss {val_loss[top]:.4f}")
            if self.on_epoch is not None and not self.on_epoch(epoch, float(val_loss[top])):
                self.log(f"Epoch {epoch}: stopped by the tuner (early stopping of the trial).")
                self.stopped_by_tuner_ = True
                break
            # Stop when no packed model has improved for `patience` epochs: slower models
            # (small learning rate, strong L2) keep training while faster ones have peaked.
            if progressed:
                self.log(f"Epoch {epoch}: Loss improved. Updating best model")
                stale = 0
            else:
                stale += 1
                self.log(f"Epoch {epoch}: Loss has not improved for {stale} epochs.")
                if stale >= r.early_stopping_patience:
                    self.log("Reached early stopping criteria. Stopping training.")
                    break
        if bar is not None:
            bar.close()
        average = AVERAGED_MODELS if "l1" not in shape.given or r.l1 == 0 else 1
        return self._select(r, best, scaling, grid, k, val, val_name, updater, average)

    def _scaling(self, X, y: np.ndarray, r: dict, rng: np.random.Generator) -> Scaling:
        """Feature and label normalisation from a sample of num_point_for_scaler rows."""
        rows = np.sort(rng.choice(len(y), min(len(y), r.num_point_for_scaler), replace=False))
        mean, std = _feature_stats(X, rows, r, is_sparse(X))
        y_mean = float(y[rows].mean()) if r.unbias_label else 0.0
        y_std = float(y[rows].std()) if r.normalize_label else 1.0
        y_std = y_std if y_std > 1e-12 else 1.0
        self.log(
            f"Scaling model computed with parameters: mean_label={y_mean:.6g}, "
            f"stdev_label={y_std:.6g}, features={X.shape[1]}"
        )
        return Scaling(mean, std, y_mean, y_std)

    # ------------------------------------------------------------------ helpers

    def _log_epoch(self, epoch, epochs, obj, train_loss, val_loss, val_name, n, seconds):
        """Linear Learner's per-epoch log lines (the best packed model's losses)."""
        self.log(lm.quality_line("train", obj, train_loss, epoch, "loss"))
        if val_name == "validation":
            self.log(lm.quality_line("validation", obj, val_loss, epoch, "loss"))
        self.log(
            f"#early_stopping_criteria_metric: host={lm.HOST}, epoch={epoch}, "
            f"criteria={obj}, value={val_loss}"
        )
        self.log(
            f"#progress_metric: host={lm.HOST}, completed {100 * (epoch + 1) // epochs} % of epochs"
        )
        self.log(
            f"#throughput_metric: host={lm.HOST}, train throughput="
            f"{n / max(seconds, 1e-9):.1f} records/second"
        )
        self.history_.append(
            {
                "epoch": epoch,
                "train_objective_loss": train_loss,
                f"{val_name}_objective_loss": val_loss,
                "seconds": seconds,
            }
        )

    def _select(
        self,
        r: Resolved,
        best: Best,
        scaling: Scaling,
        grid,
        k,
        val: Data,
        val_name,
        updater,
        average,
    ) -> LinearModel:
        """Rank the packed models on the selection data and export the average of the best
        ``average`` that it cannot tell from the best one (AVERAGE_WITHIN_SE), calibrating
        the binary threshold for that average."""
        m = int(r.num_models)
        predictor = r.predictor_type
        criterion = SelectionCriterion(
            r.binary_classifier_model_selection_criteria,
            r.f_beta,
            r.target_recall,
            r.target_precision,
        )
        n_cal = min(val.n, int(r.num_calibration_samples))
        default = 0.5 if r.loss == "logistic" else 0.0
        threshold, order = 0.5, np.argsort(best.loss, kind="stable")
        if predictor == BINARY:
            threshold = default
            if criterion.name != "loss_function":
                s = self._val_scores(r, scaling, best.W, best.b, val, n_cal)

                def value(j: int) -> float:  # each model at its own calibrated threshold
                    t = lm.calibrate_threshold(s[:, j], val.y[:n_cal], criterion, default)
                    return lm.criterion_value(s[:, j], val.y[:n_cal], t, criterion)

                values = np.fromiter(_loss_workers().map(value, range(m)), np.float64, m)
                order = np.lexsort((best.loss, -values))  # best criterion; ties: lower loss
        chosen = int(order[0])
        members = [int(j) for j in order[:average] if np.isfinite(best.loss[j])] or [chosen]
        y_sel = scaling.target(val.y, predictor)
        if len(members) > 1:  # only models the selection data cannot tell from the best
            gap, se = updater.loss_gap(val.X, y_sel, scaling, best.W, best.b, chosen)
            members = [j for j in members if gap[j] <= AVERAGE_WITHIN_SE * se[j]]
        cols = np.concatenate([np.arange(j * k, (j + 1) * k) for j in members])
        W = best.W[:, cols].reshape(-1, len(members), k).mean(axis=1)
        b = best.b[cols].reshape(len(members), k).mean(axis=0)
        objective_loss = float(best.loss[chosen])
        if len(members) > 1:
            objective_loss = float(updater.mean_loss(val.X, y_sel, scaling, W, b)[0])
        if predictor == BINARY and criterion.name != "loss_function":
            s = self._val_scores(r, scaling, W, b, val, n_cal)[:, 0]
            threshold = lm.calibrate_threshold(s, val.y[:n_cal], criterion, default)
        w_eff, b_eff = scaling.effective(W, b)
        weights = (w_eff * scaling.y_std).astype(np.float32)
        bias = (b_eff * scaling.y_std + scaling.y_mean).astype(np.float32)
        if k == 1:
            weights, bias = weights[:, 0], bias[0]
        self.selected_ = selected = SelectedModel(
            model=chosen,
            optimizer=r.optimizer,
            learning_rate=float(grid["learning_rate"][chosen]),
            wd=float(grid["wd"][chosen]),
            l1=float(grid["l1"][chosen]),
            epoch=int(best.epoch[chosen]),
            objective_loss=objective_loss,
            chosen_on=val_name,
            threshold=threshold,
            averaged_models=tuple(members),
        )
        self.log(
            "Best model found for hyperparameters: "
            + json.dumps(
                {key: getattr(selected, key) for key in ("optimizer", "learning_rate", "wd", "l1")}
            )
        )
        if len(members) > 1:
            self.log(f"Exported the average of the {len(members)} best models: {members}")
        params = MetricsParams.of(r)
        return LinearModel(predictor, r.loss, weights, np.asarray(bias), threshold, params)

    @staticmethod
    def _val_scores(r: Resolved, scaling: Scaling, W, b, val: Data, n_cal: int) -> np.ndarray:
        """Binary scores of each model in (W, b) on the first n_cal selection rows."""
        w_eff, b_eff = scaling.effective(W, b)
        return scores(r.loss, np.asarray(val.X[:n_cal] @ w_eff) + b_eff)
