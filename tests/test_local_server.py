"""The local endpoint over real HTTP: formats in and out, client errors, concurrency."""

import http.client
import io
import json
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from training import artifact, recordio
from training.local.learner import LinearModel
from training.local.server import make_server

W = np.array([1.0, -2.0, 0.5], np.float32)


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
