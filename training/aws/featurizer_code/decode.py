"""The serial inference pipeline's last container (classifiers): Linear Learner's answer with
each predicted label's class as the data spelled it (``predicted_class``).

Linear Learner answers class indices; only a step after it can name the class. SageMaker's
scikit-learn container runs this (``SAGEMAKER_PROGRAM=decode.py``) on the same
``featurizer.tar.gz``: the classes come from ``preprocessing.json``. It gets Linear Learner's
JSON and the client's Accept (the last container's), and answers JSON or JSON lines in Linear
Learner's shapes plus ``predicted_class``.

Numpy and the standard library only, and Python 3.8+, as the container has.
"""

from __future__ import annotations

import json
import os

try:  # in the container: code/featurizer.py and code/featurize.py, beside this file
    import featurizer
    from featurize import Refusal, refusal_response
except ImportError:  # in the repository
    from training.aws.featurizer_code.featurize import Refusal, refusal_response
    from training.core import featurizer

ANSWERABLE = (featurizer.JSON, featurizer.JSONLINES)


def model_fn(model_dir: str):
    return featurizer.Featurizer.load(os.path.join(model_dir, featurizer.PREPROCESSING_FILE))


def input_fn(input_data, content_type: str):
    if featurizer.media_type(content_type) != featurizer.JSON:
        return Refusal(415, f"expected Linear Learner's JSON answer, got {content_type}")
    try:
        return json.loads(input_data)["predictions"]
    except (ValueError, KeyError, TypeError) as err:
        return Refusal(502, f"Linear Learner's answer is not its JSON ({err})")


def predict_fn(rows, model):
    if isinstance(rows, Refusal):
        return rows
    return featurizer.with_classes(rows, model.classes)


def output_fn(prediction, accept: str):
    if isinstance(prediction, Refusal):
        return refusal_response(prediction)
    media = featurizer.negotiate(accept, ANSWERABLE)
    if media is None:
        return refusal_response(
            Refusal(406, f"cannot answer in '{accept}': accept one of {', '.join(ANSWERABLE)}")
        )
    return featurizer.render(prediction, media), media
