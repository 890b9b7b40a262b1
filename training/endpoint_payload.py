"""How many rows one request to an endpoint may carry: its request *and* its answer must stay
under the endpoint's payload limits, which depend on how it is deployed.

- Real-time: InvokeEndpoint's request and response bodies are at most 6291456 bytes (6 MB)
  each (``training.limits.INVOKE_MAX_BODY``, with its source).
- Serverless: at most 4 MB each way (``training.limits.SERVERLESS_MAX_BODY``).

The answer's size is estimated, not hoped for: the first request carries one row, and its
answer's shape (a score, or one score per class, a label, a class name) bounds every row's
answer with each number at its longest JSON spelling (:func:`answer_row_bound`); the rest go
in requests of as many rows as fit both limits (:meth:`PayloadLimits.rows_per_request`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from training.limits import (
    ANSWER_STRING_BYTES,
    INVOKE_MAX_BODY,
    PAYLOAD_HEADROOM_BYTES,
    SERVERLESS_MAX_BODY,
)

LONGEST_NUMBER = "-1.2345678901234567e-308"  # the longest JSON spelling of a float64 (24 chars)
ANSWER_WRAPPER = len('{"predictions": []}')
ROW_SEPARATOR = len(", ")


@dataclass(frozen=True)
class PayloadLimits:
    """An endpoint's byte limits for one request body and one answer body."""

    mode: str
    request_bytes: int
    response_bytes: int

    @property
    def request_budget(self) -> int:
        """Request bytes our batching may fill (room for the JSON wrapper and rounding)."""
        return self.request_bytes - PAYLOAD_HEADROOM_BYTES

    def rows_per_request(self, answer_row_bytes: int) -> int:
        """The most rows whose answers, each at most ``answer_row_bytes``, fit one answer."""
        budget = self.response_bytes - PAYLOAD_HEADROOM_BYTES - ANSWER_WRAPPER
        return max(1, budget // (answer_row_bytes + ROW_SEPARATOR))


REALTIME = PayloadLimits("realtime", INVOKE_MAX_BODY, INVOKE_MAX_BODY)
SERVERLESS = PayloadLimits("serverless", SERVERLESS_MAX_BODY, SERVERLESS_MAX_BODY)
BY_MODE = {limits.mode: limits for limits in (REALTIME, SERVERLESS)}


def answer_row_bound(prediction) -> int:
    """JSON bytes that any row's answer shaped like ``prediction`` (one row of Linear
    Learner's ``predictions``) can take: every number at its longest spelling, every string
    (a pipeline's ``predicted_class``) at least ANSWER_STRING_BYTES long."""
    return len(json.dumps(_widest(prediction)))


def _widest(value):
    if isinstance(value, dict):
        return {k: _widest(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_widest(v) for v in value]
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, (int, float)):  # a quoted stand-in exactly as long as the number
        return "0" * (len(LONGEST_NUMBER) - 2)
    text = str(value)
    return text + " " * max(0, ANSWER_STRING_BYTES - len(text.encode()))


def endpoint_limits(sess, endpoint: str) -> PayloadLimits:
    """The deployed endpoint's limits, from its endpoint config (a variant with a
    ServerlessConfig is serverless); the stricter serverless ones when they cannot be read
    (a caller allowed InvokeEndpoint alone), which suit a real-time endpoint too."""
    import botocore.exceptions

    sm = sess.client("sagemaker")
    try:
        config = sm.describe_endpoint(EndpointName=endpoint)["EndpointConfigName"]
        variants = sm.describe_endpoint_config(EndpointConfigName=config)["ProductionVariants"]
    except botocore.exceptions.ClientError:
        return SERVERLESS
    return BY_MODE[variants_mode(variants)]


def variants_mode(variants: list[dict]) -> str:
    """An endpoint config's mode as stacks/settings.py names it: "serverless" when a
    production variant has a ServerlessConfig (SageMaker API, ProductionVariant), else
    "realtime"."""
    return "serverless" if any(v.get("ServerlessConfig") for v in variants) else "realtime"


def answer_shape(predictor_type: str, classes=()) -> dict:
    """One row's answer as Linear Learner shapes it (DG "Linear learner response formats",
    LL-in-formats.html: a score, one score per class for multiclass, a predicted_label for
    classifiers), plus the serial pipeline decoder's predicted_class when the classes are
    known; the values do not matter, only the shape."""
    if predictor_type == "regressor":
        return {"score": 0.0}
    score = [0.0] * len(classes) if predictor_type == "multiclass_classifier" else 0.0
    shape = {"score": score, "predicted_label": 0}
    if classes:
        shape["predicted_class"] = max((str(c) for c in classes), key=lambda c: len(c.encode()))
    return shape


def sized_answers(ask, n: int, limits: PayloadLimits, shape: dict | None = None) -> list[dict]:
    """Every row's answer, asked in requests that fit ``limits`` both ways: ``ask(rows,
    most)`` sends the rows of slice ``rows`` in requests of at most ``most`` rows (and
    ``limits.request_budget`` bytes) each and returns their answers. ``shape`` is one row's
    answer known beforehand (:func:`answer_shape`, or the model's own); without it the first
    request is one row, and its answer sizes the rest."""
    if n == 0:
        return []
    if shape is not None:
        return ask(slice(0, n), limits.rows_per_request(answer_row_bound(shape)))
    first = ask(slice(0, 1), 1)
    most = limits.rows_per_request(max(answer_row_bound(a) for a in first))
    return first + (ask(slice(1, n), most) if n > 1 else [])
