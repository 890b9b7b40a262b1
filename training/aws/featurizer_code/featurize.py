"""The serial inference pipeline's first container: raw rows -> Linear Learner's features.

SageMaker's scikit-learn container runs it (``SAGEMAKER_PROGRAM=featurize.py``, code under
``/opt/ml/model/code``), calling ``model_fn(model_dir)``, then per request
``input_fn(body, content_type)``, ``predict_fn(data, model)`` and ``output_fn(prediction,
accept)``. The model is the fitted preprocessing (``/opt/ml/model/preprocessing.json``, plain
JSON: no pickle to outlive the scikit-learn that wrote it); the rows become float32
RecordIO-protobuf records for Linear Learner, the next container: exact, and a quarter the size
of JSON (containers pass at most 5 MB to each other). Encoded vectors (RecordIO) pass through
unchanged. A row the model cannot read gets 400 with a message naming the row and the column:
the serving stack answers 500 for any exception, so a refusal is returned, not raised.

Numpy and the standard library only, and Python 3.8+, as the container has.
"""

from __future__ import annotations

import json
import os

try:  # in the container: code/featurizer.py, beside this file
    import featurizer
except ImportError:  # in the repository
    from training.core import featurizer


class Refusal:
    """A request the featurizer refuses: its HTTP status and what to fix."""

    def __init__(self, status: int, message: str):
        self.status, self.message = status, message


def model_fn(model_dir: str):
    return featurizer.Featurizer.load(os.path.join(model_dir, featurizer.PREPROCESSING_FILE))


def input_fn(input_data, content_type: str):
    return input_data, content_type  # parsed in predict_fn, where the columns are known


def predict_fn(data, model):
    body, content_type = data
    try:
        X = model.features_from_request(body, content_type)
    except featurizer.UnsupportedContentTypeError as err:
        return Refusal(415, str(err))
    except featurizer.RowError as err:
        return Refusal(400, str(err))
    if X is None:  # encoded vectors, for Linear Learner as they are
        return body if isinstance(body, bytes) else body.encode("utf-8")
    return featurizer.recordio_rows(X)


def output_fn(prediction, accept: str):
    if isinstance(prediction, Refusal):
        return refusal_response(prediction)
    return prediction, featurizer.RECORDIO


def refusal_response(refusal: Refusal):
    """The refusal as the container's response: a status the client sees (SageMaker wraps it
    as ModelError, OriginalStatusCode, OriginalMessage)."""
    from sagemaker_containers.beta.framework import worker

    body = json.dumps({"message": refusal.message})
    return worker.Response(response=body, status=refusal.status, mimetype="application/json")
