"""``train --target local``: channels + manifest in, ``model.tar.gz`` + metrics + log out.

``model.tar.gz`` is SageMaker's own Linear Learner artifact (``training.artifact``), so the
model deploys to a real endpoint; ``metrics.json`` beside it keeps what that format has no
place for: the artifact's SHA-256, the seed, the resolved hyperparameters, the selected packed
model and the per-epoch history.

Runs the same preflight checks and hyperparameter validation as the SageMaker path before any
training, prints Linear Learner's log lines, and writes ``metrics.json`` with SageMaker's
metric names (``validation:objective_loss``, ``test:binary_classification_accuracy`` …).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from training import artifact, errors, hyperparameters, validation
from training.channels import Data, stack
from training.checksums import file_sha256
from training.local import metrics as lm
from training.local.learner import LinearModel, PackedTrainer
from training.manifest import CHANNELS, Manifest
from training.progress import progress
from training.training_record import TrainingRecord


def evaluate(model: LinearModel, data: Data, channel: str, hp: dict) -> dict:
    """Metrics of the final model on one channel, with SageMaker's names (no prefix)."""
    out = model.predict(data.X)
    y = data.y
    result = lm.evaluate(model.predictor_type, out["score"], out.get("predicted_label"), y, hp)
    from training.local.losses import Loss

    loss = Loss(model.loss, hp)
    z = model.raw(data.X).astype(np.float64)
    z = z[:, None, :] if model.predictor_type == "multiclass_classifier" else z[:, None]
    result["objective_loss"] = float(loss.value(z, y.astype(np.float64)).mean())
    return result


def train_local(
    data_dir: Path,
    out_dir: Path,
    overrides: dict | None = None,
    seed: int = 0,
    show_progress: bool = True,
    echo=print,
) -> TrainingRecord:
    """Train on ``data_dir``'s channels; returns the record written to metrics.json."""
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    manifest = Manifest.read(data_dir)
    given = {**(manifest.hyperparameters if manifest else {}), **(overrides or {})}
    hp = hyperparameters.validate(given)  # every problem listed before any data is read

    present = [c for c in CHANNELS if (data_dir / c).exists()]
    if "train" not in present:
        raise errors.ValidationError(
            [
                errors.Problem(
                    str(data_dir),
                    "no train/ channel folder here",
                    "pass the folder `python -m training prepare` wrote (with train/, validation/, "
                    "test/ and manifest.json)",
                )
            ]
        )
    feature_dim = None if hp["feature_dim"] == "auto" else int(hp["feature_dim"])
    # the preflight parses every file anyway: keep what it read instead of parsing twice
    checked = validation.validate_channels(
        [data_dir / c for c in present],
        hp["predictor_type"],
        feature_dim,
        hp.get("num_classes"),
        keep_data=True,
    )
    channels = {
        c: stack(
            [(f.features, f.labels) for f in checked if f.path.relative_to(data_dir).parts[0] == c]
        )
        for c in present
    }

    out_dir.mkdir(parents=True, exist_ok=True)
    log_lines: list[str] = []

    def log(line: str) -> None:
        log_lines.append(line)
        echo(line)

    log(
        "Reading default configuration and the given hyperparameters: "
        + json.dumps(hyperparameters.to_strings(given))
    )
    started = time.perf_counter()
    bar = (lambda **kw: progress(**kw)) if show_progress else None
    trainer = PackedTrainer(hp, seed=seed, log=log, progress=bar)
    model = trainer.fit(channels["train"], channels.get("validation"))
    seconds = time.perf_counter() - started

    result: dict = {}
    for channel in ("validation", "test"):
        data = channels.get(channel)
        if data is None:
            continue
        for name, value in evaluate(model, data, channel, trainer.resolved).items():
            if name == "objective_loss":
                log(lm.quality_line(channel, model_objective(model), value, kind="loss"))
            else:
                log(lm.quality_line(channel, name, value, hp=trainer.resolved))
            result[f"{channel}:{name}"] = value
    if trainer.history:
        last = trainer.history[-1]
        result["train:objective_loss"] = last["train_objective_loss"]
        log(
            lm.quality_line(
                "train", model_objective(model), last["train_objective_loss"], kind="loss"
            )
        )
    model_path = artifact.save(model, out_dir / "model.tar.gz")
    record = TrainingRecord(
        model_file=model_path.name,
        model_sha256=file_sha256(model_path),
        seed=seed,
        metrics=result,
        history=trainer.history,
        selected_model=model.selected,
        hyperparameters=hyperparameters.to_strings(trainer.resolved),
        training_seconds=seconds,
        rows={c: d.n for c, d in channels.items()},
    )
    record.write(out_dir)
    (out_dir / "training.log").write_text("\n".join(log_lines) + "\n")
    return record


def model_objective(model: LinearModel) -> str:
    from training.local.losses import OBJECTIVE_NAMES

    return OBJECTIVE_NAMES[model.loss]
