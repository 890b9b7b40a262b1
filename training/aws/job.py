"""``train --target aws``: the SageMaker Linear Learner training job, checked before it bills.

The same hyperparameter table and channel preflight as the local trainer run first; a bad
value fails here, before any upload or job. The job uses the region's Linear Learner image
from ``sagemaker.core.image_uris``, exact channel content types, and ShardedByS3Key for the
train channel when more than one instance trains. Waiting shows the status and streams the
job's log lines; a failure shows SageMaker's FailureReason and, for the known causes, the fix.
The artifact is recorded where the endpoint stack reads it (``models/latest.json``), with its
predictor type and, when ``prepare`` fitted the data's preprocessing, the featurizer artifact
built from it (``featurizer.tar.gz``, content-addressed): the endpoint stack then serves the
model on raw rows, as a serial inference pipeline.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path

from training.aws import featurizer_artifact
from training.aws import session as aws
from training.aws.images import linear_learner_image
from training.aws.instance_types import DEFAULT as DEFAULT_INSTANCE_TYPE
from training.aws.instance_types import accepts_volume_key
from training.aws.model_record import ModelRecord, default_path
from training.aws.naming import (
    DEFAULT_PROJECT,
    TAG_KEY,
    LogGroup,
    Output,
    Prefix,
    Stack,
    stack_name,
    stamp,
    training_job_name,
)
from training.aws.upload import upload_files
from training.checksums import file_sha256
from training.core.featurizer import Featurizer, PreprocessingError
from training.data.channel_checks import TrainingData, check_training_data
from training.data.channels import sharded_manifest
from training.data.manifest import MANIFEST_FILE
from training.errors import (
    NOTHING_STARTED,
    JobFailedError,
    Problem,
    UserError,
    ValidationError,
    known_fix,
)

# FailureReason patterns of known user mistakes -> the fix in plain words.
KNOWN_FAILURES = [
    (
        r"different fields than the expected size",
        "the CSV rows do not have label + feature_dim fields: a header row, an index column "
        "from to_csv(index=True), the label not in the first column, or feature_dim not equal "
        "to the feature count. `python -m training validate` finds which.",
    ),
    (
        r"No iterator has been registered for ContentType",
        "the channel ContentType must be exactly 'text/csv' or 'application/x-recordio-protobuf'.",
    ),
    (
        r"(Float64Tensor|Int32Tensor|float32|Float32)",
        "RecordIO tensors must be Float32: write .astype('float32') features and labels "
        "(python -m training prepare does).",
    ),
    (
        r"(feature_dim|predictor_type)",
        "set predictor_type and feature_dim (python -m training prepare puts both in the "
        "manifest this command reads).",
    ),
    (r"Unable to parse csv", "a CSV cell is not a number: encode categoricals and strings first."),
]


@dataclass
class AwsTrainConfig:
    data_dir: Path
    bucket: str | None = None
    role_arn: str | None = None
    project: str = DEFAULT_PROJECT
    instance_type: str = DEFAULT_INSTANCE_TYPE
    instance_count: int = 1
    volume_gb: int = 10
    max_runtime_s: int = 3600
    hyperparameters: dict = field(default_factory=dict)
    profile: str | None = None
    region: str | None = None
    wait: bool = True
    poll_s: float = 15.0
    record: Path | None = None  # unset: the project's models/latest.json
    show_progress: bool = True
    job_name: str | None = None
    # the region's Linear Learner image; None looks it up in sagemaker-core's offline table
    # (the notebook instance passes the one its stack was built with: no sagemaker-core there)
    image_uri: str | None = None
    # the project key for the job's output and volume; None takes the base stack's KeyArn
    # when the stack is read for the bucket or role (given both, none unless given here)
    kms_key_arn: str | None = None
    # record the data's preprocessing (the manifest's preprocessing.json) as the featurizer
    # the endpoint serves raw rows with; False: the endpoint takes encoded features
    use_preprocessing: bool = True


def upload_featurizer(
    s3, bucket: str, preprocessing: Path, show_progress: bool = True
) -> tuple[str, bool]:
    """``featurizer.tar.gz`` of ``preprocessing`` in the project bucket under its SHA-256
    (``Prefix.featurizer_key``: the same preprocessing always lands on the same key, and an
    unchanged one is not sent again); returns its ``s3://`` URL and whether it was sent."""
    data = featurizer_artifact.to_bytes(preprocessing)
    key = Prefix.featurizer_key(hashlib.sha256(data).hexdigest())
    with tempfile.TemporaryDirectory(prefix="ll-featurizer-") as tmp:
        path = Path(tmp) / featurizer_artifact.FILE
        path.write_bytes(data)
        done = upload_files(s3, bucket, {key: path}, show_progress)
    return f"s3://{bucket}/{key}", bool(done["uploaded"])


def job_preprocessing(checked: TrainingData) -> Path | None:
    """The preprocessing.json ``prepare`` wrote for the data (None: channels without one),
    checked to describe what the job trains on: its width and predictor type."""
    manifest = checked.manifest
    if manifest is None or not manifest.preprocessing:
        return None
    path = checked.data_dir / manifest.preprocessing
    fix = "rerun `python -m training prepare`, which writes both"
    try:
        described = Featurizer.load(path)
    except PreprocessingError as err:
        raise ValidationError([Problem(str(path), str(err), fix)]) from None
    problems = []
    if described.width != manifest.feature_dim:
        problems.append(
            Problem(
                str(path),
                f"makes {described.width} features; the channels have {manifest.feature_dim}",
                fix,
            )
        )
    predictor = checked.hyperparameters.predictor_type
    if described.predictor_type != predictor:
        problems.append(
            Problem(
                str(path),
                f"was fitted for a {described.predictor_type}; the job trains a {predictor}",
                "train the predictor_type the data was prepared for, or prepare it again",
            )
        )
    if problems:
        raise ValidationError(problems)
    return path


def explain_failure(reason: str) -> str:
    return known_fix(reason, KNOWN_FAILURES, f"see the job's log ({LogGroup.TRAINING_JOBS})")


def training_request(
    config: AwsTrainConfig,
    hp: dict[str, str],
    channels: dict,
    bucket: str,
    run_prefix: str,
    image: str,
    role_arn: str,
    name: str,
    train_manifest: str | None = None,
    kms_key_arn: str | None = None,
) -> dict:
    """The CreateTrainingJob request (pure: tested without AWS); ``hp`` as SageMaker takes
    them, strings.

    With more than one instance, the train channel is ShardedByS3Key: through the
    ``ManifestFile`` listing its shards when given (what SDK 2.x's record_set wrote), else
    by S3 prefix. The container runs network-isolated (Linear Learner needs no network; the
    channels and the artifact are moved by SageMaker), and with a key, the artifact and the
    instance's volume are encrypted with it (not the volume of types with local NVMe storage,
    which reject a volume key).
    """
    inputs = []
    for channel, content_type in channels.items():
        sharded = channel == "train" and config.instance_count > 1
        source = {
            "S3DataType": "S3Prefix",
            "S3Uri": f"s3://{bucket}/{run_prefix}/{channel}/",
            "S3DataDistributionType": "ShardedByS3Key" if sharded else "FullyReplicated",
        }
        if sharded and train_manifest:
            source.update(S3DataType="ManifestFile", S3Uri=train_manifest)
        inputs.append(
            {
                "ChannelName": channel,
                "ContentType": content_type,
                "InputMode": "File",
                "DataSource": {"S3DataSource": source},
            }
        )
    return {
        "TrainingJobName": name,
        "AlgorithmSpecification": {"TrainingImage": image, "TrainingInputMode": "File"},
        "RoleArn": role_arn,
        "HyperParameters": dict(hp),
        "InputDataConfig": inputs,
        "OutputDataConfig": {
            "S3OutputPath": f"s3://{bucket}/models/",  # + <job>/output/
            **({"KmsKeyId": kms_key_arn} if kms_key_arn else {}),
        },
        "ResourceConfig": {
            "InstanceType": config.instance_type,
            "InstanceCount": config.instance_count,
            "VolumeSizeInGB": config.volume_gb,
            **(
                {"VolumeKmsKeyId": kms_key_arn}
                if kms_key_arn and accepts_volume_key(config.instance_type)
                else {}
            ),
        },
        "EnableNetworkIsolation": True,
        "StoppingCondition": {"MaxRuntimeInSeconds": config.max_runtime_s},
        "Tags": [{"Key": TAG_KEY, "Value": config.project}],
    }


@dataclass(frozen=True)
class Staged:
    """A job's inputs in place: the preflight passed, the channels uploaded under the job's
    name, and what the request needs (a training job and a tuning job alike)."""

    sess: object
    checked: TrainingData
    preprocessing: Path | None
    name: str
    started: str
    bucket: str
    role_arn: str
    key_arn: str | None
    image: str
    run_prefix: str
    channels: dict[str, str]  # channel -> content type
    train_manifest: str | None

    def s3(self):
        return aws.s3_client_for(self.sess, self.bucket)

    def training_request(self, config: AwsTrainConfig) -> dict:
        """The CreateTrainingJob request for these inputs, sending the hyperparameters as
        they were given (strings; SageMaker fills in its defaults)."""
        return training_request(
            config,
            self.checked.hyperparameters.to_strings(self.checked.given),
            self.channels,
            self.bucket,
            self.run_prefix,
            self.image,
            self.role_arn,
            self.name,
            self.train_manifest,
            self.key_arn,
        )


def stage(config: AwsTrainConfig, name_for, echo=print, before_upload=None) -> Staged:
    """Preflight (the local trainer's), find the project's bucket, role and key, upload the
    channels under ``name_for(stamp)``. ``before_upload(checked)`` runs the caller's own
    checks once the data is known and before anything is sent."""
    data_dir = Path(config.data_dir)
    try:  # the same preflight as the local trainer
        checked = check_training_data(data_dir, config.hyperparameters)
        preprocessing = job_preprocessing(checked) if config.use_preprocessing else None
        if before_upload is not None:
            before_upload(checked)
    except UserError as err:
        raise err.after(NOTHING_STARTED) from None
    found = checked.files
    channels = {name: files[0].content_type for name, files in checked.channels.items()}
    if config.instance_count > 1:
        shards = checked.channels["train"]
        if len(shards) < config.instance_count:
            echo(
                f"note: {len(shards)} train file(s) for {config.instance_count} instances: "
                "ShardedByS3Key gives some instances nothing; prepare with --shard-mb"
            )

    sess = aws.session(config.profile, config.region)
    region = sess.region_name
    bucket, role_arn, key_arn = config.bucket, config.role_arn, config.kms_key_arn
    if not (bucket and role_arn):
        outputs = aws.stack_outputs(sess, stack_name(config.project, Stack.BASE))
        bucket = bucket or outputs[Output.BUCKET]
        role_arn = role_arn or outputs[Output.ROLE]
        key_arn = key_arn or outputs.get(Output.KEY)
    aws.check_bucket_name(bucket)
    image = config.image_uri or linear_learner_image(region)
    started = stamp()
    name = config.job_name or name_for(started)
    run_prefix = Prefix.training_data(name)

    s3 = aws.s3_client_for(sess, bucket)
    files = {f"{run_prefix}/{f.path.relative_to(data_dir).as_posix()}": f.path for f in found}
    done = upload_files(s3, bucket, files, config.show_progress)
    echo(
        f"uploaded {len(done['uploaded'])} file(s), {len(done['skipped'])} already there, "
        f"to s3://{bucket}/{run_prefix}/"
    )

    train_manifest = None
    if config.instance_count > 1:
        shards = sorted(k.rsplit("/", 1)[1] for k in files if k.startswith(f"{run_prefix}/train/"))
        key = f"{run_prefix}/train.amazon.manifest"
        body = json.dumps(sharded_manifest(f"s3://{bucket}/{run_prefix}/train/", shards))
        s3.put_object(Bucket=bucket, Key=key, Body=body.encode())
        train_manifest = f"s3://{bucket}/{key}"
    return Staged(
        sess,
        checked,
        preprocessing,
        name,
        started,
        bucket,
        role_arn,
        key_arn,
        image,
        run_prefix,
        channels,
        train_manifest,
    )


def train_aws(config: AwsTrainConfig, echo=print) -> ModelRecord:
    """Preflight, upload, start, wait, record. Returns the training record."""
    # where the record goes, decided before anything is uploaded or billed
    config = replace(config, record=Path(config.record) if config.record else default_path())
    staged = stage(config, lambda when: training_job_name(config.project, when), echo)
    name = staged.name
    request = staged.training_request(config)
    sm = staged.sess.client("sagemaker")
    sm.create_training_job(**request)
    echo(
        f"training job {name} started ({config.instance_count} x {config.instance_type}, "
        f"image {staged.image})"
    )
    record = unfinished_record(staged, name, request["HyperParameters"])
    if not config.wait:
        return record
    description = wait_for_job(staged.sess, name, config.poll_s, echo, config.show_progress)
    if description["TrainingJobStatus"] != "Completed":
        reason = description.get("FailureReason", "(no reason given)")
        raise JobFailedError(
            [
                Problem(
                    f"training job {name}",
                    f"{description['TrainingJobStatus']}: {reason}",
                    explain_failure(reason),
                )
            ]
        )
    url = description["ModelArtifacts"]["S3ModelArtifacts"]
    return keep_model(config, staged, replace(record, model_data_url=url), echo)


def unfinished_record(staged: Staged, job: str, hyperparameters: dict) -> ModelRecord:
    """The record of ``job`` before its artifact exists."""
    manifest_path = Path(staged.checked.data_dir) / MANIFEST_FILE
    return ModelRecord(
        model_data_url=None,
        region=staged.sess.region_name,
        image_uri=staged.image,
        bucket=staged.bucket,
        training_job_name=job,
        hyperparameters=dict(hyperparameters),
        predictor_type=staged.checked.hyperparameters.predictor_type,
        data_manifest_sha256=file_sha256(manifest_path) if manifest_path.exists() else None,
        started=staged.started,
    )


def keep_model(config: AwsTrainConfig, staged: Staged, record: ModelRecord, echo) -> ModelRecord:
    """A finished job's model: its featurizer uploaded beside it (raw rows), the record
    written where the endpoint stack and ``deploy`` read it."""
    if staged.preprocessing is not None:
        url, sent = upload_featurizer(
            staged.s3(), staged.bucket, staged.preprocessing, config.show_progress
        )
        record = replace(record, featurizer_data_url=url)
        echo(
            f"featurizer {url} ({'uploaded' if sent else 'already there'}), from "
            f"{staged.preprocessing.name}: the endpoint will take raw rows"
        )
    record.write(config.record)
    echo(
        f"model artifact {record.model_data_url} recorded in {config.record}; "
        "`npx cdk deploy --all` now deploys it"
    )
    return record


def wait_for_job(sess, name: str, poll_s: float, echo, show_progress: bool = True) -> dict:
    """Poll until the job ends, echoing status changes and new log lines."""
    sm = sess.client("sagemaker")
    logs = LogTail(sess, name)

    def new_log_lines() -> None:
        for line in logs.new_lines():
            echo("  | " + line)

    return aws.wait_for(
        lambda: sm.describe_training_job(TrainingJobName=name),
        "TrainingJobStatus",
        name,
        poll_s,
        echo,
        detail="SecondaryStatus",
        each_poll=new_log_lines,
    )


class LogTail:
    """New CloudWatch log lines of a training job, across its streams (none yet is fine)."""

    GROUP = LogGroup.TRAINING_JOBS

    def __init__(self, sess, job: str):
        self.logs = sess.client("logs")
        self.job = job
        self.tokens: dict[str, str] = {}

    def new_lines(self) -> list[str]:
        import botocore.exceptions

        try:
            streams = self.logs.describe_log_streams(
                logGroupName=self.GROUP, logStreamNamePrefix=f"{self.job}/"
            )["logStreams"]
        except botocore.exceptions.ClientError:
            return []
        lines = []
        for stream in streams:
            name = stream["logStreamName"]
            kwargs = {"logGroupName": self.GROUP, "logStreamName": name, "startFromHead": True}
            if name in self.tokens:
                kwargs["nextToken"] = self.tokens[name]
            page = self.logs.get_log_events(**kwargs)
            self.tokens[name] = page["nextForwardToken"]
            lines += [e["message"] for e in page["events"]]
        return lines
