"""``models/latest.json``: the model the endpoint stack serves, and where it came from.

``train --target aws`` writes it when its job completes; ``deploy --model`` writes it for a
model made elsewhere; the CDK app (``stacks/settings.py``) reads it to build the endpoint (a
serial inference pipeline on raw rows when it names a featurizer) and the run report reads the
hyperparameters the job trained with. :class:`ModelRecord` is its one
definition (the local trainer's record is :mod:`training.local.training_record`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from pathlib import Path

from training.errors import ModelRecordError

RECORD_FILE = "models/latest.json"  # relative to the project folder, where the CDK app runs


def default_path() -> Path:
    """Where commands write the record by default: in the project they run in (the CDK app
    there reads it), never beside the installed package."""
    from training import project

    return project.root(f"the model record ({RECORD_FILE})") / RECORD_FILE


@dataclass(frozen=True)
class ModelRecord:
    model_data_url: str | None  # s3://…/model.tar.gz; None while a job started without waiting
    region: str | None = None  # where the artifact is (the endpoint must be there too)
    image_uri: str | None = None  # the Linear Learner image it runs on
    bucket: str | None = None
    # the model's fitted preprocessing as the serial pipeline's scikit-learn containers read
    # it (s3://…/featurizer.tar.gz): the endpoint then takes raw rows; None: encoded vectors
    featurizer_data_url: str | None = None
    # decides whether the pipeline ends in the class decoder (regressors do not)
    predictor_type: str | None = None
    # trained on SageMaker (train --target aws)
    training_job_name: str | None = None
    # the tuning job that chose it (tune --target aws): training_job_name is its best job
    tuning_job_name: str | None = None
    # the registry version it is (deploy --approved): the endpoint's Model runs that package
    model_package_arn: str | None = None
    hyperparameters: dict | None = None
    data_manifest_sha256: str | None = None
    started: str | None = None
    # a model made elsewhere (deploy --model)
    source: str | None = None
    sha256: str | None = None
    feature_dim: int | None = None
    recorded: str | None = None

    def to_json(self) -> dict:
        return {
            f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None
        }

    def write(self, path: Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_json(), indent=2))
        return path

    @classmethod
    def load(cls, path: Path) -> ModelRecord:
        try:
            doc = json.loads(Path(path).read_text())
            known = {f.name for f in fields(cls)}
            unknown = sorted(set(doc) - known)
            if unknown:
                raise KeyError(f"unknown fields {', '.join(unknown)}")
            return cls(**doc)
        except (OSError, json.JSONDecodeError, KeyError, TypeError, AttributeError) as err:
            raise ModelRecordError(f"{path} is not a model record ({err})") from None
