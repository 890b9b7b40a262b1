"""The Linear Learner container image for a region, from the SageMaker SDK's own table.

``sagemaker.core.image_uris`` reads a JSON table shipped with the SDK (no network call), so
account IDs are never hard-coded here and new regions arrive with SDK upgrades.
"""

from __future__ import annotations

import functools
import re

from stacks.settings import SettingsError

_ECR = re.compile(
    r"^(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.(?P<domain>[a-z.]+)/"
    r"(?P<repository>[^:@]+)[:@].+$"
)


@functools.cache
def linear_learner_image(region: str) -> str:
    """``<account>.dkr.ecr.<region>.amazonaws.com/linear-learner:1`` for ``region``."""
    from sagemaker.core import image_uris

    try:
        return image_uris.retrieve(framework="linear-learner", region=region)
    except ValueError as err:
        raise SettingsError(
            f"Linear Learner has no image in region '{region}' ({err}); pick a region "
            "SageMaker offers built-in algorithms in, or pass -c image_uri=…"
        ) from None


def image_parts(image_uri: str) -> dict:
    """Account, region and repository of an ECR image URI (for least-privilege pulls)."""
    match = _ECR.match(image_uri)
    if not match:
        raise SettingsError(f"image_uri '{image_uri}' is not an ECR image URI")
    return match.groupdict()
