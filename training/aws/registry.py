"""SageMaker Model Registry: the base stack's model package group (``<project>-models``), its
versions as :class:`training.core.registry.ModelVersion`, the same records the local registry
keeps.

A version is a model package whose inference specification is what the endpoint stack would
run: Linear Learner alone, or the serial pipeline (featurizer, Linear Learner, decoder: the
same ``pipeline_containers``) when the model has preprocessing. The artifacts are uploaded
content-addressed (an unchanged one is not sent again); the training's metrics go beside them
as the package's ``ModelMetrics.ModelQuality.Statistics``; the artifact's and the data's
SHA-256, the predictor type, the width and the listed metrics are its
``CustomerMetadataProperties``, so ``registry`` lists versions without reading S3.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from training.aws import session as aws
from training.aws.featurizer_code.decode import ANSWERABLE
from training.aws.images import decodes, linear_learner_image, pipeline_containers, sklearn_image
from training.aws.instance_types import DEFAULT as DEFAULT_INSTANCE_TYPE
from training.aws.naming import (
    Container,
    Output,
    Prefix,
    Stack,
    model_package_group_name,
    stack_name,
)
from training.aws.upload import upload_files
from training.checksums import file_sha256
from training.content_types import CSV, JSON, JSONLINES, RECORDIO
from training.core import artifact
from training.core.registry import (
    LISTED_METRICS,
    PENDING,
    ModelVersion,
    approval_description,
    check_preprocessing,
    check_transition,
    find,
)
from training.errors import RegistryError
from training.local.training_record import TrainingRecord

# what a version says it serves and where (the endpoint stack's choices; each in botocore's
# ProductionVariantInstanceType and TransformInstanceType enums: ml.c5.large is real-time only).
# The answer is the last container's: Linear Learner answers JSON, JSON lines or RecordIO, never
# CSV (AWS, "Linear learner response formats", docs.aws.amazon.com/sagemaker/latest/dg/
# LL-in-formats.html); the class decoder, which ends a classifier's pipeline, JSON or JSON lines
# (featurizer_code/decode.py's ANSWERABLE).
LINEAR_LEARNER_ANSWERS = [JSON, JSONLINES, RECORDIO]
DECODER_ANSWERS = list(ANSWERABLE)
REALTIME_TYPES = [DEFAULT_INSTANCE_TYPE, "ml.m5.xlarge", "ml.c5.large", "ml.c5.xlarge"]
TRANSFORM_TYPES = [DEFAULT_INSTANCE_TYPE, "ml.m5.xlarge", "ml.c5.xlarge"]


@dataclass
class AwsRegistry:
    sess: object
    project: str
    group: str
    _client: object = field(default=None, init=False, repr=False)

    @classmethod
    def open(cls, project: str, profile=None, region=None) -> AwsRegistry:
        return cls(aws.session(profile, region), project, model_package_group_name(project))

    @property
    def sm(self):
        if self._client is None:
            self._client = self.sess.client("sagemaker")
        return self._client

    def versions(self) -> list[ModelVersion]:
        """Every version of the group, oldest first."""
        import botocore.exceptions

        arns = []
        pages = self.sm.get_paginator("list_model_packages").paginate(
            ModelPackageGroupName=self.group, SortBy="CreationTime", SortOrder="Ascending"
        )
        try:
            # the group first: what ListModelPackages answers for a missing group is not
            # documented (moto lists nothing)
            self.sm.describe_model_package_group(ModelPackageGroupName=self.group)
            for page in pages:
                arns += [p["ModelPackageArn"] for p in page["ModelPackageSummaryList"]]
        except botocore.exceptions.ClientError as err:
            raise RegistryError(
                f"cannot list model package group {self.group} ({err}): deploy the base "
                "stack first (it owns the group)."
            ) from None
        described = [self.sm.describe_model_package(ModelPackageName=arn) for arn in arns]
        return sorted((self._version(d) for d in described), key=lambda v: v.version)

    def _version(self, d: dict) -> ModelVersion:
        meta = d.get("CustomerMetadataProperties", {})
        containers = d.get("InferenceSpecification", {}).get("Containers", [])
        by_host = {c.get("ContainerHostname"): c for c in containers}
        model = by_host.get(Container.MODEL, containers[0] if containers else {})
        featurizer = by_host.get(Container.FEATURIZE)
        metrics = {k: float(v) for k, v in meta.items() if ":" in k}
        return ModelVersion(
            group=d["ModelPackageGroupName"],
            version=int(d["ModelPackageVersion"]),
            status=d.get("ModelApprovalStatus", PENDING),
            model=model.get("ModelDataUrl", ""),
            model_sha256=meta.get("model_sha256", ""),
            predictor_type=meta.get("predictor_type", ""),
            feature_dim=int(meta.get("feature_dim", 0)),
            created=d["CreationTime"].isoformat(timespec="seconds"),
            created_by=_who(d.get("CreatedBy")),
            preprocessing=featurizer.get("ModelDataUrl") if featurizer else None,
            data_manifest_sha256=meta.get("data_manifest_sha256"),
            metrics=metrics,
            modified=d["LastModifiedTime"].isoformat(timespec="seconds")
            if d.get("LastModifiedTime")
            else None,
            modified_by=_who(d.get("LastModifiedBy")),
            approval_description=d.get("ApprovalDescription"),
            arn=d["ModelPackageArn"],
        )

    def register(self, model: Path, preprocessing: Path | None = None) -> ModelVersion:
        """Upload ``model`` (checked first), its featurizer and metrics; create the version."""
        from training.aws.job import upload_featurizer

        model = Path(model)
        loaded = artifact.load(model)  # not a Linear Learner artifact: ArtifactError here
        if preprocessing is not None:
            check_preprocessing(loaded, preprocessing)
        digest = file_sha256(model)
        record = TrainingRecord.beside(model, digest)
        bucket = aws.stack_outputs(self.sess, stack_name(self.project, Stack.BASE))[Output.BUCKET]
        s3 = aws.s3_client_for(self.sess, bucket)
        key = Prefix.model_key(digest)
        upload_files(s3, bucket, {key: model}, show_progress=False)
        model_url = f"s3://{bucket}/{key}"
        featurizer_url = None
        if preprocessing is not None:
            featurizer_url, _ = upload_featurizer(s3, bucket, preprocessing, show_progress=False)
        return self._create(
            bucket,
            model_url,
            featurizer_url,
            loaded,
            digest,
            record.metrics.flat() if record else {},
            record.data_manifest_sha256 if record else None,
            dict(record.hyperparameters) if record else {},
        )

    def register_trained(self, record) -> ModelVersion:
        """A SageMaker training job's model (its :class:`ModelRecord`), already in S3
        (``train`` / ``tune --target aws --register``): its bytes are read back to check and
        hash them; its metrics are the job's final metrics (SageMaker's names, as ours)."""
        from training.aws.download import fetch
        from training.aws.naming import split_s3_url

        url = record.model_data_url
        data = fetch(url, None, self.sess.region_name, False)
        loaded = artifact.from_bytes(data, url)
        described = self.sm.describe_training_job(TrainingJobName=record.training_job_name)
        metrics = {m["MetricName"]: m["Value"] for m in described.get("FinalMetricDataList", [])}
        return self._create(
            split_s3_url(url)[0],
            url,
            record.featurizer_data_url,
            loaded,
            hashlib.sha256(data).hexdigest(),
            metrics,
            record.data_manifest_sha256,
            described.get("HyperParameters", {}),
        )

    def _create(
        self, bucket, model_url, featurizer_url, loaded, digest, metrics, data_sha, hps=None
    ):
        """Upload the metrics (with the hyperparameters they were trained with) and create
        the version."""
        s3 = aws.s3_client_for(self.sess, bucket)
        metrics_url = None
        if metrics:
            doc = {"metrics": metrics, "hyperparameters": hps or {}}
            body = json.dumps(doc, indent=2, sort_keys=True).encode()
            metrics_key = Prefix.metrics_key(hashlib.sha256(body).hexdigest())
            s3.put_object(Bucket=bucket, Key=metrics_key, Body=body)
            metrics_url = f"s3://{bucket}/{metrics_key}"
        request = package_request(
            self.group,
            linear_learner_image(self.sess.region_name),
            model_url,
            loaded.predictor_type,
            loaded.feature_dim,
            digest,
            featurizer_url=featurizer_url,
            featurizer_image=sklearn_image(self.sess.region_name) if featurizer_url else None,
            metrics=metrics,
            metrics_url=metrics_url,
            data_manifest_sha256=data_sha,
        )
        arn = self.sm.create_model_package(**request)["ModelPackageArn"]
        return self._version(self.sm.describe_model_package(ModelPackageName=arn))

    def set_status(self, number: int, status: str, reason: str | None = None) -> ModelVersion:
        description = approval_description(reason)  # the local registry's text, checked first
        version = find(self.versions(), number)
        check_transition(version, status)
        described = self.sm.describe_model_package(ModelPackageName=version.arn)
        self.sm.update_model_package(
            ModelPackageArn=version.arn,
            ModelApprovalStatus=status,
            **({"ApprovalDescription": description} if description else {}),
            # sent again unchanged: the update keeps them (and moto would drop them)
            **(
                {"CustomerMetadataProperties": described["CustomerMetadataProperties"]}
                if described.get("CustomerMetadataProperties")
                else {}
            ),
        )
        return self._version(self.sm.describe_model_package(ModelPackageName=version.arn))


def package_request(
    group: str,
    image: str,
    model_url: str,
    predictor_type: str,
    feature_dim: int,
    model_sha256: str,
    featurizer_url: str | None = None,
    featurizer_image: str | None = None,
    metrics: dict[str, float] | None = None,
    metrics_url: str | None = None,
    data_manifest_sha256: str | None = None,
) -> dict:
    """The CreateModelPackage request of one version (pure: tested without AWS). Its
    containers are what the endpoint stack runs: the serial pipeline
    (``pipeline_containers``, every container with a hostname) when there is a featurizer,
    else Linear Learner alone."""
    if featurizer_url is not None:
        containers = pipeline_containers(
            featurizer_image, featurizer_url, image, model_url, predictor_type
        )
        content_types = [CSV, JSON, JSONLINES]  # raw rows, as the pipeline endpoint takes
        answers = DECODER_ANSWERS if decodes(predictor_type) else LINEAR_LEARNER_ANSWERS
    else:
        containers = [{"Image": image, "ModelDataUrl": model_url}]
        content_types = [RECORDIO, CSV, JSON, JSONLINES]  # encoded vectors
        answers = LINEAR_LEARNER_ANSWERS
    listed = LISTED_METRICS.get(predictor_type, ())
    metadata = {
        "model_sha256": model_sha256,
        "predictor_type": predictor_type,
        "feature_dim": str(feature_dim),
        **({"data_manifest_sha256": data_manifest_sha256} if data_manifest_sha256 else {}),
        **{name: repr(float((metrics or {})[name])) for name in listed if name in (metrics or {})},
    }
    request = {
        "ModelPackageGroupName": group,
        "ModelPackageDescription": f"Linear Learner {predictor_type}, {feature_dim} features, "
        f"sha256 {model_sha256[:12]}",
        "InferenceSpecification": {
            "Containers": containers,
            "SupportedContentTypes": content_types,
            "SupportedResponseMIMETypes": answers,
            "SupportedRealtimeInferenceInstanceTypes": REALTIME_TYPES,
            "SupportedTransformInstanceTypes": TRANSFORM_TYPES,
        },
        "ModelApprovalStatus": PENDING,
        "CustomerMetadataProperties": metadata,
        # no Tags: a version takes its group's ("you cannot supply a tag argument" with
        # ModelPackageGroupName, botocore's CreateModelPackageInput.Tags)
    }
    if metrics_url:
        request["ModelMetrics"] = {
            "ModelQuality": {"Statistics": {"ContentType": JSON, "S3Uri": metrics_url}}
        }
    return request


def _who(identity: dict | None) -> str | None:
    """SageMaker's UserContext: a Studio user profile, else the IAM identity's ARN."""
    if not identity:
        return None
    return identity.get("UserProfileName") or (identity.get("IamIdentity") or {}).get("Arn")
