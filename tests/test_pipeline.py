"""`run --target local`: the whole offline pipeline, and what it leaves for a person to open."""

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from training.run import RunConfig, run_local

ROOT = Path(__file__).parents[1]


def quiet(_line):
    pass


def test_default_run_on_the_bundled_dataset(tmp_path):
    summary = run_local(
        RunConfig(out=tmp_path / "run", synth=False, show_progress=False), echo=quiet
    )
    out = summary.out
    for name in (
        "report.html",
        "predictions.csv",
        "summary.json",
        "model/model.tar.gz",
        "data/manifest.json",
        "data/train/train-00000.rec",
    ):
        assert (out / name).exists(), name
    assert not list(out.glob("*.png"))  # every plot is inside the report
    page = (out / "report.html").read_text()
    assert figures(page) == [
        "Loss per epoch",
        "ROC curve",
        "Precision-recall curve",
        "Confusion matrix",
    ]
    metrics = json.loads((out / "summary.json").read_text())["metrics"]
    assert metrics == dict(summary.metrics)
    assert not (out / "metrics.json").exists()  # the training record's name, beside the model
    # what came back over HTTP scores exactly like the trainer's own evaluation
    for name in ("binary_classification_accuracy", "roc_auc_score", "precision", "recall"):
        assert metrics[f"endpoint_test:{name}"] == pytest.approx(metrics[f"test:{name}"])
    assert metrics["test:roc_auc_score"] > 0.9
    predictions = pd.read_csv(out / "predictions.csv")
    test_rows = json.loads((out / "data" / "manifest.json").read_text())["channels"]["test"]
    assert len(predictions) == test_rows["rows"]
    assert set(predictions["predicted_class"]) <= {"female", "male"}
    assert set(summary.stage_seconds) == {
        "preflight + prepare",
        "train (local Linear Learner)",
        "serve + predict the test split over HTTP, as raw rows",
        "evaluate + report",
    }


def figures(page: str) -> list[str]:
    """The report's plots by title; each must be inline, so the page stands alone."""
    sources = re.findall(r'<img src="([^"]+)" alt="([^"]+)"', page)
    assert all(src.startswith("data:image/png;base64,") for src, _ in sources)
    return [alt for _, alt in sources]


def cells(page: str, first: str) -> list[str]:
    """The cells of the report's table row that starts with ``first``."""
    row = re.search(r"<tr><td[^>]*>" + re.escape(first) + r"</td>(.*?)</tr>", page)
    assert row, first
    return re.findall(r"<td[^>]*>(.*?)</td>", row.group(1))


def test_the_report_reads_as_a_page(tmp_path):
    """What a person looks for first: how it scored, the data, metrics by channel, the model
    chosen, the hyperparameters, the weights by feature name."""
    summary = run_local(
        RunConfig(out=tmp_path / "run", synth=False, show_progress=False), echo=quiet
    )
    page = (summary.out / "report.html").read_text()
    m = summary.metrics
    accuracy = m["endpoint_test:binary_classification_accuracy"]
    assert f"The served model on the 50 test rows: accuracy {accuracy:.4g}" in page
    # class balance per channel, from the manifest prepare wrote
    manifest = json.loads((summary.out / "data" / "manifest.json").read_text())
    train = manifest["channels"]["train"]
    assert sum(train["label_counts"]) == train["rows"]
    female = train["label_counts"][0]
    assert cells(page, "train")[:2] == [
        str(train["rows"]),
        f"{female} ({100 * female / train['rows']:.0f}%)",
    ]
    # metrics: a row per metric, a column per channel
    header = re.search(r"<tr><th>metric</th>(.*?)</tr>", page).group(1)
    assert re.findall(r"<th>(.*?)</th>", header) == ["train", "validation", "test", "endpoint_test"]
    assert cells(page, "roc_auc_score")[1:] == [
        f"{m['validation:roc_auc_score']:.6g}",
        f"{m['test:roc_auc_score']:.6g}",
        f"{m['endpoint_test:roc_auc_score']:.6g}",
    ]
    record = json.loads((summary.out / "model" / "metrics.json").read_text())
    assert cells(page, "epoch") == [str(record["selected_model"]["epoch"])]
    assert cells(page, "feature_dim") == ["11", "11"]  # given (by the data) and resolved
    assert cells(page, "epochs") == ["", record["hyperparameters"]["epochs"]]
    # the largest weight by name, as inspect reports it
    from training.core import artifact
    from training.inspection import summarize

    top = summarize(
        artifact.load(summary.out / "model" / "model.tar.gz"), "", manifest["feature_names"]
    ).largest_weights[0]
    assert cells(page, top.feature) == [f"{top.weight:.6g}"]


def test_a_reused_out_folder_says_so_and_keeps_nothing_of_the_old_run(tmp_path):
    out = tmp_path / "run"
    multiclass = RunConfig(
        out=out, label="species", predictor_type="multiclass_classifier", synth=False,
        show_progress=False,
    )  # fmt: skip
    run_local(multiclass, echo=quiet)
    (out / "roc.png").write_bytes(b"a plot an older version wrote")
    (out / "cdk.out").mkdir()
    (out / "notes.txt").write_text("mine")  # not a run's: stays
    said = []
    run_local(RunConfig(out=out, synth=False, show_progress=False), echo=said.append)
    assert said[0].startswith(f"note: {out} holds a previous run (finished ")
    assert not (out / "roc.png").exists() and not (out / "cdk.out").exists()
    assert (out / "notes.txt").read_text() == "mine"
    manifest = json.loads((out / "data" / "manifest.json").read_text())
    assert manifest["label"]["column"] == "sex"
    assert "Confusion matrix" in figures((out / "report.html").read_text())
    first = []
    run_local(RunConfig(out=tmp_path / "new", synth=False, show_progress=False), echo=first.append)
    assert not any(line.startswith("note:") for line in first)


def test_any_csv_regression_gets_regression_plots(tmp_path):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.standard_normal(400), "colour": rng.choice(list("rgb"), 400)})
    frame["target"] = 3 * frame["x"] + (frame["colour"] == "r") + rng.standard_normal(400) * 0.1
    frame.loc[::17, "x"] = np.nan
    data = tmp_path / "mine.csv"
    frame.to_csv(data, index=False)
    summary = run_local(
        RunConfig(
            out=tmp_path / "run",
            data=data,
            label="target",
            predictor_type="regressor",
            synth=False,
            show_progress=False,
            hyperparameters={"epochs": "20"},
        ),
        echo=quiet,
    )
    out = summary.out
    page = (out / "report.html").read_text()
    assert figures(page) == ["Loss per epoch", "Predicted vs actual", "Residuals"]
    assert "on scaled labels" in page  # the loss plot says its scale is not the table's
    manifest = json.loads((out / "data" / "manifest.json").read_text())
    assert not any("label_counts" in c for c in manifest["channels"].values())  # no classes
    assert summary.metrics["endpoint_test:mse"] == pytest.approx(
        summary.metrics["test:mse"], rel=1e-5
    )


def test_multiclass_run_has_a_confusion_matrix_with_class_names(tmp_path):
    summary = run_local(
        RunConfig(
            out=tmp_path / "run",
            label="species",
            predictor_type="multiclass_classifier",
            synth=False,
            show_progress=False,
        ),
        echo=quiet,
    )
    assert summary.metrics["endpoint_test:multiclass_accuracy"] > 0.9
    page = (summary.out / "report.html").read_text()
    assert "Confusion matrix" in figures(page)
    assert re.findall(r"<th>(Adelie|Chinstrap|Gentoo)</th>", page) == [
        "Adelie",
        "Chinstrap",
        "Gentoo",
    ]
    assert re.search(r"<th>class</th>", page)  # each largest weight says the class it scores


def test_run_command_prints_each_stage_and_where_things_are(tmp_path):
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "training",
            "run",
            "--target",
            "local",
            "--out",
            str(tmp_path / "r"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr
    for text in (
        "==> preflight + prepare",
        "==> train (local Linear Learner)",
        "==> serve + predict the test split over HTTP",
        "==> evaluate + report",
        "==> synthesize the CDK app",
        "report      ",
        "test:roc_auc_score",
    ):
        assert text in res.stdout, text
    assert re.search(r"done in \d+\.\ds", res.stdout)
    assert (tmp_path / "r" / "cdk.out" / "LlE2eBase.template.json").exists()
    # the endpoint stack too, fed by this run's model (synthesized beside serving and the report)
    assert (tmp_path / "r" / "cdk.out" / "LlE2eEndpoint.template.json").exists()
    assert "started when training ended" in res.stdout
    # a log, not a terminal: progress comes as plain lines, counting the rows prepare kept
    assert "\r" not in res.stderr
    assert "write recordio: 333/333 rows (100%)" in res.stderr
    assert "prepared 333 of 344 rows" in res.stderr


def test_run_with_a_csv_but_no_label_is_a_clear_error(tmp_path):
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "training",
            "run",
            "--out",
            str(tmp_path),
            "--data",
            str(ROOT / "training" / "datasets" / "penguins.csv"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 2 and "needs --label and --predictor-type" in res.stderr


def test_run_aws_predicts_the_test_split_through_the_deployed_endpoint(tmp_path, monkeypatch):
    """deploy_all itself is rehearsed with the real CDK CLI (test_rehearsal.py); here the
    stages after it run against moto, with the endpoint's answer planted."""
    import requests
    from moto import mock_aws

    from training.aws import deploy
    from training.aws.model_record import ModelRecord
    from training.run import run_aws

    def deployed(data_dir, **kwargs):
        record = ModelRecord(
            "s3://b/models/j/output/model.tar.gz",
            hyperparameters={"predictor_type": "binary_classifier"},
        )
        return deploy.Deployed(
            record, deploy.EndpointOutputs("ll-e2e-endpoint", "LlE2eEndpoint-Config-1")
        )

    monkeypatch.setattr(deploy, "deploy_all", deployed)
    with mock_aws():
        config = RunConfig(
            out=tmp_path / "run", target="aws", region="us-east-1", show_progress=False
        )
        from training.data.prepare import PrepareConfig, prepare

        rows = (
            prepare(
                PrepareConfig(
                    ROOT / "training" / "datasets" / "penguins.csv",
                    "sex",
                    "binary_classifier",
                    tmp_path / "probe",
                    drop_unlabeled=True,
                    show_progress=False,
                )
            )
            .channels["test"]
            .rows
        )
        answer = {
            "predictions": [
                {"score": 0.8 if i % 2 else 0.2, "predicted_label": i % 2} for i in range(rows)
            ]
        }
        requests.post(
            "http://motoapi.amazonaws.com/moto-api/static/sagemaker/endpoint-results",
            json={"results": [{"Body": json.dumps(answer), "ContentType": "application/json"}]},
            timeout=5,
        )
        summary = run_aws(config, echo=quiet)
    out = summary.out
    page = (out / "report.html").read_text()
    assert "ROC curve" in figures(page)
    assert "Trained on SageMaker" in page  # what the report cannot show, and where it is
    # the metrics are the planted answers scored against the test channel's labels, in order
    from training.data.channels import read_channel

    y = read_channel(out / "data" / "test").y
    labels = np.arange(rows) % 2
    m = summary.metrics
    assert m["endpoint_test:binary_classification_accuracy"] == pytest.approx((labels == y).mean())
    assert m["endpoint_test:recall"] == pytest.approx(labels[y == 1].mean())
    written = pd.read_csv(out / "predictions.csv")
    assert len(written) == rows


def test_trainer_and_endpoint_report_the_same_metrics_under_sagemakers_names(tmp_path):
    summary = run_local(
        RunConfig(
            out=tmp_path / "run",
            label="species",
            predictor_type="multiclass_classifier",
            hyperparameters={"f_beta": "2", "accuracy_top_k": "2"},
            synth=False,
            show_progress=False,
        ),
        echo=quiet,
    )
    m = summary.metrics
    names = (
        "multiclass_accuracy",
        "multiclass_top_k_accuracy",
        "dcg",
        "macro_recall",
        "macro_precision",
        "macro_f_beta",
        "multiclass_log_loss",
    )
    for name in names:  # one set of names, one function: the same values both ways
        assert m[f"endpoint_test:{name}"] == pytest.approx(m[f"test:{name}"], abs=1e-9), name
    p, r = m["endpoint_test:macro_precision"], m["endpoint_test:macro_recall"]
    assert m["endpoint_test:macro_f_beta"] == pytest.approx(5 * p * r / (4 * p + r))  # beta 2
    assert not [k for k in m if re.search(r"macro_f_\d|top_k_accuracy_\d", k)]
    log = (summary.out / "model" / "training.log").read_text()
    assert "test macro_f_2.000 <score>=" in log  # the container's spelling, beta in it
    assert "test multiclass_top_k_accuracy_2 <score>=" in log
