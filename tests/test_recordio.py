"""RecordIO-protobuf codec: byte-identical to SDK 2.x, round trips, and clear corruption errors."""

import contextlib
import io
import struct
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from training import recordio
from training.recordio import RecordIOError

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
