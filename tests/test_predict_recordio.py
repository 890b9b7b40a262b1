"""predict on a RecordIO input: streamed record by record, never read whole nor made dense;
requests carry the file's own records (sparse stays sparse) under the endpoint's limits."""

import contextlib
import json
import re
import subprocess

import numpy as np
import pytest
import scipy.sparse as sp
from memory_cap import ROOT, run_capped
from ports import free_port, serve_process, wait_for_port

from training import predict
from training.cli import main
from training.content_types import CSV, JSON, RECORDIO
from training.core import artifact
from training.core.model import LinearModel
from training.data import recordio
from training.endpoint_payload import PayloadLimits, answer_row_bound
from training.limits import PAYLOAD_HEADROOM_BYTES


def sparse_rows(n: int, d: int, seed: int = 0, nnz: int = 5) -> sp.csr_matrix:
    """``n`` rows of ``d`` features, ``nnz`` non-zeros each (hashed features' shape)."""
    rng = np.random.default_rng(seed)
    cols = np.sort(np.stack([rng.choice(d, nnz, replace=False) for _ in range(n)]), axis=1)
    values = rng.standard_normal(n * nnz).astype(np.float32)
    return sp.csr_matrix((values, cols.ravel(), np.arange(0, n * nnz + 1, nnz)), shape=(n, d))


def write_rec(path, X, y=None):
    with open(path, "wb") as fh:
        if sp.issparse(X):
            recordio.write_spmatrix_to_sparse_tensor(fh, X, y)
        else:
            recordio.write_numpy_to_dense_tensor(fh, X, y)
    return path


def binary_model(tmp_path, d: int, seed: int = 1):
    rng = np.random.default_rng(seed)
    w, b = rng.standard_normal(d).astype(np.float32), np.float32(0.25)
    path = artifact.save(
        LinearModel("binary_classifier", "logistic", w, b, 0.5), tmp_path / "m.tgz"
    )
    return path, w, b


@contextlib.contextmanager
def endpoint(model):
    """``serve`` in a process of its own (its 16 worker threads' stacks and arenas would not
    fit the cap beside predict): the cap measures predict alone."""
    port = free_port()
    server = serve_process(
        model, port, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        assert wait_for_port(port)
        yield str(port)
    finally:
        server.terminate()
        server.wait(timeout=10)


def scores(path) -> np.ndarray:
    return np.array([json.loads(line)["score"] for line in path.read_text().splitlines()])


def test_a_sparse_file_far_bigger_dense_than_memory_is_scored_under_a_memory_cap(tmp_path):
    """2000 rows of 2**22 hashed features, 5 set each: 33.6 GB dense (the old read: a
    MemoryError), 0.2 MB as written. Under a 512 MB address-space cap the CLI scores every
    row, and each score is the model's own, computed here: sigmoid(x.w + b)."""
    d, n = 2**22, 2000
    X, y = sparse_rows(n, d), (np.arange(n) % 2).astype(np.float32)
    data = write_rec(tmp_path / "test.rec", X, y)
    model, w, b = binary_model(tmp_path, d)
    with endpoint(model) as port:
        res = run_capped("-q", "predict", "--port", port, "--input", data)
    assert res.returncode == 0, res.stderr[-2000:]
    assert f"{n} predictions" in res.stdout and "test:binary_classification_accuracy" in res.stdout
    expected = 1 / (1 + np.exp(-(X.astype(np.float64) @ w.astype(np.float64) + b)))
    np.testing.assert_allclose(scores(tmp_path / "test.rec.predictions.jsonl"), expected, 1e-5)


class Measured:
    """An invoker that keeps each request body and the size of each answer."""

    def __init__(self, invoke):
        self.invoke, self.bodies, self.answers = invoke, [], []

    def __call__(self, body: bytes, content_type: str) -> bytes:
        answer = self.invoke(body, content_type)
        self.bodies.append(body)
        self.answers.append(len(answer))
        return answer


def test_requests_carry_the_files_own_records_under_the_budget_both_ways(tmp_path):
    """With 4,000 bytes a request and 3,000 an answer, against the real local endpoint: the
    first request is one record, every body and answer stays under its limit, no request holds
    more records than their answers allow, and the bodies put together are the file, byte for
    byte: each record sent once, in order, sparse as written."""
    from training.local.server import serving

    d, n = 1000, 400
    X = sparse_rows(n, d, seed=2)
    data = write_rec(tmp_path / "t.rec", X, np.ones(n, np.float32))
    limits = PayloadLimits("small", PAYLOAD_HEADROOM_BYTES + 4000, PAYLOAD_HEADROOM_BYTES + 3000)
    w = np.random.default_rng(3).standard_normal(d).astype(np.float32)
    model = LinearModel("binary_classifier", "logistic", w, np.float32(0), 0.5)
    with serving(model) as port:
        invoke = Measured(predict.local_invoker("127.0.0.1", port))
        source = predict.scan_recordio(data, False, limits.request_budget)
        got = predict.predict_recordio(invoke, source, RECORDIO, limits)
    counts = [sum(1 for _ in recordio.iter_payloads(body)) for body in invoke.bodies]
    most = limits.rows_per_request(answer_row_bound(got.rows()[0]))
    assert counts[0] == 1 and sum(counts) == n and len(counts) >= n // most
    assert max(counts[1:]) <= most and max(len(b) for b in invoke.bodies) <= 4000
    assert max(invoke.answers) <= limits.response_bytes
    assert b"".join(invoke.bodies) == data.read_bytes()
    np.testing.assert_array_equal(got.predicted_label, model.predict(X.toarray()).predicted_label)


def test_labelled_metrics_from_records_equal_the_dense_csvs(tmp_path, capsys):
    d, n = 20, 300
    X = sparse_rows(n, d, seed=4, nnz=4)
    model, w, b = binary_model(tmp_path, d, seed=5)
    y = ((X @ w + b) + np.random.default_rng(6).normal(0, 1, n) > 0).astype(np.float32)
    rec = write_rec(tmp_path / "t.rec", X, y)
    csv = tmp_path / "t.csv"
    np.savetxt(csv, np.column_stack([y, X.toarray()]), delimiter=",", fmt="%.9g")
    printed = []
    for path in (rec, csv):
        assert (
            main(["-q", "predict", "--model", str(model), "--input", str(path), "--labelled"]) == 0
        )
        printed.append(re.findall(r"test:\S+ +\S+", capsys.readouterr().out))
    assert len(printed[0]) >= 4 and printed[0] == printed[1]
    assert 0.6 < float(printed[0][0].split()[-1]) < 1  # accuracy: the noise makes mistakes


@pytest.mark.parametrize("ctype", [CSV, JSON])
def test_records_sent_as_csv_or_json_get_the_same_predictions(tmp_path, capsys, ctype):
    """Each request's records are made dense rows only for that request; a 1,500-byte
    request budget is not needed here, the answers must simply agree."""
    d, n = 50, 120
    X = sparse_rows(n, d, seed=7)
    model, _, _ = binary_model(tmp_path, d, seed=8)
    data = write_rec(tmp_path / "t.rec", X)
    out = {}
    for sent in (RECORDIO, ctype):
        path = tmp_path / f"{sent.replace('/', '_')}.jsonl"
        argv = ["-q", "predict", "--model", model, "--input", data, "--content-type", sent]
        assert main([*map(str, argv), "--out", str(path)]) == 0
        out[sent] = scores(path)
    assert len(out[RECORDIO]) == n
    np.testing.assert_allclose(out[ctype], out[RECORDIO], rtol=1e-6)


def test_a_record_over_the_request_budget_is_named_with_its_size(tmp_path, capsys):
    """A dense record of 1.6M features (6.4 MB framed) cannot go in a 6 MB request: refused
    before anything is sent, by file, record number, offset, size and limit."""
    data = tmp_path / "big.rec"
    with open(data, "wb") as fh:
        recordio.write_numpy_to_dense_tensor(fh, np.zeros((1, 10), np.float32))
    small = data.stat().st_size
    with open(data, "ab") as fh:
        recordio.write_numpy_to_dense_tensor(fh, np.zeros((1, 1_600_000), np.float32))
    model, _, _ = binary_model(tmp_path, 10)
    assert main(["-q", "predict", "--model", str(model), "--input", str(data)]) == 2
    err = capsys.readouterr().err
    size = data.stat().st_size - small
    budget = 6291456 - PAYLOAD_HEADROOM_BYTES
    assert (
        f"{data}, record 2: the record at byte offset {small} is {size} bytes, over {budget} "
        "bytes, what one request may carry" in err
    )
    assert "batch transform" in err and "Traceback" not in err
    assert not list(tmp_path.glob("big.rec.predictions*"))


def test_a_record_too_wide_for_a_csv_request_is_refused_before_it_is_made_dense(tmp_path):
    """One sparse record of 2**22 features as text/csv is at least 8 MB: refused under the
    memory cap without densifying anything, with the fix to send RecordIO."""
    d = 2**22
    data = write_rec(tmp_path / "wide.rec", sparse_rows(3, d, seed=9))
    model, _, _ = binary_model(tmp_path, d)
    with endpoint(model) as port:
        res = run_capped("-q", "predict", "--port", port, "--input", data, "--content-type", CSV)
    assert res.returncode == 2, res.stderr[-2000:]
    assert (
        f"{data}, record 1: as text/csv the record is at least {2 * d - 1 + 64:,} bytes "
        "(a dense row), over the" in res.stderr
    )
    assert f"--content-type {RECORDIO}" in res.stderr and "Traceback" not in res.stderr


def test_a_corrupt_record_past_the_first_block_is_named_by_its_offset_in_the_file(tmp_path, capsys):
    """Records are checked a 4 MB block at a time: a bad byte in the 12th record of 400 KB
    (the second block) is reported at its offset in the file, not in its block."""
    data = write_rec(tmp_path / "rows.rec", np.ones((14, 100_000), np.float32))
    size = data.stat().st_size // 14
    raw = bytearray(data.read_bytes())
    bad = 11 * size + 8  # the 12th record's first payload byte: its protobuf tag
    raw[bad] = 0x0F  # field 1 with wire type 7, which does not exist
    data.write_bytes(bytes(raw))
    model, _, _ = binary_model(tmp_path, 100_000)
    assert main(["-q", "predict", "--model", str(model), "--input", str(data)]) == 2
    err = capsys.readouterr().err
    assert f"{data}: corrupt RecordIO-protobuf: bad protobuf at byte offset {bad + 1}" in err
    assert "fix: rewrite the file (python -m training prepare)" in err and "Traceback" not in err


def test_a_cut_off_file_names_the_record_it_ends_in(tmp_path, capsys):
    data = write_rec(tmp_path / "rows.rec", sparse_rows(10, 30, seed=10))
    data.write_bytes(data.read_bytes()[:-7])
    model, _, _ = binary_model(tmp_path, 30)
    assert main(["-q", "predict", "--model", str(model), "--input", str(data)]) == 2
    err = capsys.readouterr().err
    assert re.search(
        rf"{re.escape(str(data))}, record 10: corrupt RecordIO-protobuf: .*cut short", err
    )


def test_labelled_records_without_labels_are_refused(tmp_path, capsys):
    data = write_rec(tmp_path / "rows.rec", sparse_rows(5, 30, seed=11))
    model, _, _ = binary_model(tmp_path, 30)
    argv = ["-q", "predict", "--model", str(model), "--input", str(data), "--labelled"]
    assert main(argv) == 2
    assert f"{data}: --labelled, but the records carry no label" in capsys.readouterr().err


def test_records_that_disagree_across_blocks_are_named_by_record(tmp_path, capsys):
    """Ten labelled records of 400 KB fill the first 4 MB block; the 11th, without a label,
    starts the second: named by its number, as a record inside a block is by its offset."""
    data = write_rec(
        tmp_path / "rows.rec", np.ones((10, 100_000), np.float32), np.ones(10, np.float32)
    )
    with open(data, "ab") as fh:
        recordio.write_numpy_to_dense_tensor(fh, np.ones((1, 100_000), np.float32))
    model, _, _ = binary_model(tmp_path, 100_000)
    assert main(["-q", "predict", "--model", str(model), "--input", str(data)]) == 2
    err = capsys.readouterr().err
    assert f"{data}, record 11: has no label, unlike the records above" in err


@pytest.mark.parametrize("dtype, kind", [(np.float64, "Float64"), (np.int64, "Int32")])
def test_records_that_are_not_float32_are_refused_before_anything_is_sent(
    tmp_path, capsys, dtype, kind
):
    """SDK writers follow the numpy dtype (float64 -> Float64Tensor); Linear Learner reads only
    Float32Tensor. Refused naming the record and the cast, before a request is made; the
    local endpoint refuses such a request too, as the real one would."""
    X = np.arange(12).reshape(4, 3).astype(dtype)
    data = write_rec(tmp_path / "rows.rec", X)
    model, _, _ = binary_model(tmp_path, 3)
    assert main(["-q", "predict", "--model", str(model), "--input", str(data)]) == 2
    err = capsys.readouterr().err
    assert f"{data}, record 1: features are {kind}Tensor; Linear Learner reads only " in err
    assert "fix: cast with .astype('float32') before writing" in err
    assert not list(tmp_path.glob("rows.rec.predictions*"))
    with endpoint(model) as port:
        import http.client

        conn = http.client.HTTPConnection("127.0.0.1", int(port), timeout=10)
        conn.request("POST", "/invocations", data.read_bytes(), {"Content-Type": RECORDIO})
        res = conn.getresponse()
        text = res.read().decode()
        conn.close()
    assert res.status == 400
    assert text.startswith(f"features are {kind}Tensor; Linear Learner reads only Float32Tensor")


def test_sparse_and_dense_records_in_two_blocks_are_refused_before_anything_is_sent(
    tmp_path, capsys
):
    """3.8 MB of sparse records fill the first 4 MB check block; the dense record after them
    starts the second. A request may hold records of both blocks, which no endpoint parses as
    one batch: refused by record number before a request is made (it was found only by the
    endpoint, half way through the file)."""
    d, n = 100_000, 560
    data = write_rec(tmp_path / "rows.rec", sparse_rows(n, d, seed=12, nnz=1000))
    assert 0 < (4 << 20) - data.stat().st_size < 4 * d  # the dense record starts block 2
    with open(data, "ab") as fh:
        recordio.write_numpy_to_dense_tensor(fh, np.ones((2, d), np.float32))
    model, _, _ = binary_model(tmp_path, d)
    assert main(["-q", "predict", "--model", str(model), "--input", str(data)]) == 2
    err = capsys.readouterr().err
    assert f"{data}, record {n + 1}: is dense, unlike the records above (one layout" in err
    assert "Traceback" not in err and not list(tmp_path.glob("rows.rec.predictions*"))


class Appending:
    """An invoker that changes the file after its first request, as a writer would."""

    def __init__(self, invoke, path, change):
        self.invoke, self.path, self.change, self.calls = invoke, path, change, 0

    def __call__(self, body, content_type):
        self.calls += 1
        if self.calls == 1 and self.change:
            self.change(self.path)
        return self.invoke(body, content_type)


def _append_sparse(path):
    with open(path, "ab") as fh:
        recordio.write_spmatrix_to_sparse_tensor(fh, sparse_rows(5, 30, seed=14))


def _rewrite_float64(path):
    write_rec(path, sparse_rows(40, 30, seed=13).astype(np.float64))


def _cut(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


@pytest.mark.parametrize(
    "between, during",
    [
        (_rewrite_float64, None),  # unchecked Float64 records would be sent
        (_append_sparse, None),  # the 5 appended records would be left out silently
        (_cut, None),  # was "endpoint: 19 predictions for 39 rows, check the endpoint"
        (None, _cut),
        (None, _append_sparse),
    ],
)
def test_a_file_that_changes_between_check_and_send_is_refused_naming_it(
    tmp_path, between, during
):
    """scan_recordio checks the records, predict_recordio sends them: a file written to in
    between (or while it is sent) is refused naming the file, before any request when the
    change came first, and no predictions are returned (the CLI writes none)."""
    from training.errors import ValidationError
    from training.local.server import serving

    data = write_rec(tmp_path / "t.rec", sparse_rows(40, 30, seed=13))
    model = LinearModel("binary_classifier", "logistic", np.ones(30, np.float32), 0.0, 0.5)
    source = predict.scan_recordio(data, False, predict.LIMIT)
    if between:
        between(data)
    with serving(model) as port:
        invoke = Appending(predict.local_invoker("127.0.0.1", port), data, during)
        with pytest.raises(ValidationError) as err:
            predict.predict_recordio(invoke, source)
    assert str(err.value).splitlines()[1] == (
        f"- {data}: changed while predict read it (written, appended to or replaced between "
        "the pass that checks its records and the one that sends them)"
    )
    assert "fix: run predict again once nothing writes to the file" in str(err.value)
    assert invoke.calls == 0 if between else invoke.calls >= 1


@pytest.mark.parametrize("where", ["feature", "label"])
def test_a_record_with_a_nan_is_refused_by_number_before_anything_is_sent(tmp_path, capsys, where):
    """A NaN feature made the endpoint refuse a request half way through the file; a NaN
    label printed NaN metrics. Both are named by record, as a CSV input's cell is."""
    X, y = sparse_rows(6, 20, seed=15), np.array([0, 1, 0, 1, 0, 1], np.float32)
    if where == "feature":
        X.data[3 * 5 + 2] = np.nan  # the 4th record's 3rd stored value
    else:
        y[3] = np.nan
    data = write_rec(tmp_path / "rows.rec", X, y)
    model, _, _ = binary_model(tmp_path, 20)
    assert main(["-q", "predict", "--model", str(model), "--input", str(data)]) == 2
    err = capsys.readouterr().err
    what = f"feature {X.indices[17] + 1} (nan)" if where == "feature" else "the label (nan)"
    assert f"{data}, record 4: {what} is not a finite number (Linear Learner refuses it)" in err
    assert not list(tmp_path.glob("rows.rec.predictions*"))


@pytest.mark.parametrize(
    "predictor, label, says",
    [
        ("binary_classifier", 2.0, "label 2 is not a class of a binary classifier (0 to 1)"),
        ("binary_classifier", 0.5, "label 0.5 is not a class of a binary classifier (0 to 1)"),
        ("multiclass_classifier", 7.0, "label 7 is not a class of this 3-class model (0 to 2)"),
    ],
)
def test_a_label_the_model_cannot_predict_is_named_not_scored(
    tmp_path, capsys, predictor, label, says
):
    """Labels 2 or 0.5 for a binary classifier gave metrics without a word; 7 for three
    classes ended in an IndexError traceback. Named by record (RecordIO) and by row (CSV)."""
    X, y = sparse_rows(6, 20, seed=16), np.array([0, 1, 0, 1, 0, 1], np.float32)
    y[2] = label
    k = 3 if predictor == "multiclass_classifier" else None
    w = np.ones((20, k) if k else 20, np.float32)
    b = np.zeros(k, np.float32) if k else np.float32(0)
    loss = "softmax_loss" if k else "logistic"
    model = artifact.save(LinearModel(predictor, loss, w, b, 0.5), tmp_path / "m.tgz")
    rec = write_rec(tmp_path / "t.rec", X, y)
    csv = tmp_path / "t.csv"
    np.savetxt(csv, np.column_stack([y, X.toarray()]), delimiter=",", fmt="%.9g")
    for path, unit in ((rec, "record"), (csv, "row")):
        argv = ["-q", "predict", "--model", str(model), "--input", str(path), "--labelled"]
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert f"{path}, {unit} 3: {says}" in err and "Traceback" not in err
