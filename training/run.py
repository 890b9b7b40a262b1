"""``run``: the whole pipeline, each stage timed, offline (``--target local``) or on AWS.

preflight -> prepare (preprocess, split, RecordIO channels) -> local Linear Learner training ->
local endpoint started behind the model's preprocessing -> the test split sent through HTTP as
raw rows, as the source had them -> evaluation -> report -> endpoint stopped -> CDK app
synthesized with the run's own model as the endpoint stack's assets (what ``--target aws``
would deploy). Everything
lands in the run's folder; ``summary.json`` (:class:`RunSummary`) says where, with every
metric by channel.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from training import inspection, predict, report
from training import project as project_folder
from training.aws.deploy_options import CALLER_GIVES_ARGS
from training.aws.naming import DEFAULT_PROJECT
from training.core import hyperparameters
from training.core import metrics as lm
from training.core.featurizer import Featurizer
from training.core.losses import BINARY, MULTICLASS, REGRESSOR
from training.core.metrics import Metrics, MetricsParams
from training.core.model import LinearModel, Predictions
from training.data.manifest import Manifest
from training.data.prepare import PrepareConfig, prepare
from training.datasets import PENGUINS
from training.errors import UserError
from training.files import remove_named
from training.local.server import serving
from training.local.trainer import MODEL_FILE, train_local
from training.local.training_record import TrainingRecord
from training.model_source import load_pipeline

DEFAULT_DATA = PENGUINS
SUMMARY_FILE = "summary.json"
PREDICTIONS_FILE = "predictions.csv"
DATA_DIR, MODEL_DIR, CDK_OUT_DIR = "data", "model", "cdk.out"  # inside the run's folder
TUNING_DIR = "tuning"  # run --tune N: the search's table, jobs and plot
# run --tune N searches AWS's recommended ranges of these, two jobs at a time at most
RUN_TUNE_RANGES = ("learning_rate", "wd")
RUN_TUNE_PARALLEL = 2
# everything a run writes in its folder: what a re-run into the same folder replaces
RUN_OUTPUTS = (
    SUMMARY_FILE, PREDICTIONS_FILE, report.REPORT_FILE, DATA_DIR, MODEL_DIR, CDK_OUT_DIR,
    TUNING_DIR, *report.LEGACY_PLOTS,
)  # fmt: skip
ENDPOINT_TEST = "endpoint_test"  # the test split as the endpoint answered it
CDK_VALIDATION_ENV = "CDK_VALIDATION"  # "false" turns off aws-cdk-lib's own template checks


@dataclass
class RunConfig:
    out: Path
    data: Path = DEFAULT_DATA
    label: str = "sex"
    predictor_type: str = BINARY
    hyperparameters: dict = field(default_factory=dict)
    drop_unlabeled: bool = True
    positive_class: str | None = None
    seed: int = 0
    synth: bool = True
    show_progress: bool = True
    target: str = "local"
    project: str = DEFAULT_PROJECT
    profile: str | None = None
    region: str | None = None
    tune: int = 0  # > 0: that many tuning jobs choose the model (local only)


class Stages:
    """Prints each stage as it starts and its time when it ends."""

    def __init__(self, echo):
        self.echo = echo
        self.times: dict[str, float] = {}

    def __call__(self, name: str):
        stages = self

        class _Stage:
            def __enter__(self):
                stages.echo(f"==> {name}")
                self.start = time.perf_counter()

            def __exit__(self, *exc):
                stages.times[name] = time.perf_counter() - self.start
                if exc[0] is None:
                    stages.echo(f"    {name}: {stages.times[name]:.2f}s")

        return _Stage()


def _begin(config: RunConfig, echo):
    """Both targets start alike: the output folder, the stage timer, preflight + prepare."""
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    _clear_previous_run(out, echo)
    stage = Stages(echo)
    started = time.perf_counter()
    with stage("preflight + prepare"):
        manifest = _prepare_stage(config, out)
    return out, stage, started, manifest


def _clear_previous_run(out: Path, echo) -> None:
    """A reused ``--out``: say so first, then remove what the previous run wrote (those names
    only; anything else in the folder stays), so nothing of it sits beside the new run."""
    summary = out / SUMMARY_FILE
    if not summary.exists():
        return
    when = datetime.fromtimestamp(summary.stat().st_mtime).strftime("%Y-%m-%d %H:%M")
    echo(f"note: {out} holds a previous run (finished {when}); this run replaces it")
    remove_named(out, RUN_OUTPUTS)


def _prepare_stage(config: RunConfig, out: Path) -> Manifest:
    return prepare(
        PrepareConfig(
            data=config.data,
            label=config.label,
            predictor_type=config.predictor_type,
            out=out / DATA_DIR,
            seed=config.seed,
            positive_class=config.positive_class,
            drop_unlabeled=config.drop_unlabeled,
            show_progress=config.show_progress,
        )
    )


@dataclass(frozen=True)
class RunSummary:
    """What a run leaves, written to ``summary.json``: where each output is, every metric by
    channel (the trainer's and what the endpoint answered for the test split), stage times."""

    out: Path
    report: Path
    model: str  # the model.tar.gz path, or its s3:// URL
    predictions: Path
    metrics: Metrics
    stage_seconds: dict[str, float]
    total_seconds: float
    cdk_out: Path | None = None

    def to_json(self) -> dict:
        return {
            "out": str(self.out),
            "report": str(self.report),
            "model": self.model,
            "predictions": str(self.predictions),
            "metrics": self.metrics.flat(),
            "stage_seconds": self.stage_seconds,
            "total_seconds": self.total_seconds,
            "cdk_out": None if self.cdk_out is None else str(self.cdk_out),
        }

    def write(self) -> Path:
        path = self.out / SUMMARY_FILE
        path.write_text(json.dumps(self.to_json(), indent=2))
        return path


def _report_stage(
    out: Path,
    config: RunConfig,
    manifest: Manifest,
    predicted: Predictions,
    test: predict.RawRows,
    params: MetricsParams,
    trained: TrainingRecord | None,
    model: LinearModel | None = None,
    given: dict | None = None,
    tuned=None,
) -> Metrics:
    """predictions.csv and report.html; returns every metric of the run. ``test``: the test
    split's raw rows with their labels; ``trained`` and ``model``: the local trainer's record
    and model (None for SageMaker: its metrics are in the job's logs); ``given``: the
    hyperparameters as the training was given them; ``tuned``: the search that chose the
    model (:class:`training.local.tuner.TuningResult`), if one did."""
    predictor, y = config.predictor_type, test.label
    endpoint = lm.evaluate(predictor, predicted.score, predicted.predicted_label, y, params)
    predict.write_predictions_csv(
        out / PREDICTIONS_FILE,
        predicted,
        test.ids,
        test.id_name,
        y,
        test.label_name,
        manifest.label.classes,
    )
    selected = trained.selected_model if trained else None
    figures = [
        report.loss_curve(
            trained.history if trained else [], selected.epoch if selected else None,
            predictor == REGRESSOR,
        )
    ]  # fmt: skip
    classes = [str(c) for c in manifest.label.classes or ["0", "1"]]
    if predictor == BINARY:
        threshold = None if model is None else float(model.threshold)
        figures += report.binary_plots(
            predicted.score, y, predicted.predicted_label, classes, threshold
        )
    elif predictor == MULTICLASS:
        figures.append(report.confusion(predicted.predicted_label, y.astype(int), classes))
    else:
        figures += report.regression_plots(predicted.score, y)
    all_metrics = (trained.metrics if trained else Metrics({})) | Metrics.of(
        [(ENDPOINT_TEST, endpoint)]
    )
    notes = []
    weights = []
    if model is not None:
        summary = inspection.summarize(model, "", list(manifest.feature_names), classes, top=10)
        weights = [(w.feature, w.label or "", w.weight) for w in summary.largest_weights]
    else:
        notes.append("Trained on SageMaker: per-epoch losses and resolved hyperparameters are "
                     "in the training job's CloudWatch logs.")  # fmt: skip
    report.write_html(
        out,
        report.RunReport(
            title=f"Linear Learner on {Path(config.data).name}",
            headline=_headline(predictor, endpoint, len(y)),
            facts={
                "data": str(config.data),
                "label": config.label,
                "predictor type": predictor,
                "trained and served": "locally" if config.target == "local" else "on SageMaker",
            },
            profile=_profile(manifest),
            metrics=all_metrics,
            selected_model=selected.to_json() if selected else None,
            hyperparameters_given={
                k: str(v) for k, v in {**manifest.hyperparameters, **(given or {})}.items()
            },
            hyperparameters_resolved=dict(trained.hyperparameters) if trained else {},
            largest_weights=weights,
            figures=[f for f in figures if f is not None],
            notes=notes,
            tuning=_tuning_section(tuned) if tuned is not None else None,
        ),
    )
    return all_metrics


HEADLINE_METRICS = {  # what the report's first sentence says, per predictor type
    BINARY: (("binary_classification_accuracy", "accuracy"), ("roc_auc_score", "ROC AUC")),
    MULTICLASS: (("multiclass_accuracy", "accuracy"), ("macro_f_beta", "macro F-beta")),
    REGRESSOR: (("rmse", "RMSE"), ("absolute_loss", "mean absolute error")),
}


def _headline(predictor: str, endpoint: dict, rows: int) -> str:
    said = [f"{label} {endpoint[name]:.4g}" for name, label in HEADLINE_METRICS[predictor]
            if name in endpoint]  # fmt: skip
    return f"The served model on the {rows} test rows: {', '.join(said)}."


def _tuning_section(tuned) -> report.TuningSection:
    """The search's table as tuning.csv holds it, and its plot."""
    import csv

    with tuned.table.open(newline="") as f:
        rows = list(csv.reader(f))
    spec, best = tuned.spec, tuned.best
    keep = ["job", "status", *spec.tuned, spec.objective.metric, "epochs", "seconds"]
    index = [rows[0].index(name) for name in keep]
    return report.TuningSection(
        summary=(
            f"{len(tuned.trials)} training jobs ({spec.strategy} search, one model each) "
            f"toward {spec.objective.direction.lower()} {spec.objective.metric}; the served "
            f"model is {best.job}'s ({spec.objective.metric} {best.objective:.4g}). Every "
            f"job's metrics: {TUNING_DIR}/tuning.csv."
        ),
        header=keep,
        rows=[[row[i] for i in index] for row in rows[1:]],
        best=best.job,
        plot=tuned.plot.read_bytes(),
    )


def _profile(manifest: Manifest) -> report.DataProfile:
    return report.DataProfile(
        source=Path(manifest.source.path).name,
        source_rows=manifest.source.rows,
        unlabeled_rows_dropped=manifest.source.unlabeled_rows_dropped,
        rows={name: c.rows for name, c in manifest.channels.items()},
        classes=list(manifest.label.classes),
        label_counts={
            name: c.label_counts for name, c in manifest.channels.items() if c.label_counts
        },
        numeric=list(manifest.input_columns.numeric),
        categorical=list(manifest.input_columns.categorical),
        dropped=dict(manifest.input_columns.dropped),
        feature_dim=manifest.feature_dim,
    )


def run_local(config: RunConfig, echo=print) -> RunSummary:
    """Run every stage; returns the summary (paths, metrics, stage times)."""
    if config.tune:
        _tune_ranges(config)  # before anything is written
    out, stage, started, manifest = _begin(config, echo)
    tuned = None
    if config.tune:
        with stage(f"tune ({config.tune} local training jobs choose the model)"):
            tuned, trained = _tune_stage(config, out, echo)
    else:
        with stage("train (local Linear Learner)"):
            trained = train_local(
                out / DATA_DIR,
                out / MODEL_DIR,
                config.hyperparameters,
                seed=config.seed,
                show_progress=config.show_progress,
                echo=lambda line: None,
            )
            selected = trained.selected_model
            averaged = len(selected.averaged_models)
            echo(
                f"    selected model {selected.model} of "
                f"{trained.hyperparameters['num_models']}: learning_rate "
                f"{selected.learning_rate:.4g}, wd {selected.wd:.3g}"
                + (f" (exported: the average of the {averaged} best)" if averaged > 1 else "")
            )
    model_path = out / MODEL_DIR / MODEL_FILE
    synthesis = Synthesis(out / CDK_OUT_DIR, model_path, echo) if config.synth else None
    try:
        served = load_pipeline(str(model_path))  # behind the preprocessing train put beside it
        test = _test_rows(out, manifest, served.featurizer)
        with stage("serve + predict the test split over HTTP, as raw rows"):
            with serving(served) as port:
                echo(f"    endpoint http://127.0.0.1:{port}/invocations")
                predicted = predict.predict_raw(
                    predict.local_invoker("127.0.0.1", port), test, served.featurizer
                )
            echo(f"    {len(test)} rows predicted; endpoint stopped")
        with stage("evaluate + report"):
            all_metrics = _report_stage(
                out, config, manifest, predicted, test, served.model.metrics_params, trained,
                served.model, config.hyperparameters, tuned,
            )  # fmt: skip
        cdk_out = None
        if synthesis is not None:
            with stage("synthesize the CDK app with this model (what --target aws deploys)"):
                cdk_out = synthesis.result()
    finally:
        if synthesis is not None:
            synthesis.stop()
    return _summary(out, stage, started, all_metrics, str(model_path), cdk_out)


def _tune_ranges(config: RunConfig) -> list[str]:
    """What ``run --tune`` searches: RUN_TUNE_RANGES less what --hyperparameters fixes."""
    ranges = [name for name in RUN_TUNE_RANGES if name not in config.hyperparameters]
    if not ranges:
        raise UserError(
            f"--tune: {' and '.join(RUN_TUNE_RANGES)} are all fixed by --hyperparameters, "
            "so run has nothing to tune; drop one, or use `python -m training tune --ranges`."
        )
    return ranges


def _tune_stage(config: RunConfig, out: Path, echo):
    """``tune --target local`` on the run's channels (AWS's recommended ranges of
    RUN_TUNE_RANGES); the best job's files become the run's model."""
    from training.local.tuner import BEST_DIR, BEST_FILES, tune_local
    from training.tune import spec_for

    spec = spec_for(
        out / DATA_DIR,
        _tune_ranges(config),
        max_jobs=config.tune,
        max_parallel_jobs=min(RUN_TUNE_PARALLEL, config.tune),
        hyperparameters=config.hyperparameters,
        seed=config.seed,
        echo=echo,
    )
    tuned = tune_local(spec, out / DATA_DIR, out / TUNING_DIR, echo=lambda line: None)
    (out / MODEL_DIR).mkdir(exist_ok=True)
    for name in BEST_FILES:
        if (out / TUNING_DIR / BEST_DIR / name).exists():
            shutil.copyfile(out / TUNING_DIR / BEST_DIR / name, out / MODEL_DIR / name)
    best = tuned.best
    echo(
        f"    best of {len(tuned.trials)}: {best.job}, {spec.objective.metric} "
        f"{best.objective:.4g} with "
        + ", ".join(f"{k} {float(v):.3g}" for k, v in best.params.items())
    )
    return tuned, TrainingRecord.load(out / MODEL_DIR)


def _test_rows(out: Path, manifest: Manifest, featurizer) -> predict.RawRows:
    """The test split as the source had it, with its labels (prepare's test_rows.csv)."""
    return predict.read_raw(out / DATA_DIR / manifest.test_rows, featurizer, labelled=True)


def run_aws(config: RunConfig, echo=print) -> RunSummary:
    """The same stages against AWS: deploy (base stack, SageMaker training, endpoint stack,
    endpoint check), then the test split through the deployed endpoint, and the report."""
    from training.aws import session as aws
    from training.aws.deploy import deploy_all

    out, stage, started, manifest = _begin(config, echo)
    with stage("deploy: base stack, training on SageMaker, endpoint stack"):
        deployed = deploy_all(
            out / DATA_DIR,
            project=config.project,
            profile=config.profile,
            region=config.region,
            echo=echo,
        )
    endpoint = deployed.endpoint.endpoint_name
    featurizer = Featurizer.load(out / DATA_DIR / manifest.preprocessing)
    test = _test_rows(out, manifest, featurizer)
    with stage(f"predict the test split through {endpoint}, as raw rows"):
        sess = aws.session(config.profile, config.region)
        invoke = predict.aws_invoker(sess, endpoint)
        predicted = predict.predict_raw(invoke, test, featurizer)
    # the job's F-beta and top-k, SageMaker's defaults for what it was not given
    trained_with = hyperparameters.validate(deployed.record.hyperparameters or {})
    params = MetricsParams(f_beta=trained_with.f_beta, accuracy_top_k=trained_with.accuracy_top_k)
    with stage("evaluate + report"):
        all_metrics = _report_stage(
            out, config, manifest, predicted, test, params, None, None,
            deployed.record.hyperparameters,
        )  # fmt: skip
    echo(
        f"    the endpoint {endpoint} keeps running (and billing): "
        "bash scripts/destroy-all.sh removes everything"
    )
    return _summary(out, stage, started, all_metrics, deployed.record.model_data_url, None)


def _summary(
    out: Path, stage: Stages, started: float, metrics: Metrics, model: str, cdk_out: Path | None
) -> RunSummary:
    summary = RunSummary(
        out=out,
        report=out / report.REPORT_FILE,
        model=model,
        predictions=out / PREDICTIONS_FILE,
        metrics=metrics,
        stage_seconds=stage.times,
        total_seconds=time.perf_counter() - started,
        cdk_out=cdk_out,
    )
    summary.write()
    return summary


class Synthesis:
    """``cdk synth`` of the app with this run's model (and the preprocessing beside it) as the
    endpoint stack's assets: what deploying it would create. It takes most of the run's time,
    so it starts in the background as soon as the model exists and runs beside serving and the
    report; and it skips the CDK's built-in CloudFormation validation (``CDK_VALIDATION=false``),
    which only warns, finds nothing in these templates, and costs ~5.5 s of a ~11 s synth to
    start its engine. ``npx cdk synth`` in the project runs it, and the tests require its report
    to be empty for every settings variant (``tests/test_stacks.py``)."""

    def __init__(self, out: Path, model_path: Path, echo):
        self.out, self.echo, self.process = out, echo, None
        self.started = time.perf_counter()
        self.root = project_folder.find()  # the CDK app of the project this runs in
        npx = shutil.which("npx")
        if self.root is None or npx is None:
            return
        if not (self.root / "node_modules" / ".bin" / "cdk").exists():
            return
        # cdk.json's options, not those a real deploy kept: this is the offline twin's synth
        model = ["-c", f"model_path={Path(model_path).resolve()}", *CALLER_GIVES_ARGS]
        self.process = subprocess.Popen(
            [npx, "--no-install", "cdk", "synth", "--no-notices", "-q", "-o", str(out), *model],
            cwd=self.root,
            env={**os.environ, CDK_VALIDATION_ENV: "false"},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def result(self) -> Path | None:
        """Wait for it; the cdk.out folder, or None (said why) if it could not run."""
        if self.process is None:
            self.echo(
                "    skipped: not inside the project (no cdk.json here or above)"
                if self.root is None
                else "    skipped: no CDK CLI here (bash scripts/setup.sh installs it)"
            )
            return None
        _, stderr = self.process.communicate()
        self.echo(
            f"    {time.perf_counter() - self.started:.1f}s in all, "
            "started when training ended, beside serving and the report"
        )
        if self.process.returncode != 0:
            self.echo(f"    cdk synth failed:\n{stderr[-2000:]}")
            return None
        for line in stderr.splitlines():
            if line.startswith("endpoint stack skipped"):
                self.echo("    " + line)
        templates = sorted(p.name for p in self.out.glob("*.template.json"))
        self.echo(f"    templates: {', '.join(templates)} in {self.out}")
        return self.out

    def stop(self) -> None:
        """The run failed before waiting for it: leave no CDK process behind."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.communicate()
