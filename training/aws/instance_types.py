"""What a SageMaker instance type allows, for the CDK app and the training job alike.

Dependency-free: ``stacks/`` imports it too, so the endpoint config and the training job agree.
"""

from __future__ import annotations

import re

# what training jobs, transform jobs and the endpoint run on unless told otherwise
DEFAULT = "ml.m5.large"

# Instance families with local NVMe instance storage reject a KMS key for the storage volume
# (CreateEndpointConfig: "If you specify a value for KmsKeyId when using any nitro-based
# instances with local storage, the call to CreateEndpointConfig fails"; CreateTrainingJob's
# VolumeKmsKeyId says the same of instance types with local storage).
_LOCAL_STORAGE = re.compile(r"^ml\.([a-z]+\d+[a-z]*d[a-z]*|g5|g6|g6e|p4d|p4de|p5|p5e|trn1)\.")


def accepts_volume_key(instance_type: str) -> bool:
    """False for types with local NVMe storage, which SageMaker encrypts itself."""
    return not _LOCAL_STORAGE.match(instance_type)
