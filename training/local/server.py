"""The local endpoint: a real HTTP server with a SageMaker container's interface, and the
SageMaker Runtime API's ``InvokeEndpoint`` in front of it.

``GET /ping`` answers 200 when the model is loaded. ``POST /invocations`` serves an
:class:`training.core.inference.InferencePipeline` as the SageMaker endpoint we deploy for it
serves it. With preprocessing (the serial pipeline): raw rows as ``text/csv`` (the source's
columns minus the label, no header), ``application/json`` or ``application/jsonlines``
(records keyed by column name), answered in Linear Learner's shapes plus ``predicted_class``,
as JSON or JSON lines; encoded vectors still pass as RecordIO-protobuf. Without: Linear
Learner alone, ``text/csv`` (features only), ``application/json`` (the three documented
instance shapes), ``application/jsonlines`` or ``application/x-recordio-protobuf``, answered
as JSON, JSON lines or RecordIO. A client mistake gets 4xx with a message naming the row and
the column; the server never answers 5xx for one, and serves concurrent clients on threads.

``POST /endpoints/<name>/invocations`` is InvokeEndpoint as boto3's ``sagemaker-runtime``
client, the AWS CLI and SDK 2.x's ``Predictor`` call it (``endpoint_url=`` or
``AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME``): the same content types, the response's Content-Type
and ``x-Amzn-Invoked-Production-Variant``, and errors as the service raises them — the
container's 4xx as ``ModelError`` (424, with OriginalStatusCode and OriginalMessage), an
unknown endpoint name, an oversized payload or malformed CustomAttributes as
``ValidationError`` (400). CustomAttributes are accepted and, as Linear Learner's container
sets none, not echoed. Parameters for features such an endpoint does not have (TargetModel,
TargetContainerHostname, EnableExplanations, InferenceComponentName, SessionId, a
TargetVariant other than its one variant) and response streaming or async invocation are
refused as ValidationError, never silently ignored.

The HTTP layer (:mod:`training.local.http_server`) reads each request whole under deadlines
and a memory budget (``training.limits``, docs/limits.md): slow senders are cut off without
holding a worker, ambiguous framing is a 400 that closes, and a busy endpoint answers 503 with
Retry-After (ServiceUnavailable on the runtime API's paths, which boto3 retries).

``serve`` writes a request log on stderr, one line a request (time, method, path, status,
bytes in and out, milliseconds), never the payload.
"""

from __future__ import annotations

import contextlib
import json
import re
import struct
import sys
import threading
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import numpy as np

import training.aws.naming as naming
from training.content_types import CSV, JSON, JSONLINES, RECORDIO
from training.core import artifact
from training.core.csv_numbers import OTHER_BREAKS, is_number, parse_number, parse_rows
from training.core.featurizer import (
    RowError,
    UnsupportedContentTypeError,
    media_type,
    negotiate,
)
from training.core.inference import InferencePipeline
from training.core.model import LinearModel, Predictions
from training.data import recordio
from training.errors import EndpointStartError
from training.local.http_server import HTTPServer, Request, Response, ServerLimits

# where SageMaker's inference containers listen (/ping and /invocations), and so does ``serve``
SERVING_PORT = 8080
_FLOAT_MAX = 2**1024  # a JSON integer at or beyond this has no float value
# rows rendered into an answer at a time: the Python objects of one block stay small
RENDER_ROWS = 4096


class RequestError(Exception):
    """A client mistake: HTTP status and a message that names the problem."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


# --------------------------------------------------------------------------- request parsing


def _accepted(header: str | None, answerable=(JSON, JSONLINES, RECORDIO)) -> str:
    """The first answerable type of an Accept list (``*/*`` or nothing: JSON); types marked
    ``q=0`` are refused, other weights keep the client's order."""
    media = negotiate(header, answerable)
    if media is None:
        raise RequestError(
            406, f"cannot answer in '{header}': accept one of {', '.join(answerable)}"
        )
    return media


def _lines(text: str, what: str) -> list[str]:
    """Rows separated by "\n" or "\r\n"; any other line break is an error naming the row."""
    lines = text.split("\n")
    while lines and lines[-1].strip() == "":
        lines.pop()
    out = []
    for i, line in enumerate(lines):
        line = line.removesuffix("\r")
        stray = OTHER_BREAKS.search(line)  # rows end at \n only (csv_numbers)
        if stray:
            raise RequestError(
                400,
                f"{what} {i + 1} contains the line break {stray.group()!r}: separate rows "
                "with \\n only",
            )
        out.append(line)
    return out


def parse_csv(body: bytes, d: int) -> np.ndarray:
    text = body.decode("utf-8", errors="replace")
    rows = _lines(text, "row")
    if not rows:
        raise RequestError(400, "empty request body: send one CSV row of features per line")
    try:  # every row at once by the number rule (polars for many): the common case
        values = parse_rows(rows)
    except ValueError:  # a cell outside the rule, or ragged rows: the loop below names it
        values = None
    if values is not None and values.shape[1] == d:
        with np.errstate(over="ignore"):  # beyond float32 becomes inf: _finite names it
            return _finite(values.astype(np.float32))
    out = np.empty((len(rows), d), np.float32)
    for i, line in enumerate(rows):
        fields = line.split(",")
        if len(fields) != d:
            hint = (
                " (a label column? inference rows carry features only)"
                if len(fields) == d + 1
                else ""
            )
            raise RequestError(
                400, f"row {i + 1} has {len(fields)} features, the model takes {d}{hint}"
            )
        try:
            with np.errstate(over="ignore"):  # beyond float32 becomes inf: _finite names it
                out[i] = [parse_number(f) for f in fields]
        except ValueError:
            bad = next(j for j, f in enumerate(fields) if not is_number(f))
            raise RequestError(
                400, f"row {i + 1}, column {bad + 1}: '{fields[bad][:40]}' is not a number"
            ) from None
    return _finite(out)


def _finite(X: np.ndarray) -> np.ndarray:
    bad = ~np.isfinite(X)
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise RequestError(400, f"row {r + 1}, column {c + 1} is {X[r, c]}: send finite numbers")
    return X


def _instance_row(inst, i: int, d: int) -> np.ndarray:
    """One instance in any of the documented shapes -> a dense feature row."""
    if not isinstance(inst, dict):
        raise RequestError(400, f"instance {i + 1} is not an object")
    if "features" in inst:
        values, keys, shape = inst["features"], None, None
    elif isinstance(inst.get("data"), dict) and isinstance(inst["data"].get("features"), dict):
        f = inst["data"]["features"]
        values, keys, shape = f.get("values"), f.get("keys"), f.get("shape")
    else:
        raise RequestError(
            400, f"instance {i + 1} has neither 'features' nor 'data.features.values'"
        )
    if not isinstance(values, list):
        raise RequestError(400, f"instance {i + 1}: features must be a list of numbers")
    # JSON numbers only: not "1.5" (a string), not true (a boolean), not nested lists
    bad = next((v for v in values if type(v) not in (int, float)), None)
    if bad is not None or any(type(v) is int and abs(v) > _FLOAT_MAX for v in values):
        shown = json.dumps(bad)[:40] if bad is not None else "an integer beyond float range"
        raise RequestError(400, f"instance {i + 1}: feature {shown} is not a finite JSON number")
    vals = np.asarray(values, np.float64)
    if keys is None:
        if vals.size != d:
            raise RequestError(
                400, f"instance {i + 1} has {vals.size} features, the model takes {d}"
            )
        return vals
    if shape is not None and (
        not isinstance(shape, list) or len(shape) != 1 or type(shape[0]) is not int
    ):
        raise RequestError(400, f"instance {i + 1}: shape must be [feature_dim], e.g. [{d}]")
    if shape is not None and shape[0] != d:
        raise RequestError(
            400, f"instance {i + 1}: shape [{_short_int(shape[0])}] is not the model's [{d}]"
        )
    if not isinstance(keys, list) or any(type(k) is not int for k in keys):
        raise RequestError(400, f"instance {i + 1}: keys must be a list of JSON integers")
    if len(keys) != len(values):
        raise RequestError(400, f"instance {i + 1}: {len(keys)} keys for {len(values)} values")
    outside = next((k for k in keys if not 0 <= k < d), None)
    if outside is not None:
        raise RequestError(400, f"instance {i + 1}: key {_short_int(outside)} outside 0..{d - 1}")
    idx = np.asarray(keys, np.int64)
    row = np.zeros(d)
    row[idx] = vals
    return row


def _short_int(value: int) -> str:
    """An integer for a message: itself up to 40 digits, else how many digits it has."""
    text = str(value)
    return text if len(text) <= 40 else f"<an integer of {len(text)} digits>"


def parse_json(body: bytes, d: int, lines: bool) -> np.ndarray:
    try:
        if lines:
            text = body.decode()
            instances = [json.loads(ln) for ln in _lines(text, "line") if ln.strip()]
        else:
            doc = json.loads(body)
            instances = doc.get("instances") if isinstance(doc, dict) else None
            if not isinstance(instances, list):
                raise RequestError(
                    400,
                    "JSON body needs an 'instances' list, e.g. "
                    '{"instances": [{"features": [1.5, 2.0]}]}',
                )
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise RequestError(400, f"invalid JSON: {err}") from None
    except RecursionError:
        raise RequestError(400, "invalid JSON: nested too deeply for an instance") from None
    if not instances:
        raise RequestError(400, "no instances in the request")
    return _finite(
        np.vstack([_instance_row(x, i, d) for i, x in enumerate(instances)]).astype(np.float32)
    )


def parse_recordio(body: bytes, d: int):
    """Dense records as an ndarray, sparse ones as CSR: a sparse request is checked against
    the model's width before anything of that width exists, and never densified."""
    try:
        arrays = recordio.read_arrays(body)
    except recordio.RecordIOError as err:
        raise RequestError(400, f"invalid RecordIO-protobuf: {err}") from None
    except (OverflowError, ValueError, MemoryError) as err:  # shapes or keys past int64
        raise RequestError(400, f"invalid RecordIO-protobuf: {type(err).__name__}") from None
    wrong_type = recordio.float32_problems(arrays)
    if wrong_type:
        raise RequestError(400, f"{wrong_type[0]}: {recordio.FLOAT32_FIX}")
    rows, width = arrays.X.shape
    if rows == 0:
        raise RequestError(400, "no records in the request")
    if width != d:
        raise RequestError(400, f"records have {width} features, the model takes {d}")
    if hasattr(arrays.X, "tocsr"):
        X = arrays.X.tocsr().astype(np.float32)
        if not np.isfinite(X.data).all():
            raise RequestError(400, "a sparse value is NaN or infinite: send finite numbers")
        return X
    return _finite(arrays.dense())


# --------------------------------------------------------------------------- responses


def _float32_value(values) -> bytes:
    packed = np.asarray(values, "<f4").tobytes()
    tensor = b"\x0a" + recordio._varint(len(packed)) + packed
    return b"\x12" + recordio._varint(len(tensor)) + tensor  # Value.float32_tensor


def _record(label: dict) -> bytes:
    """A Record with outputs in its label map (features empty), as Linear Learner answers."""
    payload = b""
    for key, values in label.items():
        name = key.encode()
        value = _float32_value(values)
        entry = (
            b"\x0a"
            + recordio._varint(len(name))
            + name
            + b"\x12"
            + recordio._varint(len(value))
            + value
        )
        payload += b"\x12" + recordio._varint(len(entry)) + entry
    pad = b"\0" * (-len(payload) % 4)
    return struct.pack("<II", recordio.MAGIC, len(payload)) + payload + pad


def render(
    predictions: Predictions, accept: str, classes=(), max_bytes: int | None = None
) -> tuple[bytes, str]:
    """The answers in the accepted format: Linear Learner's shapes, with ``predicted_class``
    from ``classes`` (only in JSON or JSON lines, which the pipeline's last step speaks).

    Rendered :data:`RENDER_ROWS` rows at a time: a multiclass answer is many times its request
    (20 classes: 396 MB for 5.6 MB of CSV), and Python's objects for every score at once cost
    three times the answer again. Past ``max_bytes`` it stops with a 413."""
    if accept == RECORDIO:

        def block(b: Predictions) -> bytes:
            return b"".join(_record({k: np.atleast_1d(v) for k, v in r.items()}) for r in b.rows())
    elif accept == JSONLINES:

        def block(b: Predictions) -> bytes:
            return ("\n".join(b.rows_json(classes)) + "\n").encode()
    else:

        def block(b: Predictions) -> bytes:
            return ", ".join(b.rows_json(classes)).encode()

    parts, size = [], 0
    for b in _row_blocks(predictions):
        parts.append(block(b))
        size += len(parts[-1])
        if max_bytes is not None and size > max_bytes:
            scores = 1 if np.ndim(predictions.score) == 1 else np.shape(predictions.score)[1]
            raise RequestError(413, _answer_too_large(len(predictions), scores, max_bytes))
    if accept == RECORDIO:
        return b"".join(parts), RECORDIO
    if accept == JSONLINES:
        return b"".join(parts) or b"\n", JSONLINES
    return b'{"predictions": [' + b", ".join(parts) + b"]}", JSON


def _answer_too_large(rows: int, scores: int, max_bytes: int) -> str:
    bound = f"{max_bytes >> 20} MiB" if max_bytes % (1 << 20) == 0 else f"{max_bytes:,} bytes"
    return (
        f"the answer to these {rows} rows ({scores} scores each) is over the "
        f"{bound} this endpoint answers: send fewer rows per request "
        "(SageMaker's real-time endpoints answer at most 6 MB)"
    )


def _row_blocks(predictions: Predictions):
    """``predictions`` in consecutive blocks of at most :data:`RENDER_ROWS` rows."""
    label, named = predictions.predicted_label, predictions.predicted_class
    for i in range(0, len(predictions), RENDER_ROWS):
        j = i + RENDER_ROWS
        yield Predictions(
            predictions.score[i:j],
            None if label is None else label[i:j],
            None if named is None else named[i:j],
        )


# --------------------------------------------------------------------------- server


def predict_body(
    served: InferencePipeline | LinearModel,
    body: bytes,
    content_type: str | None,
    accept: str | None,
    max_answer_bytes: int | None = None,
) -> tuple[bytes, str]:
    """The whole invocation, independent of HTTP (the container and the runtime API routes):
    raw rows through the preprocessing when the model has it, encoded vectors otherwise; an
    answer over ``max_answer_bytes`` is a 413, refused before scoring when its scores alone
    (4 bytes each) would pass it."""
    if isinstance(served, LinearModel):
        served = InferencePipeline(served)
    model = served.model
    # class names (the pipeline's last step) come in JSON or JSON lines only
    acc = _accepted(accept, (JSON, JSONLINES) if served.classes else (JSON, JSONLINES, RECORDIO))
    scores = model.num_classes or 1
    if max_answer_bytes is not None and media_type(content_type or CSV) in (CSV, JSONLINES):
        # a row a line: counted before the lines are parsed (seconds for a million rows)
        lines = body.count(b"\n") + (not body.endswith(b"\n"))
        if lines * scores * 4 > max_answer_bytes:
            raise RequestError(413, _answer_too_large(lines, scores, max_answer_bytes))
    X = None
    if served.featurizer is not None:
        try:
            X = served.featurizer.features_from_request(body, content_type or CSV)
        except UnsupportedContentTypeError as err:
            raise RequestError(415, str(err)) from None
        except RowError as err:
            raise RequestError(400, str(err)) from None
        if X is None:  # encoded vectors, passed to Linear Learner as the featurizer does
            content_type = RECORDIO
    if X is None:
        X = _encoded(model.feature_dim, body, content_type)
    if max_answer_bytes is not None and X.shape[0] * scores * 4 > max_answer_bytes:
        raise RequestError(413, _answer_too_large(X.shape[0], scores, max_answer_bytes))
    return render(model.predict(X), acc, served.classes, max_answer_bytes)


def _encoded(d: int, body: bytes, content_type: str | None):
    """Encoded vectors of ``d`` features, as Linear Learner's container reads them."""
    ctype = media_type(content_type) or CSV
    if ctype == CSV:
        X = parse_csv(body, d)
    elif ctype in (JSON, JSONLINES):
        X = parse_json(body, d, lines=ctype == JSONLINES)
    elif ctype == RECORDIO:
        X = parse_recordio(body, d)
    else:
        raise RequestError(
            415,
            f"content type '{content_type}' is not supported: send "
            f"{CSV}, {JSON}, {JSONLINES} or {RECORDIO}",
        )
    return X


# --------------------------------------------------------------------------- runtime API

ACCOUNT = "000000000000"  # what the local twin reports where SageMaker names an account
DEFAULT_ENDPOINT = naming.endpoint_name(naming.DEFAULT_PROJECT)  # the name the endpoint stack gives
RUNTIME_PATH = re.compile(r"^/endpoints/([^/?]+)/invocations$")
# InvokeEndpointWithResponseStream and InvokeEndpointAsync: Linear Learner has neither
OTHER_RUNTIME_PATH = re.compile(
    r"^/endpoints/([^/?]+)/(invocations-response-stream|async-invocations)$"
)
CUSTOM_ATTRIBUTES = re.compile(r"^[\x20-\x7e]{0,1024}$")  # visible US-ASCII, <= 1024
# InvokeEndpoint parameters (their headers in botocore's sagemaker-runtime model) for features
# an endpoint like ours (one model, one variant, a serial pipeline, no explainer, no inference
# components, no sessions) does not have: refused, as the service refuses them, not ignored.
UNSUPPORTED_PARAMETERS = {
    "X-Amzn-SageMaker-Target-Model": "TargetModel",
    "X-Amzn-SageMaker-Target-Container-Hostname": "TargetContainerHostname",
    "X-Amzn-SageMaker-Enable-Explanations": "EnableExplanations",
    "X-Amzn-SageMaker-Inference-Component": "InferenceComponentName",
    "X-Amzn-SageMaker-Session-Id": "SessionId",
    "X-Amzn-SageMaker-Prefix-Aware-Id": "PrefixAwareId",
}
TARGET_VARIANT = "X-Amzn-SageMaker-Target-Variant"


# InvokeEndpoint's ContentType and Accept: "\p{ASCII}*", at most 1024 (botocore's
# sagemaker-runtime model). Media types are matched by ASCII rules: a value that needs Unicode
# ones to match ('text/csv' with a trailing U+0085, which str.strip() removes) is refused.
TYPE_HEADERS = {"Content-Type": "ContentType", "Accept": "Accept"}
ASCII_TYPE = re.compile(r"[\x00-\x7f]{0,1024}")


def non_ascii_type(headers, runtime: bool = False) -> str | None:
    """The refusal for a Content-Type or Accept that is not at most 1024 ASCII characters."""
    for header, parameter in TYPE_HEADERS.items():
        value = headers.get(header)
        if value is not None and not ASCII_TYPE.fullmatch(value):
            name = parameter if runtime else header
            return f"{name} '{value[:40]}' must be at most 1024 US-ASCII characters"
    return None


def unsupported_parameter(endpoint: str, headers) -> str | None:
    """The refusal for an InvokeEndpoint parameter this endpoint has no feature for, or None.
    TargetModel's is the service's own wording (aws/amazon-sagemaker-examples#1026, #1216);
    the others say what is missing in the same form."""
    for header, parameter in UNSUPPORTED_PARAMETERS.items():
        if headers.get(header) is None:
            continue
        if parameter == "TargetModel":
            return (
                f"Endpoint {endpoint} is not a multi-model endpoint and does not support "
                "target model header."
            )
        why = {
            "TargetContainerHostname": "is not a multi-container endpoint with direct "
            "invocation (its containers run as a serial pipeline)",
            "EnableExplanations": "has no ExplainerConfig",
            "InferenceComponentName": "hosts no inference components",
            "SessionId": "does not support stateful sessions",
            "PrefixAwareId": "does not support prefix-aware routing",
        }[parameter]
        return f"{parameter}: endpoint {endpoint} {why}; this local twin implements it neither"
    variant = headers.get(TARGET_VARIANT)
    if variant is not None and variant != naming.VARIANT_NAME:
        return (
            f"TargetVariant: endpoint {endpoint} has no variant '{variant}' (its one "
            f"production variant is '{naming.VARIANT_NAME}')"
        )
    return None


def runtime_error(kind: str, message: str, **fields) -> tuple[int, bytes, dict]:
    """A SageMaker Runtime error as the real service sends it (rest-json: the type in the
    ``x-amzn-ErrorType`` header, the members in the body), so boto3 raises the same
    exception class with the same fields."""
    status = {"ValidationError": 400, "ModelError": 424, "ServiceUnavailable": 503}[kind]
    body = json.dumps({"message": message, **fields}).encode()
    return status, body, {"x-amzn-ErrorType": kind, "Content-Type": JSON}


def model_error(endpoint: str, err: RequestError) -> tuple[int, bytes, dict]:
    """The container's 4xx, wrapped as InvokeEndpoint does: ModelError (424) with the
    container's status and message as OriginalStatusCode / OriginalMessage."""
    message = str(err)
    return runtime_error(
        "ModelError",
        f'Received client error ({err.status}) from primary with message "{message}". See '
        f"the endpoint's log group {naming.LogGroup.endpoint(endpoint)} for more information.",
        OriginalStatusCode=err.status,
        OriginalMessage=message,
        LogStreamArn=f"arn:aws:logs:local:{ACCOUNT}:log-group:{naming.LogGroup.endpoint(endpoint)}",
    )


def request_log_line(method: str, path: str, status: int, sent: int, received: int, ms: float):
    """One line a request: when, what, the answer's status, bytes in and out, and time.
    Never the payload: requests carry the user's rows."""
    when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    path = path.split("?", 1)[0][:200]
    return f"{when} {method} {path} {status} in={received}B out={sent}B {ms:.1f}ms"


def make_app(
    served: InferencePipeline,
    endpoint_name: str = DEFAULT_ENDPOINT,
    max_answer_bytes: int = ServerLimits.max_answer_bytes,
):
    """The endpoint's routes as a function of a whole :class:`Request`: the container's
    ``/ping`` and ``/invocations``, and the runtime API's paths in front of them; answers
    over ``max_answer_bytes`` are refused (413)."""

    def respond(request: Request) -> Response:
        method, path = request.method, request.path
        if method in ("GET", "HEAD"):  # HEAD: the same answer, its body left out
            if path == "/ping":
                return Response(200)
            return Response(404, b"not found: use GET /ping or POST /invocations\n")
        if method != "POST":
            allowed = (("Allow", "GET, HEAD, POST"),)
            if method not in KNOWN_METHODS:
                return Response(501, f"method {method[:40]} is not implemented\n".encode())
            return Response(
                405, b"method not allowed: GET /ping, POST /invocations\n", headers=allowed
            )
        runtime = RUNTIME_PATH.match(path)
        if runtime:
            return _runtime(urllib.parse.unquote(runtime.group(1)), request)
        other = OTHER_RUNTIME_PATH.match(path)
        if other:
            return _other_runtime(urllib.parse.unquote(other.group(1)), other.group(2))
        try:
            if path != "/invocations":
                raise RequestError(
                    404, "not found: POST /invocations or /endpoints/<name>/invocations"
                )
            if not request.framed:
                raise RequestError(411, "Content-Length (or chunked Transfer-Encoding) required")
            if problem := non_ascii_type(request.headers):
                raise RequestError(400, problem)
            out, ctype = predict_body(
                served,
                request.body,
                request.headers.get("Content-Type"),
                request.headers.get("Accept"),
                max_answer_bytes,
            )
            return Response(200, out, ctype)
        except RequestError as err:
            return Response(err.status, (str(err) + "\n").encode())

    def _runtime(endpoint: str, request: Request) -> Response:
        """``InvokeEndpoint`` of the SageMaker Runtime API, in front of the container:
        what the service itself refuses is a ValidationError, what the container refuses
        a ModelError."""
        headers = request.headers
        attributes = headers.get("X-Amzn-SageMaker-Custom-Attributes")
        if endpoint != endpoint_name:
            error = runtime_error(
                "ValidationError",
                f"Endpoint {endpoint} of account {ACCOUNT} not found. "
                f"(this local endpoint serves '{endpoint_name}')",
            )
        elif attributes is not None and not CUSTOM_ATTRIBUTES.match(attributes):
            error = runtime_error(
                "ValidationError",
                "CustomAttributes must be at most 1024 visible US-ASCII characters",
            )
        elif problem := non_ascii_type(headers, runtime=True):
            error = runtime_error("ValidationError", problem)
        elif unsupported := unsupported_parameter(endpoint, headers):
            error = runtime_error("ValidationError", unsupported)
        else:
            try:
                out, ctype = predict_body(
                    served,
                    request.body,
                    headers.get("Content-Type"),
                    headers.get("Accept"),
                    max_answer_bytes,
                )
            except RequestError as err:
                error = model_error(endpoint, err)
            else:
                variant = (("x-Amzn-Invoked-Production-Variant", naming.VARIANT_NAME),)
                return Response(200, out, ctype, variant)
        return _runtime_response(error)

    def _other_runtime(endpoint: str, path: str) -> Response:
        """Response streaming and async invocations: refused."""
        operation = {
            "invocations-response-stream": "InvokeEndpointWithResponseStream: Linear "
            "Learner's container does not stream responses",
            "async-invocations": "InvokeEndpointAsync: the endpoint has no AsyncInferenceConfig",
        }[path]
        return _runtime_response(
            runtime_error(
                "ValidationError", f"{operation}; call InvokeEndpoint on {endpoint} instead"
            )
        )

    return respond


KNOWN_METHODS = {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT"}


def _runtime_response(error: tuple[int, bytes, dict]) -> Response:
    status, payload, extra = error
    ctype = extra.pop("Content-Type")
    return Response(status, payload, ctype, tuple(extra.items()))


def refuse(path: str, status: int, message: str, headers: tuple = ()) -> Response:
    """What the HTTP layer's refusals (framing, size, deadlines, a full server) look like on
    ``path``: plain text from the container; on the runtime API's paths the service's errors,
    ServiceUnavailable (503, which boto3 retries) for a busy endpoint and ValidationError for
    the rest (InvokeEndpoint's errors in botocore's sagemaker-runtime model)."""
    if not path.startswith("/endpoints/"):
        return Response(status, (message + "\n").encode(), headers=headers)
    kind = "ServiceUnavailable" if status == 503 else "ValidationError"
    status, payload, extra = runtime_error(kind, message)
    ctype = extra.pop("Content-Type")
    return Response(status, payload, ctype, tuple(extra.items()) + tuple(headers))


def make_server(
    model: InferencePipeline | LinearModel | Path,
    host: str = "127.0.0.1",
    port: int = SERVING_PORT,
    endpoint_name: str = DEFAULT_ENDPOINT,
    request_log=None,
    settings: ServerLimits | None = None,
) -> HTTPServer:
    """A server for ``model`` (a pipeline, a loaded model, or the path of any Linear Learner
    artifact, served on encoded vectors), answering the runtime API for ``endpoint_name``;
    ``request_log`` gets a :func:`request_log_line` per request; ``settings``: its limits
    (default: ``training.limits``')."""
    if isinstance(model, Path | str):
        model = artifact.load(model)
    if isinstance(model, LinearModel):
        model = InferencePipeline(model)
    log = None
    if request_log is not None:

        def log(*fields):
            request_log(request_log_line(*fields))

    app = make_app(model, endpoint_name, (settings or ServerLimits()).max_answer_bytes)
    return HTTPServer((host, port), app, refuse, settings, log)


@contextlib.contextmanager
def serving(model: InferencePipeline | LinearModel | Path) -> Iterator[int]:
    """A local endpoint on a free loopback port, for the length of a ``with`` block; its
    workers run before the block starts (EndpointStartError when they cannot)."""
    server = make_server(model, "127.0.0.1", 0)
    thread = threading.Thread(target=_serve_quietly, args=(server,), daemon=True)
    thread.start()
    server.started.wait()
    if server.start_error is not None:
        thread.join()
        server.server_close()
        raise server.start_error
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def _serve_quietly(server) -> None:
    """serve_forever in a thread: a start that failed is raised by :func:`serving` in the
    caller's thread, not printed here as a thread's traceback."""
    with contextlib.suppress(EndpointStartError):
        server.serve_forever()


def serve(
    served: InferencePipeline,
    source: str,
    host: str = "127.0.0.1",
    port: int = SERVING_PORT,
    endpoint_name: str = DEFAULT_ENDPOINT,
    request_log=None,
) -> None:
    """Serve until Ctrl-C; ``request_log`` (default: a line a request on stderr)."""
    if request_log is None:
        request_log = _stderr_line
    server = make_server(served, host, port, endpoint_name, request_log)
    url = f"http://{host}:{server.server_address[1]}"
    model = served.model
    rows = "raw rows" if served.raw_rows else "encoded vectors"
    print(
        f"serving {source} ({model.predictor_type}, feature_dim {model.feature_dim}, {rows}) "
        f"on {url} "
        f"(GET /ping, POST /invocations; SageMaker Runtime API as endpoint '{endpoint_name}': "
        f"AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME={url}); Ctrl-C stops",
        file=sys.stderr,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def _stderr_line(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
