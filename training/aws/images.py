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
import hashlib
import importlib.metadata
import importlib.util
import json
import os
from pathlib import Path

from training.aws.featurizer_artifact import DECODE, FEATURIZE, SKLEARN_VERSION, environment
from training.aws.naming import Container
from training.core.losses import REGRESSOR


@functools.cache
def linear_learner_image(region: str) -> str:
    """``<account>.dkr.ecr.<region>.amazonaws.com/linear-learner:1``; ValueError if none."""
    return _retrieve(framework="linear-learner", region=region)


def _retrieve(**args) -> str:
    """``sagemaker.core.image_uris.retrieve(**args)``, remembered per user (``~/.cache/ll-e2e``)
    under the installed sagemaker-core's version, the bytes of the table it reads (its
    ``image_uri_config/<framework>.json``) and the arguments: importing sagemaker-core takes
    seconds (7 s on the test machine), the lookup itself none, and every ``cdk synth`` (the
    offline main job's too) needs two. An upgrade or an edited table is a new key; a region the
    table lacks raises ValueError and is not remembered."""
    cached = _cache_file(args)
    if cached is not None and cached.is_file():
        return cached.read_text().strip()
    from sagemaker.core import image_uris

    uri = image_uris.retrieve(**args)
    if cached is not None:
        try:
            cached.parent.mkdir(parents=True, exist_ok=True)
            tmp = cached.with_name(f".{cached.name}.{os.getpid()}")
            tmp.write_text(uri)
            tmp.replace(cached)
        except OSError:
            pass  # a read-only home: looked up each time, as without the cache
    return uri


def _cache_file(args: dict) -> Path | None:
    """Where :func:`_retrieve` keeps the answer for ``args`` (None: the table is not where
    sagemaker-core keeps it, so nothing is remembered). Found without importing sagemaker."""
    spec = importlib.util.find_spec("sagemaker")
    if spec is None or not spec.submodule_search_locations:
        return None
    table = Path(spec.submodule_search_locations[0], "core", "image_uri_config")
    table = table / f"{args['framework']}.json"
    try:
        digest = hashlib.sha256(table.read_bytes())
        digest.update(importlib.metadata.version("sagemaker-core").encode())
    except (OSError, importlib.metadata.PackageNotFoundError):
        return None
    digest.update(json.dumps(args, sort_keys=True).encode())
    home = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(home) / "ll-e2e" / "image-uris" / digest.hexdigest()


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
    return _retrieve(framework="sklearn", region=region, version=SKLEARN_VERSION)


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
