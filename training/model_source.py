"""Where a command's model comes from: a ``model.tar.gz`` (a path or ``s3://``), and the fitted
preprocessing it was trained behind.

``train`` writes ``preprocessing.json`` beside ``model.tar.gz``; ``serve``, ``predict``,
``transform`` and ``inspect`` find it there, so the model is served on raw rows with no flag.
``--preprocessing PATH`` points elsewhere (a model in S3, a model copied alone);
``--no-preprocessing`` serves encoded vectors as Linear Learner alone does.
"""

from __future__ import annotations

from pathlib import Path

from training.aws.naming import is_s3_url
from training.core import artifact
from training.core.featurizer import PREPROCESSING_FILE, Featurizer, PreprocessingError
from training.core.inference import InferencePipeline, PipelineMismatchError
from training.core.model import LinearModel
from training.errors import Problem, ValidationError
from training.files import file_problem


def load_model(source: str, profile=None, region=None, show_progress=True) -> LinearModel:
    """A model from a local path or ``s3://…`` (downloaded through the bucket's region)."""
    if is_s3_url(source):
        from training.aws.download import fetch

        return artifact.from_bytes(fetch(source, profile, region, show_progress), source)
    return artifact.load(Path(source))


def preprocessing_path(source: str, given: str | Path | None, use: bool = True) -> Path | None:
    """The preprocessing to serve ``source`` with: ``given``, else ``preprocessing.json``
    beside a local model file, else none."""
    if not use:
        return None
    if given is not None:
        unreadable = file_problem(Path(given), "preprocessing file", "check --preprocessing")
        if unreadable:
            raise ValidationError([unreadable])
        return Path(given)
    if is_s3_url(source):
        return None
    beside = Path(source).parent / PREPROCESSING_FILE
    return beside if beside.is_file() else None


def load_pipeline(
    source: str,
    preprocessing: str | Path | None = None,
    use_preprocessing: bool = True,
    profile=None,
    region=None,
    show_progress=True,
) -> InferencePipeline:
    """The model at ``source`` behind its preprocessing (when there is one and it is wanted)."""
    model = load_model(source, profile, region, show_progress)
    path = preprocessing_path(source, preprocessing, use_preprocessing)
    if path is None:
        return InferencePipeline(model)
    fix = "pass the preprocessing.json prepare wrote for the model's data, or --no-preprocessing"
    try:
        return InferencePipeline(model, Featurizer.load(path))
    except (PreprocessingError, PipelineMismatchError) as err:
        raise ValidationError([Problem(str(path), str(err), fix)]) from None
