"""The container images for a region, from the SageMaker SDK's own table, and the containers of
the serial inference pipeline that serves raw rows.

``sagemaker.core.image_uris`` reads a JSON table shipped with the SDK (no network call), so
account IDs are never hard-coded and new regions arrive with SDK upgrades. One lookup for the
training jobs (``training/aws/job.py``), batch transform and the CDK app (``stacks/images.py``);
one description of the pipeline's containers for the endpoint stack's Model and a batch
transform job's own Model (``training/aws/batch_transform.py``).
"""

from __future__ import annotations

import functools

from training.aws.featurizer_artifact import DECODE, FEATURIZE, SKLEARN_VERSION, environment
from training.aws.naming import Container
from training.core.losses import REGRESSOR


@functools.cache
def linear_learner_image(region: str) -> str:
    """``<account>.dkr.ecr.<region>.amazonaws.com/linear-learner:1``; ValueError if none."""
    from sagemaker.core import image_uris

    return image_uris.retrieve(framework="linear-learner", region=region)


@functools.cache
def sklearn_image(region: str) -> str:
    """SageMaker's scikit-learn image (framework version ``SKLEARN_VERSION``) that runs the
    pipeline's featurizer and decoder: ``<account>.dkr.ecr.<region>.amazonaws.com/
    sagemaker-scikit-learn:1.2-1-cpu-py3``; ValueError if the region has none.

    No ``instance_type`` on purpose: a Graviton type (ml.c6g, ml.m6g, …) makes ``retrieve``
    switch to its ``inference_graviton`` scope and silently return that scope's only version,
    1.0-1 (arm64), whatever version was asked for (sagemaker-core 2.27 ``image_uris``
    ``_validate_version_and_set_if_needed``). With no scope given, scikit-learn defaults to the
    "training" scope, whose image is the same one that serves (its Dockerfile sets
    ``SAGEMAKER_SERVING_MODULE``; ``_get_final_image_scope``: "Training and inference configs
    for XGB/SKLearn are identical")."""
    from sagemaker.core import image_uris

    return image_uris.retrieve(framework="sklearn", region=region, version=SKLEARN_VERSION)


def decodes(predictor_type: str | None) -> bool:
    """Whether the pipeline ends in the decoder: for classifiers (Linear Learner answers class
    indices; only a step after it can name the class), and when the predictor type is unknown
    (a model made elsewhere, deployed by URL without ``predictor_type``): the decoder passes a
    regressor's answer through (no classes to add; in JSON or JSON lines only), so keeping it
    costs one more container's memory and hop, while leaving it out of a classifier would lose
    the class names."""
    return predictor_type != REGRESSOR


def pipeline_containers(
    featurizer_image: str,
    featurizer_url: str,
    model_image: str,
    model_url: str,
    predictor_type: str | None,
) -> list[dict]:
    """The serial inference pipeline's containers, in order, as CreateModel's ``Containers``
    (CloudFormation's ContainerDefinition has the same keys): the scikit-learn image on
    ``featurizer.tar.gz`` running ``featurize.py``, Linear Learner on the model artifact, and
    (:func:`decodes`) the scikit-learn image again on ``featurizer.tar.gz`` running
    ``decode.py``.

    Each container gets a ContainerHostname: SageMaker requires one on every container of a
    pipeline or on none (botocore ``ContainerDefinition.ContainerHostname``; the CloudFormation
    schema says the same), and names the container's log stream and a failing container by it
    (DG inference-pipeline-troubleshoot); the names are :class:`Container`'s. The endpoint
    stack's Model and a batch transform job's Model are built from this one list, so both run
    the same pipeline (pure: tested without AWS)."""
    containers = [
        {
            "ContainerHostname": Container.FEATURIZE,
            "Image": featurizer_image,
            "ModelDataUrl": featurizer_url,
            "Environment": environment(FEATURIZE),
        },
        {"ContainerHostname": Container.MODEL, "Image": model_image, "ModelDataUrl": model_url},
    ]
    if decodes(predictor_type):
        containers.append(
            {
                "ContainerHostname": Container.DECODE,
                "Image": featurizer_image,
                "ModelDataUrl": featurizer_url,
                "Environment": environment(DECODE),
            }
        )
    return containers
