"""The training record: what ``train --target local`` writes beside ``model.tar.gz``, in
``metrics.json``.

SageMaker's model artifact has no place for the run's facts: the artifact's SHA-256, the
seed, the metrics, the per-epoch history, which of the packed models was selected and why,
the resolved hyperparameters, the time, the rows per channel, and the preprocessing the model
was trained behind (``preprocessing.json``, copied beside the model). :class:`TrainingRecord` is
that file as one typed object: the trainer writes it; the run report and the CLI read it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from training.core.metrics import Metrics

RECORD_FILE = "metrics.json"


@dataclass(frozen=True)
class SelectedModel:
    """The packed models chosen on the selection data (Linear Learner trains num_models at
    once): the best, with what it was trained with, the models averaged into the export, and
    the threshold calibrated for that average."""

    model: int  # its index among the packed models
    optimizer: str
    learning_rate: float
    wd: float
    l1: float
    epoch: int  # the epoch whose weights were kept (early stopping)
    objective_loss: float
    chosen_on: str  # "validation", or "train_sample" when there is no validation channel
    threshold: float
    # the packed models whose weights the exported model averages, best first; model is the
    # first, and its learning_rate, wd, l1 and epoch are the values above
    averaged_models: tuple[int, ...] = ()

    def to_json(self) -> dict:
        return {
            "model": self.model,
            "optimizer": self.optimizer,
            "learning_rate": self.learning_rate,
            "wd": self.wd,
            "l1": self.l1,
            "epoch": self.epoch,
            f"{self.chosen_on}_objective_loss": self.objective_loss,
            "threshold": self.threshold,
            "averaged_models": list(self.averaged_models),
        }

    @classmethod
    def from_json(cls, doc: dict) -> SelectedModel:
        (key,) = [k for k in doc if k.endswith("_objective_loss")]
        fields = {k: v for k, v in doc.items() if k != key}
        fields["averaged_models"] = tuple(fields.get("averaged_models", ()))
        return cls(**fields, objective_loss=doc[key], chosen_on=key.removesuffix("_objective_loss"))


@dataclass(frozen=True)
class TrainingRecord:
    model_file: str
    model_sha256: str
    seed: int
    metrics: Metrics  # by channel; "<channel>:<SageMaker metric name>" in the file
    history: list[dict] = field(default_factory=list)  # one entry per epoch
    selected_model: SelectedModel | None = None
    hyperparameters: dict[str, str] = field(default_factory=dict)  # resolved, as strings
    training_seconds: float = 0.0
    rows: dict[str, int] = field(default_factory=dict)
    # the fitted preprocessing the model was trained behind, copied beside it (None: the
    # channels were made by hand, and the model takes encoded vectors)
    preprocessing_file: str | None = None
    preprocessing_sha256: str | None = None
    # the data it was trained on: the SHA-256 of prepare's manifest.json (None: no manifest)
    data_manifest_sha256: str | None = None

    def to_json(self) -> dict:
        return {
            "model": {"file": self.model_file, "sha256": self.model_sha256},
            "seed": self.seed,
            "metrics": self.metrics.flat(),
            "history": self.history,
            "selected_model": self.selected_model.to_json() if self.selected_model else None,
            "hyperparameters": self.hyperparameters,
            "training_seconds": self.training_seconds,
            "rows": self.rows,
            "preprocessing": (
                {"file": self.preprocessing_file, "sha256": self.preprocessing_sha256}
                if self.preprocessing_file
                else None
            ),
            "data_manifest_sha256": self.data_manifest_sha256,
        }

    def write(self, directory: Path) -> Path:
        path = Path(directory) / RECORD_FILE
        path.write_text(json.dumps(self.to_json(), indent=2, default=float))
        return path

    @classmethod
    def beside(cls, model: Path, model_sha256: str) -> TrainingRecord | None:
        """The record train wrote beside ``model``, when it is that model's (its SHA-256);
        None when there is none or it belongs to another model."""
        path = Path(model).parent / RECORD_FILE
        record = cls.load(path) if path.is_file() else None
        return record if record is not None and record.model_sha256 == model_sha256 else None

    @classmethod
    def load(cls, path: Path) -> TrainingRecord:
        """The record at ``path`` (a metrics.json, or the folder holding one)."""
        path = Path(path)
        doc = json.loads((path / RECORD_FILE if path.is_dir() else path).read_text())
        selected = doc.get("selected_model")
        return cls(
            model_file=doc["model"]["file"],
            model_sha256=doc["model"]["sha256"],
            seed=doc["seed"],
            metrics=Metrics.from_flat(doc["metrics"]),
            history=doc["history"],
            selected_model=SelectedModel.from_json(selected) if selected else None,
            hyperparameters=doc["hyperparameters"],
            training_seconds=doc["training_seconds"],
            rows=doc["rows"],
            preprocessing_file=(doc.get("preprocessing") or {}).get("file"),
            preprocessing_sha256=(doc.get("preprocessing") or {}).get("sha256"),
            data_manifest_sha256=doc.get("data_manifest_sha256"),
        )
