"""``inspect``: what a Linear Learner model is and what drives it, from any artifact.

Works on a model trained here or by a SageMaker job, local or in S3. The weights are in the
raw feature space (normalisation folded in), so their size also reflects each feature's
scale; with the manifest ``prepare`` wrote, features get their names.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from training.core import artifact
from training.core.losses import BINARY, MULTICLASS
from training.core.model import LinearModel
from training.data.manifest import Manifest
from training.errors import Problem, ValidationError


@dataclass
class Weight:
    feature: str  # its name, or "feature <i>" without a manifest
    index: int
    weight: float
    label: str | None = None  # multiclass: the class this column scores


@dataclass
class ModelSummary:
    source: str
    predictor_type: str
    loss: str
    feature_dim: int
    num_classes: int | None
    threshold: float
    bias: float | list[float]
    layout_verified: bool  # False: a layout inferred, never seen in a real artifact
    largest_weights: list[Weight]
    zero_weights: int
    # what requests carry: raw rows of these columns (name -> role), or None: encoded vectors
    raw_columns: dict[str, str] | None = None
    classes: list | None = None  # the class names answers carry


def feature_names(manifest: Path | None) -> tuple[list[str] | None, list[str] | None]:
    """(feature names, class names) from ``prepare``'s manifest.json (or its folder)."""
    if manifest is None:
        return None, None
    found = Manifest.load(manifest)
    return list(found.feature_names), list(found.label.classes) or None


def summarize(
    model: LinearModel, source: str, names=None, classes=None, top: int = 10, featurizer=None
) -> ModelSummary:
    """What ``model`` is; ``featurizer``: the preprocessing it is served behind."""
    if names is not None and len(names) != model.feature_dim:
        raise ValidationError(
            [
                Problem(
                    "--manifest",
                    f"lists {len(names)} features, the model has {model.feature_dim}",
                    "pass the manifest of the data this model was trained on",
                )
            ]
        )
    W = np.asarray(model.weights).reshape(model.feature_dim, -1)  # float32: no copy
    k = W.shape[1]
    order, zero_rows = _largest(W, max(top, 0))
    largest = []
    for flat in order:
        i, c = divmod(int(flat), k)
        label = None
        if model.predictor_type == MULTICLASS:
            label = classes[c] if classes and c < len(classes) else str(c)
        name = names[i] if names is not None else f"feature {i}"
        largest.append(Weight(name, i, float(W[i, c]), label))
    bias = np.asarray(model.bias, np.float64)
    return ModelSummary(
        source=source,
        predictor_type=model.predictor_type,
        loss=model.loss,
        feature_dim=model.feature_dim,
        num_classes=k if model.predictor_type == MULTICLASS else None,
        threshold=float(model.threshold),
        bias=bias.tolist() if bias.ndim else float(bias),
        layout_verified=(model.predictor_type, model.loss) in artifact.VERIFIED,
        largest_weights=largest,
        zero_weights=zero_rows,
        raw_columns={c.name: c.role for c in featurizer.columns} if featurizer else None,
        classes=list(featurizer.classes) or None if featurizer else None,
    )


_BLOCK = 1 << 22  # weights looked at a time: memory is a few times this, not the model's


def _largest(W: np.ndarray, top: int) -> tuple[np.ndarray, int]:
    """The flat indices of the ``top`` weights largest in size (ties: lower index first, as a
    stable sort of the whole matrix gives), and how many rows are all zero; in blocks of rows,
    so that a model of any size the reader loads is summarised in a few times _BLOCK (a sort
    of the whole matrix took 8x the model's size: 1.3 GB more for a 256 MiB model)."""
    k = W.shape[1]
    rows = max(1, _BLOCK // k)
    found, zero_rows = [], 0
    for first in range(0, W.shape[0], rows):
        block = np.abs(W[first : first + rows]).reshape(-1)
        zero_rows += int((block.reshape(-1, k) == 0).all(axis=1).sum())
        if top < block.size:  # this block's top: all above the cut, the first at it
            cut = np.partition(block, block.size - top)[block.size - top] if top else np.inf
            above = np.flatnonzero(block > cut)
            at = np.flatnonzero(block == cut)[: top - above.size]
            keep = np.sort(np.concatenate([above, at]))
        else:
            keep = np.arange(block.size)
        found.append((keep + first * k, block[keep]))
    index = np.concatenate([f[0] for f in found]) if found else np.empty(0, np.int64)
    size = np.concatenate([f[1] for f in found]) if found else np.empty(0)
    return index[np.lexsort((index, -size.astype(np.float64)))][:top], zero_rows


def to_json(summary: ModelSummary) -> str:
    # allow_nan=False: the reader refuses non-finite weights, bias and thresholds, so JSON
    # without Infinity or NaN is always possible; a regression fails here, not in a user's parser
    return json.dumps(asdict(summary), indent=2, allow_nan=False)


def to_text(s: ModelSummary) -> str:
    layout = (
        "the layout SageMaker's container writes"
        if s.layout_verified
        else "a layout inferred for this loss, not seen in a real artifact"
    )
    lines = [
        f"model          {s.source}",
        f"predictor_type {s.predictor_type}"
        + (f" ({s.num_classes} classes)" if s.num_classes else ""),
        f"loss           {s.loss} ({layout})",
        f"feature_dim    {s.feature_dim} ({s.zero_weights} with all-zero weights)",
    ]
    if s.predictor_type == BINARY:
        lines.append(f"threshold      {s.threshold!r} (predicted_label = 1 when score > threshold)")
    biases = [s.bias] if isinstance(s.bias, float) else s.bias
    lines.append("bias           " + ", ".join(f"{b:.6g}" for b in biases))
    if s.raw_columns is None:
        lines.append(f"requests       encoded vectors of {s.feature_dim} features")
    else:
        roles = [r for r in s.raw_columns.values() if r != "label"]
        counts = ", ".join(f"{roles.count(r)} {r}" for r in dict.fromkeys(roles))
        lines.append(f"requests       raw rows of {len(roles)} columns ({counts})")
        if s.classes:
            lines.append("classes        " + ", ".join(map(str, s.classes)))
    if s.largest_weights:
        lines.append("largest weights (raw feature space: each also carries its feature's scale):")
        width = max(len(w.feature) for w in s.largest_weights)
        for rank, w in enumerate(s.largest_weights, 1):
            cls = f"  [class {w.label}]" if w.label is not None else ""
            lines.append(f"  {rank:>3}. {w.feature:<{width}}  {w.weight:+.6g}{cls}")
    return "\n".join(lines)
