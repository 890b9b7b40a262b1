"""Linear Learner's hyperparameters: each declared once, with its type, default and constraints.

:class:`Hyperparameters` is the table: one field per hyperparameter, its SageMaker name, its
default (SageMaker's, ``../shared/reference/linear-learner.md``) and the constraints a value
must meet, as objects (an :class:`Interval`, :class:`Options`, a :class:`Keyword` such as
``auto`` or ``balanced``, :class:`Renamed` legacy values). :func:`validate` reads the table
for the strings SageMaker receives and returns the typed values, ``auto`` kept where the user
left it; a trainer turns that into :class:`Resolved`, where every field is concrete. The local
trainer and the SageMaker job read the same table, so a bad value fails here, before any data
is read or any job (and bill) exists.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields

from training.core.losses import LOSSES, MULTICLASS, PREDICTOR_TYPES, losses_for
from training.errors import HyperparameterError

AUTO = "auto"
BALANCED = "balanced"


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _to_text(raw: object) -> str:
    if isinstance(raw, bool):
        return "true" if raw else "false"
    return str(raw).strip()


class Constraint:
    """One rule a value may meet; a hyperparameter's value must meet one of its constraints."""

    def parse(self, text: str) -> object:
        """The typed value of ``text``; ValueError when it does not meet this constraint."""
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError

    def invalid(self) -> str:
        """A value that breaks this constraint (the tests build one for every constraint)."""
        raise NotImplementedError


@dataclass(frozen=True)
class Interval(Constraint):
    """An int or float between ``low`` and ``high`` (None: unbounded), finite."""

    kind: type
    low: float | None = None
    high: float | None = None
    closed: str = "both"  # which ends are allowed: "both", "left", "right", "neither"

    def parse(self, text: str):
        value = self.kind(text)
        if not math.isfinite(value):
            raise ValueError(text)
        low_ok = self.closed in ("both", "left")
        high_ok = self.closed in ("both", "right")
        if self.low is not None and (value < self.low or (value == self.low and not low_ok)):
            raise ValueError(text)
        if self.high is not None and (value > self.high or (value == self.high and not high_ok)):
            raise ValueError(text)
        return value

    def describe(self) -> str:
        parts = []
        if self.low is not None:
            parts.append(f"{'>=' if self.closed in ('both', 'left') else '>'} {_fmt(self.low)}")
        if self.high is not None:
            parts.append(f"{'<=' if self.closed in ('both', 'right') else '<'} {_fmt(self.high)}")
        noun = "an integer" if self.kind is int else "a number"
        return noun + (" " + " and ".join(parts) if parts else "")

    def invalid(self) -> str:
        if self.low is not None:
            return _fmt(self.low if self.closed in ("right", "neither") else self.low - 1)
        if self.high is not None:
            return _fmt(self.high if self.closed in ("left", "neither") else self.high + 1)
        return "nan"


@dataclass(frozen=True)
class Options(Constraint):
    values: tuple[str, ...]

    def parse(self, text: str) -> str:
        if text not in self.values:
            raise ValueError(text)
        return text

    def describe(self) -> str:
        return "one of " + ", ".join(self.values)

    def invalid(self) -> str:
        return "not-an-option"


@dataclass(frozen=True)
class Boolean(Constraint):
    """``true`` or ``false``, any case (SDK 2.x sends ``True`` / ``False``)."""

    def parse(self, text: str) -> bool:
        lowered = text.lower()
        if lowered not in ("true", "false"):
            raise ValueError(text)
        return lowered == "true"

    def describe(self) -> str:
        return "true or false"

    def invalid(self) -> str:
        return "maybe"


@dataclass(frozen=True)
class Keyword(Constraint):
    """A special word kept as it is (``auto``: the trainer decides; ``balanced``)."""

    word: str

    def parse(self, text: str) -> str:
        if text != self.word:
            raise ValueError(text)
        return text

    def describe(self) -> str:
        return f"'{self.word}'"

    def invalid(self) -> str:
        return self.word.upper() + "!"


@dataclass(frozen=True)
class Renamed(Constraint):
    """Legacy values SageMaker still accepts, read as their current names."""

    names: tuple[tuple[str, str], ...]  # (legacy, current)

    def parse(self, text: str) -> str:
        for legacy, current in self.names:
            if text == legacy:
                return current
        raise ValueError(text)

    def describe(self) -> str:
        return "the legacy " + ", ".join(f"{old} (= {new})" for old, new in self.names)

    def invalid(self) -> str:
        return "legacy-" + self.names[0][0] + "!"


REQUIRED = object()  # a default that marks a hyperparameter the user must give


def hp(default, *constraints: Constraint):
    """A field of the table: its default and the constraints its value may meet (any one)."""
    value = None if default is REQUIRED else default
    return field(
        default=value, metadata={"constraints": constraints, "required": default is REQUIRED}
    )


def _positive(kind=float) -> Interval:
    return Interval(kind, 0, None, "right")


def _nonnegative(kind=float) -> Interval:
    return Interval(kind, 0, None, "both")


_AUTO = Keyword(AUTO)
_UNIT_OPEN = Interval(float, 0, 1, "neither")
_UNIT_HALF = Interval(float, 0, 1, "left")
_CRITERIA = (
    "accuracy",
    "f_beta",
    "precision_at_target_recall",
    "recall_at_target_precision",
    "loss_function",
)


@dataclass(frozen=True, kw_only=True)
class Hyperparameters:
    """Linear Learner's hyperparameters as given, typed, defaults filled in, ``auto`` kept."""

    predictor_type: str = hp(REQUIRED, Options(PREDICTOR_TYPES))
    num_classes: int | None = hp(None, Interval(int, 1, 1_000_000))
    feature_dim: int | str = hp(AUTO, _AUTO, _positive(int))
    accuracy_top_k: int = hp(3, Interval(int, 0, 1_000_000, "right"))
    balance_multiclass_weights: bool = hp(False, Boolean())
    beta_1: float | str = hp(AUTO, _AUTO, _UNIT_HALF)
    beta_2: float | str = hp(AUTO, _AUTO, _UNIT_HALF)
    bias_lr_mult: float | str = hp(AUTO, _AUTO, _positive())
    bias_wd_mult: float | str = hp(AUTO, _AUTO, _nonnegative())
    binary_classifier_model_selection_criteria: str = hp(
        "accuracy",
        Options(_CRITERIA),
        Renamed((("f1", "f_beta"), ("cross_entropy_loss", "loss_function"))),
    )
    early_stopping_patience: int = hp(3, _positive(int))
    early_stopping_tolerance: float = hp(0.001, _positive())
    epochs: int = hp(15, _positive(int))
    f_beta: float = hp(1.0, _positive())
    huber_delta: float = hp(1.0, _nonnegative())
    init_bias: float = hp(0.0, Interval(float))
    init_method: str = hp("uniform", Options(("uniform", "normal")))
    init_scale: float = hp(0.07, _positive())
    init_sigma: float = hp(0.01, _positive())
    l1: float | str = hp(AUTO, _AUTO, _nonnegative())
    learning_rate: float | str = hp(AUTO, _AUTO, _positive())
    loss: str = hp(AUTO, _AUTO, Options(tuple(LOSSES)))
    loss_insensitivity: float = hp(0.01, _positive())
    lr_scheduler_factor: float | str = hp(AUTO, _AUTO, _UNIT_OPEN)
    lr_scheduler_minimum_lr: float | str = hp(AUTO, _AUTO, _positive())
    lr_scheduler_step: int | str = hp(AUTO, _AUTO, _positive(int))
    margin: float = hp(1.0, _nonnegative())
    mini_batch_size: int = hp(1000, _positive(int))
    momentum: float | str = hp(AUTO, _AUTO, _UNIT_HALF)
    normalize_data: bool | str = hp(True, _AUTO, Boolean())
    normalize_label: bool | str = hp(AUTO, _AUTO, Boolean())
    num_calibration_samples: int | str = hp(AUTO, _AUTO, _positive(int))
    num_models: int | str = hp(AUTO, _AUTO, _positive(int))
    num_point_for_scaler: int = hp(10000, _positive(int))
    optimizer: str = hp(AUTO, _AUTO, Options(("sgd", "adam", "rmsprop")))
    positive_example_weight_mult: float | str = hp(1.0, Keyword(BALANCED), _AUTO, _positive())
    quantile: float = hp(0.5, _UNIT_OPEN)
    target_precision: float = hp(0.8, _UNIT_OPEN)
    target_recall: float = hp(0.8, _UNIT_OPEN)
    unbias_data: bool | str = hp(AUTO, _AUTO, Boolean())
    unbias_label: bool | str = hp(AUTO, _AUTO, Boolean())
    use_bias: bool = hp(True, Boolean())
    use_lr_scheduler: bool = hp(True, Boolean())
    wd: float | str = hp(AUTO, _AUTO, _nonnegative())

    def to_strings(self, names=None) -> dict[str, str]:
        """As SageMaker takes them: every value a string, booleans lower-case; ``names``
        picks some (default: every one with a value)."""
        chosen = [f.name for f in fields(self)] if names is None else list(names)
        return {n: _to_text(getattr(self, n)) for n in chosen if getattr(self, n) is not None}

    def given(self, name: str) -> bool:
        """Whether a searched value (learning_rate, wd, l1, …) was set rather than left auto."""
        return getattr(self, name) != AUTO


@dataclass(frozen=True, kw_only=True)
class Resolved(Hyperparameters):
    """The hyperparameters one training run used: every ``auto`` replaced by its value
    (the fields below are those whose type changes). Made by the trainer, which knows the
    data's size; it is what the training record and the model's metrics parameters show."""

    feature_dim: int
    beta_1: float
    beta_2: float
    bias_lr_mult: float
    bias_wd_mult: float
    l1: float
    learning_rate: float
    loss: str
    lr_scheduler_factor: float
    lr_scheduler_minimum_lr: float
    lr_scheduler_step: int
    momentum: float
    normalize_data: bool
    normalize_label: bool
    num_calibration_samples: int
    num_models: int
    optimizer: str
    positive_example_weight_mult: float
    unbias_data: bool
    unbias_label: bool
    wd: float


TABLE = {f.name: f for f in fields(Hyperparameters)}


def constraints(name: str) -> tuple[Constraint, ...]:
    return TABLE[name].metadata["constraints"]


def rule(name: str) -> str:
    """What a valid value of ``name`` looks like, e.g. "'auto' or a number > 0"."""
    texts = [c.describe() for c in constraints(name)]
    return texts[0] if len(texts) == 1 else ", ".join(texts[:-1]) + " or " + texts[-1]


def parse(name: str, raw: object):
    """The typed value of ``raw`` for hyperparameter ``name``; ValueError if none fits."""
    text = _to_text(raw)
    for constraint in constraints(name):
        try:
            return constraint.parse(text)
        except ValueError:
            continue
    raise ValueError(f"{name}={text!r}")


def _integer_hint(name: str, raw: object) -> str:
    """For a whole number written as a float (``100.0``, ``1e2``) where an integer belongs: how
    to write it. SageMaker's built-in algorithms check every hyperparameter as the text they
    are sent, each against its own rule (their config validator: a JSON schema whose numbers
    are "a string which matches the pattern …, or an integer"); whether Linear Learner's
    pattern takes ``100.0`` is not documented, so it is refused here rather than found out on
    a billed job. SageMaker SDK 2.x casts integers before sending them (``"100"``)."""
    text = _to_text(raw)
    if not any(isinstance(c, Interval) and c.kind is int for c in constraints(name)):
        return ""
    try:
        value = float(text)
    except ValueError:
        return ""
    if not (math.isfinite(value) and value.is_integer()):
        return ""
    return (
        f" Write {int(value)}: SageMaker checks '{text}' as text against an integer rule, "
        "and a job could fail on it after minutes of billing."
    )


def validate(given: Mapping[str, object]) -> Hyperparameters:
    """Check every hyperparameter and return them typed, defaults filled in.

    Raises :class:`HyperparameterError` listing every problem: unknown names with the closest
    valid name, values no constraint accepts, combinations SageMaker rejects.
    """
    problems: list[str] = []
    values: dict[str, object] = {}
    for name, raw in given.items():
        if name not in TABLE:
            close = difflib.get_close_matches(name, TABLE, n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            problems.append(f"Unknown hyperparameter '{name}'.{hint}")
            continue
        try:
            values[name] = parse(name, raw)
        except ValueError:
            default = TABLE[name].default
            shown = f" Default: {_to_text(default)}." if default is not None else ""
            problems.append(
                f"Hyperparameter {name}='{_to_text(raw)}' is invalid: must be {rule(name)}.{shown}"
                + _integer_hint(name, raw)
            )
    problems += _check_combinations(values, set(given))
    if problems:
        raise HyperparameterError("\n".join(problems))
    return Hyperparameters(**values)


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
    if predictor == MULTICLASS and (values.get("num_classes") or 0) < 3:
        got = (
            f"num_classes={values['num_classes']} is too small"
            if values.get("num_classes") is not None
            else "Missing hyperparameter 'num_classes'"
        )
        problems.append(
            f"{got}: predictor_type=multiclass_classifier needs num_classes >= 3 (labels "
            "0..num_classes-1); for two classes use predictor_type=binary_classifier."
        )
    loss = values.get("loss", AUTO)
    allowed = (AUTO, *losses_for(predictor))
    if loss not in allowed:
        problems.append(
            f"Hyperparameter loss='{loss}' does not fit predictor_type={predictor}: use one of "
            + ", ".join(allowed)
            + "."
        )
    return problems


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
