"""RecordIO-protobuf codec: byte-identical to SDK 2.x, round trips, and clear corruption errors."""

import contextlib
import io
import struct
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from training.data import recordio
from training.data.recordio import RecordIOError

FIXTURES = Path(__file__).parent / "fixtures" / "recordio"
CASES = sorted(p.stem for p in FIXTURES.glob("*.npz"))


def load_case(name):
    data = np.load(FIXTURES / f"{name}.npz")
    y = data["y"] if "y" in data.files else None
    if "X" in data.files:
        return data["X"], y
    shape = tuple(int(v) for v in data["shape"])
    return sp.csr_matrix((data["data"], data["indices"], data["indptr"]), shape=shape), y


def write(X, y):
    buf = io.BytesIO()
    if sp.issparse(X):
        recordio.write_spmatrix_to_sparse_tensor(buf, X, y)
    else:
        recordio.write_numpy_to_dense_tensor(buf, X, y)
    return buf.getvalue()


def test_fixture_corpus_covers_every_documented_case():
    assert len(CASES) == 9


@pytest.mark.parametrize("case", CASES)
def test_writer_is_byte_identical_to_sdk2(case):
    X, y = load_case(case)
    assert write(X, y) == (FIXTURES / f"{case}.rec").read_bytes()


@pytest.mark.parametrize("case", CASES)
def test_read_arrays_returns_the_sdk_inputs(case):
    X, y = load_case(case)
    got = recordio.read_arrays(FIXTURES / f"{case}.rec")
    if sp.issparse(X):
        assert sp.issparse(got.X)
        assert got.X.shape == X.shape
        assert (got.X != X).nnz == 0
    else:
        np.testing.assert_array_equal(got.X, X)
    if y is None:
        assert got.y is None
    else:
        np.testing.assert_array_equal(got.y, y)


@pytest.mark.parametrize("case", CASES)
def test_read_records_matches_sdk_protobuf_accessors(case):
    X, y = load_case(case)
    records = recordio.read_records(str(FIXTURES / f"{case}.rec"))
    assert len(records) == X.shape[0]
    kinds = {"float32": "float32_tensor", "float64": "float64_tensor"}
    kind = kinds.get(str(X.dtype), "int32_tensor")
    for i, rec in enumerate(records):
        value = rec.features["values"]
        assert value.WhichOneof("value") == kind
        tensor = getattr(value, kind)
        row = X.getrow(i) if sp.issparse(X) else X[i]
        if sp.issparse(X):
            np.testing.assert_array_equal(tensor.values, row.data)
            np.testing.assert_array_equal(tensor.keys, row.indices.astype(np.uint64))
            assert list(tensor.shape) == [X.shape[1]]
        else:
            np.testing.assert_array_equal(tensor.values, row)
            assert tensor.keys.size == 0
        # accessors of the other tensor types are empty, as in protobuf
        other = "float64_tensor" if kind != "float64_tensor" else "float32_tensor"
        assert getattr(value, other).values.size == 0
        if y is not None:
            label_kind = {"float32": "float32_tensor", "float64": "float64_tensor"}.get(
                str(y.dtype), "int32_tensor"
            )
            assert list(getattr(rec.label["values"], label_kind).values) == [y[i]]
        else:
            assert rec.label == {}


def test_special_values_survive_bit_for_bit():
    X, y = load_case("dense_f32_special_values")
    got = recordio.read_arrays(FIXTURES / "dense_f32_special_values.rec")
    assert got.X.view(np.uint32).tolist() == X.view(np.uint32).tolist()  # -0.0, subnormals


def test_general_and_fast_dense_paths_produce_the_same_bytes():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((257, 33)).astype(np.float32)
    y = rng.integers(0, 2, 257).astype(np.float32)
    fast = write(X, y)
    general = recordio._dense_chunk_ragged(X, y, "Float32", "Float32", slice(0, None)).tobytes()
    assert fast == general


@pytest.mark.parametrize("chunk_bytes", [300, 4096, 1 << 20])
def test_chunked_streaming_does_not_change_the_bytes(monkeypatch, chunk_bytes):
    rng = np.random.default_rng(2)
    X = rng.standard_normal((1000, 7)).astype(np.float32)
    y = rng.standard_normal(1000).astype(np.float32)
    S = sp.random(1000, 40, density=0.1, format="csr", dtype=np.float32, random_state=3)
    expected = write(X, y), write(S, y)
    monkeypatch.setattr(recordio, "CHUNK_BYTES", chunk_bytes)
    assert (write(X, y), write(S, y)) == expected


def test_round_trip_large_dense_and_sparse(tmp_path):
    rng = np.random.default_rng(3)
    X = rng.standard_normal((20_000, 12)).astype(np.float32)
    y = rng.standard_normal(20_000).astype(np.float32)
    path = tmp_path / "d.rec"
    with open(path, "wb") as fh:
        recordio.write_numpy_to_dense_tensor(fh, X, y)
    got = recordio.read_arrays(path)
    np.testing.assert_array_equal(got.X, X)
    np.testing.assert_array_equal(got.y, y)
    S = sp.random(5_000, 3_000, density=0.002, format="csr", dtype=np.float64, random_state=4)
    with open(path, "wb") as fh:
        recordio.write_spmatrix_to_sparse_tensor(fh, S)
    got = recordio.read_arrays(path)
    assert got.feature_type == "Float64" and got.y is None
    assert (got.X != S).nnz == 0


def test_int_features_out_of_int32_range_are_refused():
    with pytest.raises(ValueError, match="out of range"):
        write(np.array([[2**40]]), None)


def test_sdk_shape_and_dtype_errors():
    with pytest.raises(ValueError, match="Array must be a Matrix"):
        write(np.zeros(3, np.float32), None)
    with pytest.raises(ValueError, match="Labels must be a Vector"):
        write(np.zeros((2, 3), np.float32), np.zeros((2, 1), np.float32))
    with pytest.raises(ValueError, match="Unsupported dtype int32"):
        write(np.zeros((2, 3), np.int32), None)
    with pytest.raises(ValueError, match="one label per row"):
        write(np.zeros((2, 3), np.float32), np.zeros(3, np.float32))
    with pytest.raises(TypeError, match="Array must be sparse"):
        recordio.write_spmatrix_to_sparse_tensor(io.BytesIO(), np.zeros((2, 2)))


# ----------------------------------------------------------------------------- corruption


@pytest.fixture
def good():
    return (FIXTURES / "dense_f32_labels_f32.rec").read_bytes()


def test_bad_magic_names_the_offset(good):
    first_len = struct.unpack_from("<I", good, 4)[0]
    second = 8 + first_len + (-first_len % 4)
    bad = bytearray(good)
    bad[second] ^= 0xFF
    with pytest.raises(RecordIOError, match=rf"bad magic .* at byte offset {second}"):
        recordio.read_records(bytes(bad))


def test_truncated_record_names_the_offset(good):
    with pytest.raises(RecordIOError, match=r"record at byte offset \d+ declares \d+ bytes"):
        recordio.read_arrays(good[:-5])


def test_truncated_header(good):
    with pytest.raises(RecordIOError, match=r"truncated record header at byte offset 4864"):
        recordio.read_arrays(good + b"\x0a\x23")


def test_length_past_the_end(good):
    bad = bytearray(good)
    bad[4:8] = struct.pack("<I", 10_000_000)
    with pytest.raises(RecordIOError, match="byte offset 0 declares 10000000 bytes"):
        recordio.read_arrays(bytes(bad))


def test_bad_protobuf_names_the_offset(good):
    bad = bytearray(good)
    bad[8] = 0x0F  # field 1 with wire type 7: does not exist
    with pytest.raises(RecordIOError, match=r"bad protobuf at byte offset 9"):
        recordio.read_arrays(bytes(bad))


def test_protobuf_length_overrun_inside_a_record(good):
    bad = bytearray(good)
    bad[9] = 0x7F  # features entry claims 127 bytes, more than the record holds
    with pytest.raises(RecordIOError, match="runs past the end"):
        recordio.read_records(bytes(bad))


def test_random_garbage_never_hangs_or_crashes():
    rng = np.random.default_rng(5)
    good = (FIXTURES / "sparse_f32_labels_f32.rec").read_bytes()
    for _ in range(300):
        bad = bytearray(good)
        for pos in rng.integers(0, len(bad), 3):
            bad[pos] = rng.integers(0, 256)
        with contextlib.suppress(RecordIOError):
            recordio.read_arrays(bytes(bad))


def test_multipart_dmlc_records_are_joined():
    payload = recordio.encode_dense(np.ones((1, 2), np.float32))[8:]
    head, tail = payload[:8], payload[8:]
    framed = b""
    for flag, part in ((1, head), (3, tail)):
        framed += struct.pack("<II", recordio.MAGIC, (flag << 29) | len(part))
        framed += part + b"\0" * (-len(part) % 4)
    (joined,) = list(recordio.read_recordio(framed))
    assert joined == head + struct.pack("<I", recordio.MAGIC) + tail


@pytest.mark.parametrize("case", ["sparse_f32_labels_f32", "sparse_f64_nolabels"])
def test_vectorised_and_per_record_sparse_readers_agree(monkeypatch, case):
    path = FIXTURES / f"{case}.rec"
    fast = recordio.read_arrays(path)
    monkeypatch.setattr(recordio, "_read_sparse_canonical", lambda buf: None)
    slow = recordio.read_arrays(path)
    assert (fast.X != slow.X).nnz == 0 and fast.X.shape == slow.X.shape
    assert (fast.y is None and slow.y is None) or np.array_equal(fast.y, slow.y)


def test_non_canonical_layout_falls_back_to_the_exact_parser():
    # features as *unpacked* floats (wire type 5), which SDK 2.x never writes but protobuf allows
    tensor = b"".join(b"\x0d" + struct.pack("<f", v) for v in (1.5, -2.0))
    tensor += b"\x12\x02\x00\x01" + b"\x1a\x01\x04"  # keys [0, 1], shape [4]
    value = b"\x12" + bytes([len(tensor)]) + tensor
    entry = b"\x0a\x06values\x12" + bytes([len(value)]) + value
    payload = b"\x0a" + bytes([len(entry)]) + entry
    framed = struct.pack("<II", recordio.MAGIC, len(payload)) + payload
    framed += b"\0" * (-len(payload) % 4)
    got = recordio.read_arrays(framed)
    assert got.X.toarray().tolist() == [[1.5, -2.0, 0.0, 0.0]]


def test_magic_bytes_inside_a_payload_do_not_confuse_framing():
    magic_float = np.array([recordio.MAGIC], np.uint32).view(np.float32)[0]
    S = sp.csr_matrix(np.array([[magic_float, 0, 1], [0, magic_float, 0]], np.float32))
    y = np.array([magic_float, 1], np.float32)
    got = recordio.read_arrays(write(S, y))
    assert (got.X != S).nnz == 0 and got.y.view(np.uint32)[0] == recordio.MAGIC


# --------------------------------------------------------------------------- hostile input
# Every reader path must agree with the per-record parser on every input, and whatever it
# returns must be what Google's protobuf runtime decodes from the same bytes.

import protobuf_reference  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


def _seed_files() -> dict[str, bytes]:
    rng = np.random.default_rng(3)
    S = sp.random(5, 40, density=0.15, format="csr", dtype=np.float32, random_state=4)
    y = rng.integers(0, 2, 5).astype(np.float32)
    return {
        "dense_f32_labels": write(rng.standard_normal((4, 3)).astype(np.float32), y[:4]),
        "dense_f64": write(rng.standard_normal((3, 2)), None),
        "dense_int_labels": write(rng.integers(-300, 300, (3, 2)), np.array([1, -2, 3])),
        "sparse_f32_labels": write(S, y),
        "sparse_f64": write(S.astype(np.float64), None),
        "sparse_wide_keys": write(
            sp.csr_matrix(
                ([1.0, 2.0], ([0, 1], [200, 70000])), shape=(2, 100000), dtype=np.float32
            ),
            y[:2],
        ),
    }


SEEDS = _seed_files()


def _normal(arrays) -> tuple:
    X = arrays.X
    if sp.issparse(X):
        x = (
            "csr",
            X.shape,
            X.data.tobytes(),
            X.indices.astype(np.uint64).tobytes(),
            X.indptr.astype(np.int64).tobytes(),
        )
    else:
        x = ("dense", X.shape, np.ascontiguousarray(X).tobytes())
    y = None if arrays.y is None else arrays.y.tobytes()
    return arrays.feature_type, arrays.label_type, x, y


def _reference(buf: bytes):
    X, y, kind, lkind = protobuf_reference.arrays(buf)
    name = {"float32_tensor": "Float32", "float64_tensor": "Float64", "int32_tensor": "Int32"}
    if isinstance(X, tuple):
        data, indices, indptr, width = X
        x = (
            "csr",
            (indptr.size - 1, width),
            data.tobytes(),
            indices.tobytes(),
            indptr.astype(np.int64).tobytes(),
        )
    else:
        x = ("dense", X.shape, X.tobytes())
    return name[kind], name.get(lkind), x, None if y is None else y.tobytes()


def _outcome(read, buf: bytes):
    """The arrays read, or "rejected"; any exception but RecordIOError fails the test."""
    try:
        return _normal(read(buf))
    except RecordIOError:
        return "rejected"


def _check(buf: bytes):
    fast = _outcome(recordio.read_arrays, buf)
    exact = _outcome(recordio._read_arrays_exact, buf)
    assert fast == exact
    if fast != "rejected":
        assert _reference(buf) == fast


def _frame(payloads) -> bytes:
    out = b""
    for p in payloads:
        out += struct.pack("<II", recordio.MAGIC, len(p)) + p + b"\0" * (-len(p) % 4)
    return out


def _mutate(data: bytearray, op: str, pos: int, arg) -> bytearray:
    pos %= max(1, len(data))
    if op == "set":
        data[pos : pos + 1] = bytes([arg % 256])
    elif op == "add":  # nudge a byte, e.g. a length field, by a little
        if data:
            data[pos] = (data[pos] + arg) % 256
    elif op == "insert":
        data[pos:pos] = arg
    elif op == "delete":
        del data[pos : pos + arg]
    elif op == "dup":
        data[pos:pos] = data[pos : pos + arg]
    return data


_MUTATION = st.one_of(
    st.tuples(st.just("set"), st.integers(0, 1 << 16), st.integers(0, 255)),
    st.tuples(st.just("add"), st.integers(0, 1 << 16), st.sampled_from([-3, -1, 1, 2, 3, 128])),
    st.tuples(st.just("insert"), st.integers(0, 1 << 16), st.binary(min_size=1, max_size=11)),
    st.tuples(st.just("delete"), st.integers(0, 1 << 16), st.integers(1, 12)),
    st.tuples(st.just("dup"), st.integers(0, 1 << 16), st.integers(1, 24)),
)
_PROPERTY = settings(
    max_examples=600,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)


@_PROPERTY
@given(seed=st.sampled_from(sorted(SEEDS)), mutations=st.lists(_MUTATION, min_size=1, max_size=3))
def test_mutated_files_read_alike_on_every_path_and_as_protobuf_reads_them(seed, mutations):
    data = bytearray(SEEDS[seed])
    for op, pos, arg in mutations:
        data = _mutate(data, op, pos, arg)
    _check(bytes(data))


@_PROPERTY
@given(
    seed=st.sampled_from(sorted(SEEDS)),
    record=st.integers(0, 4),
    mutations=st.lists(_MUTATION, min_size=1, max_size=3),
)
def test_mutated_records_in_valid_framing_read_alike_everywhere(seed, record, mutations):
    # Framing repaired after the change, so the mutation reaches the protobuf layer.
    payloads = protobuf_reference.payloads(SEEDS[seed])
    i = record % len(payloads)
    data = bytearray(payloads[i])
    for op, pos, arg in mutations:
        data = _mutate(data, op, pos, arg)
    payloads[i] = bytes(data)
    _check(_frame(payloads))


def _sparse_payload(values: bytes, keys: bytes, shape: bytes, label: bytes | None = None):
    tensor = b"\x0a" + bytes([len(values)]) + values + b"\x12" + bytes([len(keys)]) + keys
    tensor += b"\x1a" + bytes([len(shape)]) + shape
    value = b"\x12" + bytes([len(tensor)]) + tensor
    entry = b"\x0a\x06values\x12" + bytes([len(value)]) + value
    payload = b"\x0a" + bytes([len(entry)]) + entry
    if label is not None:
        lvalue = b"\x12" + bytes([len(label)]) + label
        lentry = b"\x0a\x06values\x12" + bytes([len(lvalue)]) + lvalue
        payload += b"\x12" + bytes([len(lentry)]) + lentry
    return payload


def test_varints_past_64_bits_and_shapes_past_int64_are_format_errors():
    one = struct.pack("<f", 1.0)
    huge_key = b"\xff" * 9 + b"\x7f"  # 10 bytes, 2^70 - 1
    with pytest.raises(RecordIOError, match="does not fit 64 bits"):
        recordio.read_arrays(_frame([_sparse_payload(one, huge_key, b"\x04")]))
    shape_2_63 = recordio._varint(1 << 63)
    with pytest.raises(RecordIOError, match=r"shape \[9223372036854775808\].*below 2\^63"):
        recordio.read_arrays(_frame([_sparse_payload(one, b"\x00", shape_2_63)]))


def test_a_raised_entry_length_is_caught_on_the_fast_sparse_path():
    good = bytearray(SEEDS["sparse_f32_labels"])
    assert good[8] == 0x0A  # features entry: tag at 8, its length varint at 9
    good[9] += 3
    with pytest.raises(RecordIOError):
        recordio.read_arrays(bytes(good))
    _check(bytes(good))


def test_an_empty_label_followed_by_a_stray_field_is_not_a_label():
    one = struct.pack("<f", 1.0)
    # label tensor empty, then an unknown field in the Value holding what looks like 1.0
    payload = _sparse_payload(one, b"\x00", b"\x04")
    stray = b"\x0a\x04" + one
    lvalue = b"\x12\x00" + stray
    lentry = b"\x0a\x06values\x12" + bytes([len(lvalue)]) + lvalue
    payload += b"\x12" + bytes([len(lentry)]) + lentry
    with pytest.raises(RecordIOError, match="0 label values, expected 1"):
        recordio.read_arrays(_frame([payload, payload]))
    _check(_frame([payload, payload]))


def test_a_repeated_tensor_field_merges_as_protobuf_does():
    half = b"\x0a\x04" + struct.pack("<f", 1.5) + b"\x12\x01\x01"
    rest = b"\x0a\x04" + struct.pack("<f", -2.0) + b"\x12\x01\x03\x1a\x01\x05"
    value = b"\x12" + bytes([len(half)]) + half + b"\x12" + bytes([len(rest)]) + rest
    entry = b"\x0a\x06values\x12" + bytes([len(value)]) + value
    buf = _frame([b"\x0a" + bytes([len(entry)]) + entry])
    got = recordio.read_arrays(buf)
    assert got.X.toarray().tolist() == [[0.0, 1.5, 0.0, -2.0, 0.0]]
    _check(buf)


def test_a_float_sent_as_a_varint_is_refused_not_read_as_a_value():
    # protobuf would skip it as an unknown field and read a row of nothing
    tensor = b"\x08\x05"  # field 1 (values) with wire type 0
    value = b"\x12" + bytes([len(tensor)]) + tensor
    entry = b"\x0a\x06values\x12" + bytes([len(value)]) + value
    buf = _frame([b"\x0a" + bytes([len(entry)]) + entry])
    with pytest.raises(RecordIOError, match="Float32Tensor.values sent with wire type 0"):
        recordio.read_arrays(buf)


@pytest.mark.parametrize(
    "keys, shape, message",
    [
        (b"\xff" * 9 + b"\x7f", b"\x04", "varint does not fit 64 bits"),
        (b"\x00", b"\x80" * 9 + b"\x01", "a feature dimension must be below 2^63"),
    ],
)
def test_validate_reports_overflowing_files_without_a_traceback(tmp_path, keys, shape, message):
    import subprocess
    import sys

    one = struct.pack("<f", 1.0)
    path = tmp_path / "hostile.rec"
    path.write_bytes(_frame([_sparse_payload(one, keys, shape, b"\x0a\x04" + one)]))
    res = subprocess.run(
        [sys.executable, "-m", "training", "validate", path, "--predictor-type", "regressor"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).parents[1],
    )
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert f"{path}: corrupt RecordIO-protobuf" in res.stderr and message in res.stderr


def test_records_that_disagree_name_both_by_offset():
    """Dense records among sparse ones, or sparse ones of two widths: the message names the
    record that departs and the one it departs from (it said "shape []", or listed the widths
    without a record), so a user can find them in the file."""
    sparse = io.BytesIO()
    recordio.write_spmatrix_to_sparse_tensor(sparse, sp.csr_matrix(np.eye(2, 4, dtype=np.float32)))
    dense = recordio.encode_dense(np.ones((1, 4), np.float32))
    mixed = sparse.getvalue() + dense
    with pytest.raises(RecordIOError) as err:
        recordio.read_arrays(mixed)
    at = len(sparse.getvalue())
    assert str(err.value).startswith(
        f"record at byte offset {at} is dense (no keys, no shape) but the record at byte "
        "offset 0 is sparse: write every record one way"
    )
    wider = io.BytesIO()
    recordio.write_spmatrix_to_sparse_tensor(wider, sp.csr_matrix(np.eye(1, 5, dtype=np.float32)))
    with pytest.raises(RecordIOError) as err:
        recordio.read_arrays(sparse.getvalue() + wider.getvalue())
    assert str(err.value) == (
        f"sparse record at byte offset {at} has shape [5] but the record at byte offset 0 "
        "has [4]: one feature_dim for every record"
    )
