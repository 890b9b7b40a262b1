"""Linear Learner's hyperparameters, declared once as data and validated in one place.

The same table serves the local trainer and the SageMaker training job, so a bad value fails
here, before any data is read or any job (and bill) exists. Names, string values, defaults and
ranges follow the SageMaker documentation (``../shared/reference/linear-learner.md``).
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping
from dataclasses import dataclass

PREDICTOR_TYPES = ("binary_classifier", "multiclass_classifier", "regressor")
LOSSES = {
    "binary_classifier": ("auto", "logistic", "hinge_loss"),
    "multiclass_classifier": ("auto", "softmax_loss"),
    "regressor": (
        "auto",
        "squared_loss",
        "absolute_loss",
        "eps_insensitive_squared_loss",
        "eps_insensitive_absolute_loss",
        "quantile_loss",
        "huber_loss",
    ),
}
ALL_LOSSES = tuple(dict.fromkeys(loss for group in LOSSES.values() for loss in group))
SELECTION_CRITERIA = (
    "accuracy",
    "f_beta",
    "precision_at_target_recall",
    "recall_at_target_precision",
    "loss_function",
)
_LEGACY_CRITERIA = {"f1": "f_beta", "cross_entropy_loss": "loss_function"}


class HyperparameterError(ValueError):
    """One or more hyperparameters are invalid; the message lists each with its fix."""


@dataclass(frozen=True)
class Param:
    """One hyperparameter: its type, default and the rule its value must satisfy."""

    name: str
    kind: str  # "int" | "float" | "bool" | "choice"
    default: str | None
    low: float | None = None
    high: float | None = None
    low_open: bool = False  # True: value must be > low (else >= low)
    high_open: bool = False  # True: value must be < high (else <= high)
    auto: bool = False  # the string "auto" is allowed
    choices: tuple[str, ...] = ()

    def rule(self) -> str:
        if self.kind == "choice":
            text = "one of " + ", ".join(self.choices)
        elif self.kind == "bool":
            text = "true or false"
        else:
            noun = "an integer" if self.kind == "int" else "a number"
            parts = []
            if self.low is not None:
                parts.append(f"{'>' if self.low_open else '>='} {_fmt(self.low)}")
            if self.high is not None:
                parts.append(f"{'<' if self.high_open else '<='} {_fmt(self.high)}")
            text = noun + (" " + " and ".join(parts) if parts else "")
        return ("'auto' or " if self.auto else "") + text

    def parse(self, raw: object):
        """The typed value of ``raw`` (``'auto'`` stays a string); ValueError if invalid."""
        text = _to_text(raw)
        if self.auto and text == "auto":
            return "auto"
        if self.kind == "choice":
            if text not in self.choices:
                raise ValueError
            return text
        if self.kind == "bool":
            lowered = text.lower()
            if lowered not in ("true", "false"):
                raise ValueError
            return lowered == "true"
        value = int(text) if self.kind == "int" else float(text)
        if not math.isfinite(value):
            raise ValueError
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            raise ValueError
        if self.high is not None and (value >= self.high if self.high_open else value > self.high):
            raise ValueError
        return value


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _to_text(raw: object) -> str:
    if isinstance(raw, bool):
        return "true" if raw else "false"
    return str(raw).strip()


def _p(name, kind, default, **rule) -> Param:
    return Param(name, kind, default, **rule)


_POS = {"low": 0, "low_open": True}
_NONNEG = {"low": 0}
_UNIT_OPEN = {"low": 0, "high": 1, "low_open": True, "high_open": True}
_UNIT_HALF = {"low": 0, "high": 1, "high_open": True}
_AUTO_BOOL = ("auto", "true", "false")

PARAMS: dict[str, Param] = {
    p.name: p
    for p in (
        _p("predictor_type", "choice", None, choices=PREDICTOR_TYPES),
        _p("num_classes", "int", None, low=1, high=1_000_000),
        _p("feature_dim", "int", "auto", auto=True, **_POS),
        _p("accuracy_top_k", "int", "3", low=0, high=1_000_000, low_open=True),
        _p("balance_multiclass_weights", "bool", "false"),
        _p("beta_1", "float", "auto", auto=True, **_UNIT_HALF),
        _p("beta_2", "float", "auto", auto=True, **_UNIT_HALF),
        _p("bias_lr_mult", "float", "auto", auto=True, **_POS),
        _p("bias_wd_mult", "float", "auto", auto=True, **_NONNEG),
        _p(
            "binary_classifier_model_selection_criteria",
            "choice",
            "accuracy",
            choices=SELECTION_CRITERIA + tuple(_LEGACY_CRITERIA),
        ),
        _p("early_stopping_patience", "int", "3", **_POS),
        _p("early_stopping_tolerance", "float", "0.001", **_POS),
        _p("epochs", "int", "15", **_POS),
        _p("f_beta", "float", "1.0", **_POS),
        _p("huber_delta", "float", "1.0", **_NONNEG),
        _p("init_bias", "float", "0.0"),
        _p("init_method", "choice", "uniform", choices=("uniform", "normal")),
        _p("init_scale", "float", "0.07", **_POS),
        _p("init_sigma", "float", "0.01", **_POS),
        _p("l1", "float", "auto", auto=True, **_NONNEG),
        _p("learning_rate", "float", "auto", auto=True, **_POS),
        _p("loss", "choice", "auto", choices=ALL_LOSSES),
        _p("loss_insensitivity", "float", "0.01", **_POS),
        _p("lr_scheduler_factor", "float", "auto", auto=True, **_UNIT_OPEN),
        _p("lr_scheduler_minimum_lr", "float", "auto", auto=True, **_POS),
        _p("lr_scheduler_step", "int", "auto", auto=True, **_POS),
        _p("margin", "float", "1.0", **_NONNEG),
        _p("mini_batch_size", "int", "1000", **_POS),
        _p("momentum", "float", "auto", auto=True, **_UNIT_HALF),
        _p("normalize_data", "choice", "true", choices=_AUTO_BOOL),
        _p("normalize_label", "choice", "auto", choices=_AUTO_BOOL),
        _p("num_calibration_samples", "int", "auto", auto=True, **_POS),
        _p("num_models", "int", "auto", auto=True, **_POS),
        _p("num_point_for_scaler", "int", "10000", **_POS),
        _p("optimizer", "choice", "auto", choices=("auto", "sgd", "adam", "rmsprop")),
        _p("positive_example_weight_mult", "float", "1.0", auto=True, **_POS),
        _p("quantile", "float", "0.5", **_UNIT_OPEN),
        _p("target_precision", "float", "0.8", **_UNIT_OPEN),
        _p("target_recall", "float", "0.8", **_UNIT_OPEN),
        _p("unbias_data", "choice", "auto", choices=_AUTO_BOOL),
        _p("unbias_label", "choice", "auto", choices=_AUTO_BOOL),
        _p("use_bias", "bool", "true"),
        _p("use_lr_scheduler", "bool", "true"),
        _p("wd", "float", "auto", auto=True, **_NONNEG),
    )
}


def validate(hyperparameters: Mapping[str, object]) -> dict[str, object]:
    """Check every hyperparameter and return the typed values with defaults filled in.

    Raises :class:`HyperparameterError` listing every problem (unknown names with the
    closest valid name, values outside their rule, combinations SageMaker rejects).
    """
    problems: list[str] = []
    values: dict[str, object] = {}
    for name, raw in hyperparameters.items():
        param = PARAMS.get(name)
        if param is None:
            close = difflib.get_close_matches(name, PARAMS, n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            problems.append(f"Unknown hyperparameter '{name}'.{hint}")
            continue
        if name == "positive_example_weight_mult" and _to_text(raw) == "balanced":
            values[name] = "balanced"
            continue
        try:
            values[name] = param.parse(raw)
        except ValueError:
            rule = param.rule()
            if name == "positive_example_weight_mult":
                rule = "'balanced', " + rule
            default = f" Default: {param.default}." if param.default is not None else ""
            problems.append(
                f"Hyperparameter {name}='{_to_text(raw)}' is invalid: must be {rule}.{default}"
            )
    problems += _check_combinations(values, set(hyperparameters))
    if problems:
        raise HyperparameterError("\n".join(problems))
    for name, param in PARAMS.items():
        if name not in values and param.default is not None:
            values[name] = param.parse(param.default)
    criteria = values["binary_classifier_model_selection_criteria"]
    values["binary_classifier_model_selection_criteria"] = _LEGACY_CRITERIA.get(criteria, criteria)
    return values


def _check_combinations(values: dict[str, object], given: set[str]) -> list[str]:
    problems = []
    predictor = values.get("predictor_type")
    if predictor is None:
        if "predictor_type" not in given:
            problems.append(
                "Missing required hyperparameter 'predictor_type': set it to one of "
                + ", ".join(PREDICTOR_TYPES)
                + "."
            )
        return problems
    if predictor == "multiclass_classifier" and values.get("num_classes", 0) < 3:
        got = (
            f"num_classes={values['num_classes']} is too small"
            if "num_classes" in values
            else ("Missing hyperparameter 'num_classes'")
        )
        problems.append(
            f"{got}: predictor_type=multiclass_classifier needs num_classes >= 3 (labels "
            "0..num_classes-1); for two classes use predictor_type=binary_classifier."
        )
    loss = values.get("loss", "auto")
    if loss not in LOSSES[predictor]:
        problems.append(
            f"Hyperparameter loss='{loss}' does not fit predictor_type={predictor}: use one of "
            + ", ".join(LOSSES[predictor])
            + "."
        )
    return problems


def to_strings(values: Mapping[str, object]) -> dict[str, str]:
    """SageMaker wants every hyperparameter as a string; booleans lower-case."""
    return {k: _to_text(v) for k, v in values.items()}


def parse_assignments(items: list[str] | None) -> dict[str, str]:
    """``['epochs=5', 'wd=0.01']`` from the command line into a dict."""
    out: dict[str, str] = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise HyperparameterError(
                f"Cannot read hyperparameter '{item}': write it as name=value, e.g. epochs=10."
            )
        out[name.strip()] = value.strip()
    return out
