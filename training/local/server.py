"""The local endpoint: a real HTTP server with a SageMaker container's interface, and the
SageMaker Runtime API's ``InvokeEndpoint`` in front of it.

``GET /ping`` answers 200 when the model is loaded; ``POST /invocations`` takes ``text/csv``
(features only), ``application/json`` (the three documented instance shapes),
``application/jsonlines`` or ``application/x-recordio-protobuf`` and answers in Linear
Learner's response shapes for ``application/json``, ``application/jsonlines`` or
``application/x-recordio-protobuf``. A client mistake gets 4xx with a message naming it;
the server never answers 5xx for one, and serves concurrent clients on threads.

``POST /endpoints/<name>/invocations`` is InvokeEndpoint as boto3's ``sagemaker-runtime``
client, the AWS CLI and SDK 2.x's ``Predictor`` call it (``endpoint_url=`` or
``AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME``): the same content types, the response's Content-Type
and ``x-Amzn-Invoked-Production-Variant``, and errors as the service raises them — the
container's 4xx as ``ModelError`` (424, with OriginalStatusCode and OriginalMessage), an
unknown endpoint name, an oversized payload or malformed CustomAttributes as
``ValidationError`` (400). CustomAttributes are accepted and, as Linear Learner's container
sets none, not echoed.
"""

from __future__ import annotations

import contextlib
import json
import re
import struct
import sys
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np

from training import artifact, naming, recordio
from training.local.learner import LinearModel
from training.validation import is_number

MAX_BODY = 6 * 1024 * 1024  # SageMaker's real-time payload limit
JSON, JSONLINES, CSV = "application/json", "application/jsonlines", "text/csv"
RECORDIO = "application/x-recordio-protobuf"


class RequestError(Exception):
    """A client mistake: HTTP status and a message that names the problem."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


# --------------------------------------------------------------------------- request parsing


def _media_type(header: str | None) -> str:
    return (header or "").split(";")[0].strip().lower()


def parse_csv(body: bytes, d: int) -> np.ndarray:
    text = body.decode("utf-8", errors="replace").strip()
    if not text:
        raise RequestError(400, "empty request body: send one CSV row of features per line")
    rows = text.splitlines()
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
            out[i] = [float(f) for f in fields]
        except ValueError:
            bad = next(j for j, f in enumerate(fields) if not is_number(f))
            raise RequestError(
                400, f"row {i + 1}, column {bad + 1}: '{fields[bad]}' is not a number"
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
    try:
        vals = np.asarray(values, np.float64)
    except (TypeError, ValueError):
        raise RequestError(400, f"instance {i + 1}: features must be numbers") from None
    if vals.ndim != 1:
        raise RequestError(400, f"instance {i + 1}: features must be a flat list")
    if keys is None:
        if vals.size != d:
            raise RequestError(
                400, f"instance {i + 1} has {vals.size} features, the model takes {d}"
            )
        return vals
    if shape is not None and (not isinstance(shape, list) or shape[:1] != [d]):
        raise RequestError(400, f"instance {i + 1}: shape {shape} does not match the model's [{d}]")
    try:
        idx = np.asarray(keys, np.int64)
    except (TypeError, ValueError):
        raise RequestError(400, f"instance {i + 1}: keys must be integers") from None
    if idx.shape != vals.shape:
        raise RequestError(400, f"instance {i + 1}: {idx.size} keys for {vals.size} values")
    if idx.size and (idx.min() < 0 or idx.max() >= d):
        raise RequestError(400, f"instance {i + 1}: key {int(idx.max())} outside 0..{d - 1}")
    row = np.zeros(d)
    row[idx] = vals
    return row


def parse_json(body: bytes, d: int, lines: bool) -> np.ndarray:
    try:
        if lines:
            instances = [json.loads(ln) for ln in body.decode().splitlines() if ln.strip()]
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
    if not instances:
        raise RequestError(400, "no instances in the request")
    return _finite(
        np.vstack([_instance_row(x, i, d) for i, x in enumerate(instances)]).astype(np.float32)
    )


def parse_recordio(body: bytes, d: int) -> np.ndarray:
    try:
        arrays = recordio.read_arrays(body)
    except recordio.RecordIOError as err:
        raise RequestError(400, f"invalid RecordIO-protobuf: {err}") from None
    X = arrays.dense()
    if X.shape[0] == 0:
        raise RequestError(400, "no records in the request")
    if X.shape[1] != d:
        raise RequestError(400, f"records have {X.shape[1]} features, the model takes {d}")
    return _finite(X)


# --------------------------------------------------------------------------- responses


def _rows(model: LinearModel, out: dict) -> list[dict]:
    score = out["score"]
    if model.predictor_type == "regressor":
        return [{"score": float(s)} for s in score]
    labels = out["predicted_label"]
    if model.predictor_type == "binary_classifier":
        return [{"score": float(s), "predicted_label": int(p)} for s, p in zip(score, labels)]
    return [
        {"score": [float(v) for v in s], "predicted_label": int(p)} for s, p in zip(score, labels)
    ]


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


def render(model: LinearModel, out: dict, accept: str) -> tuple[bytes, str]:
    rows = _rows(model, out)
    if accept == JSONLINES:
        return ("\n".join(json.dumps(r) for r in rows) + "\n").encode(), JSONLINES
    if accept == RECORDIO:
        body = b"".join(_record({k: np.atleast_1d(v) for k, v in r.items()}) for r in rows)
        return body, RECORDIO
    return json.dumps({"predictions": rows}).encode(), JSON


# --------------------------------------------------------------------------- server


def predict_body(
    model: LinearModel, body: bytes, content_type: str | None, accept: str | None
) -> tuple[bytes, str]:
    """The whole invocation, independent of HTTP (also used by ``predict --target local``)."""
    ctype = _media_type(content_type) or CSV
    acc = _media_type(accept)
    if acc in ("", "*/*"):
        acc = JSON
    if acc not in (JSON, JSONLINES, RECORDIO):
        raise RequestError(
            406, f"cannot answer in '{accept}': accept one of {JSON}, {JSONLINES}, {RECORDIO}"
        )
    d = model.feature_dim
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
    return render(model, model.predict(X), acc)


# --------------------------------------------------------------------------- runtime API

ACCOUNT = "000000000000"  # what the local twin reports where SageMaker names an account
VARIANT = "AllTraffic"  # the endpoint stack's one production variant
RUNTIME_PATH = re.compile(r"^/endpoints/([^/?]+)/invocations$")
CUSTOM_ATTRIBUTES = re.compile(r"^[\x20-\x7e]{0,1024}$")  # visible US-ASCII, <= 1024


def runtime_error(kind: str, message: str, **fields) -> tuple[int, bytes, dict]:
    """A SageMaker Runtime error as the real service sends it (rest-json: the type in the
    ``x-amzn-ErrorType`` header, the members in the body), so boto3 raises the same
    exception class with the same fields."""
    status = {"ValidationError": 400, "ModelError": 424}[kind]
    body = json.dumps({"message": message, **fields}).encode()
    return status, body, {"x-amzn-ErrorType": kind, "Content-Type": "application/json"}


def model_error(endpoint: str, err: RequestError) -> tuple[int, bytes, dict]:
    """The container's 4xx, wrapped as InvokeEndpoint does: ModelError (424) with the
    container's status and message as OriginalStatusCode / OriginalMessage."""
    message = str(err)
    return runtime_error(
        "ModelError",
        f'Received client error ({err.status}) from primary with message "{message}". See '
        f"the endpoint's log group /aws/sagemaker/Endpoints/{endpoint} for more information.",
        OriginalStatusCode=err.status,
        OriginalMessage=message,
        LogStreamArn=f"arn:aws:logs:local:{ACCOUNT}:log-group:/aws/sagemaker/Endpoints/{endpoint}",
    )


def make_handler(model: LinearModel, endpoint_name: str = naming.endpoint_name("ll-e2e")):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "LinearLearnerLocal/1"
        # Headers and body go out in separate writes; with Nagle on, the body waits for the
        # client's delayed ACK (~40 ms per request on keep-alive connections).
        disable_nagle_algorithm = True

        def log_message(self, fmt, *args):  # quiet: the caller shows what matters
            pass

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

        def do_POST(self):  # noqa: N802
            runtime = RUNTIME_PATH.match(self.path)
            if runtime:
                return self._runtime(urllib.parse.unquote(runtime.group(1)))
            length = self.headers.get("Content-Length")
            try:
                if self.path != "/invocations":
                    raise RequestError(
                        404, "not found: POST /invocations or /endpoints/<name>/invocations"
                    )
                if length is None:
                    raise RequestError(411, "Content-Length required")
                size = int(length)
                if size > MAX_BODY:
                    self._drain(size)  # so the client reads our answer, not a broken pipe
                    raise RequestError(
                        413, f"body of {size} bytes is over the 6 MB limit: split the request"
                    )
                body = self.rfile.read(size)
                out, ctype = predict_body(
                    model, body, self.headers.get("Content-Type"), self.headers.get("Accept")
                )
                self._send(200, out, ctype)
            except RequestError as err:
                if err.status == 413:
                    self.close_connection = True  # any undrained rest must not become a request
                self._send(err.status, (str(err) + "\n").encode())
            except ValueError:
                self._send(400, b"bad Content-Length\n")

        def _runtime(self, endpoint: str) -> None:
            """``InvokeEndpoint`` of the SageMaker Runtime API, in front of the container."""
            headers = self.headers
            try:
                size = int(headers.get("Content-Length", "0"))
            except ValueError:
                size = -1
            attributes = headers.get("X-Amzn-SageMaker-Custom-Attributes")
            if size < 0:
                error = runtime_error("ValidationError", "invalid Content-Length")
            elif size > MAX_BODY:
                self._drain(size)
                self.close_connection = True
                error = runtime_error(
                    "ValidationError",
                    f"Request payload of {size} bytes is over the 6 MB limit of real-time "
                    "endpoints: split it, or use batch transform",
                )
            elif endpoint != endpoint_name:
                self._drain(size)
                error = runtime_error(
                    "ValidationError",
                    f"Endpoint {endpoint} of account {ACCOUNT} not found. "
                    f"(this local endpoint serves '{endpoint_name}')",
                )
            elif attributes is not None and not CUSTOM_ATTRIBUTES.match(attributes):
                self._drain(size)
                error = runtime_error(
                    "ValidationError",
                    "CustomAttributes must be at most 1024 visible US-ASCII characters",
                )
            else:
                body = self.rfile.read(size)
                try:
                    out, ctype = predict_body(
                        model, body, headers.get("Content-Type"), headers.get("Accept")
                    )
                except RequestError as err:
                    error = model_error(endpoint, err)
                else:
                    self._send(200, out, ctype, {"x-Amzn-Invoked-Production-Variant": VARIANT})
                    return
            status, body, extra = error
            self._send(status, body, extra.pop("Content-Type"), extra)

    return Handler


def make_server(
    model: LinearModel | Path,
    host: str = "127.0.0.1",
    port: int = 8080,
    endpoint_name: str = naming.endpoint_name("ll-e2e"),
):
    """A server for ``model`` (a loaded model, or the path of any Linear Learner artifact),
    answering the runtime API for ``endpoint_name``."""
    if not isinstance(model, LinearModel):
        model = artifact.load(model)
    server = ThreadingHTTPServer((host, port), make_handler(model, endpoint_name))
    server.daemon_threads = True
    return server


@contextlib.contextmanager
def serving(model: LinearModel | Path) -> Iterator[int]:
    """A local endpoint on a free loopback port, for the length of a ``with`` block."""
    server = make_server(model, "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def serve(
    model: LinearModel,
    source: str,
    host: str = "127.0.0.1",
    port: int = 8080,
    endpoint_name: str = naming.endpoint_name("ll-e2e"),
) -> None:
    server = make_server(model, host, port, endpoint_name)
    url = f"http://{host}:{server.server_address[1]}"
    print(
        f"serving {source} ({model.predictor_type}, feature_dim {model.feature_dim}) on {url} "
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
