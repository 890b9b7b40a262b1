"""SageMaker's real Linear Learner artifact, both ways: read the eight models SageMaker training
jobs wrote (../shared/fixtures/ll-artifacts), write the same layers, and reproduce the container's
own logged metrics from one of them.

The structure checks read what this project writes with a small parser written here, not with
``training.core.artifact``, so a bug shared by the writer and the reader cannot hide.
"""

import functools
import gzip
import http.client
import io
import json
import re
import struct
import subprocess
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from snapshot import SNAPSHOT, TASKS, penguins_predictions

from training.cli import main
from training.core import artifact, mxnet
from training.core.metrics import MetricsParams
from training.core.model import LinearModel

ROOT = Path(__file__).parents[1]
REAL = ROOT.parent / "shared" / "fixtures" / "ll-artifacts"
TEE = REAL / "attrition-binary-teelenzi"
SALARY = REAL / "salary-regressor-tiroamodimo"

# (folder, file) -> (predictor_type, feature_dim, threshold) from the fixtures' README
EXPECTED = {
    ("attrition-binary-teelenzi", "model_algo-1"): ("binary_classifier", 20, 0.5315272808074951),
    ("attrition-binary-romeoorg", "model.tar.gz"): ("binary_classifier", 20, 0.4867939054965973),
    ("attrition-binary-romeoorg", "model_algo-1"): ("binary_classifier", 20, 0.4867939054965973),
    ("fakenews-binary-maximelavech", "model.tar.gz"): (
        "binary_classifier",
        5000,
        0.030055705457925797,
    ),
    ("fakenews-binary-maximelavech", "model_algo-1"): (
        "binary_classifier",
        5000,
        0.030055705457925797,
    ),
    ("titanic-binary-joseanpz", "model.tar.gz"): ("binary_classifier", 5, 0.4020986557006836),
    ("titanic-binary-joseanpz", "model_algo-1"): ("binary_classifier", 5, 0.3609479069709778),
    ("salary-regressor-tiroamodimo", "model.tar.gz"): ("regressor", 1, 0.5),
    ("salary-regressor-tiroamodimo", "model_algo-1"): ("regressor", 1, 0.5),
    ("salary-regressor-packt", "model.ll.tar.gz"): ("regressor", 1, 0.5),
    ("covid-regressor-nschmeller", "model.tar.gz"): ("regressor", 513, 0.5),
    ("covid-regressor-nschmeller", "model_algo-1"): ("regressor", 513, 0.5),
}
# what SageMaker logged for the TeeLenzi job (its PROVENANCE.md)
LOGGED = {
    "binary_classification_accuracy": 0.7112095296273672,
    "precision": 0.7309871756635848,
    "recall": 0.7125,
    "binary_f_beta": 0.72162520241425,
}
LOGGED_AUC, LOGGED_CROSS_ENTROPY = 0.7852394233934931, 0.5551001572652641

# on the tests that read the real artifacts only: the others run wherever the project is
needs_shared = pytest.mark.skipif(not REAL.exists(), reason="../shared/fixtures not laid out")


@needs_shared
def test_the_fixture_table_covers_every_real_artifact():
    found = {(p.parent.name, p.name) for p in REAL.glob("*/*") if p.name.startswith("model")}
    assert found == set(EXPECTED)


@needs_shared
@pytest.mark.parametrize("folder, name", sorted(EXPECTED))
def test_every_real_artifact_loads(folder, name):
    model = artifact.load(REAL / folder / name)
    predictor, d, threshold = EXPECTED[(folder, name)]
    assert (model.predictor_type, model.feature_dim, model.threshold) == (predictor, d, threshold)
    assert model.loss == ("logistic" if predictor == "binary_classifier" else "squared_loss")
    X = np.random.default_rng(0).uniform(0, 0.05, size=(4, d)).astype(np.float32)
    out = model.predict(X)
    z = X.astype(np.float64) @ model.weights.astype(np.float64) + float(model.bias)
    if predictor == "binary_classifier":
        np.testing.assert_allclose(out.score, 1 / (1 + np.exp(-z)), rtol=1e-12)
        assert (out.predicted_label == (out.score > threshold)).all()
    else:
        np.testing.assert_allclose(out.score, z, rtol=1e-12)


@needs_shared
def test_the_salary_regressor_predicts_the_authors_mxnet_readout():
    model = artifact.load(SALARY / "model.tar.gz")
    x = np.array([[0.0], [1.0], [42.0]], np.float32)
    expected = 8.219234466552734 * x[:, 0].astype(np.float64) + 881.392578125
    assert model.predict(x).score.tolist() == expected.tolist()


# ----------------------------------------------------------------------- exact reproduction


def tee_rows():
    values = np.loadtxt(TEE / "TrainData.csv", delimiter=",", dtype=np.float64)
    return values[:, 1:], values[:, 0]


def assert_container_metrics(score, predicted_label, y):
    from training.core import metrics as lm

    got = lm.binary_metrics(np.asarray(score), np.asarray(predicted_label), y)
    for name, value in LOGGED.items():
        assert got[name] == value, name  # every digit
    assert got["roc_auc_score"] == pytest.approx(LOGGED_AUC, abs=1e-6)
    s = np.asarray(score, np.float64)
    cross_entropy = -np.mean(y * np.log(s) + (1 - y) * np.log(1 - s))
    assert cross_entropy == pytest.approx(LOGGED_CROSS_ENTROPY, abs=1e-6)


@needs_shared
def test_the_teelenzi_artifact_reproduces_the_containers_logged_metrics_in_process():
    X, y = tee_rows()
    out = artifact.load(TEE / "model_algo-1").predict(X.astype(np.float32))
    assert_container_metrics(out.score, out.predicted_label, y)


@needs_shared
def test_the_teelenzi_artifact_reproduces_them_through_serve_over_http(tmp_path):
    from ports import free_port, serve_process, wait_for_port

    X, y = tee_rows()
    port = free_port()
    server = serve_process(TEE / "model_algo-1", port, cwd=ROOT, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_port(port)
        body = "\n".join(",".join(f"{v:g}" for v in row) for row in X).encode()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("POST", "/invocations", body, {"Content-Type": "text/csv"})
        res = conn.getresponse()
        answer = json.loads(res.read())
        assert res.status == 200
    finally:
        server.terminate()
        _, err = server.communicate(timeout=10)
    rows = answer["predictions"]
    assert set(rows[0]) == {"score", "predicted_label"} and isinstance(rows[0]["score"], float)
    assert_container_metrics([r["score"] for r in rows], [r["predicted_label"] for r in rows], y)
    assert "binary_classifier, feature_dim 20" in err


@needs_shared
def test_predict_against_a_sagemaker_artifact_prints_the_logged_metrics(capsys, tmp_path):
    rc = main(
        [
            "-q",
            "predict",
            "--model",
            str(TEE / "model_algo-1"),
            "--input",
            str(TEE / "TrainData.csv"),
            "--labelled",
            "--out",
            str(tmp_path / "p.jsonl"),
        ]
    )
    assert rc == 0
    printed = capsys.readouterr().out
    assert "test:binary_classification_accuracy     0.71121" in printed
    assert "test:recall                             0.7125" in printed


# ----------------------------------------------------------------------- an independent reader


def parse_params(data: bytes) -> dict:
    """NDArray list per apache/mxnet NDArray::Save, written from the reference, not the code."""
    magic, reserved, n = struct.unpack_from("<QQQ", data, 0)
    assert (magic, reserved) == (0x112, 0)
    pos, arrays = 24, []
    for _ in range(n):
        v2, stype, ndim = struct.unpack_from("<IiI", data, pos)
        assert (v2, stype) == (0xF993FAC9, 0)
        shape = struct.unpack_from(f"<{ndim}q", data, pos + 12)
        pos += 12 + 8 * ndim
        dev_type, dev_id, flag = struct.unpack_from("<iii", data, pos)
        assert (dev_type, dev_id, flag) == (1, 0, 0)  # cpu(0), float32
        pos += 12
        count = int(np.prod(shape))
        arrays.append(np.frombuffer(data, "<f4", count, pos).reshape(shape))
        pos += 4 * count
    (names_n,) = struct.unpack_from("<Q", data, pos)
    pos += 8
    names = []
    for _ in range(names_n):
        (length,) = struct.unpack_from("<Q", data, pos)
        names.append(data[pos + 8 : pos + 8 + length].decode())
        pos += 8 + length
    assert pos == len(data)
    return dict(zip(names, arrays))


def layers(path: Path):
    """(gzip bytes, tar header, tar member info, zip) of a model.tar.gz."""
    raw = path.read_bytes()
    tar_bytes = gzip.decompress(raw)
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tar:
        members = tar.getmembers()
        inner = tar.extractfile(members[0]).read()
    return raw, tar_bytes, members, zipfile.ZipFile(io.BytesIO(inner))


def graph_shape(symbol: dict) -> dict:
    """The graph with MXNet's generated numbers and the shapes taken out."""
    nodes = []
    for node in symbol["nodes"]:
        attrs = {k: v for k, v in node.get("attrs", {}).items() if k != "__shape__"}
        nodes.append((node["op"], re.sub(r"\d+$", "", node["name"]), attrs, node["inputs"]))
    return {**symbol, "nodes": nodes}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Models this project trains, written as model.tar.gz (binary, regressor, multiclass)."""
    base = tmp_path_factory.mktemp("trained")
    rng = np.random.default_rng(1)
    X = rng.normal(size=(400, 6)).astype(np.float32)
    out = {}
    for ptype, y in {
        "binary_classifier": (X[:, 0] - X[:, 1] > 0).astype(np.float32),
        "regressor": (3 * X[:, 0] - X[:, 2] + 5).astype(np.float32),
        "multiclass_classifier": np.digitize(X[:, 0], [-0.5, 0.5]).astype(np.float32),
    }.items():
        hp = {"predictor_type": ptype, "epochs": "3", "feature_dim": "6"}
        if ptype == "multiclass_classifier":
            hp["num_classes"] = "3"
        from training.core import hyperparameters
        from training.local.learner import Data, PackedTrainer

        model = PackedTrainer(hyperparameters.validate(hp), seed=0).fit(
            Data(X[:300], y[:300]), Data(X[300:], y[300:])
        )
        out[ptype] = (model, artifact.save(model, base / ptype / "model.tar.gz"))
    return out


@needs_shared
@pytest.mark.parametrize(
    "ptype, real",
    [
        ("binary_classifier", REAL / "fakenews-binary-maximelavech" / "model.tar.gz"),
        ("regressor", SALARY / "model.tar.gz"),
    ],
)
def test_a_written_artifact_has_the_layers_of_a_real_one(trained, ptype, real):
    model, path = trained[ptype]
    ours, theirs = layers(path), layers(real)
    # gzip: header with mtime 0 and OS 255, as SageMaker's
    assert ours[0][:10] == theirs[0][:10] == bytes.fromhex("1f8b08000000000000ff")
    # tar: one ustar member model_algo-1; the header fields other than size, mtime and checksum
    # are the same bytes; 10 KiB records
    assert [m.name for m in ours[2]] == [m.name for m in theirs[2]] == ["model_algo-1"]
    for lo, hi in [(0, 124), (156, 512)]:
        assert ours[1][lo:hi] == theirs[1][lo:hi]
    assert len(ours[1]) % 10240 == 0
    # zip: the same four stored members with the same attributes
    zo, zt = ours[3], theirs[3]
    assert sorted(zo.namelist()) == sorted(zt.namelist())
    for a in zo.infolist():
        b = zt.getinfo(a.filename)
        assert (
            (a.compress_type, a.create_system, a.external_attr, a.extract_version)
            == (b.compress_type, b.create_system, b.external_attr, b.extract_version)
            == (zipfile.ZIP_STORED, 3, 0x81A40000, 20)
        )
        assert a.flag_bits == b.flag_bits == 0 and a.comment == b.comment == b""
    assert json.loads(zo.read("manifest.json")) == json.loads(zt.read("manifest.json"))
    real_params = json.loads(zt.read("additional-params.json"))
    our_params = json.loads(zo.read("additional-params.json"))
    assert sorted(our_params) == sorted(real_params)
    # the 2024 container's key order (older artifacts order them differently)
    newest = json.loads(zipfile.ZipFile(TEE / "model_algo-1").read("additional-params.json"))
    assert list(our_params) == list(newest)
    assert list(our_params["metrics_params"]) == list(newest["metrics_params"])
    assert sorted(our_params["metrics_params"]) == sorted(real_params["metrics_params"])
    assert {k: our_params[k] for k in ("predictor_type", "loss_type")} == {
        k: real_params[k] for k in ("predictor_type", "loss_type")
    }
    assert our_params["threshold"] == our_params["metrics_params"]["threshold"] == model.threshold
    assert (our_params["metrics_params"]["f_beta"] is None) == (ptype == "regressor")
    symbol_ours = json.loads(zo.read("mx-mod-symbol.json"))
    symbol_real = json.loads(zt.read("mx-mod-symbol.json"))
    assert graph_shape(symbol_ours) == graph_shape(symbol_real)
    assert symbol_ours["nodes"][1]["attrs"]["__shape__"] == f"({model.feature_dim}, 1)"
    assert symbol_ours["nodes"][3]["attrs"]["__shape__"] == "(1, 1)"
    # params, read with the parser above: the trained weights, float32, (d, 1) and (1, 1)
    params = parse_params(zo.read("mx-mod-0000.params"))
    assert sorted(params) == sorted(parse_params(zt.read("mx-mod-0000.params")))
    assert params["arg:fc0_weight"].shape == (model.feature_dim, 1)
    assert params["arg:fc0_weight"][:, 0].tolist() == model.weights.tolist()
    assert params["arg:fc0_bias"].tolist() == [[float(model.bias)]]


@needs_shared
def test_the_written_graph_text_is_what_mxnet_writes(trained):
    """The real TeeLenzi graph text, with our shape and generated numbers, equals ours."""
    model, path = trained["binary_classifier"]
    ours = layers(path)[3].read("mx-mod-symbol.json").decode()
    real = zipfile.ZipFile(TEE / "model_algo-1").read("mx-mod-symbol.json").decode()
    real = real.replace("(20, 1)", "(6, 1)")
    assert ours == re.sub(r'"([a-z_]+?)42"', r'"\g<1>0"', real)


def test_a_multiclass_artifact_uses_the_inferred_softmax_layout(trained):
    model, path = trained["multiclass_classifier"]
    zf = layers(path)[3]
    symbol = json.loads(zf.read("mx-mod-symbol.json"))
    assert symbol["nodes"][-1]["op"] == "SoftmaxOutput"
    assert symbol["nodes"][1]["attrs"]["__shape__"] == "(6, 3)"
    assert symbol["nodes"][3]["attrs"]["__shape__"] == "(1, 3)"
    params = parse_params(zf.read("mx-mod-0000.params"))
    assert params["arg:fc0_weight"].tolist() == model.weights.tolist()
    assert params["arg:fc0_bias"].tolist() == [model.bias.tolist()]
    extra = json.loads(zf.read("additional-params.json"))
    assert (extra["predictor_type"], extra["loss_type"]) == (
        "multiclass_classifier",
        "softmax_loss",
    )
    back = artifact.load(path)
    X = np.random.default_rng(2).normal(size=(20, 6)).astype(np.float32)
    for key in ("score", "predicted_label"):
        np.testing.assert_array_equal(getattr(back.predict(X), key), getattr(model.predict(X), key))


@pytest.mark.parametrize(
    "ptype, loss, key, value",
    [
        ("binary_classifier", "hinge_loss", "margin", 2.0),
        ("regressor", "quantile_loss", "quantile", 0.9),
        ("regressor", "huber_loss", "huber_delta", 3.0),
        ("regressor", "eps_insensitive_absolute_loss", "loss_insensitivity", 0.5),
        ("regressor", "absolute_loss", None, None),
    ],
)
def test_other_losses_write_their_name_and_parameter_and_read_back(
    tmp_path, ptype, loss, key, value
):
    params = MetricsParams(**({key: value} if key else {}))
    model = LinearModel(
        ptype, loss, np.array([1.0, -2.0], np.float32), np.float32(0.5), 0.0, params
    )
    path = artifact.save(model, tmp_path / "model.tar.gz")
    zf = layers(path)[3]
    extra = json.loads(zf.read("additional-params.json"))
    assert extra["loss_type"] == loss
    filled = {k for k, v in extra["metrics_params"].items() if v is not None}
    assert filled - {"accuracy_top_k", "f_beta", "positive_example_weight_mult", "threshold"} == (
        {key} if key else set()
    )
    if key:
        assert extra["metrics_params"][key] == value
    assert json.loads(zf.read("mx-mod-symbol.json"))["nodes"][-1]["op"] == "LinearRegressionOutput"
    back = artifact.load(path)
    assert (back.predictor_type, back.loss) == (ptype, loss)
    assert back.metrics_params == model.metrics_params  # read back as written
    X = np.array([[1.0, 1.0], [0.0, -1.0]], np.float32)
    np.testing.assert_array_equal(back.predict(X).score, [-0.5, 2.5])  # raw x.W + b


def test_the_same_model_gives_the_same_bytes_and_no_temporary_file_is_left(tmp_path, trained):
    model, _ = trained["regressor"]
    a = artifact.save(model, tmp_path / "a" / "model.tar.gz").read_bytes()
    b = artifact.save(model, tmp_path / "b" / "model.tar.gz").read_bytes()
    assert a == b
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["model.tar.gz"]


# ----------------------------------------------------------------------- byte-identical rebuilds


@needs_shared
@pytest.mark.parametrize(
    "path", sorted(p for p in REAL.glob("*/*.tar.gz") if "romeoorg" not in p.parts[-2])
)
def test_each_real_tar_gz_is_rebuilt_byte_for_byte_from_its_member(path):
    """(Romeoorg's tar was re-packed by its author with PAX headers, so it is left out.)"""
    with tarfile.open(path) as tar:
        member = tar.getmembers()[0]
        inner = tar.extractfile(member).read()
    assert artifact.tar_gz(inner, int(member.mtime)) == path.read_bytes()


@needs_shared
def test_the_teelenzi_model_algo_is_rebuilt_byte_for_byte_from_its_values():
    real = (TEE / "model_algo-1").read_bytes()
    model = artifact.load(TEE / "model_algo-1")
    date = zipfile.ZipFile(io.BytesIO(real)).infolist()[0].date_time
    assert artifact.model_algo_bytes(model, date_time=date, suffix=42) == real


@needs_shared
def test_the_salary_regressor_members_are_rebuilt_byte_for_byte():
    real = zipfile.ZipFile(SALARY / "model_algo-1")
    ours = zipfile.ZipFile(
        io.BytesIO(artifact.model_algo_bytes(artifact.load(SALARY / "model_algo-1"), suffix=47))
    )
    for name in artifact.MEMBERS:
        assert ours.read(name) == real.read(name), name


# ----------------------------------------------------------------------- NDArray variants


def test_v1_and_legacy_ndarrays_are_read():
    data = np.arange(6, dtype="<f4").reshape(3, 2)
    v1 = struct.pack("<II", 0xF993FAC8, 2) + struct.pack("<2q", 3, 2) + struct.pack("<iii", 1, 0, 0)
    legacy = struct.pack("<I", 2) + struct.pack("<2I", 3, 2) + struct.pack("<iii", 1, 0, 0)
    for header in (v1, legacy):
        blob = struct.pack("<QQQ", 0x112, 0, 1) + header + data.tobytes()
        blob += struct.pack("<Q", 1) + struct.pack("<Q", 1) + b"w"
        assert mxnet.load_ndarrays(blob)["w"].tolist() == data.tolist()


@needs_shared
def test_ndarray_lists_round_trip_every_real_params_file():
    for path in REAL.glob("*/model_algo-1"):
        raw = zipfile.ZipFile(path).read("mx-mod-0000.params")
        assert mxnet.save_ndarrays(mxnet.load_ndarrays(raw)) == raw


# ----------------------------------------------------------------------- foreign and damaged files


def zip_of(members: dict) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def real_members(**replace) -> dict:
    zf = zipfile.ZipFile(TEE / "model_algo-1")
    members = {n: zf.read(n) for n in zf.namelist()}
    members.update(replace)
    return {k: v for k, v in members.items() if v is not None}


def tar_gz_of(files: dict) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


KMEANS = mxnet.save_ndarrays({"0": np.zeros((4, 3), np.float32)})
PCA = mxnet.save_ndarrays({str(i): np.zeros((3, 2), np.float32) for i in range(3)})


@functools.cache
def foreign_files() -> dict:
    """Each case: (bytes, what the error must say). Built on first use: they read the real
    artifacts, which only exist where ../shared is laid out."""
    TEE_PARAMS = zipfile.ZipFile(TEE / "model_algo-1").read("mx-mod-0000.params")
    SPARSE_PARAMS = bytearray(TEE_PARAMS)
    SPARSE_PARAMS[28:32] = struct.pack("<i", 2)  # the weight's storage type: csr
    TWO_COLUMNS = mxnet.save_ndarrays(
        {
            "arg:fc0_weight": np.zeros((20, 2), np.float32),
            "arg:fc0_bias": np.zeros((1, 2), np.float32),
        }
    )
    return {
        "kmeans model_algo-1": (KMEANS, "NDArray list .* k-means model, not Linear Learner"),
        "pca model_algo-1": (PCA, "NDArray list .* PCA model, not Linear Learner"),
        "kmeans model.tar.gz": (tar_gz_of({"model_algo-1": KMEANS}), "k-means model"),
        "empty": (b"", "an empty file"),
        "json": (b'{"a": 1}', "a JSON file, not a Linear Learner model"),
        "truncated tar.gz": ((SALARY / "model.tar.gz").read_bytes()[:300], "damaged or truncated"),
        "tar.gz without model_algo-1": (
            tar_gz_of({"model.pkl": b"x"}),
            "without model_algo-1 .*model.pkl",
        ),
        "previous local format": (
            tar_gz_of({"model.json": b"{}", "weights.npy": b"", "bias.npy": b""}),
            "earlier version of this project",
        ),
        "zip without params": (
            zip_of(real_members(**{"mx-mod-0000.params": None})),
            "without mx-mod-0000.params",
        ),
        "damaged zip": ((TEE / "model_algo-1").read_bytes()[:900], "damaged ZIP|without"),
        "bad additional params": (
            zip_of(real_members(**{"additional-params.json": b"{not json"})),
            "additional-params.json is not valid JSON",
        ),
        "unknown predictor": (
            zip_of(real_members(**{"additional-params.json": b'{"predictor_type": "ranker"}'})),
            "predictor_type 'ranker'",
        ),
        "sparse weights": (
            zip_of(real_members(**{"mx-mod-0000.params": bytes(SPARSE_PARAMS)})),
            "csr storage",
        ),
        "truncated params": (
            zip_of(real_members(**{"mx-mod-0000.params": TEE_PARAMS[:100]})),
            "truncated at byte",
        ),
        "binary with two columns": (
            zip_of(real_members(**{"mx-mod-0000.params": TWO_COLUMNS})),
            "binary_classifier with 2 output",
        ),
        "graph of another model": (
            zip_of(
                real_members(
                    **{
                        "mx-mod-symbol.json": b'{"nodes": [{"op": "Convolution"}], '
                        b'"heads": [[0, 0, 0]]}'
                    }
                )
            ),
            "not a linear model's graph",
        ),
        "loss against the graph": (
            zip_of(
                real_members(
                    **{
                        "mx-mod-symbol.json": zipfile.ZipFile(SALARY / "model_algo-1").read(
                            "mx-mod-symbol.json"
                        )
                    }
                )
            ),
            "loss_type logistic does not fit the graph's LinearRegressionOutput",
        ),
    }


FOREIGN_CASES = [
    "binary with two columns",
    "bad additional params",
    "damaged zip",
    "empty",
    "graph of another model",
    "json",
    "kmeans model.tar.gz",
    "kmeans model_algo-1",
    "loss against the graph",
    "pca model_algo-1",
    "previous local format",
    "sparse weights",
    "tar.gz without model_algo-1",
    "truncated params",
    "truncated tar.gz",
    "unknown predictor",
    "zip without params",
]


@needs_shared
def test_the_case_list_names_every_foreign_file():
    assert sorted(FOREIGN_CASES) == sorted(foreign_files())


@needs_shared
@pytest.mark.parametrize("case", FOREIGN_CASES)
def test_a_foreign_or_damaged_file_gets_an_error_naming_what_it_is(tmp_path, case, capsys):
    data, message = foreign_files()[case]
    path = tmp_path / "model_algo-1"
    path.write_bytes(data)
    with pytest.raises(artifact.ArtifactError, match=message):
        artifact.load(path)
    for command in (
        ["inspect", str(path)],
        ["serve", "--model", str(path), "--port", "0"],
        ["deploy", "--model", str(path)],  # stops before any AWS call or upload
    ):
        assert main(command) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"error: {path}: ") and "Traceback" not in err


def test_a_folder_is_not_a_model(tmp_path, capsys):
    assert main(["inspect", str(tmp_path)]) == 2
    assert "a folder, not a model file" in capsys.readouterr().err


def test_a_fifo_or_a_symlink_loop_is_named_not_read(tmp_path, capsys):
    import os

    os.mkfifo(tmp_path / "model.tar.gz")  # reading it would block for ever
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    for cmd in ("inspect", "serve"):
        assert (
            main([cmd, *(["--model"] if cmd == "serve" else []), str(tmp_path / "model.tar.gz")])
            == 2
        )
        assert "is a FIFO (named pipe)" in capsys.readouterr().err
    assert main(["inspect", str(tmp_path / "a")]) == 2
    assert "is a symlink loop" in capsys.readouterr().err


# ----------------------------------------------------------------------- inspect


def write_manifest(folder, feature_names, classes=(), predictor_type="binary_classifier"):
    """A manifest like prepare's, for a model whose data is not at hand."""
    from training.data.manifest import Channel, FitSample, InputColumns, Label, Manifest, Source

    channel = Channel(10, "application/x-recordio-protobuf", ["train-00000.rec"], 100)
    Manifest(
        source=Source("data.csv", "0" * 64, 10, 0),
        label=Label("y", predictor_type, list(classes)),
        feature_names=list(feature_names),
        input_columns=InputColumns(list(feature_names), [], {}),
        format="recordio",
        channels={"train": channel},
        split={"train": 1.0},
        seed=0,
        fit_sample=FitSample(10, False, 10),
        preprocessor="preprocessor.joblib",
        hyperparameters={"predictor_type": predictor_type, "feature_dim": len(feature_names)},
    ).write(folder)


def test_inspect_names_the_largest_weights_with_the_manifest(tmp_path, capsys):
    model = LinearModel(
        "binary_classifier",
        "logistic",
        np.array([0.1, -3.0, 0.0, 2.0], np.float32),
        np.float32(-1.0),
        0.4,
    )
    path = artifact.save(model, tmp_path / "model.tar.gz")
    write_manifest(tmp_path, ["age", "income", "zero", "tenure"])
    assert main(["inspect", str(path), "--manifest", str(tmp_path), "--top", "2"]) == 0
    text = capsys.readouterr().out
    assert (
        "predictor_type binary_classifier" in text and "feature_dim    4 (1 with all-zero" in text
    )
    assert "threshold      0.4" in text and "bias           -1" in text
    assert re.search(r"1\. income\s+-3\n\s+2\. tenure\s+\+2\n?$", text), text
    assert main(["inspect", str(path), "--json", "--top", "1"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["largest_weights"] == [
        {"feature": "feature 1", "index": 1, "weight": -3.0, "label": None}
    ]
    assert (doc["feature_dim"], doc["threshold"], doc["loss"], doc["layout_verified"]) == (
        4,
        0.4,
        "logistic",
        True,
    )


@needs_shared
def test_inspect_refuses_a_manifest_of_other_data(tmp_path, capsys):
    write_manifest(tmp_path, ["a", "b"])
    assert (
        main(["inspect", str(TEE / "model_algo-1"), "--manifest", str(tmp_path / "manifest.json")])
        == 2
    )
    assert "lists 2 features, the model has 20" in capsys.readouterr().err


@needs_shared
def test_inspect_refuses_a_file_that_is_not_a_prepare_manifest(tmp_path, capsys):
    (tmp_path / "manifest.json").write_text(json.dumps({"feature_names": ["a", "b"]}))
    assert main(["inspect", str(TEE / "model_algo-1"), "--manifest", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "manifest.json: not a manifest written by prepare (ValueError: format_version" in err
    assert "Traceback" not in err


def test_inspect_shows_the_class_of_each_multiclass_weight(trained, tmp_path, capsys):
    _, path = trained["multiclass_classifier"]
    write_manifest(tmp_path, list("abcdef"), ["low", "mid", "high"], "multiclass_classifier")
    assert main(["inspect", str(path), "--manifest", str(tmp_path), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["num_classes"] == 3 and doc["layout_verified"] is False
    assert doc["largest_weights"][0]["feature"] == "a"  # the class is decided by feature 0
    assert {w["label"] for w in doc["largest_weights"]} <= {"low", "mid", "high"}


# ----------------------------------------------------------------------- before and after


def test_the_pipelines_predictions_match_the_reviewed_snapshot(tmp_path):
    """prepare -> train -> write SageMaker's format -> serve -> predict gives the predictions
    of the snapshot (tests/snapshot.py says when and how it is renewed), and the training
    record beside the model says how it was made."""
    snapshot = json.loads(SNAPSHOT.read_text())
    today = penguins_predictions(tmp_path)
    for ptype, _ in TASKS:
        before, now = snapshot[ptype], today[ptype]
        np.testing.assert_allclose(now["score"], before["score"], rtol=2e-6, atol=1e-6)
        assert now.get("predicted_label") == before.get("predicted_label")
        # calibrated from float32 validation scores: equal to float32 precision
        assert now["threshold"] == pytest.approx(before["threshold"], abs=1e-6)
        record = json.loads((tmp_path / ptype / "model" / "metrics.json").read_text())
        assert record["seed"] == 0 and record["model"]["file"] == "model.tar.gz"
        assert {"hyperparameters", "selected_model", "history"} <= set(record)


@needs_shared
def test_a_model_algo_re_zipped_with_compression_still_loads(tmp_path):
    """A user who unzipped and re-zipped model_algo-1 gets deflated members: still the model."""
    path = tmp_path / "model_algo-1"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in real_members().items():
            zf.writestr(name, data)
    assert zipfile.ZipFile(path).infolist()[0].compress_type == zipfile.ZIP_DEFLATED
    model = artifact.load(path)
    assert model.weights.tolist() == artifact.load(TEE / "model_algo-1").weights.tolist()
