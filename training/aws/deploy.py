"""Deploy everything and destroy everything, each as one command (``scripts/``), and deploy a
model made elsewhere.

deploy: base stack -> notebooks (with the training package) to the bucket -> train on
SageMaker -> endpoint stack -> check the endpoint runs the new config -> a smoke prediction;
stops at the first failure.

destroy: empty the versioned bucket (every version and delete marker; moto and late writers
both make relying on the auto-delete handler alone unsafe) -> stop running training jobs ->
``cdk destroy --all --force`` -> remove what CloudFormation does not own (SageMaker's log
groups, the auto-delete handler's log group) -> the audit, which must find nothing.

deploy a model (``python -m training deploy --model``): artifact checked locally -> uploaded
under a content-addressed key -> recorded -> endpoint stack -> endpoint check -> a smoke
prediction that must equal the artifact's own answer.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from training import notebook_bundle
from training.aws import audit
from training.aws import session as aws
from training.aws.job import AwsTrainConfig, train_aws
from training.aws.upload import upload_files
from training.errors import Problem, ValidationError
from training.instance_types import DEFAULT as DEFAULT_INSTANCE_TYPE
from training.model_record import RECORD, ModelRecord
from training.naming import DEFAULT_PROJECT, Output, stack_name

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Deployed:
    """What a deploy leaves: the model record the endpoint stack read, and that stack's
    outputs (EndpointName, EndpointConfigName, ModelDataUrl, …)."""

    record: ModelRecord
    endpoint: dict[str, str]


class DeployStepError(ValidationError):
    """A deploy step failed after the steps before it took effect."""

    outcome = (
        "the deploy stopped at this step; the steps printed above it took effect "
        "(bash scripts/destroy-all.sh removes everything)."
    )


def _fail(step: str, message: str, fix: str):
    raise DeployStepError([Problem(step, message, fix)])


def cdk(args: list[str], echo) -> None:
    """The pinned CDK CLI (npx cdk), plus CDK_ARGS (and CDK_DEPLOY_ARGS for deploys)."""
    extra = shlex.split(os.environ.get("CDK_ARGS", ""))
    if args[0] == "deploy":
        extra += shlex.split(os.environ.get("CDK_DEPLOY_ARGS", ""))
    cmd = ["npx", "--no-install", "cdk", *args, "--no-notices", *extra]
    echo("$ " + " ".join(cmd))
    res = subprocess.run(cmd, cwd=ROOT)
    if res.returncode != 0:
        _fail(" ".join(cmd[:5]), f"exited {res.returncode}", "read the CDK output above")


def upload_notebook_bundle(sess, bucket: str) -> dict:
    """Upload the bundle under ``notebooks/``, skipping files already there unchanged.

    The base stack's BucketDeployment puts the bundle in the bucket before the notebook
    instance first starts; this sends what changed since (and, in the moto rehearsal, where
    CloudFormation cannot run the deployment's Lambda, everything)."""
    files = {f"{notebook_bundle.PREFIX}{key}": path for path, key in notebook_bundle.files()}
    return upload_files(aws.s3_client_for(sess, bucket), bucket, files)


def check_endpoint(sess, endpoint: str, expected_config: str) -> str:
    """SageMaker can roll an update back to the old config and still say InService."""
    d = sess.client("sagemaker").describe_endpoint(EndpointName=endpoint)
    if d["EndpointConfigName"] != expected_config:
        _fail(
            f"endpoint {endpoint}",
            f"runs {d['EndpointConfigName']}, not the new "
            f"{expected_config} ({d.get('FailureReason', 'update rolled back')})",
            "look at /aws/sagemaker/Endpoints/ logs; the old model is still serving",
        )
    if d["EndpointStatus"] != "InService":
        _fail(
            f"endpoint {endpoint}",
            f"status {d['EndpointStatus']}: {d.get('FailureReason', '')}",
            "see the endpoint's CloudWatch logs",
        )
    return d["EndpointConfigName"]


def smoke_prediction(sess, endpoint: str, data_dir: Path) -> dict:
    from training import predict

    predictions = predict.predict(predict.aws_invoker(sess, endpoint), smoke_rows(data_dir))
    return predictions[0]


def model_key(sha256: str) -> str:
    """Content-addressed: the same artifact always lands on the same key, a new one never
    overwrites an object an endpoint may still be reading."""
    return f"models/sha256/{sha256}/model.tar.gz"


def smoke_rows(data_dir: Path | None, feature_dim: int | None = None) -> np.ndarray:
    """Rows to send a freshly deployed model: the prepared test split's first five, or, for
    a model made elsewhere without data, five rows of zeros of its feature_dim."""
    if data_dir is not None:
        from training.channels import read_channel

        data = read_channel(Path(data_dir) / "test") or read_channel(Path(data_dir) / "train")
        if data is not None:
            return np.asarray(data.X[:5].toarray() if hasattr(data.X, "toarray") else data.X[:5])
    return np.zeros((5, feature_dim), np.float32)


def check_answers(model, X: np.ndarray, answers: list[dict], endpoint: str) -> None:
    """The endpoint must answer what the artifact computes: else it serves another model."""
    expected = model.predict(X)
    got = np.array([a["score"] for a in answers], np.float64)
    if got.shape != np.shape(expected["score"]) or not np.allclose(
        got, expected["score"], rtol=1e-4, atol=1e-5
    ):
        _fail(
            f"endpoint {endpoint}",
            f"answered scores {got.tolist()} where the deployed artifact gives "
            f"{np.asarray(expected['score']).tolist()}",
            "it is not serving this model: check the stack's ModelDataUrl output",
        )


def deploy_model(
    model_path: Path,
    project: str = DEFAULT_PROJECT,
    profile: str | None = None,
    region: str | None = None,
    record: Path = RECORD,
    data_dir: Path | None = None,
    show_progress: bool = True,
    echo=print,
) -> Deployed:
    """Serve a model made elsewhere (``train --target local``, or a SageMaker job's artifact
    copied around): check it locally, upload it content-addressed, record it where the endpoint
    stack reads it, deploy that stack, then check the endpoint runs it and answers as it does."""
    import datetime as dt

    from training import artifact
    from training.checksums import file_sha256
    from training.images import linear_learner_image

    model_path = Path(model_path)
    model = artifact.load(model_path)  # a foreign or damaged file stops here, before upload
    digest = file_sha256(model_path)
    sess = aws.session(profile, region)
    base, endpoint_stack = stack_name(project, "Base"), stack_name(project, "Endpoint")
    echo(
        f"==> 1/4 upload {model_path} ({model.predictor_type}, feature_dim "
        f"{model.feature_dim}) to the project bucket"
    )
    bucket = aws.stack_outputs(sess, base)[Output.BUCKET]
    key = model_key(digest)
    done = upload_files(aws.s3_client_for(sess, bucket), bucket, {key: model_path}, show_progress)
    echo(f"    s3://{bucket}/{key} ({'uploaded' if done['uploaded'] else 'already there'})")
    entry = ModelRecord(
        model_data_url=f"s3://{bucket}/{key}",
        region=sess.region_name,
        image_uri=linear_learner_image(sess.region_name),
        bucket=bucket,
        source=str(model_path.resolve()),
        sha256=digest,
        predictor_type=model.predictor_type,
        feature_dim=model.feature_dim,
        recorded=dt.datetime.now(dt.timezone.utc).strftime("%Y%m%d-%H%M%S"),
    )
    entry.write(record)
    echo(f"    recorded in {record}")
    echo(f"==> 2/4 endpoint stack {endpoint_stack}")
    context = _context(project, sess.region_name, record)
    cdk(["deploy", "--all", "--require-approval", "never", *context], echo)
    endpoint_out = aws.stack_outputs(sess, endpoint_stack)
    if endpoint_out.get("ModelDataUrl") != entry.model_data_url:
        _fail(
            endpoint_stack,
            f"serves {endpoint_out.get('ModelDataUrl')}, not {entry.model_data_url}",
            "look at the stack's events in the CloudFormation console",
        )
    echo("==> 3/4 endpoint runs the new config")
    endpoint = endpoint_out[Output.ENDPOINT]
    check_endpoint(sess, endpoint, endpoint_out[Output.ENDPOINT_CONFIG])
    echo("==> 4/4 smoke prediction, compared with the artifact's own answer")
    from training import predict

    X = smoke_rows(data_dir, model.feature_dim)
    answers = predict.predict(predict.aws_invoker(sess, endpoint), X)
    check_answers(model, X, answers, endpoint)
    echo(f"    {endpoint} answered {answers[0]}, as the artifact does")
    return Deployed(entry, endpoint_out)


def _context(project: str, region: str, record: Path) -> list[str]:
    """CDK context for a deploy: the endpoint stack reads the record this run writes."""
    return [
        "-c",
        f"model_record={Path(record).resolve()}",
        "-c",
        f"project={project}",
        "-c",
        f"region={region}",
    ]


def deploy_all(
    data_dir: Path,
    project: str = DEFAULT_PROJECT,
    profile: str | None = None,
    region: str | None = None,
    instance_type: str = DEFAULT_INSTANCE_TYPE,
    record: Path = RECORD,
    echo=print,
) -> Deployed:
    sess = aws.session(profile, region)
    base, endpoint_stack = stack_name(project, "Base"), stack_name(project, "Endpoint")
    echo(f"==> 1/5 base stack {base} ({sess.region_name})")
    context = _context(project, sess.region_name, record)
    cdk(["deploy", base, "--require-approval", "never", *context], echo)
    outputs = aws.stack_outputs(sess, base)
    done = upload_notebook_bundle(sess, outputs[Output.BUCKET])
    echo(
        f"    notebook bundle (notebooks, training package, dataset): "
        f"{len(done['uploaded'])} uploaded, {len(done['skipped'])} unchanged"
    )
    echo("==> 2/5 training on SageMaker")
    trained = train_aws(
        AwsTrainConfig(
            data_dir=data_dir,
            project=project,
            profile=profile,
            region=sess.region_name,
            instance_type=instance_type,
            record=Path(record),
        ),
        echo=echo,
    )
    echo(f"==> 3/5 endpoint stack {endpoint_stack}")
    cdk(["deploy", "--all", "--require-approval", "never", *context], echo)
    endpoint_out = aws.stack_outputs(sess, endpoint_stack)
    echo("==> 4/5 endpoint runs the new config")
    endpoint = endpoint_out[Output.ENDPOINT]
    check_endpoint(sess, endpoint, endpoint_out[Output.ENDPOINT_CONFIG])
    echo("==> 5/5 smoke prediction")
    first = smoke_prediction(sess, endpoint, data_dir)
    echo(f"    {endpoint} answered {first}")
    return Deployed(trained, endpoint_out)


def destroy_all(
    project: str = DEFAULT_PROJECT,
    profile: str | None = None,
    region: str | None = None,
    echo=print,
) -> list:
    sess = aws.session(profile, region)
    base = stack_name(project, "Base")
    echo("==> 1/4 empty the project bucket (every version and delete marker)")
    try:
        bucket = aws.stack_outputs(sess, base).get(Output.BUCKET)
    except ValidationError:
        bucket = None
    if bucket:
        echo(f"    {audit.empty_bucket(sess, bucket)} versions and markers removed from {bucket}")
    echo("==> 2/4 stop running training and batch transform jobs")
    sm = sess.client("sagemaker")
    own = audit.Ownership(project)
    for job in audit.running_jobs(sess, own):
        sm.stop_training_job(TrainingJobName=job)
        echo(f"    stopped {job}")
    for job in audit.running_transforms(sess, own):
        sm.stop_transform_job(TransformJobName=job)
        echo(f"    stopped {job}")
    echo("==> 3/4 cdk destroy --all")
    # A placeholder artifact puts the endpoint stack in the app whether or not a training
    # record is still around: `destroy --all` must see every stack it has to remove.
    cdk(
        [
            "destroy",
            "--all",
            "--force",
            "-c",
            f"project={project}",
            "-c",
            f"region={sess.region_name}",
            "-c",
            "model_data_url=s3://placeholder-for-destroy/model.tar.gz",
        ],
        echo,
    )
    echo("==> 4/4 what CloudFormation does not own, then the audit")
    found = audit.find_leftovers(sess, project, echo)
    left = audit.delete_and_recheck(sess, project, found, echo=echo)
    if not left:
        echo(f"    audit: nothing billable of '{project}' left in {sess.region_name}")
    return left
