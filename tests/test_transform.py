"""Batch transform, local: SageMaker's split / MultiRecord / assemble contract, answered by the
local endpoint's own request handling, checked against a real local endpoint over HTTP."""

import http.client
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from training.batch_transform import TransformConfig, batches
from training.core import artifact
from training.core.model import LinearModel
from training.data import recordio
from training.errors import ValidationError
from training.local.batch_transform import transform_local
from training.local.server import serving

ROOT = Path(__file__).parents[1]


@pytest.fixture(scope="module")
def model():
    rng = np.random.default_rng(0)
    return LinearModel(
        "binary_classifier",
        "logistic",
        rng.standard_normal(4).astype(np.float32),
        np.array(0.25, np.float32),
        threshold=0.5,
    )


def write_csv(path: Path, X: np.ndarray) -> Path:
    path.write_text("".join(",".join(f"{v:.6g}" for v in row) + "\n" for row in X))
    return path


def post(port: int, body: bytes, content_type: str, accept: str) -> bytes:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("POST", "/invocations", body, {"Content-Type": content_type, "Accept": accept})
    response = conn.getresponse()
    data = response.read()
    assert response.status == 200, data
    return data


@pytest.mark.parametrize("accept", ["application/jsonlines", "application/json"])
def test_each_batch_is_what_the_local_endpoint_answers_in_input_order(tmp_path, model, accept):
    X = np.random.default_rng(1).standard_normal((3000, 4)).astype(np.float32)
    src = write_csv(tmp_path / "rows.csv", X)
    config = TransformConfig(
        str(src), str(tmp_path / "out"), accept=accept, max_payload_mb=0.01, show_progress=False
    )
    (out,) = transform_local(model, config)
    assert out == tmp_path / "out" / "rows.csv.out"
    chunks = list(batches(src, "text/csv", int(0.01 * (1 << 20))))
    assert len(chunks) > 5  # MultiRecord packed several requests, each under the limit
    assert [c[0] for c in chunks][:2] == [1, chunks[0][1] + 1]
    with serving(model) as port:  # the real endpoint, over HTTP, batch by batch
        answers = [post(port, body, "text/csv", accept) for _, _, body in chunks]
    expected = b"".join(a if a.endswith(b"\n") else a + b"\n" for a in answers)
    assert out.read_bytes() == expected
    if accept == "application/jsonlines":  # one line per input row, in order
        scores = [json.loads(line)["score"] for line in out.read_text().splitlines()]
        sent = np.loadtxt(src, delimiter=",", dtype=np.float32)  # the rows as written
        np.testing.assert_allclose(scores, model.predict(sent).score, rtol=1e-12)


def test_recordio_in_and_out_and_a_folder_of_files(tmp_path, model):
    X = np.random.default_rng(2).standard_normal((500, 4)).astype(np.float32)
    folder = tmp_path / "in"
    folder.mkdir()
    with open(folder / "a.rec", "wb") as fh:
        recordio.write_numpy_to_dense_tensor(fh, X[:300])
    with open(folder / "b.rec", "wb") as fh:
        recordio.write_numpy_to_dense_tensor(fh, X[300:])
    config = TransformConfig(
        str(folder),
        str(tmp_path / "out"),
        "application/x-recordio-protobuf",
        "application/x-recordio-protobuf",
        0.002,
        False,
    )
    outs = transform_local(model, config)
    assert [p.name for p in outs] == ["a.rec.out", "b.rec.out"]
    scores = np.concatenate(
        [
            [r.label["score"].float32_tensor.values[0] for r in recordio.read_records(p)]
            for p in outs
        ]
    )
    np.testing.assert_allclose(scores, model.predict(X).score, rtol=1e-6)


def test_a_bad_record_names_its_batch_and_leaves_no_output(tmp_path, model):
    X = np.ones((50, 4), np.float32)
    src = write_csv(tmp_path / "rows.csv", X)
    lines = src.read_text().splitlines()
    lines[30] = "1,2,oops,4"
    src.write_text("\n".join(lines) + "\n")
    config = TransformConfig(
        str(src), str(tmp_path / "out"), max_payload_mb=0.0002, show_progress=False
    )
    with pytest.raises(
        ValidationError,
        match=r"row 31: records 27-50: the model refused the batch: row 5, column 3: 'oops'",
    ):
        transform_local(model, config)
    assert list((tmp_path / "out").iterdir()) == []  # nothing partial
    src.write_text("1,2,3,4\n\n1,2,3,4\n")
    with pytest.raises(ValidationError, match="row 2: empty line"):
        transform_local(model, config)
    src.write_text("1," * 200 + "1\n")
    with pytest.raises(ValidationError, match=r"row 1: a line over MaxPayloadInMB \(209 bytes"):
        transform_local(model, config)
    assert list((tmp_path / "out").iterdir()) == []


def test_the_cli_refuses_csv_output_before_reading_anything(tmp_path, model):
    artifact.save(model, tmp_path / "model.tar.gz")
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "training",
            "transform",
            "--input",
            tmp_path / "missing.csv",
            "--out",
            tmp_path / "out",
            "--model",
            tmp_path / "model.tar.gz",
            "--accept",
            "text/csv",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "'text/csv': Linear Learner has no CSV output" in res.stderr
    write_csv(tmp_path / "rows.csv", np.ones((3, 4)))
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "training",
            "-q",
            "transform",
            "--input",
            tmp_path / "rows.csv",
            "--out",
            tmp_path / "out",
            "--model",
            tmp_path / "model.tar.gz",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert res.returncode == 0, res.stderr
    assert len((tmp_path / "out" / "rows.csv.out").read_text().splitlines()) == 3


def test_the_input_format_is_detected_as_validate_detects_it(tmp_path, model, capsys):
    """`transform --input <a RecordIO channel folder>` without --content-type scores it as
    RecordIO; a mixed folder, or a --content-type the files contradict, is refused by file."""
    from training.cli import main

    artifact.save(model, tmp_path / "model.tar.gz")
    X = np.random.default_rng(3).standard_normal((40, 4)).astype(np.float32)
    folder = tmp_path / "test"
    folder.mkdir()
    with open(folder / "test-00000.rec", "wb") as fh:
        recordio.write_numpy_to_dense_tensor(fh, X)
    cli = ["-q", "transform", "--model", str(tmp_path / "model.tar.gz"), "--input", str(folder)]
    assert main([*cli, "--out", str(tmp_path / "out")]) == 0
    answers = (tmp_path / "out" / "test-00000.rec.out").read_text().splitlines()
    scores = [json.loads(line)["score"] for line in answers]
    np.testing.assert_allclose(scores, model.predict(X).score, rtol=1e-6)
    # JSON lines are detected too
    lines = tmp_path / "lines"
    lines.mkdir()
    (lines / "a.jsonl").write_text(
        "".join(json.dumps({"features": row.tolist()}) + "\n" for row in X[:5])
    )
    assert main([*cli[:-1], str(lines), "--out", str(tmp_path / "out2")]) == 0
    assert len((tmp_path / "out2" / "a.jsonl.out").read_text().splitlines()) == 5
    capsys.readouterr()
    assert main([*cli, "--out", str(tmp_path / "o3"), "--content-type", "text/csv"]) == 2
    err = capsys.readouterr().err
    assert "test-00000.rec: is application/x-recordio-protobuf, but --content-type says" in err
    write_csv(folder / "more.csv", X[:3])
    assert main([*cli, "--out", str(tmp_path / "o4")]) == 2
    err = capsys.readouterr().err
    assert "test-00000.rec: is application/x-recordio-protobuf, but other files" in err
    assert "a transform job has one ContentType" in err
    assert not (tmp_path / "o3").exists() and not (tmp_path / "o4").exists()
