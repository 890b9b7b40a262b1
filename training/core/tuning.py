"""What can be tuned, toward what, and how: one definition for the local tuner and SageMaker's.

:data:`TUNABLE` is Linear Learner's tunable hyperparameters as AWS's "Tune a linear learner
model" page lists them (docs.aws.amazon.com/sagemaker/latest/dg/linear-learner-tuning.html),
each with its kind and recommended range; :data:`OBJECTIVES` the metrics the page says Linear
Learner emits for tuning, with their direction and the predictor types that emit them.
:func:`define` turns the flags into a :class:`TuningSpec` and refuses, before any data is read
or any call made, whatever SageMaker would refuse or that would tune toward nothing: a range
outside the hyperparameter's valid values, an untunable name, an objective the predictor type
does not emit or whose channel is missing, limits that contradict each other. The local tuner
(:mod:`training.local.tuner`) and ``CreateHyperParameterTuningJob``
(:mod:`training.aws.tuning_job`) both read the spec.

As SageMaker does for a tuning job (the page above), every trial trains one model
(``num_models=1``): the packed models' own search is off.
"""

from __future__ import annotations

import difflib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from training.core import hyperparameters as hps
from training.core.losses import BINARY, MULTICLASS, PREDICTOR_TYPES, REGRESSOR
from training.core.metrics import metric_key
from training.errors import TuningError

CONTINUOUS, INTEGER, CATEGORICAL = "Continuous", "Integer", "Categorical"

# ScalingType as CreateHyperParameterTuningJob spells it, by the word --ranges takes
SCALES = {
    "auto": "Auto",
    "linear": "Linear",
    "log": "Logarithmic",
    "reverse_log": "ReverseLogarithmic",
}
# The search strategies, by the word --strategy takes (HyperParameterTuningJobConfig.Strategy)
STRATEGIES = {"bayesian": "Bayesian", "random": "Random", "grid": "Grid", "hyperband": "Hyperband"}
EARLY_STOPPING = {"off": "Off", "auto": "Auto"}  # TrainingJobEarlyStoppingType
MAXIMIZE, MINIMIZE = "Maximize", "Minimize"

# CreateHyperParameterTuningJob's limits (botocore's SageMaker model, ParameterRanges)
MAX_CATEGORICAL_VALUES = 30  # values of one categorical range
MAX_GRID_JOBS = 750  # training jobs of a grid tuning job (SageMaker's limit, not raised)
MAX_SEED = 2**31 - 1  # RandomSeed is a 32-bit integer >= 0
MAX_HYPERBAND_EPOCHS = 20_000  # HyperbandStrategyConfig.MaxResource's limit
DEFAULT_OBJECTIVE = "validation:objective_loss"  # every predictor type emits it


@dataclass(frozen=True)
class Tunable:
    """A hyperparameter SageMaker tunes for Linear Learner, its kind and AWS's recommended
    range (what ``--ranges NAME`` alone searches), the scale that range is searched on."""

    name: str
    kind: str
    recommended: tuple
    scale: str = "auto"
    predictor_types: tuple[str, ...] = PREDICTOR_TYPES


TUNABLE: dict[str, Tunable] = {
    t.name: t
    for t in (
        Tunable("wd", CONTINUOUS, (1e-7, 1.0), "log"),
        Tunable("l1", CONTINUOUS, (1e-7, 1.0), "log"),
        Tunable("learning_rate", CONTINUOUS, (1e-5, 1.0), "log"),
        Tunable("mini_batch_size", INTEGER, (100, 5000), "linear"),
        Tunable("use_bias", CATEGORICAL, ("true", "false")),
        # weighs positive examples: a binary classifier's hyperparameter only
        Tunable("positive_example_weight_mult", CONTINUOUS, (1e-5, 1e5), "log", (BINARY,)),
    )
}


@dataclass(frozen=True)
class Objective:
    """The metric a tuning job optimizes (``validation:objective_loss``) and its direction."""

    metric: str
    direction: str

    @property
    def channel(self) -> str:
        return self.metric.partition(":")[0]

    @property
    def name(self) -> str:
        return self.metric.partition(":")[2]

    def better(self, a: float, b: float) -> bool:
        """Whether ``a`` beats ``b`` (NaN never does)."""
        if math.isnan(a):
            return False
        if math.isnan(b):
            return True
        return a > b if self.direction == MAXIMIZE else a < b


def _objectives() -> dict[str, tuple[str, tuple[str, ...]]]:
    """The page's metric table: name -> (direction, predictor types that emit it)."""
    both = ("test", "validation")
    by_name = {
        "objective_loss": (MINIMIZE, PREDICTOR_TYPES, both),
        "absolute_loss": (MINIMIZE, (REGRESSOR,), both),
        "mse": (MINIMIZE, (REGRESSOR,), both),
        "rmse": (MINIMIZE, (REGRESSOR,), ("validation",)),
        "binary_classification_accuracy": (MAXIMIZE, (BINARY,), both),
        "binary_f_beta": (MAXIMIZE, (BINARY,), both),
        "precision": (MAXIMIZE, (BINARY,), both),
        "recall": (MAXIMIZE, (BINARY,), both),
        "roc_auc_score": (MAXIMIZE, (BINARY,), both),
        "multiclass_accuracy": (MAXIMIZE, (MULTICLASS,), both),
        "multiclass_top_k_accuracy": (MAXIMIZE, (MULTICLASS,), both),
        "macro_f_beta": (MAXIMIZE, (MULTICLASS,), both),
        "macro_precision": (MAXIMIZE, (MULTICLASS,), both),
        "macro_recall": (MAXIMIZE, (MULTICLASS,), both),
        "dcg": (MAXIMIZE, (MULTICLASS,), both),
    }
    return {
        metric_key(channel, name): (direction, types)
        for name, (direction, types, channels) in by_name.items()
        for channel in channels
    }


OBJECTIVES: dict[str, tuple[str, tuple[str, ...]]] = _objectives()


def objectives_for(predictor_type: str) -> list[str]:
    return [m for m, (_, types) in OBJECTIVES.items() if predictor_type in types]


@dataclass(frozen=True)
class ParameterRange:
    """One searched hyperparameter: ``low``..``high`` on ``scale`` (Continuous, Integer) or
    the listed ``values`` (Categorical), the values as SageMaker takes them (strings)."""

    name: str
    kind: str
    low: float | None = None
    high: float | None = None
    scale: str = "auto"
    values: tuple[str, ...] = ()

    def describe(self) -> str:
        if self.kind == CATEGORICAL:
            return f"{self.name}={','.join(self.values)}"
        return f"{self.name}={_num(self.low)}:{_num(self.high)}:{self.scale}"

    @property
    def log(self) -> bool:
        """Searched on a log scale (Auto picks it, as SageMaker's does, when the range spans
        more than two orders of magnitude and starts above zero)."""
        if self.scale == "log":
            return True
        if self.scale == "auto" and self.kind != CATEGORICAL:
            return self.low > 0 and self.high / self.low >= 100
        return False

    def to_aws(self) -> dict:
        """This range's entry in ``ParameterRanges`` (its list: :meth:`aws_list`)."""
        if self.kind == CATEGORICAL:
            return {"Name": self.name, "Values": list(self.values)}
        return {
            "Name": self.name,
            "MinValue": _num(self.low),
            "MaxValue": _num(self.high),
            "ScalingType": SCALES[self.scale],
        }

    @property
    def aws_list(self) -> str:
        return f"{self.kind}ParameterRanges"


def _num(x) -> str:
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e15 else repr(float(x))


@dataclass(frozen=True)
class TuningSpec:
    """A tuning job: what to search, toward what, how, within which limits; the static
    hyperparameters every trial trains with (strings, ``num_models=1`` among them)."""

    ranges: tuple[ParameterRange, ...]
    objective: Objective
    strategy: str  # a key of STRATEGIES
    max_jobs: int
    max_parallel_jobs: int
    static: dict[str, str] = field(default_factory=dict)
    early_stopping: str = "off"  # a key of EARLY_STOPPING
    seed: int = 0

    @property
    def tuned(self) -> list[str]:
        return [r.name for r in self.ranges]

    def parameter_ranges(self) -> dict:
        """``HyperParameterTuningJobConfig.ParameterRanges``: the three lists, each present."""
        out = {f"{kind}ParameterRanges": [] for kind in (INTEGER, CONTINUOUS, CATEGORICAL)}
        for r in self.ranges:
            out[r.aws_list].append(r.to_aws())
        return out

    def grid_size(self) -> int:
        return math.prod(len(r.values) for r in self.ranges)

    @property
    def epochs(self) -> int:
        return int(self.static.get("epochs", hps.TABLE["epochs"].default))


# --------------------------------------------------------------------------- parsing


def parse_range(text: str, flag: str = "--ranges") -> ParameterRange:
    """``learning_rate=0.0001:1:log``, ``mini_batch_size=100:5000``, ``use_bias=true,false``
    or a bare name (AWS's recommended range) -> a checked :class:`ParameterRange`."""
    name, sep, spec = text.partition("=")
    name, spec = name.strip(), spec.strip()
    tunable = _tunable(name, flag)
    if not sep:
        low_high = tunable.recommended
        if tunable.kind == CATEGORICAL:
            return _checked(ParameterRange(name, CATEGORICAL, values=tuple(low_high)), flag)
        return _checked(ParameterRange(name, tunable.kind, *low_high, tunable.scale), flag)
    if ":" in spec:
        parts = [p.strip() for p in spec.split(":")]
        if len(parts) not in (2, 3):
            raise TuningError(
                f"{flag} {text}: write a range as NAME=LOW:HIGH or NAME=LOW:HIGH:SCALE "
                f"(SCALE one of {', '.join(SCALES)}), e.g. learning_rate=0.0001:1:log."
            )
        kind = INTEGER if tunable.kind == INTEGER else CONTINUOUS
        if tunable.kind == CATEGORICAL:
            raise TuningError(
                f"{flag} {text}: {name} takes values, not a range: write "
                f"{name}={','.join(tunable.recommended)}."
            )
        scale = parts[2].lower() if len(parts) == 3 else "auto"  # SageMaker's default
        if scale not in SCALES:
            raise TuningError(
                f"{flag} {text}: unknown scale '{parts[2]}': use one of {', '.join(SCALES)}."
            )
        low, high = (_number(p, kind, text, flag) for p in parts[:2])
        return _checked(ParameterRange(name, kind, low, high, scale), flag)
    values = tuple(v.strip() for v in spec.split(",") if v.strip())
    return _checked(ParameterRange(name, CATEGORICAL, values=values), flag)


def ranges_from_json(path: Path) -> list[ParameterRange]:
    """A JSON file of ranges: ``{"learning_rate": "0.0001:1:log", "use_bias": ["true",
    "false"]}``, or SageMaker's own ``ParameterRanges`` object (what a tuning job's
    description shows, with or without its ``ParameterRanges`` key around it)."""
    flag = f"--ranges-file {path}"
    try:
        doc = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise TuningError(f"{flag}: no such file.") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise TuningError(f"{flag}: not a JSON file ({err}).") from None
    if isinstance(doc, dict) and isinstance(doc.get("ParameterRanges"), dict):
        doc = doc["ParameterRanges"]
    if not isinstance(doc, dict):
        raise TuningError(f"{flag}: expected a JSON object of ranges by hyperparameter name.")
    if any(key.endswith("ParameterRanges") for key in doc):
        return _from_aws(doc, flag)
    out = []
    for name, spec in doc.items():
        if isinstance(spec, list):
            out.append(_categorical(name, spec, flag))
        elif spec is None:
            out.append(parse_range(name, flag))
        elif isinstance(spec, str) and ":" in spec:
            out.append(parse_range(f"{name}={spec}", flag))
        else:
            raise TuningError(
                f'{flag}: "{name}" must be "LOW:HIGH[:SCALE]", a list of values, or null '
                "(AWS's recommended range)."
            )
    return out


def _categorical(name: str, values, flag: str) -> ParameterRange:
    _tunable(name, flag)
    if not isinstance(values, list) or not all(
        isinstance(v, (str, bool, int, float)) for v in values
    ):
        raise TuningError(f"{flag}: {name}'s values must be a list of strings or numbers.")
    return _checked(ParameterRange(name, CATEGORICAL, values=tuple(map(_value_text, values))), flag)


def _from_aws(doc: Mapping, flag: str) -> list[ParameterRange]:
    out = []
    scales = {v: k for k, v in SCALES.items()}
    for key, entries in doc.items():
        kind = key.removesuffix("ParameterRanges")
        if kind not in (INTEGER, CONTINUOUS, CATEGORICAL) or not isinstance(entries, list):
            raise TuningError(
                f"{flag}: '{key}' is not one of IntegerParameterRanges, "
                "ContinuousParameterRanges, CategoricalParameterRanges (each a list)."
            )
        for entry in entries:
            if not isinstance(entry, dict) or not isinstance(entry.get("Name"), str):
                raise TuningError(f"{flag}: every entry of {key} needs a Name.")
            name = entry["Name"]
            if kind == CATEGORICAL:
                out.append(_categorical(name, entry.get("Values"), flag))
                continue
            low, high = entry.get("MinValue"), entry.get("MaxValue")
            scale = entry.get("ScalingType", "Auto")
            if not (isinstance(low, str) and isinstance(high, str)):
                raise TuningError(f"{flag}: {name} needs MinValue and MaxValue, as strings.")
            if not isinstance(scale, str) or scale not in scales:
                raise TuningError(
                    f"{flag}: {name}'s ScalingType must be one of {', '.join(SCALES.values())}."
                )
            parsed = parse_range(f"{name}={low}:{high}:{scales[scale]}", flag)
            if kind == INTEGER and parsed.kind != INTEGER:
                raise TuningError(f"{flag}: {name} is not an integer hyperparameter.")
            out.append(parsed)
    return out


def _value_text(value) -> str:
    return hps._to_text(value)


def _tunable(name: str, flag: str) -> Tunable:
    if name in TUNABLE:
        return TUNABLE[name]
    close = difflib.get_close_matches(name, TUNABLE, n=1)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    known = "is not a Linear Learner hyperparameter" if name not in hps.TABLE else "is not tunable"
    raise TuningError(
        f"{flag}: '{name}' {known}.{hint} SageMaker tunes Linear Learner's "
        f"{', '.join(TUNABLE)} (AWS: Tune a linear learner model); set others with "
        f"--hyperparameters {name}=VALUE."
    )


_ASCII_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", re.ASCII)


def _number(text: str, kind: str, whole: str, flag: str):
    try:
        if not _ASCII_NUMBER.fullmatch(text):  # not 1_0, not Arabic-Indic digits
            raise ValueError(text)
        value = int(text) if kind == INTEGER else float(text)
    except ValueError:
        noun = "an integer" if kind == INTEGER else "a number"
        raise TuningError(f"{flag} {whole}: '{text}' is not {noun}.") from None
    if not math.isfinite(value):
        raise TuningError(f"{flag} {whole}: '{text}' is not a finite number.")
    return value


def _checked(r: ParameterRange, flag: str) -> ParameterRange:
    """Each end (or value) valid for the hyperparameter, the range well-formed for its scale."""
    where = f"{flag} {r.describe()}"
    if r.kind == CATEGORICAL:
        if not r.values:
            raise TuningError(f"{where}: give at least one value, e.g. {r.name}=true,false.")
        if not all(v.isascii() for v in r.values):
            raise TuningError(f"{where}: values are ASCII text, as SageMaker takes them.")
        meanings = [hps.parse(r.name, v) if _parses(r.name, v) else v for v in r.values]
        if len(set(map(repr, meanings))) != len(meanings):
            raise TuningError(f"{where}: a value is listed twice.")
        if len(r.values) > MAX_CATEGORICAL_VALUES:
            raise TuningError(
                f"{where}: {len(r.values)} values; SageMaker takes at most "
                f"{MAX_CATEGORICAL_VALUES} for one hyperparameter."
            )
        for value in r.values:
            _valid_value(r.name, value, where)
        # each value spelled as train sends it (hyperparameters.to_strings: "+200" as "200",
        # "True" as "true"): SageMaker's built-in algorithms check hyperparameters as text, so
        # a tuning job's values go as the training job's would (a range's ends do, via _num)
        return replace(r, values=tuple(_value_text(hps.parse(r.name, v)) for v in r.values))
    for end in (r.low, r.high):
        _valid_value(r.name, _num(end), where)
    if not r.low < r.high:
        raise TuningError(
            f"{where}: the low end must be below the high end (to fix one value, set it "
            f"with --hyperparameters {r.name}={_num(r.low)})."
        )
    if r.scale == "log" and r.low <= 0:
        raise TuningError(
            f"{where}: a log scale needs a low end above 0 (e.g. {r.name}=1e-7:{_num(r.high)}"
            ":log), or use :linear."
        )
    if r.scale == "reverse_log" and (r.kind != CONTINUOUS or r.low < 0 or r.high >= 1):
        raise TuningError(
            f"{where}: reverse_log is for continuous ranges within 0 <= x < 1; use :log or :linear."
        )
    return r


def _parses(name: str, value: str) -> bool:
    try:
        hps.parse(name, value)
    except ValueError:
        return False
    return True


def _valid_value(name: str, value: str, where: str) -> None:
    try:
        parsed = hps.parse(name, value)
    except ValueError:
        parsed = None
    if parsed is None or isinstance(parsed, str) and parsed in (hps.AUTO, hps.BALANCED):
        raise TuningError(f"{where}: {name}={value} is outside what Linear Learner accepts "
                          f"({name} must be {_rule_without_words(name)}).")  # fmt: skip


def _rule_without_words(name: str) -> str:
    texts = [c.describe() for c in hps.constraints(name) if not isinstance(c, hps.Keyword)]
    return " or ".join(texts)


# --------------------------------------------------------------------------- the spec


def _combinations(ranges: list[ParameterRange]) -> int | None:
    """How many distinct hyperparameter sets the ranges hold; None when one is continuous."""
    count = 1
    for r in ranges:
        if r.kind == CONTINUOUS:
            return None
        count *= len(r.values) if r.kind == CATEGORICAL else int(r.high) - int(r.low) + 1
    return count


def define(
    ranges: list[ParameterRange],
    *,
    predictor_type: str,
    channels: tuple[str, ...],
    max_jobs: int | None,
    max_parallel_jobs: int,
    objective: str | None = None,
    strategy: str = "bayesian",
    early_stopping: str | None = None,
    static: Mapping[str, str] | None = None,
    seed: int = 0,
    warn=print,
) -> TuningSpec:
    """Check the whole definition against what SageMaker accepts and what the data can
    measure; every flag named in the refusal. ``channels``: the data's channel folders.
    ``early_stopping`` unset: ``auto`` where SageMaker allows it (bayesian or random search
    toward validation:objective_loss, the one metric Linear Learner emits every epoch: AWS,
    "Stop Training Jobs Early"), ``off`` otherwise."""
    if not ranges:
        raise TuningError(
            "--ranges: name at least one hyperparameter to tune, e.g. --ranges "
            "learning_rate=0.0001:1:log wd (a bare name searches AWS's recommended range)."
        )
    names = [r.name for r in ranges]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise TuningError(f"--ranges: {', '.join(twice)} given more than once; keep one range.")
    static = dict(static or {})
    fixed = sorted(set(names) & set(static))
    if fixed:
        raise TuningError(
            f"{', '.join(fixed)} both tuned (--ranges) and fixed (--hyperparameters): "
            "drop one of the two."
        )
    for r in ranges:
        allowed = TUNABLE[r.name].predictor_types
        if predictor_type not in allowed:
            raise TuningError(
                f"--ranges {r.name}: tunes {' and '.join(allowed)}s only; this data trains "
                f"a {predictor_type}. Drop it from --ranges."
            )
    if static.get("num_models", "1") != "1":
        warn(
            f"note: num_models={static['num_models']} is ignored: a tuning job trains one "
            "model per trial, as SageMaker's does"
        )
    static["num_models"] = "1"

    metric = objective or DEFAULT_OBJECTIVE
    if metric not in OBJECTIVES:
        close = difflib.get_close_matches(metric, OBJECTIVES, n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        raise TuningError(
            f"--objective {metric}: not a metric Linear Learner emits.{hint} For a "
            f"{predictor_type}: {', '.join(objectives_for(predictor_type))}."
        )
    direction, types = OBJECTIVES[metric]
    if predictor_type not in types:
        raise TuningError(
            f"--objective {metric}: a {predictor_type} does not emit it. Use one of "
            f"{', '.join(objectives_for(predictor_type))}."
        )
    chosen = Objective(metric, direction)
    if chosen.channel not in channels:
        raise TuningError(
            f"--objective {metric}: the data has no {chosen.channel}/ channel, so the metric "
            f"is never emitted: prepare with a {chosen.channel} split, or tune on "
            + ("test:" if chosen.channel == "validation" else "validation:")
            + chosen.name
            + "."
        )

    if not 0 <= seed <= MAX_SEED:
        raise TuningError(f"--seed {seed}: use 0 to {MAX_SEED} (SageMaker's RandomSeed).")
    if strategy not in STRATEGIES:
        raise TuningError(f"--strategy {strategy}: use one of {', '.join(STRATEGIES)}.")
    if early_stopping is None:  # Auto where SageMaker allows it for Linear Learner
        allowed = strategy in ("bayesian", "random") and metric == DEFAULT_OBJECTIVE
        early_stopping = "auto" if allowed else "off"
    if early_stopping not in EARLY_STOPPING:
        raise TuningError(
            f"--early-stopping {early_stopping}: use one of {', '.join(EARLY_STOPPING)}."
        )
    if strategy == "grid":
        loose = [r.name for r in ranges if r.kind != CATEGORICAL]
        if loose:
            raise TuningError(
                f"--strategy grid: searches listed values only; {', '.join(loose)} "
                "is a range: list its values (e.g. mini_batch_size=100,500,1000)."
            )
        size = math.prod(len(r.values) for r in ranges)
        if size > MAX_GRID_JOBS:
            raise TuningError(
                f"--strategy grid: {size} combinations; a grid runs each as a job, and "
                f"SageMaker runs at most {MAX_GRID_JOBS}: list fewer values, or use "
                "--strategy bayesian."
            )
        if max_jobs is not None and max_jobs != size:
            raise TuningError(
                f"--max-jobs {max_jobs}: a grid runs every combination, {size} here; "
                "drop --max-jobs or list other values."
            )
        max_jobs = size
    if max_jobs is None:
        raise TuningError("--max-jobs: say how many training jobs the search may run.")
    if max_jobs < 1 or max_parallel_jobs < 1:
        raise TuningError("--max-jobs and --max-parallel-jobs must be at least 1.")
    combinations = _combinations(ranges)
    if combinations is not None and max_jobs > combinations:
        raise TuningError(
            f"--max-jobs {max_jobs}: the ranges hold only {combinations} distinct "
            "combinations (SageMaker refuses more jobs than that): lower --max-jobs or widen "
            "a range."
        )
    if max_parallel_jobs > max_jobs:
        raise TuningError(
            f"--max-parallel-jobs {max_parallel_jobs} is above --max-jobs {max_jobs}: at most "
            f"{max_jobs} can run at once; lower it."
        )
    if strategy in ("grid", "hyperband") and early_stopping == "auto":
        raise TuningError(
            f"--early-stopping auto: the {strategy} strategy "
            + (
                "stops hopeless trials itself"
                if strategy == "hyperband"
                else "runs every combination"
            )
            + "; SageMaker takes early stopping Off with it. Drop the flag."
        )
    stops = strategy == "hyperband" or early_stopping == "auto"
    if stops and metric != DEFAULT_OBJECTIVE:
        how = "--strategy hyperband" if strategy == "hyperband" else "--early-stopping auto"
        raise TuningError(
            f"{how}: stops trials on what Linear Learner emits every epoch, "
            f"{DEFAULT_OBJECTIVE} (AWS: Tune a linear learner model); {metric} comes only "
            f"at the end. Tune toward {DEFAULT_OBJECTIVE}, or use --strategy bayesian "
            "without early stopping."
        )
    spec = TuningSpec(
        ranges=tuple(ranges),
        objective=chosen,
        strategy=strategy,
        max_jobs=max_jobs,
        max_parallel_jobs=max_parallel_jobs,
        static=static,
        early_stopping=early_stopping,
        seed=seed,
    )
    if strategy == "hyperband" and spec.epochs > MAX_HYPERBAND_EPOCHS:
        raise TuningError(
            f"--strategy hyperband: epochs={spec.epochs} is the most a job may train, and "
            f"SageMaker's Hyperband hands out at most {MAX_HYPERBAND_EPOCHS}: lower epochs."
        )
    return spec
