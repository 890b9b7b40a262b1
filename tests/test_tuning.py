"""Tuning: the one definition (ranges, objectives, strategies, limits) and the local tuner,
on a dataset the project was not developed on (scikit-learn's breast cancer data)."""

from __future__ import annotations

import csv
import json
import math
import re
import shutil

import numpy as np
import pytest

from training.cli import main
from training.core import artifact, tuning
from training.core import hyperparameters as hps
from training.core import metrics as lm
from training.core.losses import BINARY, MULTICLASS, REGRESSOR
from training.data.channels import read_channel
from training.data.prepare import PrepareConfig, prepare
from training.errors import TuningError, UserError
from training.local.trainer import objective_loss, train_local
from training.local.training_record import TrainingRecord
from training.local.tuner import tune_local

ALL = ("train", "validation", "test")


def _define(texts, predictor=BINARY, channels=ALL, **kw):
    kw.setdefault("max_jobs", 8)
    kw.setdefault("max_parallel_jobs", 2)
    ranges = [tuning.parse_range(t) for t in texts]
    return tuning.define(ranges, predictor_type=predictor, channels=channels, warn=print, **kw)


# --------------------------------------------------------------------------- the definition


def test_every_tunable_recommended_range_is_valid_for_linear_learner():
    for name, tunable in tuning.TUNABLE.items():
        r = tuning.parse_range(name)
        assert r.name == name and r.kind == tunable.kind
        if r.kind != tuning.CATEGORICAL:
            assert (r.low, r.high) == tunable.recommended


def test_ranges_parse_to_sagemakers_parameter_ranges():
    spec = _define(
        ["learning_rate=0.0001:1:log", "mini_batch_size=100:5000", "use_bias", "wd"],
        early_stopping="off",
    )

    def numeric(name, low, high, scale):
        return {"Name": name, "MinValue": low, "MaxValue": high, "ScalingType": scale}

    assert spec.parameter_ranges() == {
        "IntegerParameterRanges": [numeric("mini_batch_size", "100", "5000", "Auto")],
        "ContinuousParameterRanges": [
            numeric("learning_rate", "0.0001", "1", "Logarithmic"),
            numeric("wd", "1e-07", "1", "Logarithmic"),
        ],
        "CategoricalParameterRanges": [{"Name": "use_bias", "Values": ["true", "false"]}],
    }
    assert spec.static["num_models"] == "1"  # SageMaker trains one model per tuning job


def test_ranges_file_takes_both_shapes_and_round_trips_sagemakers(tmp_path):
    spec = _define(["learning_rate=0.001:0.5:log", "mini_batch_size=10:200", "use_bias=true"])
    aws_shape = tmp_path / "aws.json"
    aws_shape.write_text(json.dumps(spec.parameter_ranges()))
    by_name = sorted(tuning.ranges_from_json(aws_shape), key=lambda r: r.name)
    assert by_name == sorted(spec.ranges, key=lambda r: r.name)
    simple = tmp_path / "simple.json"
    simple.write_text(json.dumps({"wd": "1e-6:0.1:log", "use_bias": [True, False], "l1": None}))
    parsed = {r.name: r for r in tuning.ranges_from_json(simple)}
    assert parsed["wd"].low == 1e-6 and parsed["wd"].scale == "log"
    assert parsed["use_bias"].values == ("true", "false")
    assert parsed["l1"].high == 1.0  # a bare name: AWS's recommended range
    wrapped = tmp_path / "described.json"  # as DescribeHyperParameterTuningJob shows them
    wrapped.write_text(json.dumps({"ParameterRanges": spec.parameter_ranges()}))
    assert sorted(tuning.ranges_from_json(wrapped), key=lambda r: r.name) == sorted(
        spec.ranges, key=lambda r: r.name
    )


@pytest.mark.parametrize(
    ("doc", "said"),
    [
        (
            {
                "ContinuousParameterRanges": [
                    {"Name": "wd", "MinValue": "0.1", "MaxValue": "1", "ScalingType": ["Auto"]}
                ]
            },
            "wd's ScalingType must be one of",
        ),
        ({"ContinuousParameterRanges": [{"Name": "wd", "MaxValue": "1"}]}, "needs MinValue"),
        ({"CategoricalParameterRanges": [{"Name": "wd", "Values": ["0.001:1"]}]}, "outside"),
        ({"CategoricalParameterRanges": [{"Name": "use_bias", "Values": "true"}]}, "a list"),
        ({"wd": {"min": 0.1}}, '"wd" must be "LOW:HIGH[:SCALE]", a list of values, or null'),
        ([1, 2], "expected a JSON object"),
    ],
)
def test_a_bad_ranges_file_is_one_clear_error(tmp_path, doc, said):
    path = tmp_path / "ranges.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(TuningError) as err:
        tuning.ranges_from_json(path)
    assert f"--ranges-file {path}" in str(err.value) and said in str(err.value)


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("epochs=1:10", "'epochs' is not tunable"),
        ("learning_rat=0.1:1", "Did you mean 'learning_rate'"),
        ("learning_rate=0:1", "learning_rate=0 is outside what Linear Learner accepts"),
        ("mini_batch_size=0:100", "mini_batch_size=0 is outside"),
        ("wd=0.5:0.1", "the low end must be below the high end"),
        ("wd=0:1:log", "a log scale needs a low end above 0"),
        ("mini_batch_size=1:100:reverse_log", "reverse_log is for continuous ranges"),
        ("wd=0.1:1.5:reverse_log", "reverse_log is for continuous ranges"),
        ("use_bias=true,maybe", "use_bias=maybe is outside"),
        ("use_bias=true,true", "a value is listed twice"),
        ("use_bias=true:false", "takes values, not a range"),
        ("wd=1e-7:1:cubic", "unknown scale 'cubic'"),
        ("mini_batch_size=1.5:100", "'1.5' is not an integer"),
        ("learning_rate=nan:1", "'nan' is not a number"),
        ("learning_rate=1e309:2e309", "not a finite number"),
        ("mini_batch_size=١٠٠:200", "is not an integer"),
        ("wd=1_0:20", "is not a number"),
        ("use_bias=true,TRUE", "a value is listed twice"),
        ("learning_rate=1e-1,0.1", "a value is listed twice"),
    ],
)
def test_a_bad_range_is_refused_naming_the_flag_and_the_fix(text, said):
    with pytest.raises(TuningError) as err:
        tuning.parse_range(text)
    assert "--ranges" in str(err.value) and said in str(err.value)


@pytest.mark.parametrize(
    ("texts", "kw", "said"),
    [
        (["wd"], {"objective": "validation:mse"}, "a binary_classifier does not emit it"),
        (["wd"], {"objective": "validation:accuracy"}, "not a metric Linear Learner emits"),
        (["wd"], {"max_parallel_jobs": 9}, "--max-parallel-jobs 9 is above --max-jobs 8"),
        (
            ["wd"],
            {"channels": ("train", "test")},
            "no validation/ channel, so the metric is never emitted",
        ),
        (["wd"], {"strategy": "grid"}, "--strategy grid: searches listed values only"),
        (["use_bias"], {"strategy": "grid", "max_jobs": 3}, "a grid runs every combination, 2"),
        (["use_bias"], {}, "the ranges hold only 2 distinct combinations"),
        (["wd", "wd=0.1:1"], {}, "wd given more than once"),
        (["wd"], {"static": {"wd": "0.1"}}, "both tuned (--ranges) and fixed"),
        (
            ["wd"],
            {"strategy": "hyperband", "objective": "validation:roc_auc_score"},
            "--strategy hyperband: stops trials on what Linear Learner emits every epoch",
        ),
        (
            ["wd"],
            {"early_stopping": "auto", "objective": "validation:binary_f_beta"},
            "--early-stopping auto: stops trials on what Linear Learner emits every epoch",
        ),
        (["wd"], {"strategy": "hyperband", "early_stopping": "auto"}, "SageMaker takes early"),
        ([], {}, "name at least one hyperparameter to tune"),
        (["wd"], {"seed": 2**31}, "--seed 2147483648: use 0 to 2147483647"),
        (
            ["wd"],
            {"strategy": "hyperband", "static": {"epochs": "20001"}},
            "SageMaker's Hyperband hands out at most 20000",
        ),
        (
            [
                "mini_batch_size=" + ",".join(map(str, range(1, 31))),
                "l1=" + ",".join(str(i / 100) for i in range(1, 31)),
            ],
            {"strategy": "grid", "max_jobs": None},
            "900 combinations; a grid runs each as a job, and SageMaker runs at most 750",
        ),
    ],
)
def test_a_bad_definition_is_refused_before_anything_runs(texts, kw, said):
    with pytest.raises(TuningError) as err:
        _define(texts, **kw)
    assert said in str(err.value)
    assert err.value.outcome == "nothing was uploaded or started."


def test_a_binary_only_hyperparameter_is_refused_for_a_regressor():
    with pytest.raises(TuningError, match="tunes binary_classifiers only"):
        _define(["positive_example_weight_mult"], predictor=REGRESSOR)


def test_early_stopping_is_auto_only_where_sagemaker_allows_it():
    assert _define(["wd"]).early_stopping == "auto"
    assert _define(["wd"], objective="validation:roc_auc_score").early_stopping == "off"
    assert _define(["wd"], strategy="hyperband").early_stopping == "off"


def test_every_objective_is_a_metric_the_local_trainer_emits():
    rng = np.random.default_rng(0)
    y2, y3 = rng.integers(0, 2, 50).astype(float), rng.integers(0, 3, 50).astype(float)
    emitted = {
        BINARY: lm.evaluate(BINARY, rng.random(50), (rng.random(50) > 0.5) * 1.0, y2),
        MULTICLASS: lm.evaluate(MULTICLASS, rng.random((50, 3)), rng.integers(0, 3, 50) * 1.0, y3),
        REGRESSOR: lm.evaluate(REGRESSOR, rng.random(50), rng.random(50), rng.random(50)),
    }
    for metric, (_, types) in tuning.OBJECTIVES.items():
        name = metric.partition(":")[2]
        for predictor in types:
            assert name == lm.OBJECTIVE_LOSS or name in emitted[predictor], (metric, predictor)


# --------------------------------------------------------------------------- the local tuner


@pytest.fixture(scope="module")
def cancer(tmp_path_factory):
    """scikit-learn's breast cancer data, prepared as a user would."""
    from sklearn.datasets import load_breast_cancer

    root = tmp_path_factory.mktemp("cancer")
    frame = load_breast_cancer(as_frame=True).frame
    frame["target"] = frame["target"].map({0: "malignant", 1: "benign"})
    frame.to_csv(root / "cancer.csv", index=False)
    prepare(
        PrepareConfig(
            data=root / "cancer.csv",
            label="target",
            predictor_type=BINARY,
            out=root / "data",
            positive_class="malignant",
            show_progress=False,
        )
    )
    return root


def _rows(path):
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def searched(cancer):
    spec = _define(["learning_rate", "wd"], max_jobs=8, seed=3)
    return tune_local(spec, cancer / "data", cancer / "tune", echo=lambda _: None)


def test_local_tuning_keeps_every_job_and_the_best_real_artifact(cancer, searched):
    out = cancer / "tune"
    rows = _rows(out / "tuning.csv")
    assert [r["job"] for r in rows] == [f"job-{i:03d}" for i in range(1, 9)]
    assert {r["status"] for r in rows} <= {"Completed", "Stopped"}
    metric = "validation:objective_loss"
    completed = [r for r in rows if r["status"] == "Completed"]
    best = min(completed, key=lambda r: float(r[metric]))
    assert searched.best.job == best["job"]
    assert (out / "best" / "model.tar.gz").read_bytes() == (
        out / "jobs" / best["job"] / "model.tar.gz"
    ).read_bytes()
    assert (out / "tuning.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the reported objective is what the exported model scores on the validation channel
    model = artifact.load(out / "best" / "model.tar.gz")
    record = TrainingRecord.load(out / "best")
    assert record.hyperparameters["num_models"] == "1"
    assert record.hyperparameters["learning_rate"] == best["learning_rate"]
    validation = read_channel(cancer / "data" / "validation")
    recomputed = objective_loss(model, validation, hps.validate(record.hyperparameters))
    assert math.isclose(recomputed, float(best[metric]), rel_tol=1e-9)


def test_the_tuned_model_is_not_worse_than_the_untuned_one(cancer, searched, tmp_path):
    untuned = train_local(
        cancer / "data", tmp_path, {"num_models": "1"}, show_progress=False, echo=lambda _: None
    )
    metric = "validation:objective_loss"
    assert searched.best.objective <= untuned.metrics[metric]


def test_the_same_seed_gives_the_same_table_even_when_trials_are_stopped(cancer):
    spec = _define(["learning_rate", "wd"], max_jobs=10, strategy="hyperband", seed=2)
    tables = []
    for run in ("a", "b"):
        tune_local(spec, cancer / "data", cancer / run, echo=lambda _: None)
        rows = _rows(cancer / run / "tuning.csv")
        tables.append([{k: v for k, v in r.items() if k != "seconds"} for r in rows])
    assert tables[0] == tables[1]
    assert any(r["status"] == "Stopped" for r in tables[0])  # Hyperband did stop some


def test_tune_command_refuses_bad_input_with_one_line(cancer, capsys):
    code = main(
        ["tune", "--data-dir", str(cancer / "data"), "--out", str(cancer / "x"),
         "--ranges", "epochs=1:5", "--max-jobs", "4", "--max-parallel-jobs", "2"]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert re.search(r"error: --ranges: 'epochs' is not tunable.*--hyperparameters epochs=", err)
    assert not (cancer / "x").exists()


def test_run_tune_serves_the_best_job_and_reports_the_search(tmp_path):
    from training.run import RunConfig, run_local

    summary = run_local(RunConfig(out=tmp_path, tune=4, synth=False, show_progress=False),
                        echo=lambda _: None)  # fmt: skip
    rows = _rows(tmp_path / "tuning" / "tuning.csv")
    assert len(rows) == 4
    best = min(
        (r for r in rows if r["status"] == "Completed"),
        key=lambda r: float(r["validation:objective_loss"]),
    )
    assert (tmp_path / "model" / "model.tar.gz").read_bytes() == (
        tmp_path / "tuning" / "jobs" / best["job"] / "model.tar.gz"
    ).read_bytes()
    page = (tmp_path / "report.html").read_text()
    assert "<h2>Tuning</h2>" in page and f"★ {best['job']}" in page
    assert summary.metrics["endpoint_test:binary_classification_accuracy"] > 0.8


def test_a_local_grid_runs_every_combination_once(cancer, tmp_path):
    spec = _define(
        ["use_bias", "mini_batch_size=50,100,200"], strategy="grid", max_jobs=None,
        max_parallel_jobs=2,
    )  # fmt: skip
    result = tune_local(spec, cancer / "data", tmp_path, echo=lambda _: None)
    rows = _rows(tmp_path / "tuning.csv")
    assert len(rows) == 6 and {r["status"] for r in rows} == {"Completed"}
    assert sorted((r["use_bias"], r["mini_batch_size"]) for r in rows) == sorted(
        (b, m) for b in ("true", "false") for m in ("50", "100", "200")
    )
    assert (tmp_path / "best" / "model.tar.gz").exists() and result.best is not None


def test_a_data_problem_is_named_and_a_previous_search_survives_it(cancer, searched, tmp_path):
    out = cancer / "tune"  # holds the module's search
    before = (out / "tuning.csv").read_bytes()
    spec = _define(["wd"], static={"feature_dim": "7"})
    with pytest.raises(UserError) as err:
        tune_local(spec, cancer / "data", out, echo=lambda _: None)
    assert "feature_dim" in str(err.value) and "30" in str(err.value)
    assert (out / "tuning.csv").read_bytes() == before and (out / "best").is_dir()
    broken = tmp_path / "data"
    shutil.copytree(cancer / "data", broken)
    (broken / "preprocessing.json").write_text("{not json")
    with pytest.raises(UserError, match="preprocessing.json"):
        tune_local(_define(["wd"]), broken, tmp_path / "out", echo=lambda _: None)


def test_one_search_at_a_time_in_an_out_folder_and_never_inside_a_channel(cancer, tmp_path):
    from training.local.tuner import LOCK_FILE, _lock

    held = _lock(tmp_path)
    try:
        with pytest.raises(UserError, match=r"a search is running there \(pid \d+ on \S+ since "):
            tune_local(_define(["wd"]), cancer / "data", tmp_path, echo=lambda _: None)
        assert (tmp_path / LOCK_FILE).exists()  # the holder's, untouched
    finally:
        held.release()
    with pytest.raises(UserError, match="inside the train/ channel"):
        tune_local(_define(["wd"]), cancer / "data", cancer / "data" / "train" / "t")
    assert not (cancer / "data" / "train" / "t").exists()
