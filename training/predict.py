"""``predict``: the same command for the deployed endpoint and the local one.

Reads features (CSV without a label, a label-first CSV with ``--labelled``, or RecordIO),
sends them in requests under SageMaker's 6 MB payload limit, writes the predictions next to
the input, and prints the test metrics when the input carries labels.
"""

from __future__ import annotations

import http.client
import io
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from training.content_types import CSV, JSON, RECORDIO
from training.core import metrics as lm
from training.core.metrics import DEFAULT_PARAMS, MetricsParams
from training.core.model import Predictions
from training.data import recordio
from training.data.channels import detect_format
from training.errors import Problem, ValidationError
from training.files import file_problem

LIMIT = 5 * 1024 * 1024  # under the 6 MB real-time payload limit, with room for headers
Invoker = Callable[[bytes, str], bytes]  # (body, content type) -> JSON response body


def read_input(path: Path, labelled: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """Features (and labels) from a CSV or RecordIO file."""
    import pandas as pd

    path = Path(path)
    unreadable = file_problem(path, fix="check --input")
    if unreadable:
        raise ValidationError([unreadable])
    if detect_format(path) == "recordio":
        try:
            arrays = recordio.read_arrays(path)
        except recordio.RecordIOError as err:
            raise ValidationError(
                [
                    Problem(
                        str(path),
                        f"corrupt RecordIO-protobuf: {err}",
                        "rewrite the file (python -m training prepare), or send CSV",
                    )
                ]
            ) from None
        return arrays.dense(), arrays.y
    try:
        values = pd.read_csv(path, header=None, dtype=np.float32).to_numpy()
    except ValueError as err:
        raise ValidationError(
            [
                Problem(
                    str(path),
                    f"not a numeric CSV ({err})",
                    "send features only, no header (or --labelled with the label first)",
                )
            ]
        ) from None
    if labelled:
        return values[:, 1:], values[:, 0]
    return values, None


def request_bodies(X: np.ndarray, content_type: str, limit: int = LIMIT) -> Iterator[bytes]:
    """Bodies of whole rows, each under ``limit`` bytes."""
    if content_type == RECORDIO:
        per_row = len(recordio.encode_dense(X[:1].astype(np.float32)))
        step = max(1, limit // per_row)
        for start in range(0, X.shape[0], step):
            yield recordio.encode_dense(X[start : start + step].astype(np.float32))
        return
    rows = [",".join(f"{v:.9g}" for v in row) for row in X]
    if content_type == JSON:
        rows = [json.dumps({"features": [float(v) for v in row]}) for row in X]
    batch, size = [], 0
    for row in rows:
        if batch and size + len(row) + 64 > limit:
            yield _join(batch, content_type)
            batch, size = [], 0
        batch.append(row)
        size += len(row) + 2  # the separator: "\n" for CSV, ", " for JSON
    if batch:
        yield _join(batch, content_type)


def _join(rows: list[str], content_type: str) -> bytes:
    if content_type == JSON:
        return ('{"instances": [' + ", ".join(rows) + "]}").encode()
    return ("\n".join(rows) + "\n").encode()


def local_invoker(host: str, port: int) -> Invoker:
    def invoke(body: bytes, content_type: str) -> bytes:
        conn = http.client.HTTPConnection(host, port, timeout=60)
        try:
            conn.request(
                "POST",
                "/invocations",
                body=body,
                headers={"Content-Type": content_type, "Accept": JSON},
            )
            res = conn.getresponse()
            data = res.read()
        finally:
            conn.close()
        if res.status != 200:
            raise ValidationError(
                [
                    Problem(
                        f"local endpoint :{port}",
                        f"answered {res.status}: {data.decode().strip()}",
                        "fix the request it names",
                    )
                ]
            )
        return data

    return invoke


def aws_invoker(sess, endpoint: str) -> Invoker:
    runtime = sess.client("sagemaker-runtime")

    def invoke(body: bytes, content_type: str) -> bytes:
        res = runtime.invoke_endpoint(
            EndpointName=endpoint, Body=body, ContentType=content_type, Accept=JSON
        )
        return res["Body"].read()

    return invoke


def predict(invoke: Invoker, X: np.ndarray, content_type: str = CSV) -> Predictions:
    """Every row of ``X`` sent through ``invoke`` (in requests under the payload limit)."""
    out: list[dict] = []
    for body in request_bodies(X, content_type):
        answer = invoke(body, content_type)
        try:
            out += json.loads(answer)["predictions"]
        except (json.JSONDecodeError, KeyError, TypeError):
            raise ValidationError(
                [
                    Problem(
                        "endpoint",
                        f"answer is not Linear Learner JSON: {answer[:120]!r}",
                        "check the endpoint name and that it serves a Linear Learner model",
                    )
                ]
            ) from None
    if len(out) != X.shape[0]:
        raise ValidationError(
            [
                Problem(
                    "endpoint",
                    f"{len(out)} predictions for {X.shape[0]} rows",
                    "check the endpoint",
                )
            ]
        )
    return Predictions.from_rows(out)


def metrics_for(
    predictions: Predictions, y: np.ndarray, params: MetricsParams = DEFAULT_PARAMS
) -> dict:
    """Test metrics (:func:`training.core.metrics.evaluate`), with the predictor type read
    off the response shape; ``params`` are the model's when it is at hand (its F-beta's
    beta, top-k's k)."""
    return lm.evaluate(
        predictions.predictor_type, predictions.score, predictions.predicted_label, y, params
    )


def write_predictions(path: Path, predictions: Predictions) -> Path:
    buf = io.StringIO()
    for row in predictions.rows():
        buf.write(json.dumps(row) + "\n")
    path.write_text(buf.getvalue())
    return path
