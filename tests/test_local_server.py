"""The local endpoint over real HTTP: formats in and out, client errors, concurrency."""

import http.client
import io
import json
import struct
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from training.core import artifact
from training.core.model import LinearModel
from training.data import recordio
from training.local.http_server import ServerLimits
from training.local.server import make_server

W = np.array([1.0, -2.0, 0.5], np.float32)
RECORDIO_TYPE = "application/x-recordio-protobuf"


def models(tmp_path):
    out = {}
    for name, model in {
        "binary": LinearModel("binary_classifier", "logistic", W, np.float32(0.25), 0.5),
        "regressor": LinearModel("regressor", "squared_loss", W, np.float32(10.0)),
        "multiclass": LinearModel(
            "multiclass_classifier",
            "softmax_loss",
            np.stack([W, -W, W * 0]).T.astype(np.float32),
            np.zeros(3, np.float32),
        ),
    }.items():
        out[name] = artifact.save(model, tmp_path / f"{name}.tar.gz")
    return out


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    running = {}
    for name, path in models(tmp_path_factory.mktemp("models")).items():
        server = make_server(path, "127.0.0.1", 0)  # a free port
        threading.Thread(target=server.serve_forever, daemon=True).start()
        running[name] = server.server_address[1]
    yield running


def call(
    port, body, ctype="text/csv", accept="application/json", method="POST", path="/invocations"
):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    headers = {"Content-Type": ctype, "Accept": accept} if ctype else {"Accept": accept}
    conn.request(method, path, body=body, headers=headers)
    res = conn.getresponse()
    data = res.read()
    conn.close()
    return res.status, res.getheader("Content-Type"), data


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def test_ping(servers):
    assert call(servers["binary"], None, None, method="GET", path="/ping")[0] == 200


def test_csv_to_json_binary(servers):
    status, ctype, body = call(servers["binary"], b"1,0,0\n0,1,0\n")
    assert status == 200 and ctype == "application/json"
    preds = json.loads(body)["predictions"]
    assert preds[0]["score"] == pytest.approx(sigmoid(1.25), rel=1e-6)
    assert [p["predicted_label"] for p in preds] == [1, 0]


def test_regressor_and_multiclass_shapes(servers):
    _, _, body = call(servers["regressor"], b"1,1,2\n")
    assert json.loads(body) == {"predictions": [{"score": pytest.approx(10.0)}]}
    _, _, body = call(servers["multiclass"], b"1,0,0\n")
    pred = json.loads(body)["predictions"][0]
    assert len(pred["score"]) == 3 and pred["predicted_label"] == 0
    assert sum(pred["score"]) == pytest.approx(1.0)


@pytest.mark.parametrize(
    "doc",
    [
        {"instances": [{"features": [1, 0, 0]}]},
        {"instances": [{"data": {"features": {"values": [1, 0, 0]}}}]},
        {"instances": [{"data": {"features": {"keys": [0], "shape": [3], "values": [1]}}}]},
    ],
)
def test_the_three_documented_json_request_shapes(servers, doc):
    status, _, body = call(servers["regressor"], json.dumps(doc).encode(), "application/json")
    assert status == 200
    assert json.loads(body)["predictions"][0]["score"] == pytest.approx(11.0)


def test_jsonlines_in_and_out(servers):
    lines = b'{"features": [1, 0, 0]}\n{"features": [0, 0, 2]}\n'
    status, ctype, body = call(
        servers["regressor"], lines, "application/jsonlines", "application/jsonlines"
    )
    assert status == 200 and ctype == "application/jsonlines"
    assert [json.loads(x)["score"] for x in body.decode().splitlines()] == [
        pytest.approx(11.0),
        pytest.approx(11.0),
    ]


def test_recordio_in_and_out(servers):
    buf = io.BytesIO()
    recordio.write_numpy_to_dense_tensor(buf, np.array([[1, 0, 0], [0, 1, 0]], np.float32))
    status, ctype, body = call(
        servers["binary"],
        buf.getvalue(),
        "application/x-recordio-protobuf",
        "application/x-recordio-protobuf",
    )
    assert status == 200 and ctype == "application/x-recordio-protobuf"
    records = recordio.read_records(body)
    assert len(records) == 2 and records[0].features == {}
    assert records[0].label["score"].float32_tensor.values[0] == pytest.approx(sigmoid(1.25))
    assert list(records[1].label["predicted_label"].float32_tensor.values) == [0.0]


@pytest.mark.parametrize(
    "body, ctype, accept, status, message",
    [
        (b"1,0\n", "text/csv", "application/json", 400, "row 1 has 2 features, the model takes 3"),
        (b"1,0,0,1\n", "text/csv", "application/json", 400, "a label column?"),
        (b"1,x,0\n", "text/csv", "application/json", 400, "row 1, column 2: 'x' is not a number"),
        (b"1,nan,0\n", "text/csv", "application/json", 400, "send finite numbers"),
        (b"{", "application/json", "application/json", 400, "invalid JSON"),
        (b'{"rows": []}', "application/json", "application/json", 400, "'instances' list"),
        (
            b"\x00\x01",
            "application/x-recordio-protobuf",
            "application/json",
            400,
            "invalid RecordIO-protobuf",
        ),
        (b"1,0,0", "application/x-npy", "application/json", 415, "not supported"),
        (b"1,0,0", "text/csv", "text/html", 406, "cannot answer in 'text/html'"),
    ],
)
def test_client_mistakes_get_4xx_naming_the_problem(servers, body, ctype, accept, status, message):
    got, _, text = call(servers["binary"], body, ctype, accept)
    assert got == status and message in text.decode()


def test_body_over_6mb_is_413_and_the_server_keeps_serving(servers):
    big = b"1,0,0\n" * (7 * 1024 * 1024 // 6)
    status, _, text = call(servers["binary"], big)
    assert status == 413 and "6 MB" in text.decode()
    assert call(servers["binary"], b"1,0,0\n")[0] == 200


def test_concurrent_clients(servers):
    rows = np.random.default_rng(0).standard_normal((50, 3)).astype(np.float32)
    expected = rows @ W + 10.0

    def one(i):
        status, _, body = call(servers["regressor"], ",".join(map(str, rows[i])).encode())
        return status, json.loads(body)["predictions"][0]["score"]

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(one, range(50)))
    assert all(s == 200 for s, _ in results)
    np.testing.assert_allclose([v for _, v in results], expected, rtol=1e-5)


# ----------------------------------------------------------------------------- hostile input
# Inputs an adversarial run found answered with no reply, a wrong status, a 4.5 GB allocation
# or silent acceptance (issue 14). Every one must get a 4xx that names it.


def sparse_record(shape: int, keys: list[int]) -> bytes:
    """One sparse RecordIO record written by hand (a shape or keys no writer would produce)."""
    from training.data.recordio import _varint

    def field(number: int, payload: bytes) -> bytes:
        return _varint(number << 3 | 2) + _varint(len(payload)) + payload

    values = np.ones(len(keys), "<f4").tobytes()
    tensor = field(1, values) + field(2, b"".join(_varint(k) for k in keys))
    tensor += field(3, _varint(shape))
    value = field(2, tensor)  # Value.float32_tensor
    entry = field(1, b"values") + field(2, value)
    payload = field(1, entry)  # Record.features map entry
    pad = b"\0" * (-len(payload) % 4)
    return struct.pack("<II", recordio.MAGIC, len(payload)) + payload + pad


HOSTILE = [
    # (body, content type, accept, status, message)
    ("1,2,3\r4,5,6\n", "text/csv", None, 400, "row 1 contains the line break '\\r'"),
    ("1,2,3\u20284,5,6", "text/csv", None, 400, "line break '\\u2028'"),
    ("1,2,3\f", "text/csv", None, 400, "line break '\\x0c'"),
    ("1,2,3\v", "text/csv", None, 400, "line break '\\x0b'"),
    (
        '{"instances": [{"features": [1, "2", 3]}]}',
        "application/json",
        None,
        400,
        'feature "2" is not a finite JSON number',
    ),
    (
        '{"instances": [{"features": [true, 0, 0]}]}',
        "application/json",
        None,
        400,
        "feature true is not",
    ),
    (
        '{"instances": [{"features": [1' + "0" * 400 + ", 0, 0]}]}",
        "application/json",
        None,
        400,
        "an integer beyond float range",
    ),
    (
        '{"instances": [{"data": {"features": {"keys": [1.7], "values": [1]}}}]}',
        "application/json",
        None,
        400,
        "keys must be a list of JSON integers",
    ),
    (
        '{"instances": [{"data": {"features": {"keys": [9223372036854775808], "values": [1]}}}]}',
        "application/json",
        None,
        400,
        "key 9223372036854775808 outside 0..2",
    ),
    (
        '{"instances": [{"data": {"features": '
        '{"keys": [0], "values": [1], "shape": [4611686018427387904]}}}]}',
        "application/json",
        None,
        400,
        "shape [4611686018427387904] is not the model's [3]",
    ),
    ("[" * 100_000 + "]" * 100_000, "application/json", None, 400, "nested too deeply"),
    (
        '{"features": ' + "[" * 100_000 + "]" * 100_000 + "}",
        "application/jsonlines", None, 400, "nested",
    ),
    ("1,2,3", "text/csv", "text/csv", 406, "cannot answer in 'text/csv'"),
]  # fmt: skip


@pytest.mark.parametrize("body, ctype, accept, status, message", HOSTILE)
def test_hostile_requests_get_a_4xx_that_names_them(servers, body, ctype, accept, status, message):
    raw = body.encode() if isinstance(body, str) else body
    got, _, text = call(servers["binary"], raw, ctype, accept or "application/json")
    assert (got, message in text.decode()) == (status, True), text.decode()[:300]
    assert call(servers["binary"], b"1,0,0\n")[0] == 200  # and the server keeps serving


@pytest.mark.parametrize(
    "shape, keys, message",
    [
        (2**30, [0, 5], "records have 1073741824 features, the model takes 3"),
        (2**62, [0], "records have 4611686018427387904 features"),
        (3, [2**63 + 5], "invalid RecordIO-protobuf"),
    ],
)
def test_a_sparse_request_is_checked_before_anything_of_its_width_exists(
    servers, shape, keys, message
):
    import resource

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    got, _, text = call(servers["binary"], sparse_record(shape, keys), RECORDIO_TYPE)
    assert got == 400 and message in text.decode(), text
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mb < 100  # the 72 KB request that allocated 4.5 GB


def test_a_sparse_request_of_the_right_width_is_scored_without_densifying(servers):
    got, _, text = call(servers["binary"], sparse_record(3, [0, 2]), RECORDIO_TYPE)
    assert got == 200
    assert json.loads(text)["predictions"][0]["score"] == pytest.approx(sigmoid(1.0 + 0.5 + 0.25))


def test_accept_lists_and_methods(servers):
    port = servers["binary"]
    got, ctype, _ = call(port, b"1,0,0", accept="application/json, text/plain")
    assert (got, ctype) == (200, "application/json")
    got, ctype, _ = call(port, b"1,0,0", accept="text/html;q=0.9, application/jsonlines")
    assert (got, ctype) == (200, "application/jsonlines")
    assert call(port, b"1,0,0", accept="application/json;q=0")[0] == 406
    for method in ("PUT", "DELETE", "PATCH", "OPTIONS"):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request(method, "/invocations", body=b"1,0,0")
        res = conn.getresponse()
        assert (res.status, res.getheader("Allow")) == (405, "GET, HEAD, POST"), method
        conn.close()


def raw_request(port: int, data: bytes, timeout: float = 10.0) -> bytes:
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_a_negative_or_absurd_content_length_is_answered_not_waited_on(servers):
    for length in (b"-1", b"1e3", b"99999999999999999999"):
        head = b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\n"
        answer = raw_request(servers["binary"], head + b"Content-Length: " + length + b"\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 400") and b"is not a byte count" in answer, answer


def test_a_silent_client_is_dropped_after_the_header_deadline(tmp_path):
    """Headers that never finish must not hold the connection forever."""
    import socket
    import time

    model = LinearModel("regressor", "squared_loss", W, np.float32(10.0))
    srv = make_server(model, "127.0.0.1", 0, settings=ServerLimits(header_deadline_s=0.5))
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        with socket.create_connection(("127.0.0.1", srv.server_address[1]), timeout=10) as sock:
            sock.sendall(b"POST /invocations HTTP/1.1\r\nContent-Le")  # and then nothing
            started = time.monotonic()
            answer = sock.recv(1024)  # 408, then closed by the server
            assert answer.startswith(b"HTTP/1.1 408") and b"within 0.5 s" in answer, answer
            assert sock.recv(1024) == b""
            assert time.monotonic() - started < 5
    finally:
        srv.shutdown()
        srv.server_close()


def test_the_server_runs_under_training_limits():
    from training import limits

    model = LinearModel("regressor", "squared_loss", W, np.float32(10.0))
    srv = make_server(model, "127.0.0.1", 0)
    try:
        assert srv.limits == ServerLimits()
        assert srv.limits.listen_backlog == limits.SERVER_LISTEN_BACKLOG == 1024
        assert srv.limits.max_body == limits.SERVER_MAX_BODY == 6 * 1024 * 1024
    finally:
        srv.server_close()


def test_200_clients_opening_a_connection_per_request_see_no_reset(servers):
    """The adversarial run's load: with the stdlib backlog of 5, 700-800 of 2000 were reset."""

    def one(i):
        try:
            status, _, _ = call(servers["regressor"], b"1,2,3")
            return status
        except OSError as err:
            return type(err).__name__

    with ThreadPoolExecutor(200) as pool:
        results = list(pool.map(one, range(2000)))
    assert results.count(200) == 2000, {r for r in results if r != 200}


def test_a_client_that_resets_its_connection_leaves_no_traceback(capsys):
    import socket
    import time

    model = LinearModel("regressor", "squared_loss", W, np.float32(10.0))
    srv = make_server(model, "127.0.0.1", 0)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        sock = socket.create_connection(("127.0.0.1", srv.server_address[1]), timeout=10)
        sock.sendall(b"POST /invocations HTTP/1.1\r\nContent-Length: 100\r\n\r\n1,2")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()  # an RST mid-body, as a killed client sends
        deadline = time.monotonic() + 10  # until the reset connection's handler has ended
        while srv._connections:
            assert time.monotonic() < deadline, "the reset connection is still being served"
            time.sleep(0.01)
        assert srv._in_flight == 0  # the body it announced is no longer held against others
        assert call(srv.server_address[1], b"1,2,3")[0] == 200
    finally:
        srv.shutdown()
        srv.server_close()
    assert "Traceback" not in capsys.readouterr().err
