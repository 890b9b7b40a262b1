"""Batch transform, local: SageMaker's split / MultiRecord / assemble contract, answered by the
local endpoint's own request handling, checked against a real local endpoint over HTTP."""

import http.client
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from memory_cap import run_capped, sparse_file

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


def transform_cli(model_path: Path, src: Path, out: Path, *more: str) -> list[str]:
    return [
        "-q", "transform", "--model", str(model_path), "--input", str(src), "--out", str(out),
        *more,
    ]  # fmt: skip


def test_same_named_inputs_in_sub_folders_each_get_answers_at_their_relative_paths(tmp_path, model):
    """SageMaker keeps each object's key below the input prefix: a/x.csv and b/x.csv are
    answered into <out>/a/x.csv.out and <out>/b/x.csv.out, neither lost."""
    from training.cli import main

    artifact.save(model, tmp_path / "model.tar.gz")
    X = np.random.default_rng(4).standard_normal((7, 4)).astype(np.float32)
    folder = tmp_path / "in"
    (folder / "a").mkdir(parents=True)
    (folder / "b").mkdir()
    write_csv(folder / "a" / "x.csv", X[:3])
    write_csv(folder / "b" / "x.csv", X[3:])
    write_csv(folder / "x.csv", X[:1])
    assert main(transform_cli(tmp_path / "model.tar.gz", folder, tmp_path / "out")) == 0
    for name, rows in (("a/x.csv.out", X[:3]), ("b/x.csv.out", X[3:]), ("x.csv.out", X[:1])):
        answers = (tmp_path / "out" / name).read_text().splitlines()
        sent = np.array([[float(f"{v:.6g}") for v in row] for row in rows], np.float32)
        scores = [json.loads(line)["score"] for line in answers]
        np.testing.assert_allclose(scores, model.predict(sent).score, rtol=1e-6)
    outs = sorted(p.relative_to(tmp_path / "out") for p in (tmp_path / "out").rglob("*"))
    assert [str(p) for p in outs] == ["a", "a/x.csv.out", "b", "b/x.csv.out", "x.csv.out"]


@pytest.mark.parametrize("inside", [False, True])
def test_an_out_that_is_a_file_or_inside_one_is_refused_by_name(tmp_path, model, inside):
    artifact.save(model, tmp_path / "model.tar.gz")
    src = write_csv(tmp_path / "rows.csv", np.ones((2, 4)))
    (tmp_path / "taken").write_text("a file of the user's\n")
    out = tmp_path / "taken" / "sub" if inside else tmp_path / "taken"
    res = subprocess.run(
        [sys.executable, "-m", "training", *transform_cli(tmp_path / "model.tar.gz", src, out)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert res.returncode == 2 and "Traceback" not in res.stderr
    where = f"is inside {tmp_path / 'taken'}, which is a file" if inside else "is a file"
    assert f"--out: {out} {where}, not a folder" in res.stderr
    assert "fix: pass a folder (made if missing)" in res.stderr
    assert (tmp_path / "taken").read_text() == "a file of the user's\n"


def test_a_file_without_line_breaks_is_refused_with_bounded_memory(tmp_path, model):
    """A 384 MB line is refused once MaxPayloadInMB of it is read, under an address-space
    cap that reading it whole (as before) cannot fit in."""
    artifact.save(model, tmp_path / "model.tar.gz")
    huge = sparse_file(tmp_path / "huge.csv")
    res = run_capped(*transform_cli(tmp_path / "model.tar.gz", huge, tmp_path / "out"))
    assert res.returncode == 2, res.stderr[-2000:]
    assert f"{huge}, row 1: a line over MaxPayloadInMB (6,291,456 bytes" in res.stderr
    assert "fix: raise --max-payload-mb (up to 100)" in res.stderr
    assert list((tmp_path / "out").rglob("*")) == []


def test_outputs_have_the_mode_the_umask_gives(tmp_path, model):
    """Not 0600 as a temporary file is made: what the user's other files get."""
    from training.cli import main

    artifact.save(model, tmp_path / "model.tar.gz")
    src = write_csv(tmp_path / "rows.csv", np.ones((2, 4)))
    old = os.umask(0o027)
    try:
        assert main(transform_cli(tmp_path / "model.tar.gz", src, tmp_path / "out")) == 0
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "out" / "rows.csv.out").stat().st_mode) == 0o640


def test_a_failed_run_keeps_whole_outputs_only_and_says_which(tmp_path, model, capsys):
    """As SageMaker: an output exists only for an input scored whole. A killed run's partial
    file is removed by the next run into the folder; a failure names what was written."""
    from training.cli import main

    artifact.save(model, tmp_path / "model.tar.gz")
    folder = tmp_path / "in"
    folder.mkdir()
    write_csv(folder / "1.csv", np.ones((3, 4)))
    (folder / "2.csv").write_text("1,2,3,4\n1,2,oops,4\n")
    out = tmp_path / "out"
    out.mkdir()
    killed = out / ".2.csv.out.partial"  # what a run killed while scoring 2.csv leaves
    killed.write_bytes(b'{"score": 0.5')
    mine = out / ".2.csv.out.partial.keep"  # not a name the transform writes: left alone
    mine.write_text("the user's\n")
    assert main(transform_cli(tmp_path / "model.tar.gz", folder, out)) == 2
    err = capsys.readouterr().err
    assert (
        f"1 problem found; 1 of 2 outputs written before it, each whole: {out / '1.csv.out'}" in err
    )
    assert "2.csv, row 2: records 1-2: the model refused the batch" in err
    assert sorted(p.name for p in out.iterdir()) == [".2.csv.out.partial.keep", "1.csv.out"]
    assert len((out / "1.csv.out").read_text().splitlines()) == 3


def test_a_raw_row_over_the_payload_is_refused_by_row_before_it_is_read_whole(tmp_path, model):
    """Behind preprocessing, a raw CSV with a header is read by the raw-row reader: a row (or
    a quoted cell running on) over MaxPayloadInMB is refused naming the file's line."""
    from training.core.featurizer import NUMERIC, Column, Featurizer
    from training.core.inference import InferencePipeline

    columns = tuple(Column(n, NUMERIC, fill=0.0, mean=0.0, scale=1.0) for n in "abcd")
    served = InferencePipeline(model, Featurizer(columns, "binary_classifier"))
    src = tmp_path / "raw.csv"
    config = TransformConfig(str(src), str(tmp_path / "out"), max_payload_mb=0.001)
    src.write_text("a,b,c,d\n1,2,3,4\n" + "1," * 600 + "1\n")
    with pytest.raises(ValidationError, match=r"raw.csv, row 3: a line over what one request"):
        transform_local(served, config)
    src.write_text('a,b,c,d\n1,2,3,4\n1,2,3,"4' + "\n5" * 600 + '"\n')
    with pytest.raises(ValidationError, match=r"raw.csv, row 3: a line over what one request"):
        transform_local(served, config)
    src.write_text("a,b,c,d\n1,2,3,4\n4,3,2,1\n")
    (out,) = transform_local(served, config)
    assert [json.loads(line)["score"] for line in out.read_text().splitlines()] == pytest.approx(
        model.predict(np.array([[1, 2, 3, 4], [4, 3, 2, 1]], np.float32)).score
    )
    assert list((tmp_path / "out").iterdir()) == [out]


@pytest.mark.parametrize("link", [False, True])
def test_an_output_that_would_replace_an_input_file_is_refused_before_anything_is_written(
    tmp_path, model, link, capsys
):
    """``--out`` the input folder (or a link to it), which holds ``a.csv`` and ``a.csv.out``:
    a.csv's answers replaced the user's a.csv.out, then were read back as that input.
    Refused by name; every file as it was, nothing partial left."""
    from training.cli import main

    artifact.save(model, tmp_path / "model.tar.gz")
    folder = tmp_path / "in"
    folder.mkdir()
    write_csv(folder / "a.csv", np.ones((2, 4)))
    write_csv(folder / "a.csv.out", np.full((2, 4), 5.0))
    out = folder
    if link:
        out = tmp_path / "out"
        out.symlink_to(folder)
    before = {p: p.read_bytes() for p in folder.iterdir()}
    assert main(transform_cli(tmp_path / "model.tar.gz", folder, out)) == 2
    err = capsys.readouterr().err
    replaced = out / "a.csv.out"
    assert f"- {folder / 'a.csv'}: its answers would replace {replaced}, which is an input" in err
    assert "fix: pass an --out outside the input folder" in err
    assert {p: p.read_bytes() for p in folder.iterdir()} == before
