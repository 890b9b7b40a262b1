"""``model.tar.gz``: SageMaker Linear Learner's own model artifact, written and read.

The local trainer writes what a SageMaker training job writes, so its model deploys to a real
Linear Learner endpoint; the local endpoint reads what a SageMaker job wrote, so a model trained
there is served and inspected here. The layers (``../shared/reference/ll-artifact.md``):

1. gzip (level 6, mtime 0) of a ustar tar holding one member, ``model_algo-1`` (mode 0644,
   root, GNU-style octal fields): byte for byte what the container writes;
2. ``model_algo-1``: a ZIP of stored members ``mx-mod-0000.params``, ``manifest.json``,
   ``additional-params.json``, ``mx-mod-symbol.json`` (Python's zipfile writes the same bytes);
3. the MXNet Module checkpoint: ``data -> dot(fc0_weight) -> broadcast_add(fc0_bias) ->
   output op``, weights in the raw feature space (normalisation folded in), float32, and
   ``additional-params.json`` with the predictor type, loss, decision threshold and the
   metrics' parameters (read back into the model, so metrics use the F-beta it was trained
   with).

Verified against real artifacts: binary_classifier + logistic (``LogisticRegressionOutput``,
score = sigmoid) and regressor + squared_loss (``LinearRegressionOutput``, score = x.W + b).
**Inferred, not verified** (no real artifact was found): multiclass (weights (d, k), bias (1, k),
``SoftmaxOutput``, loss_type ``softmax_loss``), the other losses (the loss name as the
hyperparameter spells it, ``LinearRegressionOutput``, the loss's parameter in metrics_params).

Both timestamps inside are fixed (1980-01-01), so the same model gives the same bytes. What
only this project needs (hyperparameters, selection, history, seed) is not in the tar: the
local trainer writes it beside it, in ``metrics.json`` (:mod:`training.local.training_record`).
Nothing here depends on how the model was trained.
"""

from __future__ import annotations

import calendar
import gzip
import io
import json
import math
import re
import struct
import tarfile
import zipfile
import zlib
from pathlib import Path

import numpy as np

from training.core import hyperparameters, mxnet
from training.core.losses import LOSSES, MULTICLASS, PREDICTOR_TYPES, REGRESSOR
from training.core.metrics import MetricsParams
from training.core.model import LinearModel
from training.errors import ArtifactError
from training.files import file_problem, write_whole
from training.limits import (
    MAX_ARCHIVE_BYTES,
    MAX_JSON_BYTES,
    MAX_JSON_DEPTH,
    MAX_JSON_INT_DIGITS,
    MAX_MODEL_BYTES,
    MAX_TAR_HEADER_BYTES,
    MAX_TAR_MEMBERS,
    MAX_ZIP_DIRECTORY_BYTES,
    MAX_ZIP_MEMBERS,
)

MEMBER = "model_algo-1"
PARAMS, SYMBOL = "mx-mod-0000.params", "mx-mod-symbol.json"
MANIFEST, ADDITIONAL = "manifest.json", "additional-params.json"
MEMBERS = (PARAMS, MANIFEST, ADDITIONAL, SYMBOL)  # the order of the 2024 artifacts
WEIGHT, BIAS = "arg:fc0_weight", "arg:fc0_bias"
MXNET_VERSION = 10301  # MXNet 1.3.1, what every Linear Learner artifact since 2020 records
FIXED_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest ZIP time; reproducible bytes
GZIP_LEVEL = 6

VERIFIED = {("binary_classifier", "logistic"), ("regressor", "squared_loss")}
OUTPUT_OPS = frozenset(cls.output_op for cls in LOSSES.values())


# --------------------------------------------------------------------------- writing


def output_op(loss: str) -> str:
    """The op the model graph of a ``loss`` model ends in (what it does to x.W + b)."""
    return LOSSES[loss].output_op


def symbol_graph(feature_dim: int, outputs: int, op: str, suffix: int = 0) -> dict:
    """The 7-node graph every Linear Learner artifact holds (MXNet numbers the op names)."""
    return {
        "nodes": [
            {"op": "null", "name": "data", "inputs": []},
            {
                "op": "null",
                "name": "fc0_weight",
                "attrs": {"__shape__": f"({feature_dim}, {outputs})"},
                "inputs": [],
            },
            {"op": "dot", "name": f"dot{suffix}", "inputs": [[0, 0, 0], [1, 0, 0]]},
            {
                "op": "null",
                "name": "fc0_bias",
                # bias_lr_mult as the container records it: a training-time setting that
                # inference ignores, written as every real artifact has it
                "attrs": {"__lr_mult__": "10.0", "__shape__": f"(1, {outputs})"},
                "inputs": [],
            },
            {
                "op": "broadcast_add",
                "name": f"broadcast_plus{suffix}",
                "inputs": [[2, 0, 0], [3, 0, 0]],
            },
            {"op": "null", "name": "out_label", "inputs": []},
            {"op": op, "name": f"{op.lower()}{suffix}", "inputs": [[4, 0, 0], [5, 0, 0]]},
        ],
        "arg_nodes": [0, 1, 3, 5],
        "node_row_ptr": [0, 1, 2, 3, 4, 5, 6, 7],
        "heads": [[6, 0, 0]],
        "attrs": {"mxnet_version": ["int", MXNET_VERSION]},
    }


def additional_params(model: LinearModel) -> dict:
    """``additional-params.json`` with the keys, order and nulls of the real files."""
    params = {**model.metrics_params.to_json(), "threshold": float(model.threshold)}
    return {
        "threshold": float(model.threshold),
        "loss_type": model.loss,
        "predictor_type": model.predictor_type,
        "metrics_params": params,
    }


def model_algo_bytes(model: LinearModel, date_time=FIXED_TIME, suffix: int = 0) -> bytes:
    """The ``model_algo-1`` ZIP for ``model``."""
    weights = np.asarray(model.weights, np.float32)
    outputs = 1 if weights.ndim == 1 else weights.shape[1]
    members = {
        PARAMS: mxnet.save_ndarrays(
            {
                WEIGHT: weights.reshape(model.feature_dim, outputs),
                BIAS: np.asarray(model.bias, np.float32).reshape(1, outputs),
            }
        ),
        MANIFEST: json.dumps(
            {"mx-mod": "mxnet_module", "additional-params.json": "json", "version": 1}
        ).encode(),
        ADDITIONAL: json.dumps(additional_params(model)).encode(),
        SYMBOL: mxnet.dump_symbol(
            symbol_graph(model.feature_dim, outputs, output_op(model.loss), suffix)
        ).encode(),
    }
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for name in MEMBERS:
            info = zipfile.ZipInfo(name, date_time)
            info.create_system = 3  # Unix
            info.external_attr = 0o100644 << 16
            zf.writestr(info, members[name])
    return buf.getvalue()


def _octal(value: int, width: int) -> bytes:
    return b"%0*o " % (width - 1, value)


def tar_gz(member: bytes, mtime: int, name: str = MEMBER) -> bytes:
    """One-member ustar tar, gzipped, with the container's header layout (octal fields end
    in a space, the mode carries the regular-file bits, 10 KiB records)."""
    header = bytearray(512)
    header[0 : len(name)] = name.encode()
    header[100:108] = _octal(0o100644, 8)
    header[108:116] = _octal(0, 8)
    header[116:124] = _octal(0, 8)
    header[124:136] = _octal(len(member), 12)
    header[136:148] = _octal(mtime, 12)
    header[148:156] = b" " * 8
    header[156:157] = b"0"
    header[257:265] = b"ustar\x0000"
    header[329:337] = _octal(0, 8)
    header[337:345] = _octal(0, 8)
    header[148:156] = b"%06o\x00 " % sum(header)
    body = bytes(header) + member + b"\0" * (-len(member) % 512) + b"\0" * 1024
    body += b"\0" * (-len(body) % (20 * 512))
    buf = io.BytesIO()
    with gzip.GzipFile(
        filename="", fileobj=buf, mode="wb", mtime=0, compresslevel=GZIP_LEVEL
    ) as gz:
        gz.write(body)
    return buf.getvalue()


def to_bytes(model: LinearModel) -> bytes:
    """``model.tar.gz`` for ``model``: the same model gives the same bytes."""
    return tar_gz(model_algo_bytes(model), calendar.timegm((*FIXED_TIME, 0, 0, 0)))


def save(model: LinearModel, path: Path) -> Path:
    """Write ``model.tar.gz`` whole or not at all (a temporary file renamed into place)."""
    return write_whole(path, to_bytes(model))


# --------------------------------------------------------------------------- reading
#
# Every file read here may be hostile: each size is decided from a header (the file's size, a
# tar member's, a ZIP member's, an NDArray's shape) before anything is read or decompressed,
# against a limit in training.limits, and everything decompressed is read through a cap; every
# value is checked before a model exists, so what loads can be served and printed as JSON.


def load(path: Path) -> LinearModel:
    """A model from ``model.tar.gz`` or a bare ``model_algo-1``; ArtifactError says why not."""
    path = Path(path)
    if path.is_dir():
        raise ArtifactError(f"{path}: a folder, not a model file; pass its model.tar.gz")
    unreadable = file_problem(path, "model file")
    if unreadable:
        raise ArtifactError(f"{path}: {unreadable.message}")
    return from_bytes(_read(path), str(path))  # (no name here keeps the file's bytes alive)


def _read(path: Path) -> bytes:
    try:
        size = path.stat().st_size
        if size > MAX_ARCHIVE_BYTES:
            raise too_large(str(path), "the file is", size, MAX_ARCHIVE_BYTES)
        with open(path, "rb") as f:
            return f.read(size + 1)  # (read allocates what it is asked for; +1: it grew)
    except OSError as err:
        raise ArtifactError(f"{path}: cannot read it ({err.strerror})") from None


def too_large(source: str, what: str, size: int, limit: int) -> ArtifactError:
    """The one-line answer for anything bigger than a model may be (``what`` it is)."""
    return ArtifactError(
        f"{source}: model is larger than {_size(limit)} ({what} {_size(size)}), more than any "
        "real Linear Learner model; it is damaged or not a model (limits: docs/limits.md)"
    )


def _size(n: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n} {unit}" if unit == "bytes" else f"{n:.4g} {unit}"
        n /= 1024
    raise AssertionError  # unreachable


def from_bytes(data: bytes, source: str = "model") -> LinearModel:
    if len(data) > MAX_ARCHIVE_BYTES:
        raise too_large(source, "the file is", len(data), MAX_ARCHIVE_BYTES)
    if data[:2] == b"\x1f\x8b":
        data = _untar(data, source)
    if data[:4] != b"PK\x03\x04":
        raise ArtifactError(f"{source}: {_what(data)}, not a Linear Learner model")
    if len(data) > MAX_MODEL_BYTES:
        raise too_large(source, f"{MEMBER} is", len(data), MAX_MODEL_BYTES)
    _check_zip_directory(data, source)
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            names = zf.namelist()
            missing = [m for m in MEMBERS if m not in names]
            if missing:
                shown = ", ".join(sorted(names)[:10]) + (", …" if len(names) > 10 else "")
                raise ArtifactError(
                    f"{source}: a ZIP without {', '.join(missing)}: not a Linear Learner "
                    f"model_algo-1 (it holds {shown or 'nothing'})"
                )
            members = {m: _zip_member(zf, m, source) for m in MEMBERS}
    except (
        zipfile.BadZipFile,
        zipfile.LargeZipFile,
        EOFError,
        OSError,
        NotImplementedError,  # a compression method zipfile lacks
        RuntimeError,  # an encrypted member
        zlib.error,
    ) as err:
        raise ArtifactError(f"{source}: a damaged ZIP ({err})") from None
    del data  # the members are copies: the whole ZIP need not stay in memory while parsing
    return _model(members, source)


def _check_zip_directory(data: bytes, source: str) -> None:
    """Refuse a ZIP whose central directory is bigger than a model's before zipfile reads it
    (it builds an object per entry: 1 GiB of directory would take ~10 GiB). The end record
    (APPNOTE.TXT 4.3.16) is found as zipfile finds it (``_EndRecData``): the last 22 bytes
    when they are one with no comment, else the last signature in the last 64 KiB + 22 bytes.
    (Searching first let the record's own offset field spell the signature: the check read
    that, zipfile the real record, and a 20M-entry directory got past.)"""
    at = len(data) - 22
    if at < 0 or data[at : at + 4] != b"PK\x05\x06" or data[-2:] != b"\0\0":
        at = data.rfind(b"PK\x05\x06", max(0, len(data) - 22 - 0xFFFF))
    if at < 0 or len(data) < at + 22:
        return  # no end record: zipfile says the ZIP is damaged
    entries, directory = struct.unpack_from("<HL", data, at + 10)
    if at >= 20 and data[at - 20 : at - 16] == b"PK\x06\x07":  # a ZIP64 locator before it
        raise ArtifactError(
            f"{source}: {MEMBER} is a ZIP64 archive, which only a ZIP over 4 GiB or 65535 "
            "members needs; Linear Learner writes a plain ZIP of 4 members"
        )
    if entries > MAX_ZIP_MEMBERS or directory > MAX_ZIP_DIRECTORY_BYTES:
        raise ArtifactError(
            f"{source}: {MEMBER}'s ZIP lists {entries} members in a {_size(directory)} "
            f"directory; Linear Learner writes 4 (at most {MAX_ZIP_MEMBERS} members and "
            f"{_size(MAX_ZIP_DIRECTORY_BYTES)} are read)"
        )


def _zip_member(zf: zipfile.ZipFile, name: str, source: str) -> bytes:
    """A member's bytes, its size decided from the ZIP's header before it is decompressed
    and capped while it is (a header may lie: zipfile stops at the size it states)."""
    limit = MAX_MODEL_BYTES if name == PARAMS else MAX_JSON_BYTES
    size = zf.getinfo(name).file_size
    if size > limit:
        raise too_large(source, f"{MEMBER}'s {name} is", size, limit)
    with zf.open(name) as f:
        return f.read(limit + 1)


class _RefusedError(Exception):
    """A tar header refused before tarfile acts on it; the message says why."""


_PAX_TYPES = (tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE)


class _Header(tarfile.TarInfo):
    """tarfile's header reader, refusing what it would otherwise read whole: a GNU long name
    or PAX header over MAX_TAR_HEADER_BYTES, and sparse members (which it expands to the size
    they claim; SageMaker never writes one)."""

    def _proc_member(self, tarfile_):
        meta = (tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK, *_PAX_TYPES)
        if self.type in meta and self.size > MAX_TAR_HEADER_BYTES:
            raise _RefusedError(
                f"a tar header (a long name or PAX record) of {_size(self.size)}, over the "
                f"{_size(MAX_TAR_HEADER_BYTES)} read; SageMaker's tar has none"
            )
        return super()._proc_member(tarfile_)

    def _sparse(self, *args):
        raise _RefusedError("a sparse tar member; SageMaker's model_algo-1 is a regular file")

    _proc_sparse = _proc_gnusparse_00 = _proc_gnusparse_01 = _proc_gnusparse_10 = _sparse


class _Capped(io.RawIOBase):
    """A decompressing stream that stops after ``limit`` bytes: a gzip bomb costs no more."""

    def __init__(self, stream, limit: int):
        self.stream, self.left = stream, limit

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        want = self.left + 1 if size is None or size < 0 else min(size, self.left + 1)
        chunk = self.stream.read(want)
        self.left -= len(chunk)
        if self.left < 0:
            raise _OverCapError
        return chunk


class _OverCapError(Exception):
    """More was decompressed than the cap allows."""


def _untar(data: bytes, source: str) -> bytes:
    """model_algo-1 from a tar.gz (:func:`_read_tar`)."""
    found, names = _read_tar(data, source, MEMBER, MAX_MODEL_BYTES)
    if "model.json" in names and "weights.npy" in names:
        raise ArtifactError(
            f"{source}: written by an earlier version of this project (model.json + "
            "weights.npy), which SageMaker cannot serve: train it again with "
            "`python -m training train --target local`"
        )
    if found is None:
        raise ArtifactError(
            f"{source}: a tar.gz without {MEMBER} (it holds {_shown(names)}): not a SageMaker "
            "model artifact"
        )
    return found


def tar_member(data: bytes, source: str, name: str, limit: int) -> bytes:
    """The file ``name`` (at most ``limit`` bytes) from a tar.gz SageMaker stores, such as the
    featurizer's ``featurizer.tar.gz``: read with the model's own limits (:func:`_read_tar`)."""
    if len(data) > MAX_ARCHIVE_BYTES:
        raise too_large(source, "the file is", len(data), MAX_ARCHIVE_BYTES)
    found, names = _read_tar(data, source, name, limit)
    if found is None:
        raise ArtifactError(f"{source}: a tar.gz without {name} (it holds {_shown(names)})")
    return found


def _shown(names: list[str]) -> str:
    return (", ".join(names[:10]) + (", …" if len(names) > 10 else "")) or "no files"


def _read_tar(data: bytes, source: str, name: str, limit: int) -> tuple[bytes | None, list]:
    """The first regular file ``name`` in a tar.gz (None when there is none) and every file's
    name, read as a stream: each member's size is decided from its header before its bytes
    are decompressed, and all of it through a cap."""
    names, found, claimed, count = [], None, 0, 0
    stream = _Capped(gzip.GzipFile(fileobj=io.BytesIO(data)), MAX_ARCHIVE_BYTES)
    try:
        with tarfile.open(fileobj=stream, mode="r|", tarinfo=_Header) as tar:
            for member in tar:  # tarfile keeps every header: count them all
                count += 1
                if count > MAX_TAR_MEMBERS:
                    raise _RefusedError(f"over {MAX_TAR_MEMBERS} members; SageMaker's holds one")
                # every member's data is counted: tarfile reads through any it does not know
                wanted = member.isfile() and member.name.lstrip("./") == name and found is None
                if wanted and member.size > limit:
                    raise too_large(source, f"{name} claims", member.size, limit)
                claimed += member.size
                if claimed > MAX_ARCHIVE_BYTES:
                    raise too_large(source, "its members claim", claimed, MAX_ARCHIVE_BYTES)
                if not member.isfile():
                    continue
                names.append(member.name)
                if wanted:
                    found = tar.extractfile(member).read()
    except _OverCapError:
        over = too_large(source, "unpacked, it is over", MAX_ARCHIVE_BYTES, MAX_ARCHIVE_BYTES)
        raise over from None
    except _RefusedError as err:
        raise ArtifactError(f"{source}: {err}: not a SageMaker model artifact") from None
    except ArtifactError:
        raise
    except (tarfile.TarError, OSError, EOFError, zlib.error, ValueError, RecursionError) as err:
        # ValueError: a number field tarfile cannot parse; RecursionError: chained PAX headers
        raise ArtifactError(f"{source}: a damaged or truncated tar.gz ({err})") from None
    return found, names


def _what(data: bytes) -> str:
    """Name a file that is not a Linear Learner model, for the error message."""
    if mxnet.is_ndarray_list(data):
        try:
            arrays = mxnet.load_ndarrays(data)
        except mxnet.MXNetFormatError:
            return "a damaged MXNet NDArray list"
        shapes = ", ".join(f"{k} {tuple(v.shape)}" for k, v in arrays.items())
        kind = {1: "k-means", 3: "PCA"}.get(len(arrays), "another built-in algorithm")
        return (
            f"an MXNet NDArray list ({shapes}): the model_algo-1 of a {kind} model, "
            "not Linear Learner"
        )
    if not data:
        return "an empty file"
    if data[:6] == b"\x93NUMPY":
        return "a numpy .npy file"
    if data[:1] in (b"{", b"["):
        return "a JSON file"
    return f"an unknown file (starts {data[:8].hex(' ')})"


class _BadValueError(ValueError):
    """A JSON value refused while parsing (the message names it)."""


def _int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_JSON_INT_DIGITS:
        raise _BadValueError(f"a {len(text)}-digit number (more than {MAX_JSON_INT_DIGITS} digits)")
    return int(text)


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        shown = text if len(text) <= 20 else text[:20] + "…"
        raise _BadValueError(f"the number {shown}, beyond float64")
    return value


def _constant(text: str):
    raise _BadValueError(f"{text}, which is not a JSON number")


# A JSON string, its closing quote optional: an unclosed one runs to the end, so each quote is
# scanned once (with the quote required, every unclosed quote rescans the rest of the text:
# 4 MiB of '"\\' took hours).
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"?', re.DOTALL)


def _depth(raw: bytes) -> int:
    """How deep ``raw``'s brackets nest, strings skipped (in numpy: the text may be MiBs);
    linear in its length, whatever its quotes."""
    text = _STRING.sub(b'""', raw)
    steps = np.frombuffer(text, np.uint8)
    change = np.isin(steps, (0x5B, 0x7B)).astype(np.int64) - np.isin(steps, (0x5D, 0x7D))
    return int(np.cumsum(change).max(initial=0))


def _json(members: dict, name: str, source: str) -> dict:
    raw = members[name]
    if len(raw) > MAX_JSON_BYTES:
        raise too_large(source, f"{MEMBER}'s {name} is", len(raw), MAX_JSON_BYTES)
    depth = _depth(raw)
    if depth > MAX_JSON_DEPTH:
        raise ArtifactError(
            f"{source}: {name} nests {depth} levels deep; a Linear Learner file nests 4 (at "
            f"most {MAX_JSON_DEPTH} are read)"
        )
    try:
        doc = json.loads(raw, parse_int=_int, parse_float=_float, parse_constant=_constant)
    except _BadValueError as err:
        raise ArtifactError(f"{source}: {name} holds {err}") from None
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as err:
        raise ArtifactError(f"{source}: {name} is not valid JSON ({err})") from None
    if not isinstance(doc, dict):
        raise ArtifactError(f"{source}: {name} is not a JSON object")
    return doc


def _is_number(value) -> bool:
    """A JSON number (parsed finite): not a boolean, which Python counts as an int."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _model(members: dict, source: str) -> LinearModel:
    manifest = _json(members, MANIFEST, source)
    if manifest.get("mx-mod") != "mxnet_module":
        raise ArtifactError(
            f"{source}: {MANIFEST} declares {str(manifest)[:200]}, not an mxnet_module"
        )
    params = _json(members, ADDITIONAL, source)
    predictor = params.get("predictor_type")
    loss = params.get("loss_type")
    threshold = params.get("threshold", 0.5)
    if not isinstance(predictor, str) or predictor not in PREDICTOR_TYPES:
        raise ArtifactError(f"{source}: {ADDITIONAL} has predictor_type {_short(predictor)}")
    if not isinstance(loss, str) or not _is_number(threshold):
        raise ArtifactError(
            f"{source}: {ADDITIONAL} lacks a loss_type or numeric threshold (threshold "
            f"{_short(threshold)})"
        )
    if loss not in LOSSES:
        raise ArtifactError(
            f"{source}: {ADDITIONAL} has loss_type {_short(loss)}, not Linear Learner's"
        )
    if LOSSES[loss].predictor_type != predictor:  # a regressor's score is never a sigmoid
        raise ArtifactError(
            f"{source}: {ADDITIONAL} has loss_type {loss}, which a {predictor} cannot have "
            f"(it is a {LOSSES[loss].predictor_type}'s)"
        )
    params = _metrics_params(params.get("metrics_params"), predictor, source)
    op = _output_op(_json(members, SYMBOL, source), source)
    if op != output_op(loss):  # the score is computed from the loss: they must agree
        raise ArtifactError(f"{source}: loss_type {loss} does not fit the graph's {op}")
    try:
        arrays = mxnet.load_ndarrays(members.pop(PARAMS))
    except mxnet.MXNetFormatError as err:
        raise ArtifactError(f"{source}: {PARAMS}: {err}") from None
    if WEIGHT not in arrays or BIAS not in arrays:
        raise ArtifactError(
            f"{source}: {PARAMS} holds {_short(', '.join(arrays))}; expected {WEIGHT} and {BIAS}"
        )
    W, b = arrays[WEIGHT], arrays[BIAS]
    if W.ndim != 2 or b.shape != (1, W.shape[1]) or W.shape[0] < 1:
        raise ArtifactError(
            f"{source}: {WEIGHT} {W.shape} and {BIAS} {b.shape} do not fit (d, k) and (1, k)"
        )
    k = W.shape[1]
    if (k == 1) == (predictor == MULTICLASS) or (predictor == MULTICLASS and k < 3):
        # multiclass: SageMaker's num_classes is at least 3 (two classes are binary_classifier)
        raise ArtifactError(f"{source}: a {predictor} with {k} output column(s)")
    with np.errstate(over="ignore"):  # a float64 beyond float32 becomes inf: refused below
        W, b = W.astype(np.float32, copy=False), b.astype(np.float32, copy=False)
    for name, values in ((WEIGHT, W), (BIAS, b)):
        broken = ~np.isfinite(values)
        if broken.any():  # NaN or infinity (also a float64 beyond float32): every score NaN
            row, column = np.argwhere(broken)[0]
            raise ArtifactError(
                f"{source}: {PARAMS}: {name} holds {int(broken.sum())} NaN or infinite "
                f"value(s) (the first at [{row}, {column}]); a model that answers NaN cannot "
                "be served: train it again (a diverged training, e.g. too high a learning_rate)"
            )
    if k == 1:
        return LinearModel(predictor, loss, W[:, 0], b[0, 0], float(threshold), params)
    return LinearModel(predictor, loss, W, b[0], float(threshold), params)


def _short(value) -> str:
    """``repr(value)``, cut to one readable line (a hostile file's values may be huge)."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "…"


def _metrics_params(doc, predictor: str, source: str) -> MetricsParams:
    """``metrics_params`` as the container wrote it; SageMaker's defaults for what it lacks
    (artifacts of 2018 carry none)."""
    defaults = MetricsParams(f_beta=None if predictor == REGRESSOR else 1.0)
    if doc is None:
        return defaults
    if not isinstance(doc, dict):
        raise ArtifactError(f"{source}: {ADDITIONAL}'s metrics_params is not a JSON object")
    values = {}
    for name, default in defaults.to_json().items():
        value = doc.get(name, default)
        numeric = name not in ("eps_insensitive_loss_type", "class_weights")
        if numeric and value is not None and not _is_number(value):
            raise ArtifactError(
                f"{source}: {ADDITIONAL}'s metrics_params.{name} is {_short(value)}, not a number"
            )
        if numeric and value is not None:  # what the metrics use: the hyperparameter's rule
            try:
                hyperparameters.parse(name, value)
            except ValueError:
                raise ArtifactError(
                    f"{source}: {ADDITIONAL}'s metrics_params.{name} is {_short(value)}, not "
                    f"{hyperparameters.rule(name)} as the hyperparameter {name} must be"
                ) from None
        kind = {"eps_insensitive_loss_type": str, "class_weights": list}.get(name)
        if kind is not None and value is not None and not isinstance(value, kind):
            raise ArtifactError(
                f"{source}: {ADDITIONAL}'s metrics_params.{name} is {_short(value)}, not a "
                f"{'name' if kind is str else 'list'}"
            )
        values[name] = value
    return MetricsParams(**values)


def _output_op(graph: dict, source: str) -> str:
    try:
        nodes = graph["nodes"]
        head = nodes[graph["heads"][0][0]]
        ops = [n["op"] for n in nodes]
    except (KeyError, IndexError, TypeError):
        raise ArtifactError(f"{source}: {SYMBOL} is not an MXNet symbol graph") from None
    if not all(isinstance(op, str) for op in ops):
        bad = next(op for op in ops if not isinstance(op, str))
        raise ArtifactError(f"{source}: {SYMBOL} has an op that is not a name: {_short(bad)}")
    if "dot" not in ops or "broadcast_add" not in ops or head["op"] not in OUTPUT_OPS:
        raise ArtifactError(
            f"{source}: {SYMBOL} is not a linear model's graph (ops {_short(', '.join(ops))})"
        )
    # The model served here is x.W + b into the output op, whatever the file's graph says, so
    # the graph must be exactly that (as in every real artifact), else SageMaker's container,
    # which runs the graph, would answer something else (an op in between, inputs swapped).
    want = symbol_graph(1, 1, head["op"])
    if _wiring(graph) != _wiring(want):
        got, expected = _wiring(graph), _wiring(want)
        i = next((i for i, (a, b) in enumerate(zip(got, expected)) if a != b), len(expected))
        shown = _short(got[i]) if i < len(got) else "missing"
        raise ArtifactError(
            f"{source}: {SYMBOL} is not Linear Learner's graph (data dot fc0_weight, "
            f"broadcast_add fc0_bias, {head['op']}): node {i} is {shown}, expected "
            f"{_short(expected[i]) if i < len(expected) else 'none'}"
        )
    return head["op"]


def _wiring(graph: dict) -> list:
    """Each node's op (a variable's name), the nodes it reads, then the heads: what the graph
    computes, without the names MXNet numbers or the attributes."""
    try:
        nodes = [
            (n["op"], n["name"] if n["op"] == "null" else "", [int(x[0]) for x in n["inputs"]])
            for n in graph["nodes"]
        ]
        return [*nodes, ("heads", [int(x[0]) for x in graph["heads"]])]
    except (KeyError, IndexError, TypeError, ValueError):
        return [("unreadable",)]
