"""predict: the same command against the local endpoint and (through moto) the deployed one."""

import json
import re

import numpy as np
import pytest
import requests
from memory_cap import run_capped, sparse_file
from moto import mock_aws

from training import predict
from training.cli import main
from training.content_types import RECORDIO
from training.core import artifact
from training.core.model import LinearModel
from training.endpoint_payload import (
    REALTIME,
    SERVERLESS,
    answer_row_bound,
    answer_shape,
    endpoint_limits,
)

W = np.array([1.0, -2.0, 0.5], np.float32)


@pytest.fixture
def model_path(tmp_path):
    return artifact.save(
        LinearModel("binary_classifier", "logistic", W, np.float32(0.0), 0.5),
        tmp_path / "model.tar.gz",
    )


def rows(n=200, seed=0):
    X = np.random.default_rng(seed).standard_normal((n, 3)).astype(np.float32)
    return X, (X @ W > 0).astype(np.float32)


@pytest.mark.parametrize(
    "ctype", ["text/csv", "application/json", "application/x-recordio-protobuf"]
)
def test_requests_stay_under_the_payload_limit_and_keep_every_row(ctype):
    X, _ = rows(5000)
    bodies = list(predict.request_bodies(X, ctype, limit=20_000))
    assert len(bodies) > 5 and all(len(b) <= 20_000 for b in bodies)
    if ctype == "text/csv":
        assert sum(b.count(b"\n") for b in bodies) == 5000
    elif ctype == "application/json":
        assert sum(len(json.loads(b)["instances"]) for b in bodies) == 5000


def test_local_predict_command_writes_predictions_and_metrics(tmp_path, model_path, capsys):
    X, y = rows()
    data = tmp_path / "test.csv"
    np.savetxt(data, np.column_stack([y, X]), delimiter=",", fmt="%.7g")
    assert (
        main(
            [
                "predict",
                "--target",
                "local",
                "--model",
                str(model_path),
                "--input",
                str(data),
                "--labelled",
                "--content-type",
                "application/x-recordio-protobuf",
            ]
        )
        == 0
    )
    captured = capsys.readouterr()
    out = captured.out
    assert "200 predictions" in out
    assert re.search(r"test:binary_classification_accuracy +1\n", out)
    lines = (tmp_path / "test.csv.predictions.jsonl").read_text().splitlines()
    assert len(lines) == 200 and set(json.loads(lines[0])) == {"score", "predicted_label"}
    # stderr is not a terminal here: progress comes as a plain line, counting rows answered
    assert re.search(r"^predict: 200/200 rows \(100%\), [\d.]+s$", captured.err, re.M)
    assert (
        main(["-q", "predict", "--model", str(model_path), "--input", str(data), "--labelled"]) == 0
    )
    assert "predict:" not in capsys.readouterr().err  # -q: none


def test_predictions_of_a_channel_file_land_beside_the_data_not_in_its_channel(
    tmp_path, model_path, capsys
):
    """A channel folder is read whole by `train` and SageMaker: predict's default output for
    an input inside a prepared data folder goes to predictions/ beside that folder, and the
    next `train` preflight still passes."""
    from training.data.channel_checks import validate_channels
    from training.data.channels import ChannelWriter

    X, y = rows()
    data = tmp_path / "run" / "data"
    writer = ChannelWriter(data / "test", "test")
    writer.write(X, y)
    writer.close()
    (data / "manifest.json").write_text("{}")  # what marks prepare's folder
    channel = data / "test" / "test-00000.rec"
    assert main(["predict", "--model", str(model_path), "--input", str(channel)]) == 0
    written = tmp_path / "run" / "predictions" / "test-00000.rec.predictions.jsonl"
    assert f"200 predictions -> {written}" in capsys.readouterr().out
    assert len(written.read_text().splitlines()) == 200
    assert [f.name for f in (data / "test").iterdir()] == ["test-00000.rec"]
    validate_channels([data / "test"], "binary_classifier")  # nothing stray in the channel


def test_local_predict_names_a_wrong_feature_count(tmp_path, model_path, capsys):
    data = tmp_path / "bad.csv"
    data.write_text("1,2\n3,4\n")
    assert main(["predict", "--model", str(model_path), "--input", str(data)]) == 2
    assert "row 1 has 2 features, the model takes 3" in capsys.readouterr().err


def test_aws_predict_parses_what_the_endpoint_answers(tmp_path, model_path, capsys):
    X, y = rows(50)
    local = artifact.load(model_path).predict(X)
    answer = {
        "predictions": [
            {"score": float(s), "predicted_label": int(p)}
            for s, p in zip(local.score, local.predicted_label)
        ]
    }
    data = tmp_path / "test.csv"
    np.savetxt(data, np.column_stack([y, X]), delimiter=",", fmt="%.7g")
    with mock_aws():
        # moto's runtime returns canned bodies: queue the answers SageMaker would give, to
        # the first request (one row: its answer sizes the batches) and to the rest
        first = {"predictions": answer["predictions"][:1]}
        rest = {"predictions": answer["predictions"][1:]}
        requests.post(
            "http://motoapi.amazonaws.com/moto-api/static/sagemaker/endpoint-results",
            json={
                "results": [
                    {"Body": json.dumps(a), "ContentType": "application/json"}
                    for a in (first, rest)
                ]
            },
            timeout=5,
        )
        assert (
            main(
                [
                    "predict",
                    "--target",
                    "aws",
                    "--region",
                    "us-east-1",
                    "--input",
                    str(data),
                    "--labelled",
                ]
            )
            == 0
        )
    out = capsys.readouterr().out
    assert "50 predictions" in out and "test:roc_auc_score" in out


def test_aws_predict_calls_the_endpoint_the_endpoint_stack_deployed(
    tmp_path, model_path, monkeypatch, capsys
):
    """A serverless (or autoscaled) endpoint's name is not the real-time default: without
    --endpoint, predict calls the one the endpoint stack's EndpointName output names."""
    import boto3

    called = []
    real = predict.aws_invoker

    def recording(sess, endpoint):
        called.append(endpoint)
        return real(sess, endpoint)

    monkeypatch.setattr(predict, "aws_invoker", recording)
    X, _ = rows(3)
    local = artifact.load(model_path).predict(X)
    answer = [{"score": float(s)} for s in local.score]
    data = tmp_path / "x.csv"
    np.savetxt(data, X, delimiter=",", fmt="%.7g")
    argv = ["-q", "predict", "--target", "aws", "--region", "us-east-1", "--input", str(data)]
    with mock_aws():
        # moto answers from a queue: each run's one-row first request, then the rest, twice
        bodies = [{"predictions": answer[:1]}, {"predictions": answer[1:]}] * 2
        requests.post(
            "http://motoapi.amazonaws.com/moto-api/static/sagemaker/endpoint-results",
            json={
                "results": [
                    {"Body": json.dumps(b), "ContentType": "application/json"} for b in bodies
                ]
            },
            timeout=5,
        )
        boto3.client("cloudformation", region_name="us-east-1").create_stack(
            StackName="LlE2eEndpoint",
            TemplateBody=json.dumps(
                {
                    "Resources": {"T": {"Type": "AWS::SNS::Topic"}},
                    "Outputs": {"EndpointName": {"Value": "ll-e2e-endpoint-serverless"}},
                }
            ),
        )
        assert main(argv) == 0
        assert main([*argv, "--endpoint", "mine"]) == 0  # an explicit name still wins
    assert called == ["ll-e2e-endpoint-serverless", "mine"]


def test_aws_predict_with_a_non_linear_learner_answer_is_explained(tmp_path, capsys):
    data = tmp_path / "x.csv"
    data.write_text("1,2,3\n")
    with mock_aws():
        assert (
            main(["predict", "--target", "aws", "--region", "us-east-1", "--input", str(data)]) == 2
        )
    assert "not Linear Learner JSON" in capsys.readouterr().err


def test_predict_labelled_reports_the_f_beta_the_model_was_trained_with(tmp_path, capsys):
    """A model trained with f_beta=3 carries it in its artifact's metrics_params; predict
    reads it back and reports F-3 (it used to report F-1 whatever the model said)."""
    from sklearn.metrics import fbeta_score

    from training.core.metrics import MetricsParams

    X, y = rows(300, seed=3)
    y = np.where(np.random.default_rng(4).random(300) < 0.2, 1 - y, y)  # some mistakes
    model = LinearModel(
        "binary_classifier", "logistic", W, np.float32(0.3), 0.5, MetricsParams(f_beta=3.0)
    )
    path = artifact.save(model, tmp_path / "model.tar.gz")
    assert artifact.load(path).metrics_params.f_beta == 3.0
    data = tmp_path / "test.csv"
    np.savetxt(data, np.column_stack([y, X]), delimiter=",", fmt="%.9g")
    assert main(["-q", "predict", "--model", str(path), "--input", str(data), "--labelled"]) == 0
    out = capsys.readouterr().out
    reported = float(re.search(r"test:binary_f_beta +(\S+)", out).group(1))
    predicted = artifact.load(path).predict(np.loadtxt(data, delimiter=",")[:, 1:]).predicted_label
    f3, f1 = fbeta_score(y, predicted, beta=3), fbeta_score(y, predicted, beta=1)
    assert reported == pytest.approx(f3, abs=1e-5) and abs(f3 - f1) > 0.01


def test_a_corrupt_recordio_input_is_an_error_not_a_traceback(tmp_path, model_path, capsys):
    from training.data import recordio

    data = tmp_path / "rows.rec"
    with open(data, "wb") as fh:
        recordio.write_numpy_to_dense_tensor(fh, rows(10)[0])
    data.write_bytes(data.read_bytes()[:-7])  # cut off mid-record
    assert main(["-q", "predict", "--model", str(model_path), "--input", str(data)]) == 2
    err = capsys.readouterr().err
    assert "corrupt RecordIO-protobuf" in err and str(data) in err and "Traceback" not in err


def test_an_endpoint_that_cannot_start_its_workers_says_so_instead_of_hanging(tmp_path, model_path):
    """predict --model serves the model in-process: in a process at its memory limit the
    server's worker threads could not start, it accepted the requests anyway and predict
    waited for its 60 s timeout. Now it stops at once, saying why. (Each thread's stack is
    256 MiB here and the address space 1 GiB above what the process holds: 16 cannot start.)"""
    import subprocess
    import sys

    data = tmp_path / "rows.csv"
    data.write_text("1,2,3\n4,5,6\n")
    script = f"""
import resource, sys, threading
import training.cli, training.predict, training.local.server, numpy
from training.cli import main
threading.stack_size(256 << 20)
with open("/proc/self/status") as fh:
    held = next(int(line.split()[1]) for line in fh if line.startswith("VmSize")) * 1024
resource.setrlimit(resource.RLIMIT_AS, (held + (1 << 30), held + (1 << 30)))
sys.exit(main(["-q", "predict", "--model", {str(model_path)!r}, "--input", {str(data)!r}]))
"""
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=50)
    assert res.returncode == 2, res.stderr[-2000:]
    assert "the local endpoint could not start its 16 worker threads" in res.stderr
    assert "ulimit" in res.stderr and "Traceback" not in res.stderr
    assert list(tmp_path.glob("rows.csv.predictions*")) == []


def test_a_port_with_nothing_listening_is_an_error_not_a_traceback(tmp_path, capsys):
    from ports import free_port

    data = tmp_path / "rows.csv"
    data.write_text("1,2,3\n")
    port = str(free_port())
    assert main(["-q", "predict", "--port", port, "--input", str(data)]) == 2
    err = capsys.readouterr().err
    assert "nothing answers there" in err and "Traceback" not in err


def test_a_file_without_line_breaks_is_refused_with_bounded_memory(tmp_path, model_path):
    """A 384 MB file of NUL bytes (pandas read it whole: 6.4 GB for 1 GB, then a traceback
    quoting it) is refused once a request's worth is read, under an address-space cap."""
    huge = sparse_file(tmp_path / "huge.csv")
    res = run_capped("-q", "predict", "--model", model_path, "--input", huge)
    assert res.returncode == 2, res.stderr[-2000:]
    budget = REALTIME.request_budget  # 6 MB less the headroom every request keeps
    assert f"{huge}, row 1: a line over what one request holds ({budget:,} bytes" in res.stderr
    assert "Traceback" not in res.stderr and len(res.stderr) < 1000
    assert list(tmp_path.glob("huge.csv.predictions*")) == []


@pytest.mark.parametrize(
    "text, where",
    [
        ("1,2,3\n1_0,2,3\n", "row 2, column 1: '1_0' is not a number"),
        ("1,2,3\n1,\u0663,3\n", "row 2, column 2: '\u0663' is not a number"),  # Arabic-Indic 3
        ("1,2,3\n1,2,\uff13\n", "row 2, column 3: '\uff13' is not a number"),  # full-width 3
        ("1,2,3\n1,2,infinity\n", "row 2, column 3: 'infinity' is not a finite number"),
        ("1,2,3\n1,2,1e39\n", "row 2, column 3: '1e39' is beyond float32 (+-3.4e38)"),
        ("1,2,3\r1,2,3\r", "row 1: holds the line break '\\r'"),
        ("1,2,3\n\n1,2,3\n", "row 2: empty line"),
        ("1,2,3\n1,2\n", "row 2: has 2 fields, the rows above have 3"),
    ],
)
def test_a_cell_linear_learner_would_not_read_is_named_by_row_and_column(
    tmp_path, model_path, capsys, text, where
):
    data = tmp_path / "rows.csv"
    data.write_text(text, encoding="utf-8")
    assert main(["-q", "predict", "--model", str(model_path), "--input", str(data)]) == 2
    err = capsys.readouterr().err
    assert f"{data}, {where}" in err and "Traceback" not in err
    assert not (tmp_path / "rows.csv.predictions.jsonl").exists()


def test_numbers_as_linear_learner_writes_them_are_read(tmp_path, model_path, capsys):
    data = tmp_path / "rows.csv"
    data.write_text(" 1 ,\t-2.5e0,+.5\r\n3.,0,1E-3\n")  # spaces, CRLF, exponents: all ASCII
    assert main(["-q", "predict", "--model", str(model_path), "--input", str(data)]) == 0
    out = data.with_name("rows.csv.predictions.jsonl")
    scores = [json.loads(line)["score"] for line in out.read_text().splitlines()]
    X = np.array([[1, -2.5, 0.5], [3, 0, 1e-3]], np.float32)
    np.testing.assert_allclose(scores, artifact.load(model_path).predict(X).score, rtol=1e-6)


class Measured:
    """An invoker that records each request's and answer's size in bytes."""

    def __init__(self, invoke):
        self.invoke, self.sizes = invoke, []

    def __call__(self, body: bytes, content_type: str) -> bytes:
        answer = self.invoke(body, content_type)
        self.sizes.append((len(body), len(answer)))
        return answer


@pytest.mark.parametrize(
    ("limits", "ctype"),
    [(SERVERLESS, "text/csv"), (REALTIME, "application/json"), (SERVERLESS, RECORDIO)],
)
def test_answers_stay_under_the_endpoints_response_limit(limits, ctype):
    """A 300-class model's answer is ~7 KB a row for a ~40-byte CSV row: batches sized by the
    request alone would ask for a 6 MB+ answer in one go. Against the real local endpoint,
    every measured answer stays under the mode's limit, and every row comes back in order."""
    from training.local.server import serving

    rng = np.random.default_rng(3)
    model = LinearModel(
        "multiclass_classifier",
        "softmax_loss",
        rng.standard_normal((3, 300)).astype(np.float32),
        np.zeros(300, np.float32),
    )
    X = rng.standard_normal((1000, 3)).astype(np.float32)
    with serving(model) as port:
        invoke = Measured(predict.local_invoker("127.0.0.1", port))
        got = predict.predict(invoke, X, ctype, limits)
    answers = [a for _, a in invoke.sizes]
    assert sum(answers) > limits.response_bytes  # the whole answer would not fit one
    assert len(invoke.sizes) >= 3 and invoke.sizes[0][0] < 200  # one row first, then batches
    assert all(r <= limits.request_bytes and a <= limits.response_bytes for r, a in invoke.sizes)
    assert max(answers) > limits.response_bytes // 2  # batches are full, not one row each
    np.testing.assert_array_equal(got.predicted_label, model.predict(X).predicted_label)


def test_raw_rows_are_sized_by_the_featurizers_classes_without_a_probe(tmp_path):
    """A pipeline's answer shape is known from its featurizer (predictor type, classes): the
    first request is already a full batch, and no answer exceeds the serverless limit."""
    from training.core.featurizer import Featurizer

    featurizer = Featurizer.load(_prepared_featurizer(tmp_path))
    shape = answer_shape(featurizer.predictor_type, featurizer.classes)
    most = SERVERLESS.rows_per_request(answer_row_bound(shape))
    served = []

    def invoke(body: bytes, content_type: str) -> bytes:
        n = body.count(b"\n")
        served.append(n)
        row = {"score": 0.25, "predicted_label": 0, "predicted_class": featurizer.classes[0]}
        return json.dumps({"predictions": [row] * n}).encode()

    lines = ["x"] * (most + 10)
    rows_ = predict.RawRows(tmp_path / "in.csv", lines, [str(i) for i in range(len(lines))], "row")
    got = predict.predict_raw(invoke, rows_, featurizer, SERVERLESS)
    assert len(got) == len(lines) and served[0] == most and sum(served) == len(lines)
    assert len(json.dumps({"predictions": [shape] * most})) < SERVERLESS.response_bytes


def _prepared_featurizer(tmp_path):
    from pathlib import Path

    from training.data.prepare import PrepareConfig, prepare

    root = Path(__file__).resolve().parents[1]
    out = tmp_path / "prep"
    prepare(
        PrepareConfig(
            root / "training" / "datasets" / "penguins.csv",
            "species",
            "multiclass_classifier",
            out,
            drop_unlabeled=True,
            show_progress=False,
        )
    )
    return out / json.loads((out / "manifest.json").read_text())["preprocessing"]


@pytest.mark.parametrize(
    ("variant", "expected"),
    [
        ({"ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 5}}, SERVERLESS),
        ({"InstanceType": "ml.m5.large", "InitialInstanceCount": 1}, REALTIME),
        (None, SERVERLESS),  # not readable (here: no such endpoint): the stricter limits
    ],
)
def test_the_endpoints_mode_decides_its_limits(variant, expected):
    import boto3

    with mock_aws():
        sess = boto3.Session(region_name="us-east-1")
        sm = sess.client("sagemaker")
        if variant is not None:
            sm.create_model(
                ModelName="m",
                ExecutionRoleArn="arn:aws:iam::123456789012:role/r",
                PrimaryContainer={"Image": "1.dkr.ecr.us-east-1.amazonaws.com/ll:1"},
            )
            sm.create_endpoint_config(
                EndpointConfigName="c",
                ProductionVariants=[{"VariantName": "v", "ModelName": "m", **variant}],
            )
            sm.create_endpoint(EndpointName="ll-e2e-endpoint", EndpointConfigName="c")
        assert endpoint_limits(sess, "ll-e2e-endpoint") == expected


def test_a_regression_label_in_a_raw_csv_follows_the_number_rule_and_is_finite(tmp_path, capsys):
    """--labelled raw rows of a regressor: 'nan' and '1e999' made every metric nan or inf,
    and '1_0' (float() reads 10) was scored as 10; each is refused naming its row."""
    from training.data.prepare import PrepareConfig, prepare
    from training.local.trainer import train_local

    rng = np.random.default_rng(0)
    x = rng.standard_normal(200).round(4)
    rows = [f"{v},{c},{2 * v + e:.4f}" for v, c, e in zip(x, "ab" * 100, rng.standard_normal(200))]
    (tmp_path / "r.csv").write_text("x,c,y\n" + "\n".join(rows) + "\n")
    prepare(
        PrepareConfig(
            data=tmp_path / "r.csv",
            label="y",
            predictor_type="regressor",
            out=tmp_path / "data",
            show_progress=False,
        )
    )
    train_local(tmp_path / "data", tmp_path / "model", show_progress=False, echo=lambda _: None)
    model = str(tmp_path / "model" / "model.tar.gz")
    cells = (("nan", "a finite number"), ("1e999", "a finite number"), ("1_0", "a number"))
    for cell, what in cells:
        data = tmp_path / "labelled.csv"
        data.write_text(f"x,c,y\n0.5,a,1.0\n0.1,b,{cell}\n")
        assert main(["-q", "predict", "--model", model, "--input", str(data), "--labelled"]) == 2
        captured = capsys.readouterr()
        assert f"- {data}, row 3: label '{cell}' is not {what}\n" in captured.err
        assert "fix: fix or drop the row" in captured.err and "test:mse" not in captured.out
    assert main(["-q", "predict", "--model", model, "--input", str(data)]) == 0  # unlabelled
