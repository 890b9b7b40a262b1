"""``model.tar.gz``: the local trainer's artifact, loadable by the local endpoint.

Format (version 1), a gzip tarball holding:
- ``model.json``: format name and version, predictor type, loss, feature_dim, number of
  classes, decision threshold, the resolved hyperparameters, the selected packed model;
- ``weights.npy``: float32 ``(feature_dim,)`` or ``(feature_dim, num_classes)``, applying to
  raw (un-normalised) features: normalisation is folded in;
- ``bias.npy``: float32 scalar or ``(num_classes,)``.

SageMaker's own artifact holds an MXNet checkpoint instead; this one is for the offline runtime.
"""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from pathlib import Path

import numpy as np

from training.local.learner import LinearModel

FORMAT = "sagemaker-linear-learner-local"
VERSION = 1


class ArtifactError(ValueError):
    """The file is not a model.tar.gz this runtime wrote (or it is damaged)."""


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = 0  # reproducible bytes for the same model
    tar.addfile(info, io.BytesIO(data))


def _npy(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.asarray(array, np.float32), allow_pickle=False)
    return buf.getvalue()


def save(model: LinearModel, path: Path) -> Path:
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "predictor_type": model.predictor_type,
        "loss": model.loss,
        "feature_dim": model.feature_dim,
        "num_classes": int(model.weights.shape[1]) if model.weights.ndim == 2 else None,
        "threshold": model.threshold,
        "hyperparameters": model.hyperparameters,
        "selected": model.selected,
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with (
        open(path, "wb") as raw,
        gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0) as gz,
        tarfile.open(fileobj=gz, mode="w") as tar,
    ):
        _add(tar, "model.json", json.dumps(meta, indent=2, default=str).encode())
        _add(tar, "weights.npy", _npy(model.weights))
        _add(tar, "bias.npy", _npy(model.bias))
    return path


def load(path: Path) -> LinearModel:
    path = Path(path)
    try:
        with tarfile.open(path, "r:gz") as tar:
            files = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}
    except (tarfile.TarError, OSError, EOFError) as err:
        raise ArtifactError(f"{path}: not a readable model.tar.gz ({err})") from None
    missing = {"model.json", "weights.npy", "bias.npy"} - set(files)
    if missing:
        hint = (
            " (a SageMaker-trained artifact holds model_algo-1; serve it on SageMaker)"
            if "model_algo-1" in files
            else ""
        )
        raise ArtifactError(f"{path}: missing {', '.join(sorted(missing))}{hint}")
    meta = json.loads(files["model.json"])
    if meta.get("format") != FORMAT or meta.get("version") != VERSION:
        raise ArtifactError(
            f"{path}: format {meta.get('format')} v{meta.get('version')}, "
            f"expected {FORMAT} v{VERSION}"
        )
    weights = np.load(io.BytesIO(files["weights.npy"]), allow_pickle=False)
    bias = np.load(io.BytesIO(files["bias.npy"]), allow_pickle=False)
    return LinearModel(
        meta["predictor_type"],
        meta["loss"],
        weights,
        bias,
        meta["threshold"],
        meta["hyperparameters"],
        meta["selected"],
    )
