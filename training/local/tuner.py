"""``tune --target local``: SageMaker's automatic model tuning, on this machine, for free.

Trials run in ``max_parallel_jobs`` worker processes; each worker reads the channels once and
then trains trial after trial with :func:`training.local.trainer.train_checked`, one model per
trial (``num_models=1``, as SageMaker forces). Optuna decides the hyperparameters (chosen over
writing a search: a kept library with the four strategies' counterparts): TPE for ``bayesian``
(SageMaker's Bayesian is its own; TPE is Optuna's default), random, grid, and for
``hyperband`` TPE with Optuna's Hyperband pruner over epochs; ``--early-stopping auto`` adds the
median stopping rule SageMaker's Auto documents. Stopping reads what Linear Learner emits each
epoch: the validation loss.

Same seed, same table: trials are asked in batches of ``max_parallel_jobs`` and told in trial
order, and when trials may be stopped, the running trials report their epochs in lockstep and
are judged in trial order; so no decision depends on which process was faster (only
``seconds`` does). Writes, under ``--out``: ``tuning.csv`` (one row per job, rewritten after
each batch, so an interrupted search keeps a valid table), ``jobs/<job>/`` (each trial's
``model.tar.gz``, ``metrics.json``, ``training.log``), ``best/`` (the best completed job's files:
``serve --model O/best/model.tar.gz``), ``tuning.png``.
"""

from __future__ import annotations

import contextlib
import csv
import io
import itertools
import json
import math
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field, replace
from multiprocessing.connection import wait
from pathlib import Path

from training.core import hyperparameters as hps
from training.core.tuning import CATEGORICAL, INTEGER, MAXIMIZE, TuningSpec
from training.errors import NOTHING_STARTED, UserError
from training.files import FileLock, Locked, remove_named, write_whole

TABLE_FILE = "tuning.csv"
PLOT_FILE = "tuning.png"
JOBS_DIR = "jobs"
BEST_DIR = "best"
LOCK_FILE = ".tuning.lock"  # held while a search writes to its --out
STUDY_NAME = "linear-learner"  # fixed: Optuna's Hyperband brackets hash it with trial numbers
COMPLETED, STOPPED, FAILED = "Completed", "Stopped", "Failed"  # SageMaker's job statuses
BEST_FILES = ("model.tar.gz", "metrics.json", "preprocessing.json", "training.log")


@dataclass
class Trial:
    """One training job of the search: its hyperparameters, how it ended, what it measured."""

    number: int
    job: str
    params: dict[str, str]
    status: str = ""
    objective: float = math.nan
    metrics: dict[str, float] = field(default_factory=dict)
    epochs: int = 0
    seconds: float = 0.0
    failure: str = ""


@dataclass(frozen=True)
class TuningResult:
    spec: TuningSpec
    trials: list[Trial]
    best: Trial | None
    out_dir: Path

    @property
    def table(self) -> Path:
        return self.out_dir / TABLE_FILE

    @property
    def plot(self) -> Path:
        return self.out_dir / PLOT_FILE


def job_name(number: int) -> str:
    return f"job-{number + 1:03d}"


# --------------------------------------------------------------------------- the search


def _sampler_and_pruner(spec: TuningSpec):
    import optuna

    startup = max(2, min(10, spec.max_jobs // 3))  # random trials before TPE models the rest
    tpe = optuna.samplers.TPESampler(seed=spec.seed, n_startup_trials=startup)
    pruner = optuna.pruners.NopPruner()
    if spec.strategy in ("random", "grid"):  # grid: every combination is queued (_grid)
        sampler = optuna.samplers.RandomSampler(seed=spec.seed)
    else:
        sampler = tpe
    if spec.strategy == "hyperband":
        pruner = optuna.pruners.HyperbandPruner(min_resource=1, max_resource=spec.epochs)
    elif spec.early_stopping == "auto":
        pruner = optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1)
    return sampler, pruner


def _grid(spec: TuningSpec) -> list[dict]:
    """Every combination of the listed values, in a fixed order (Optuna's GridSampler stops
    the study itself when it runs out, which an ask-and-tell loop cannot take)."""
    names = [r.name for r in spec.ranges]
    return [
        dict(zip(names, combo)) for combo in itertools.product(*(r.values for r in spec.ranges))
    ]


def _distributions(spec: TuningSpec) -> dict:
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    out = {}
    for r in spec.ranges:
        if r.kind == CATEGORICAL:
            out[r.name] = CategoricalDistribution(list(r.values))
        elif r.kind == INTEGER:
            out[r.name] = IntDistribution(int(r.low), int(r.high), log=r.log)
        elif r.scale == "reverse_log":  # searched as 1 - x on a log scale: dense near 1
            out[r.name] = FloatDistribution(1 - r.high, 1 - r.low, log=True)
        else:
            out[r.name] = FloatDistribution(r.low, r.high, log=r.log)
    return out


def _as_hyperparameters(spec: TuningSpec, params: dict) -> dict[str, str]:
    """Optuna's values as SageMaker takes hyperparameters: strings."""
    out = {}
    for r in spec.ranges:
        value = params[r.name]
        if r.kind == CATEGORICAL:
            out[r.name] = str(value)
        elif r.kind == INTEGER:
            out[r.name] = str(int(value))
        elif r.scale == "reverse_log":
            out[r.name] = repr(1.0 - float(value))
        else:
            out[r.name] = repr(float(value))
    return out


# --------------------------------------------------------------------------- workers


def main() -> None:
    """A worker process (``python -m training.local.tuner``): reads the channels once, then
    trains each trial its tuner sends. JSON lines: requests on stdin, answers on stdout
    (which nothing else may write to: print goes to stderr here)."""
    from threadpoolctl import threadpool_limits

    from training.data.channel_checks import check_training_data
    from training.local.trainer import load_channels, preprocessing_source

    answers = os.fdopen(os.dup(1), "w", buffering=1)
    sys.stdout = sys.stderr
    pipe = _Pipe(sys.stdin, answers)
    setup = pipe.recv()
    with threadpool_limits(setup["threads"]):
        try:
            base = check_training_data(Path(setup["data_dir"]), setup["static"], keep_data=True)
            preprocessing_source(base)
            channels = load_channels(base)
        except UserError as err:
            pipe.send(["refused", err.report()])
            return
        pipe.send(["ready"])
        while (message := pipe.recv()) is not None:
            jobs_dir = Path(setup["jobs_dir"])
            pipe.send(_run_trial(pipe, base, channels, setup["seed"], jobs_dir, *message))


class _Pipe:
    """One JSON document a line, each way."""

    def __init__(self, reading, writing):
        self.reading, self.writing = reading, writing

    def send(self, message) -> None:
        self.writing.write(json.dumps(message) + "\n")
        self.writing.flush()

    def recv(self):
        line = self.reading.readline()
        if not line:
            raise EOFError
        return json.loads(line)

    def fileno(self) -> int:
        return self.reading.fileno()


def _run_trial(pipe, base, channels, seed: int, jobs_dir: Path, number, job, params, report):
    """Train one trial; with ``report``, ask the tuner after each epoch whether to go on."""
    from training.local.trainer import train_checked

    given = {**base.given, **params}
    started = time.perf_counter()
    stopped, epochs = False, 0

    def on_epoch(epoch: int, loss: float) -> bool:
        nonlocal stopped, epochs
        epochs = epoch + 1
        if not report:
            return True
        pipe.send(["epoch", number, epoch, loss])
        stopped = not pipe.recv()
        return not stopped

    try:
        checked = replace(base, given=given, hyperparameters=hps.validate(given))
        record = train_checked(checked, channels, jobs_dir / job, seed, False, _quiet, on_epoch)
        result = [record.metrics.flat(), stopped, epochs, None]
    except UserError as err:  # a combination the algorithm refuses: the trial fails
        result = [{}, False, epochs, err.report() or type(err).__name__]
    return ["done", number, *result, time.perf_counter() - started]


def _quiet(_line: str) -> None:
    """A trial's log goes to its training.log only."""


class _Workers:
    """The worker processes (``python -m training.local.tuner``, not multiprocessing: no
    ``__main__`` guard asked of scripts and notebooks that call the tuner); a worker that
    dies is replaced."""

    def __init__(self, n: int, data_dir: Path, spec: TuningSpec, jobs_dir: Path):
        self.setup = {
            "data_dir": str(data_dir),
            "static": spec.static,
            "seed": spec.seed,
            "jobs_dir": str(jobs_dir),
            "threads": max(1, (os.cpu_count() or 1) // n),
        }
        self.slots = [self._start() for _ in range(n)]
        for pipe, _ in self.slots:
            self._ready(pipe)

    def _start(self):
        process = subprocess.Popen(
            [sys.executable, "-m", "training.local.tuner"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": _package_root()},
        )
        pipe = _Pipe(process.stdout, process.stdin)
        pipe.send(self.setup)
        return pipe, process

    def _ready(self, pipe) -> None:
        try:
            message = pipe.recv()
        except EOFError:
            raise UserError("a tuning worker process died while reading the data.") from None
        if message[0] == "refused":
            raise UserError(message[1], NOTHING_STARTED)

    def replace(self, i: int) -> None:
        _, process = self.slots[i]
        process.kill()
        process.wait()
        self.slots[i] = self._start()
        self._ready(self.slots[i][0])

    def close(self) -> None:
        for pipe, _ in self.slots:
            with contextlib.suppress(BrokenPipeError, OSError, ValueError):
                pipe.writing.write("null\n")
                pipe.writing.close()
        for _, process in self.slots:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _package_root() -> str:
    """The folder holding the ``training`` package, first on the workers' path, so they run
    this very code (a checkout or an installed package alike)."""
    root = str(Path(__file__).resolve().parents[2])
    rest = os.environ.get("PYTHONPATH")
    return root + (os.pathsep + rest if rest else "")


# --------------------------------------------------------------------------- the tuner


def tune_local(
    spec: TuningSpec, data_dir: Path, out_dir: Path, echo=print, show_progress: bool = True
) -> TuningResult:
    """Run the search; returns every trial and the best completed one (also in ``best/``)."""
    import optuna
    from optuna.trial import TrialState

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    _check_out(out_dir, data_dir)
    sampler, pruner = _sampler_and_pruner(spec)
    study = optuna.create_study(
        study_name=STUDY_NAME,
        direction="maximize" if spec.objective.direction == MAXIMIZE else "minimize",
        sampler=sampler,
        pruner=pruner,
    )
    if spec.strategy == "grid":
        for params in _grid(spec):
            study.enqueue_trial(params)
    sign = -1.0 if spec.objective.direction == MAXIMIZE else 1.0
    report = spec.strategy == "hyperband" or spec.early_stopping == "auto"
    distributions = _distributions(spec)
    cores = os.cpu_count() or 1
    if spec.max_parallel_jobs > cores:
        echo(
            f"note: {spec.max_parallel_jobs} jobs at a time on {cores} cores: they share the "
            "cores (each worker is a Python process of its own)"
        )
    lock = _lock(out_dir)
    jobs_dir = out_dir / JOBS_DIR
    try:
        workers = _Workers(spec.max_parallel_jobs, data_dir, spec, jobs_dir)  # reads the data
    except BaseException:
        lock.release()
        raise
    _clear_previous(out_dir, echo)  # only now: every check above has passed
    jobs_dir.mkdir(parents=True, exist_ok=True)
    echo(
        f"tuning {', '.join(r.describe() for r in spec.ranges)} toward "
        f"{spec.objective.direction.lower()} {spec.objective.metric}: {spec.max_jobs} jobs, "
        f"{spec.max_parallel_jobs} at a time, {spec.strategy}"
        + (", stopping hopeless trials" if report else "")
    )
    trials: list[Trial] = []
    best: Trial | None = None
    try:
        while len(trials) < spec.max_jobs:
            size = min(spec.max_parallel_jobs, spec.max_jobs - len(trials))
            asked = [study.ask(distributions) for _ in range(size)]
            batch = [
                Trial(t.number, job_name(t.number), _as_hyperparameters(spec, t.params))
                for t in asked
            ]
            _run_batch(workers, batch, asked, spec.objective.metric, report, sign)
            for optuna_trial, trial in zip(asked, batch):
                if trial.status == COMPLETED:
                    study.tell(optuna_trial, trial.objective)
                elif trial.status == STOPPED:
                    study.tell(optuna_trial, state=TrialState.PRUNED)
                else:
                    study.tell(optuna_trial, state=TrialState.FAIL)
                trials.append(trial)
                if trial.status == COMPLETED and (
                    best is None or spec.objective.better(trial.objective, best.objective)
                ):
                    best = trial
                echo(_line(spec, trial, best))
            write_table(out_dir / TABLE_FILE, spec, trials)
        if best is not None:
            _keep_best(jobs_dir / best.job, out_dir / BEST_DIR)
    finally:
        workers.close()
        lock.release()
    result = TuningResult(spec, trials, best, out_dir)
    plot(result)
    counts = {s: sum(t.status == s for t in trials) for s in (COMPLETED, STOPPED, FAILED)}
    echo(
        f"{counts[COMPLETED]} completed, {counts[STOPPED]} stopped early, {counts[FAILED]} "
        f"failed; table {out_dir / TABLE_FILE}, plot {out_dir / PLOT_FILE}"
    )
    if best is None:
        raise UserError(
            "no tuning job completed (see the failures in the table): nothing to keep as "
            "the best model."
        )
    echo(
        f"best: {best.job}, {spec.objective.metric}={best.objective:.6g} with "
        + " ".join(f"{k}={v}" for k, v in best.params.items())
        + f"; its model: {out_dir / BEST_DIR / 'model.tar.gz'}"
    )
    return result


def _run_batch(
    workers: _Workers, batch: list[Trial], asked, metric: str, report: bool, sign: float
) -> None:
    """Send each trial to a worker and collect the answers; with ``report``, judge the
    running trials' epochs in lockstep, in trial order. ``sign`` turns the per-epoch loss
    into the study's direction (-1 when the objective is maximized)."""
    by_conn = {}
    for i, trial in enumerate(batch):
        conn = workers.slots[i][0]
        conn.send([trial.number, trial.job, trial.params, report])
        by_conn[conn] = (i, trial, asked[i])
    running = dict(by_conn)
    pending: dict = {}  # conn -> (epoch, loss) awaiting a verdict
    while running:
        for conn in wait(list(running)):
            i, trial, optuna_trial = running[conn]
            try:
                message = conn.recv()
            except EOFError:
                trial.status, trial.failure = FAILED, "its worker process died"
                del running[conn]
                pending.pop(conn, None)
                workers.replace(i)
                continue
            if message[0] == "epoch":
                pending[conn] = message[2:]
            else:
                _, _, metrics, stopped, epochs, failure, seconds = message
                trial.metrics, trial.epochs, trial.seconds = metrics, epochs, seconds
                if failure is not None:
                    trial.status, trial.failure = FAILED, failure
                elif not math.isfinite(metrics.get(metric, math.nan)):
                    trial.status = FAILED
                    trial.failure = f"the job emitted no finite {metric}"
                else:
                    trial.status = STOPPED if stopped else COMPLETED
                    trial.objective = metrics[metric]
                del running[conn]
        if report and running and set(pending) == set(running):
            for conn in sorted(pending, key=lambda c: running[c][1].number):
                epoch, loss = pending[conn]
                optuna_trial = running[conn][2]
                optuna_trial.report(sign * loss, epoch)
                conn.send(not optuna_trial.should_prune())
            pending.clear()


def _line(spec: TuningSpec, trial: Trial, best: Trial | None) -> str:
    value = (
        f"{spec.objective.metric}={trial.objective:.6g}"
        if not math.isnan(trial.objective)
        else trial.failure or "-"
    )
    if trial.status == STOPPED:
        value = f"stopped at epoch {trial.epochs}"
    params = " ".join(f"{k}={_short(v)}" for k, v in trial.params.items())
    leader = f"  (best {best.objective:.6g}: {best.job})" if best else ""
    return (
        f"{trial.job}/{spec.max_jobs:03d} {trial.status:<9} {value}  {params}  "
        f"{trial.seconds:.2f}s{leader}"
    )


def _short(value: str) -> str:
    try:
        return f"{float(value):.4g}" if "." in value or "e" in value else value
    except ValueError:
        return value


# --------------------------------------------------------------------------- outputs


def _clear_previous(out_dir: Path, echo) -> None:
    """A reused --out: the previous search's outputs go, by name; other files stay."""
    names = (TABLE_FILE, PLOT_FILE, JOBS_DIR, BEST_DIR)
    if any((out_dir / name).exists() for name in names):
        echo(f"note: {out_dir} holds a previous search; this one replaces its outputs")
    remove_named(out_dir, names)


def _check_out(out_dir: Path, data_dir: Path) -> None:
    """``--out`` must be a folder (or not exist yet) outside the data's channel folders, which
    training reads whole."""
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"--out {out_dir} is a file: pass a folder.", NOTHING_STARTED)
    resolved = out_dir.resolve()
    for channel in ("train", "validation", "test"):
        folder = (data_dir / channel).resolve()
        if resolved == folder or folder in resolved.parents:
            raise UserError(
                f"--out {out_dir} is inside the {channel}/ channel, which training reads "
                "whole: pass a folder outside the data's channels.",
                NOTHING_STARTED,
            )


def _lock(out_dir: Path) -> FileLock:
    """An exclusive lock on ``--out`` for the whole search: a second search into the same
    folder would remove the first's jobs under it."""
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        return FileLock(out_dir / LOCK_FILE).acquire()
    except Locked as held:
        raise UserError(
            f"--out {out_dir}: a search is running there ({held.holder}): wait for it, or pass "
            "another --out.",
            NOTHING_STARTED,
        ) from None


def _keep_best(job_dir: Path, best_dir: Path) -> None:
    if not (job_dir / "model.tar.gz").exists():
        raise UserError(f"the best job's model is missing: {job_dir / 'model.tar.gz'}")
    best_dir.mkdir(parents=True, exist_ok=True)
    for name in BEST_FILES:
        if (job_dir / name).exists():
            shutil.copyfile(job_dir / name, best_dir / name)


def write_table(path: Path, spec: TuningSpec, trials: list[Trial]) -> None:
    """One row per job, in job order: id, status, the tuned hyperparameters, the objective,
    every other final metric, epochs, seconds, why it failed."""
    others = sorted({k for t in trials for k in t.metrics} - {spec.objective.metric})
    header = ["job", "status", *spec.tuned, spec.objective.metric, *others]
    header += ["epochs", "seconds", "failure"]
    text = io.StringIO(newline="")
    out = csv.writer(text)
    out.writerow(header)
    for t in sorted(trials, key=lambda t: t.number):
        row = [t.job, t.status, *(t.params[n] for n in spec.tuned)]
        row += [_cell(t.metrics.get(spec.objective.metric))]
        row += [_cell(t.metrics.get(k)) for k in others]
        row += [t.epochs, f"{t.seconds:.2f}", t.failure]
        out.writerow(row)
    write_whole(path, text.getvalue().encode())


def _cell(value) -> str:
    return "" if value is None else repr(float(value))


def plot(result: TuningResult) -> Path:
    """The objective per job with the best so far, and against each tuned hyperparameter."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    spec, trials = result.spec, sorted(result.trials, key=lambda t: t.number)
    panels = 1 + len(spec.ranges)
    fig, axes = plt.subplots(1, panels, figsize=(4.2 * panels, 3.6), squeeze=False)
    axes = axes[0]
    metric = spec.objective.metric
    done = [t for t in trials if t.status == COMPLETED]
    stopped = [t for t in trials if t.status == STOPPED and metric in t.metrics]
    ax = axes[0]
    ax.scatter([t.number + 1 for t in done], [t.objective for t in done], label="completed")
    if stopped:
        ax.scatter(
            [t.number + 1 for t in stopped],
            [t.metrics[metric] for t in stopped],
            marker="x",
            label="stopped early",
        )
    best_x, best_y, leader = [], [], None
    for t in trials:
        if t.status == COMPLETED and (leader is None or spec.objective.better(t.objective, leader)):
            leader = t.objective
        if leader is not None:
            best_x.append(t.number + 1)
            best_y.append(leader)
    ax.step(best_x, best_y, where="post", color="black", label="best so far")
    ax.set_xlabel("job")
    ax.set_ylabel(f"{metric} ({spec.objective.direction.lower()})")
    ax.set_title("objective per job")
    ax.legend(fontsize=8)
    for ax, r in zip(axes[1:], spec.ranges):
        xs = [t.params[r.name] for t in done]
        ys = [t.objective for t in done]
        if r.kind == CATEGORICAL:
            ax.scatter(xs, ys)
        else:
            ax.scatter([float(x) for x in xs], ys)
            if r.log:
                ax.set_xscale("log")
        if result.best is not None:
            b = result.best.params[r.name]
            ax.scatter(
                [b if r.kind == CATEGORICAL else float(b)],
                [result.best.objective],
                marker="*",
                s=160,
                color="red",
                label="best",
            )
            ax.legend(fontsize=8)
        ax.set_xlabel(r.name)
        ax.set_title(f"{metric} vs {r.name}", fontsize=9)
    fig.tight_layout()
    path = result.out_dir / PLOT_FILE
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt, BrokenPipeError, EOFError):  # tuner went away
        main()
