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
import tarfile
import zipfile
import zlib
from pathlib import Path

import numpy as np

from training.core import mxnet
from training.core.losses import LOSSES, MULTICLASS, PREDICTOR_TYPES, REGRESSOR
from training.core.metrics import MetricsParams
from training.core.model import LinearModel
from training.errors import ArtifactError
from training.files import file_problem, write_whole

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


def load(path: Path) -> LinearModel:
    """A model from ``model.tar.gz`` or a bare ``model_algo-1``; ArtifactError says why not."""
    path = Path(path)
    if path.is_dir():
        raise ArtifactError(f"{path}: a folder, not a model file; pass its model.tar.gz")
    unreadable = file_problem(path, "model file")
    if unreadable:
        raise ArtifactError(f"{path}: {unreadable.message}")
    try:
        data = path.read_bytes()
    except OSError as err:
        raise ArtifactError(f"{path}: cannot read it ({err.strerror})") from None
    return from_bytes(data, str(path))


def from_bytes(data: bytes, source: str = "model") -> LinearModel:
    if data[:2] == b"\x1f\x8b":
        data = _untar(data, source)
    if data[:4] != b"PK\x03\x04":
        raise ArtifactError(f"{source}: {_what(data)}, not a Linear Learner model")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            names = set(zf.namelist())
            missing = [m for m in MEMBERS if m not in names]
            if missing:
                raise ArtifactError(
                    f"{source}: a ZIP without {', '.join(missing)}: not a Linear Learner "
                    f"model_algo-1 (it holds {', '.join(sorted(names)) or 'nothing'})"
                )
            members = {m: zf.read(m) for m in MEMBERS}
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
    return _model(members, source)


def _untar(data: bytes, source: str) -> bytes:
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            files = [m for m in tar.getmembers() if m.isfile()]
            names = [m.name for m in files]
            if "model.json" in names and "weights.npy" in names:
                raise ArtifactError(
                    f"{source}: written by an earlier version of this project (model.json + "
                    "weights.npy), which SageMaker cannot serve: train it again with "
                    "`python -m training train --target local`"
                )
            member = next((m for m in files if m.name.lstrip("./") == MEMBER), None)
            if member is None:
                raise ArtifactError(
                    f"{source}: a tar.gz without {MEMBER} (it holds "
                    f"{', '.join(names) or 'no files'}): not a SageMaker model artifact"
                )
            return tar.extractfile(member).read()
    except (tarfile.TarError, OSError, EOFError, zlib.error) as err:
        raise ArtifactError(f"{source}: a damaged or truncated tar.gz ({err})") from None


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


def _json(members: dict, name: str, source: str) -> dict:
    try:
        doc = json.loads(members[name])
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ArtifactError(f"{source}: {name} is not valid JSON ({err})") from None
    if not isinstance(doc, dict):
        raise ArtifactError(f"{source}: {name} is not a JSON object")
    return doc


def _model(members: dict, source: str) -> LinearModel:
    manifest = _json(members, MANIFEST, source)
    if manifest.get("mx-mod") != "mxnet_module":
        raise ArtifactError(f"{source}: {MANIFEST} declares {manifest}, not an mxnet_module")
    params = _json(members, ADDITIONAL, source)
    predictor = params.get("predictor_type")
    loss = params.get("loss_type")
    threshold = params.get("threshold", 0.5)
    if predictor not in PREDICTOR_TYPES:
        raise ArtifactError(f"{source}: {ADDITIONAL} has predictor_type {predictor!r}")
    if not isinstance(loss, str) or not isinstance(threshold, (int, float)):
        raise ArtifactError(f"{source}: {ADDITIONAL} lacks a loss_type or numeric threshold")
    if loss not in LOSSES:
        raise ArtifactError(f"{source}: {ADDITIONAL} has loss_type {loss!r}, not Linear Learner's")
    params = _metrics_params(params.get("metrics_params"), predictor, source)
    op = _output_op(_json(members, SYMBOL, source), source)
    if op != output_op(loss):  # the score is computed from the loss: they must agree
        raise ArtifactError(f"{source}: loss_type {loss} does not fit the graph's {op}")
    try:
        arrays = mxnet.load_ndarrays(members[PARAMS])
    except mxnet.MXNetFormatError as err:
        raise ArtifactError(f"{source}: {PARAMS}: {err}") from None
    if WEIGHT not in arrays or BIAS not in arrays:
        raise ArtifactError(
            f"{source}: {PARAMS} holds {', '.join(arrays)}; expected {WEIGHT} and {BIAS}"
        )
    W, b = arrays[WEIGHT], arrays[BIAS]
    if W.ndim != 2 or b.shape != (1, W.shape[1]) or W.shape[0] < 1:
        raise ArtifactError(
            f"{source}: {WEIGHT} {W.shape} and {BIAS} {b.shape} do not fit (d, k) and (1, k)"
        )
    k = W.shape[1]
    if (k == 1) == (predictor == MULTICLASS):
        raise ArtifactError(f"{source}: a {predictor} with {k} output column(s)")
    W, b = W.astype(np.float32), b.astype(np.float32)
    if k == 1:
        return LinearModel(predictor, loss, W[:, 0], b[0, 0], float(threshold), params)
    return LinearModel(predictor, loss, W, b[0], float(threshold), params)


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
        if (
            numeric
            and value is not None
            and (isinstance(value, bool) or not isinstance(value, (int, float)))
        ):
            raise ArtifactError(
                f"{source}: {ADDITIONAL}'s metrics_params.{name} is {value!r}, not a number"
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
    if "dot" not in ops or "broadcast_add" not in ops or head["op"] not in OUTPUT_OPS:
        raise ArtifactError(
            f"{source}: {SYMBOL} is not a linear model's graph (ops {', '.join(ops)})"
        )
    return head["op"]
