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
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np

import training.aws.naming as naming
from training.content_types import CSV, JSON, JSONLINES, RECORDIO
from training.core import artifact
from training.core.csv_numbers import OTHER_BREAKS, is_number, parse_number
from training.core.featurizer import (
    RowError,
    UnsupportedContentTypeError,
    media_type,
    negotiate,
)
from training.core.inference import InferencePipeline
from training.core.model import LinearModel, Predictions
from training.data import recordio

# where SageMaker's inference containers listen (/ping and /invocations), and so does ``serve``
SERVING_PORT = 8080
MAX_BODY = 6 * 1024 * 1024  # SageMaker's real-time payload limit
_FLOAT_MAX = 2**1024  # a JSON integer at or beyond this has no float value
# Bounds that keep one slow or hostile client from holding the server: a socket that sends
# nothing for this long (headers or body) is closed, at most this many connections are served
# at once (the rest wait in the listen backlog, which is this deep).
SOCKET_TIMEOUT_S = 30.0
MAX_CONNECTIONS = 256
LISTEN_BACKLOG = 1024


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


_OTHER_BREAKS = OTHER_BREAKS  # Linear Learner's rows end at "\n" only (training.core.csv_numbers)


def _lines(text: str, what: str) -> list[str]:
    """Rows separated by "\n" or "\r\n"; any other line break is an error naming the row."""
    lines = text.split("\n")
    while lines and lines[-1].strip() == "":
        lines.pop()
    out = []
    for i, line in enumerate(lines):
        line = line.removesuffix("\r")
        stray = _OTHER_BREAKS.search(line)
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


def render(predictions: Predictions, accept: str, classes=()) -> tuple[bytes, str]:
    """The answers in the accepted format: Linear Learner's shapes, with ``predicted_class``
    from ``classes`` (only in JSON or JSON lines, which the pipeline's last step speaks)."""
    if accept == RECORDIO:
        rows = predictions.rows()
        body = b"".join(_record({k: np.atleast_1d(v) for k, v in r.items()}) for r in rows)
        return body, RECORDIO
    texts = predictions.rows_json(classes)
    if accept == JSONLINES:
        return ("\n".join(texts) + "\n").encode(), JSONLINES
    return ('{"predictions": [' + ", ".join(texts) + "]}").encode(), JSON


# --------------------------------------------------------------------------- server


def predict_body(
    served: InferencePipeline | LinearModel,
    body: bytes,
    content_type: str | None,
    accept: str | None,
) -> tuple[bytes, str]:
    """The whole invocation, independent of HTTP (the container and the runtime API routes):
    raw rows through the preprocessing when the model has it, encoded vectors otherwise."""
    if isinstance(served, LinearModel):
        served = InferencePipeline(served)
    model = served.model
    # class names (the pipeline's last step) come in JSON or JSON lines only
    acc = _accepted(accept, (JSON, JSONLINES) if served.classes else (JSON, JSONLINES, RECORDIO))
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
    return render(model.predict(X), acc, served.classes)


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
    status = {"ValidationError": 400, "ModelError": 424}[kind]
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


def make_handler(
    served: InferencePipeline, endpoint_name: str = DEFAULT_ENDPOINT, request_log=None
):
    """``request_log``: called with each request's :func:`request_log_line` (None: none)."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "LinearLearnerLocal/1"
        # Headers and body go out in separate writes; with Nagle on, the body waits for the
        # client's delayed ACK (~40 ms per request on keep-alive connections).
        disable_nagle_algorithm = True

        def log_message(self, fmt, *args):  # quiet: the request log says what matters
            pass

        def parse_request(self) -> bool:
            self._started, self._received = time.perf_counter(), 0
            return super().parse_request()

        def _send(
            self, status: int, body: bytes, ctype: str = "text/plain", headers: dict | None = None
        ) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            if request_log is not None:
                ms = (time.perf_counter() - getattr(self, "_started", time.perf_counter())) * 1e3
                request_log(
                    request_log_line(self.command, self.path, status, len(body), self._received, ms)
                )

        def _drain(self, size: int, cap: int = 64 * 1024 * 1024) -> None:
            left = min(size, cap)
            while left > 0:
                chunk = self.rfile.read(min(left, 1 << 20))
                if not chunk:
                    break
                left -= len(chunk)

        def do_GET(self):  # noqa: N802 (http.server API)
            if self.path == "/ping":
                self._send(200, b"")
            else:
                self._send(404, b"not found: use GET /ping or POST /invocations\n")

        def _not_allowed(self):
            with contextlib.suppress(RequestError):  # a bad length closes the connection
                self._drain(self._length() or 0)
            self._send(
                405,
                b"method not allowed: GET /ping, POST /invocations\n",
                headers={"Allow": "GET, POST"},
            )

        do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _not_allowed  # noqa: N815

        def _length(self) -> int | None:
            """Content-Length as a non-negative integer; None when absent; RequestError
            when it is not one (a negative length would read until the client hangs up)."""
            raw = self.headers.get("Content-Length")
            if raw is None:
                return None
            if not raw.strip().isdigit() or len(raw.strip()) > 18:
                self.close_connection = True  # where this body ends is unknown
                raise RequestError(400, f"Content-Length '{raw[:40]}' is not a byte count")
            return int(raw)

        def _read_body(self, required: bool = True) -> bytes:
            """The request body, at most MAX_BODY; RequestError (411, 413 or 400) otherwise,
            after draining what was sent so the client reads the answer, not a broken pipe.
            Not ``required``: no Content-Length is an empty body."""
            size = self._length()
            if size is None and not required:
                size = 0
            if size is None:
                raise RequestError(411, "Content-Length required")
            if size > MAX_BODY:
                self._drain(size)
                self.close_connection = True  # any undrained rest must not become a request
                raise RequestError(
                    413, f"body of {size} bytes is over the 6 MB limit: split the request"
                )
            body = self.rfile.read(size)
            self._received = len(body)
            return body

        def do_POST(self):  # noqa: N802
            runtime = RUNTIME_PATH.match(self.path)
            if runtime:
                return self._runtime(urllib.parse.unquote(runtime.group(1)))
            other = OTHER_RUNTIME_PATH.match(self.path)
            if other:
                return self._other_runtime(urllib.parse.unquote(other.group(1)), other.group(2))
            try:
                if self.path != "/invocations":
                    raise RequestError(
                        404, "not found: POST /invocations or /endpoints/<name>/invocations"
                    )
                body = self._read_body()
                out, ctype = predict_body(
                    served, body, self.headers.get("Content-Type"), self.headers.get("Accept")
                )
                self._send(200, out, ctype)
            except RequestError as err:
                self._send(err.status, (str(err) + "\n").encode())

        def _runtime(self, endpoint: str) -> None:
            """``InvokeEndpoint`` of the SageMaker Runtime API, in front of the container:
            what the service itself refuses is a ValidationError, what the container refuses
            a ModelError."""
            headers = self.headers
            attributes = headers.get("X-Amzn-SageMaker-Custom-Attributes")
            try:
                body = self._read_body(required=False)
            except RequestError as err:
                error = runtime_error("ValidationError", str(err))
            else:
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
                elif unsupported := unsupported_parameter(endpoint, headers):
                    error = runtime_error("ValidationError", unsupported)
                else:
                    try:
                        out, ctype = predict_body(
                            served, body, headers.get("Content-Type"), headers.get("Accept")
                        )
                    except RequestError as err:
                        error = model_error(endpoint, err)
                    else:
                        self._send(
                            200,
                            out,
                            ctype,
                            {"x-Amzn-Invoked-Production-Variant": naming.VARIANT_NAME},
                        )
                        return
            status, payload, extra = error
            self._send(status, payload, extra.pop("Content-Type"), extra)

        def _other_runtime(self, endpoint: str, path: str) -> None:
            """Response streaming and async invocations: refused, body drained first."""
            try:
                self._read_body(required=False)
            except RequestError as err:
                status, payload, extra = runtime_error("ValidationError", str(err))
            else:
                operation = {
                    "invocations-response-stream": "InvokeEndpointWithResponseStream: Linear "
                    "Learner's container does not stream responses",
                    "async-invocations": "InvokeEndpointAsync: the endpoint has no "
                    "AsyncInferenceConfig",
                }[path]
                status, payload, extra = runtime_error(
                    "ValidationError", f"{operation}; call InvokeEndpoint on {endpoint} instead"
                )
            self._send(status, payload, extra.pop("Content-Type"), extra)

    return Handler


def make_server(
    model: InferencePipeline | LinearModel | Path,
    host: str = "127.0.0.1",
    port: int = SERVING_PORT,
    endpoint_name: str = DEFAULT_ENDPOINT,
    request_log=None,
):
    """A server for ``model`` (a pipeline, a loaded model, or the path of any Linear Learner
    artifact, served on encoded vectors), answering the runtime API for ``endpoint_name``;
    ``request_log`` gets a line per request."""
    if isinstance(model, Path | str):
        model = artifact.load(model)
    if isinstance(model, LinearModel):
        model = InferencePipeline(model)
    return BoundedServer((host, port), make_handler(model, endpoint_name, request_log))


class BoundedServer(ThreadingHTTPServer):
    """A thread per connection, at most MAX_CONNECTIONS at once (the rest wait in a
    LISTEN_BACKLOG-deep queue instead of being reset), each socket timing out after
    SOCKET_TIMEOUT_S of silence."""

    daemon_threads = True
    request_queue_size = LISTEN_BACKLOG

    def __init__(self, address, handler):
        handler.timeout = SOCKET_TIMEOUT_S
        super().__init__(address, handler)
        self._slots = threading.BoundedSemaphore(MAX_CONNECTIONS)

    def process_request(self, request, client_address):
        self._slots.acquire()  # a full server stops accepting; the backlog holds the rest
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def handle_error(self, request, client_address):
        """A client that hangs up or stalls is routine: no traceback in the log for it; any
        other failure gets one line, not a stack."""
        error = sys.exc_info()[1]
        if isinstance(error, (ConnectionError, TimeoutError)):
            return
        print(f"error serving {client_address[0]}: {error!r}", file=sys.stderr)


@contextlib.contextmanager
def serving(model: InferencePipeline | LinearModel | Path) -> Iterator[int]:
    """A local endpoint on a free loopback port, for the length of a ``with`` block."""
    server = make_server(model, "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


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
