"""The images of the stack's region (``training/aws/images.py``'s lookups, with a settings
error naming the fix), and the parts of an image URI for least-privilege pulls."""

from __future__ import annotations

import re

from stacks.settings import SettingsError
from training.aws import images
from training.aws.featurizer_artifact import SKLEARN_VERSION

_ECR = re.compile(
    r"^(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.(?P<domain>[a-z.]+)/"
    r"(?P<repository>[^:@]+)[:@].+$"
)


def linear_learner_image(region: str) -> str:
    """``<account>.dkr.ecr.<region>.amazonaws.com/linear-learner:1`` for ``region``."""
    try:
        return images.linear_learner_image(region)
    except ValueError as err:
        raise SettingsError(
            f"Linear Learner has no image in region '{region}' ({err}); pick a region "
            "SageMaker offers built-in algorithms in, or pass -c image_uri=…"
        ) from None


def sklearn_image(region: str) -> str:
    """SageMaker's scikit-learn image for ``region``: what runs the featurizer (and decoder)
    of a model with preprocessing."""
    try:
        return images.sklearn_image(region)
    except ValueError as err:
        raise SettingsError(
            f"SageMaker's scikit-learn container {SKLEARN_VERSION}, which turns raw rows into "
            f"features for a model with preprocessing, has no image in region '{region}' "
            f"({err}); pick a region it lists (-c region=…), or upgrade sagemaker-core if the "
            "region is newer than its table"
        ) from None


def image_parts(image_uri: str) -> dict:
    """Account, region and repository of an ECR image URI (for least-privilege pulls)."""
    match = _ECR.match(image_uri)
    if not match:
        raise SettingsError(f"image_uri '{image_uri}' is not an ECR image URI")
    return match.groupdict()
