"""The Linear Learner container image for a region, from the SageMaker SDK's own table.

``sagemaker.core.image_uris`` reads a JSON table shipped with the SDK (no network call), so
account IDs are never hard-coded and new regions arrive with SDK upgrades. One lookup for the
training jobs (``training/aws/job.py``) and the CDK app (``stacks/images.py``).
"""

from __future__ import annotations

import functools


@functools.cache
def linear_learner_image(region: str) -> str:
    """``<account>.dkr.ecr.<region>.amazonaws.com/linear-learner:1``; ValueError if none."""
    from sagemaker.core import image_uris

    return image_uris.retrieve(framework="linear-learner", region=region)
