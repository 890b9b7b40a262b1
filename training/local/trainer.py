"""``train --target local``: channels + manifest in, ``model.tar.gz`` + training record + log out.

``model.tar.gz`` is SageMaker's own Linear Learner artifact (:mod:`training.core.artifact`), so
the model deploys to a real endpoint; ``preprocessing.json`` beside it is the preprocessing it
was trained behind (so it is served on raw rows); ``metrics.json`` (the training record) keeps
what neither has a place for: the artifact's SHA-256, the seed, the resolved hyperparameters,
the selected packed model and the per-epoch history.

Runs the same preflight as the SageMaker path before any training
(:func:`training.data.channel_checks.check_training_data`), prints Linear Learner's log lines,
and records the exported model's metrics on every channel with SageMaker's names
(``train:objective_loss``, ``validation:objective_loss``, ``test:binary_classification_accuracy``
…), each computed the same way: the exported model on that channel's rows and labels.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np

from training.checksums import file_sha256
from training.core import artifact
from training.core import metrics as lm
from training.core.featurizer import PREPROCESSING_FILE, Featurizer, PreprocessingError
from training.core.hyperparameters import Resolved
from training.core.losses import LOSSES, MULTICLASS, make_loss
from training.core.metrics import OBJECTIVE_LOSS, Metrics
from training.core.model import LinearModel
from training.data.channel_checks import TrainingData, check_training_data
from training.data.channels import Data, stack
from training.data.manifest import MANIFEST_FILE
from training.errors import Problem, ValidationError
from training.local.learner import PackedTrainer
from training.local.training_record import TrainingRecord
from training.progress import progress

MODEL_FILE = "model.tar.gz"
LOG_FILE = "training.log"


def objective_loss(model: LinearModel, data: Data, hp: Resolved) -> float:
    """The mean training loss of the exported model on ``data``'s rows and labels."""
    z = model.raw(data.X).astype(np.float64)
    z = z[:, None, :] if model.predictor_type == MULTICLASS else z[:, None]
    return float(make_loss(model.loss, hp).value(z, data.y.astype(np.float64)).mean())


def evaluate(model: LinearModel, data: Data, hp: Resolved) -> dict[str, float]:
    """Every metric of the exported model on one channel, SageMaker's names (no prefix)."""
    predicted = model.predict(data.X)
    result = lm.evaluate(
        model.predictor_type,
        predicted.score,
        predicted.predicted_label,
        data.y,
        model.metrics_params,
    )
    result[OBJECTIVE_LOSS] = objective_loss(model, data, hp)
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
    # the preflight parses every file anyway: keep what it read instead of parsing twice
    checked = check_training_data(Path(data_dir), overrides, keep_data=True)
    return train_checked(checked, load_channels(checked), out_dir, seed, show_progress, echo)


def load_channels(checked: TrainingData) -> dict[str, Data]:
    """Each channel's rows as one :class:`Data`, from the files the preflight kept."""
    return {
        name: stack([(f.features, f.labels) for f in files])
        for name, files in checked.channels.items()
    }


def train_checked(
    checked: TrainingData,
    channels: dict[str, Data],
    out_dir: Path,
    seed: int = 0,
    show_progress: bool = True,
    echo=print,
    on_epoch=None,
) -> TrainingRecord:
    """Train on channels already checked and loaded (a tuner loads them once for all its
    trials); ``on_epoch`` as :class:`PackedTrainer` takes it."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    log_lines: list[str] = []

    def log(line: str) -> None:
        log_lines.append(line)
        echo(line)

    log(
        "Reading default configuration and the given hyperparameters: "
        + json.dumps({k: str(v) for k, v in checked.given.items()})
    )
    started = time.perf_counter()
    bar = (lambda **kw: progress(**kw)) if show_progress else None
    trainer = PackedTrainer(
        checked.hyperparameters, seed=seed, log=log, progress=bar, on_epoch=on_epoch
    )
    model = trainer.fit(channels["train"], channels.get("validation"))
    seconds = time.perf_counter() - started
    resolved = trainer.resolved_

    objective = LOSSES[model.loss].objective_name
    results = []
    for channel in ("train", "validation", "test"):
        if channel not in channels:
            continue
        if channel == "train":  # SageMaker reports only the loss on the train channel
            values = {OBJECTIVE_LOSS: objective_loss(model, channels[channel], resolved)}
        else:
            values = evaluate(model, channels[channel], resolved)
        for name, value in values.items():
            if name == OBJECTIVE_LOSS:
                log(lm.quality_line(channel, objective, value, kind="loss"))
            else:
                log(lm.quality_line(channel, name, value, params=model.metrics_params))
        results.append((channel, values))
    model_path = artifact.save(model, out_dir / MODEL_FILE)
    preprocessing = _carry_preprocessing(checked, out_dir)
    record = TrainingRecord(
        model_file=model_path.name,
        model_sha256=file_sha256(model_path),
        seed=seed,
        metrics=Metrics.of(results),
        history=trainer.history_,
        selected_model=trainer.selected_,
        hyperparameters=resolved.to_strings(),
        training_seconds=seconds,
        rows={c: d.n for c, d in channels.items()},
        preprocessing_file=preprocessing.name if preprocessing else None,
        preprocessing_sha256=file_sha256(preprocessing) if preprocessing else None,
        data_manifest_sha256=_manifest_sha256(checked),
    )
    record.write(out_dir)
    (out_dir / LOG_FILE).write_text("\n".join(log_lines) + "\n")
    return record


def _manifest_sha256(checked: TrainingData) -> str | None:
    path = checked.data_dir / MANIFEST_FILE
    return file_sha256(path) if checked.manifest is not None and path.is_file() else None


def preprocessing_source(checked: TrainingData) -> Path | None:
    """The data's ``preprocessing.json``, checked to load (None for channels made by hand): a
    damaged description stops training here, not serving later."""
    manifest = checked.manifest
    if manifest is None or not manifest.preprocessing:
        return None
    source = checked.data_dir / manifest.preprocessing
    try:
        Featurizer.load(source)
    except PreprocessingError as err:
        fix = "run prepare again: it writes the preprocessing beside the channels"
        raise ValidationError([Problem(str(source), str(err), fix)]) from None
    return source


def _carry_preprocessing(checked, out_dir: Path) -> Path | None:
    """The data's ``preprocessing.json``, copied beside the model: what it must be served
    behind (serve, predict and transform find it there). None for channels made by hand."""
    source = preprocessing_source(checked)
    if source is None:
        (out_dir / PREPROCESSING_FILE).unlink(missing_ok=True)  # not a stale one of before
        return None
    return Path(shutil.copyfile(source, out_dir / PREPROCESSING_FILE))
