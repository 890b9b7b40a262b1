"""``transform --target aws``: a SageMaker Batch Transform job on the deployed model.

Scores whole files from S3 on instances that exist only while the job runs: no endpoint is
needed or left behind. Local input is uploaded to ``transform/<job>/input/``, the answers land
in ``transform/<job>/output/<file>.out`` (or a given ``s3://`` prefix), encrypted with the
project key, and are downloaded in input order when ``--out`` is a folder. The job carries the
project tag and a name of the project's (``<project>-transform-<UTC stamp>``), so ``audit``
and ``destroy-all`` find (and stop) it and nothing of another project.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from training.aws import session as aws
from training.aws.download import split_s3_url
from training.aws.instance_types import DEFAULT as DEFAULT_INSTANCE_TYPE
from training.aws.instance_types import accepts_volume_key
from training.aws.naming import (
    DEFAULT_PROJECT,
    TAG_KEY,
    LogGroup,
    Output,
    Prefix,
    Stack,
    endpoint_name,
    is_s3_url,
    stack_name,
    stamp,
    transform_job_name,
)
from training.aws.upload import upload_files
from training.batch_transform import TransformConfig, input_files
from training.errors import Problem, TransformFailedError, ValidationError, known_fix
from training.progress import progress

KNOWN_FAILURES = [
    (
        r"[Ff]eature.?dim|number of features|shape",
        "the rows' width must be the model's "
        "feature_dim: python -m training validate --feature-dim N checks it",
    ),
    (
        r"ClientError: 4\d\d|Bad Request|[Ii]nvalid (csv|record)",
        "the container refused a batch: run transform --target local on a sample to see which row",
    ),
    (
        r"AccessDenied|not authorized",
        "the model's execution role must read transform/ and the "
        "project key: redeploy the base stack (cdk deploy) to get its transform/ permissions",
    ),
]


@dataclass(frozen=True)
class TransformResult:
    """A finished batch transform job: its name, status, where its answers are, and the
    files they were downloaded to (for a local ``--out``)."""

    name: str
    status: str
    output: str
    downloaded: list[Path] = field(default_factory=list)


@dataclass(frozen=True)
class AwsTransform:
    """Where and on what the job runs."""

    project: str = DEFAULT_PROJECT
    instance_type: str = DEFAULT_INSTANCE_TYPE
    instance_count: int = 1
    profile: str | None = None
    region: str | None = None
    model_name: str | None = None  # default: the model the project's endpoint serves
    # or an artifact (a local model.tar.gz, or one under the project bucket's models/): a
    # Model is made for the job and deleted when the job ends
    model_path: str | None = None
    poll_s: float = 15.0


def deployed_model(sm, project: str) -> str:
    """The SageMaker Model behind the project's endpoint (CloudFormation names it)."""
    import botocore.exceptions

    endpoint = endpoint_name(project)
    try:
        config = sm.describe_endpoint(EndpointName=endpoint)["EndpointConfigName"]
        variants = sm.describe_endpoint_config(EndpointConfigName=config)["ProductionVariants"]
    except botocore.exceptions.ClientError as err:
        raise ValidationError(
            [
                Problem(
                    f"endpoint {endpoint}",
                    f"no deployed model to transform with ({err.response['Error']['Message']})",
                    "deploy one first: python -m training deploy-all, or deploy --model FILE",
                )
            ]
        ) from None
    return variants[0]["ModelName"]


def transform_request(
    config: TransformConfig,
    where: AwsTransform,
    name: str,
    model: str,
    input_uri: str,
    output_uri: str,
    key_arn: str | None,
) -> dict:
    """The CreateTransformJob request (pure: tested without AWS)."""
    output = {
        "S3OutputPath": output_uri,
        "Accept": config.accept,
        "AssembleWith": config.assemble_with(),
    }
    resources = {"InstanceType": where.instance_type, "InstanceCount": where.instance_count}
    if key_arn:
        output["KmsKeyId"] = key_arn
        if accepts_volume_key(where.instance_type):
            resources["VolumeKmsKeyId"] = key_arn
    return {
        "TransformJobName": name,
        "ModelName": model,
        "BatchStrategy": "MultiRecord",
        # the API takes whole MB (0 would mean "no limit" to some containers, not to LL)
        "MaxPayloadInMB": max(1, int(config.max_payload_mb)),
        "TransformInput": {
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": input_uri}},
            "ContentType": config.content_type,
            "SplitType": config.split_type(),
            "CompressionType": "None",
        },
        "TransformOutput": output,
        "TransformResources": resources,
        "Tags": [{"Key": TAG_KEY, "Value": where.project}],
    }


def transform_aws(config: TransformConfig, where: AwsTransform, echo=print) -> TransformResult:
    """Run the job, wait for it with status lines, and fetch the answers to a local ``out``."""
    config.check()
    files = [] if is_s3_url(config.input) else input_files(config.input)
    sess = aws.session(where.profile, where.region)
    sm = sess.client("sagemaker")
    outputs = aws.stack_outputs(sess, stack_name(where.project, Stack.BASE))
    bucket = outputs[Output.BUCKET]
    name = transform_job_name(where.project, stamp())
    made = None
    if where.model_path:
        model = made = _model_from_artifact(sess, sm, where, outputs, name, config.show_progress)
        echo(f"model {model} made for this job from {where.model_path}")
    else:
        model = where.model_name or deployed_model(sm, where.project)
    try:
        s3 = aws.s3_client_for(sess, bucket)
        if files:
            prefix = Prefix.transform_input(name)
            upload = {f"{prefix}/{f.name}": f for f in files}
            upload_files(s3, bucket, upload, config.show_progress)
            input_uri = f"s3://{bucket}/{prefix}/"
        else:
            input_uri = config.input
        output_uri = (
            config.out
            if is_s3_url(config.out)
            else f"s3://{bucket}/{Prefix.transform_output(name)}"
        )
        request = transform_request(
            config, where, name, model, input_uri, output_uri, outputs.get(Output.KEY)
        )
        sm.create_transform_job(**request)
        echo(
            f"transform job {name} started ({where.instance_count} x {where.instance_type}, "
            f"model {model})"
        )
        described = wait_for_transform(sm, name, where.poll_s, echo)
    except KeyboardInterrupt:
        raise  # the job may still run on its model: both are tagged, and audit lists them
    except BaseException:
        if made:
            sm.delete_model(ModelName=made)
        raise
    if made:  # the job has ended: its model is no longer needed
        sm.delete_model(ModelName=made)
    status = described["TransformJobStatus"]
    if status != "Completed":
        reason = described.get("FailureReason", "(no reason given)")
        raise TransformFailedError(
            [Problem(f"transform job {name}", f"{status}: {reason}", explain_failure(reason))]
        )
    downloaded = []
    if not is_s3_url(config.out):
        names = [f.name for f in files] if files else None
        downloaded = download_outputs(
            sess, output_uri, Path(config.out), names, config.show_progress
        )
    return TransformResult(name, status, output_uri, downloaded)


def _model_from_artifact(sess, sm, where: AwsTransform, outputs: dict, name: str, show) -> str:
    """A Model for the job from an artifact: a local file is checked and uploaded
    content-addressed (as ``deploy --model`` does); an S3 one must be in the project
    bucket's models/, which the execution role may read."""
    from training.aws.images import linear_learner_image
    from training.checksums import file_sha256
    from training.core import artifact

    bucket = outputs[Output.BUCKET]
    if is_s3_url(where.model_path):
        got_bucket, key = split_s3_url(where.model_path)
        if got_bucket != bucket or not key.startswith(Prefix.MODELS):
            raise ValidationError(
                [
                    Problem(
                        where.model_path,
                        f"the execution role reads artifacts under s3://{bucket}/models/ only",
                        "pass the local file (it is uploaded there), or copy it there first",
                    )
                ]
            )
        url = where.model_path
    else:
        path = Path(where.model_path)
        artifact.load(path)  # a foreign or damaged file stops here, before any upload
        key = Prefix.model_key(file_sha256(path))
        upload_files(aws.s3_client_for(sess, bucket), bucket, {key: path}, show)
        url = f"s3://{bucket}/{key}"
    sm.create_model(
        **model_request(
            name, outputs[Output.ROLE], linear_learner_image(sess.region_name), url, where.project
        )
    )
    return name


def model_request(name: str, role_arn: str, image: str, url: str, project: str) -> dict:
    """CreateModel for a job's own model: as the endpoint stack's (network-isolated, run as
    the execution role), named after the job and tagged, so audit knows it (pure)."""
    return {
        "ModelName": name,
        "ExecutionRoleArn": role_arn,
        "PrimaryContainer": {"Image": image, "ModelDataUrl": url},
        "EnableNetworkIsolation": True,
        "Tags": [{"Key": TAG_KEY, "Value": project}],
    }


def explain_failure(reason: str) -> str:
    return known_fix(reason, KNOWN_FAILURES, f"see the job's log ({LogGroup.TRANSFORM_JOBS})")


def wait_for_transform(sm, name: str, poll_s: float, echo) -> dict:
    """Poll until the job ends, echoing each status change with the time since the start."""
    return aws.wait_for(
        lambda: sm.describe_transform_job(TransformJobName=name),
        "TransformJobStatus",
        name,
        poll_s,
        echo,
    )


def download_outputs(
    sess, output_uri: str, out: Path, names: list[str] | None, show_progress: bool = True
) -> list[Path]:
    """``<name>.out`` of each input, in input order (all ``.out`` objects, sorted, when the
    input was an S3 prefix). A missing output is an error, not a silently shorter result."""
    bucket, prefix = split_s3_url(output_uri)
    prefix = prefix.rstrip("/") + "/" if prefix else ""
    s3 = aws.s3_client_for(sess, bucket)
    if names is None:
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        keys = sorted(
            o["Key"]
            for page in pages
            for o in page.get("Contents", [])
            if o["Key"].endswith(".out")
        )
    else:
        keys = [f"{prefix}{n}.out" for n in names]
    sizes = {}
    for key in keys:
        try:
            sizes[key] = s3.head_object(Bucket=bucket, Key=key)["ContentLength"]
        except s3.exceptions.ClientError:
            raise ValidationError(
                [
                    Problem(
                        f"s3://{bucket}/{key}",
                        "the job completed but wrote no output for this input",
                        f"see the job's log ({LogGroup.TRANSFORM_JOBS})",
                    )
                ]
            ) from None
    out.mkdir(parents=True, exist_ok=True)
    bar = progress(total=sum(sizes.values()), desc="download", unit="B", enabled=show_progress)
    written = []
    try:
        for key in keys:
            target = out / key.rsplit("/", 1)[-1]
            tmp = target.with_name(f".{target.name}.part")
            s3.download_file(bucket, key, str(tmp), Callback=bar.update)
            tmp.replace(target)
            written.append(target)
    finally:
        bar.close()
    return written
