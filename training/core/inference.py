"""What an endpoint serves: raw rows -> the fitted preprocessing -> Linear Learner -> class names.

A model trained behind preprocessing (``preprocessing.json`` beside its ``model.tar.gz``) is
served as SageMaker's serial inference pipeline serves it: raw rows in, the featurizer's
features to Linear Learner, answers in Linear Learner's shapes with ``predicted_class`` added
for classifiers. Without preprocessing it is Linear Learner alone: encoded vectors in, class
indices out. The local endpoint, ``predict`` and ``transform`` all go through
:class:`InferencePipeline`, so they answer alike.
"""

from __future__ import annotations

from dataclasses import dataclass

from training.core.featurizer import Featurizer
from training.core.model import LinearModel


class PipelineMismatchError(ValueError):
    """Preprocessing that does not produce the features the model takes."""


@dataclass(frozen=True)
class InferencePipeline:
    model: LinearModel
    featurizer: Featurizer | None = None

    def __post_init__(self):
        f, m = self.featurizer, self.model
        if f is None:
            return
        if f.width != m.feature_dim:
            raise PipelineMismatchError(
                f"the preprocessing makes {f.width} features, the model takes {m.feature_dim}: "
                "pass the preprocessing.json of the data it was trained on"
            )
        if f.predictor_type != m.predictor_type:
            raise PipelineMismatchError(
                f"the preprocessing was fitted for a {f.predictor_type}, the model is a "
                f"{m.predictor_type}"
            )
        if m.num_classes is not None and len(f.classes) != m.num_classes:
            raise PipelineMismatchError(
                f"the preprocessing names {len(f.classes)} classes, the model has {m.num_classes}"
            )

    @property
    def raw_rows(self) -> bool:
        """Whether requests carry raw rows (else encoded vectors)."""
        return self.featurizer is not None

    @property
    def classes(self) -> tuple:
        """The class names answers carry (none without preprocessing, or for a regressor)."""
        return tuple(self.featurizer.classes) if self.featurizer is not None else ()
