"""The manifest ``prepare`` writes beside the channels, and every later stage reads.

``manifest.json`` says what the channels hold: the source file and its checksum, the label
and its class mapping, the feature names, each input column's role, each channel's files,
rows and content type, the split and seed, the fit sample, the hyperparameters the data
implies (predictor_type, feature_dim, num_classes), and the files beside it: the fitted
preprocessing (portable ``preprocessing.json``, scikit-learn's ``preprocessor.joblib``) and
the test split's raw rows. :class:`Manifest` is that file as one typed
object: ``prepare`` builds it; ``train`` (local and on SageMaker), the run report and
``inspect`` read it with :meth:`Manifest.read`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from training.core.losses import BINARY
from training.errors import Problem, ValidationError

MANIFEST_FILE = "manifest.json"
FORMAT_VERSION = 1
CHANNELS = ("train", "validation", "test")  # the channels prepare writes, in split order


@dataclass(frozen=True)
class Source:
    """The raw CSV the channels came from."""

    path: str
    sha256: str
    rows: int
    unlabeled_rows_dropped: int


@dataclass(frozen=True)
class Label:
    """The label column and, for classifiers, its values in encoded order (index = class)."""

    column: str
    predictor_type: str
    classes: list = field(default_factory=list)

    @property
    def positive_class(self):
        """The value encoded as 1 (binary classifiers)."""
        return self.classes[1] if self.predictor_type == BINARY else None

    def to_json(self) -> dict:
        out = {"column": self.column, "predictor_type": self.predictor_type}
        if self.classes:
            out["classes"] = list(self.classes)
            if self.predictor_type == BINARY:
                out["positive_class"] = self.positive_class
        return out


@dataclass(frozen=True)
class Channel:
    """One written channel: its files (in its folder), rows, bytes and content type, and for
    classifiers its rows per label in encoded order (absent in manifests before it was kept)."""

    rows: int
    content_type: str
    files: list[str]
    bytes: int
    label_counts: list[int] | None = None


@dataclass(frozen=True)
class InputColumns:
    """What each raw column became: numeric or categorical input, or dropped (and why)."""

    numeric: list[str]
    categorical: list[str]
    dropped: dict[str, str]


@dataclass(frozen=True)
class FitSample:
    """The rows the preprocessor was fitted on: a uniform sample of the train split."""

    rows: int
    bounded: bool  # fewer than the train split
    train_rows: int


@dataclass(frozen=True)
class Manifest:
    source: Source
    label: Label
    feature_names: list[str]
    input_columns: InputColumns
    format: str  # "recordio" or "csv"
    channels: dict[str, Channel]
    split: dict[str, float]
    seed: int
    fit_sample: FitSample
    preprocessor: str  # the persisted scikit-learn transformer's file name
    hyperparameters: dict  # what the data implies: predictor_type, feature_dim, num_classes
    format_version: int = FORMAT_VERSION
    preprocessing: str | None = None  # the portable description (preprocessing.json)
    test_rows: str | None = None  # the test split's raw rows, in the test channel's order

    @property
    def feature_dim(self) -> int:
        return len(self.feature_names)

    def to_json(self) -> dict:
        return {
            "format_version": self.format_version,
            "source": vars(self.source),
            "label": self.label.to_json(),
            "feature_dim": self.feature_dim,
            "feature_names": list(self.feature_names),
            "input_columns": vars(self.input_columns),
            "format": self.format,
            "channels": {
                name: {k: v for k, v in vars(c).items() if v is not None}
                for name, c in self.channels.items()
            },
            "split": dict(self.split),
            "seed": self.seed,
            "fit_sample": vars(self.fit_sample),
            "preprocessor": self.preprocessor,
            "preprocessing": self.preprocessing,
            "test_rows": self.test_rows,
            "hyperparameters": dict(self.hyperparameters),
        }

    def write(self, directory: Path) -> Path:
        path = Path(directory) / MANIFEST_FILE
        path.write_text(json.dumps(self.to_json(), indent=2, default=str))
        return path

    @classmethod
    def from_json(cls, doc: dict) -> Manifest:
        label = doc["label"]
        return cls(
            source=Source(**doc["source"]),
            label=Label(label["column"], label["predictor_type"], list(label.get("classes", []))),
            feature_names=list(doc["feature_names"]),
            input_columns=InputColumns(**doc["input_columns"]),
            format=doc["format"],
            channels={name: Channel(**c) for name, c in doc["channels"].items()},
            split=dict(doc["split"]),
            seed=doc["seed"],
            fit_sample=FitSample(**doc["fit_sample"]),
            preprocessor=doc["preprocessor"],
            hyperparameters=dict(doc["hyperparameters"]),
            format_version=doc["format_version"],
            preprocessing=doc.get("preprocessing"),
            test_rows=doc.get("test_rows"),
        )

    @classmethod
    def load(cls, path: Path) -> Manifest:
        """The manifest at ``path`` (a manifest.json, or the folder holding one)."""
        path = Path(path)
        path = path / MANIFEST_FILE if path.is_dir() else path
        try:
            doc = json.loads(path.read_text())
            if doc.get("format_version") != FORMAT_VERSION:
                raise ValueError(f"format_version {doc.get('format_version')!r}")
            return cls.from_json(doc)
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
            raise ValidationError(
                [
                    Problem(
                        str(path),
                        f"not a manifest written by prepare ({type(err).__name__}: {err})",
                        "pass the folder (or manifest.json) that `python -m training prepare` "
                        "wrote; rerun prepare if it came from another version",
                    )
                ]
            ) from None

    @classmethod
    def read(cls, directory: Path) -> Manifest | None:
        """The manifest in ``directory``, or None for channels made by hand (no manifest)."""
        path = Path(directory) / MANIFEST_FILE
        return cls.load(path) if path.exists() else None
