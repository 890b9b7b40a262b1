"""Deploy everything and destroy everything, each as one command (``scripts/``).

deploy: base stack -> notebooks (with the training package) to the bucket -> train on
SageMaker -> endpoint stack -> check the endpoint runs the new config -> a smoke prediction;
stops at the first failure.

destroy: empty the versioned bucket (every version and delete marker; moto and late writers
both make relying on the auto-delete handler alone unsafe) -> stop running training jobs ->
``cdk destroy --all --force`` -> remove what CloudFormation does not own (SageMaker's log
groups, the auto-delete handler's log group) -> the audit, which must find nothing.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

import numpy as np

from training.aws import audit
from training.aws import session as aws
from training.aws.job import RECORD, AwsTrainConfig, train_aws
from training.aws.upload import upload_files
from training.naming import stack_name
from training.validation import Problem, ValidationError

ROOT = Path(__file__).resolve().parents[2]


class DeployStepError(ValidationError):
    pass


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


def notebook_bundle() -> list[tuple[Path, str]]:
    """What the notebook instance gets, as (file, path under the notebook folder).

    The notebooks import this project's ``training`` package and read the bundled dataset,
    so both travel with them: the instance's OnStart script syncs ``notebooks/`` from the
    bucket into one folder, where a notebook finds ``training/`` beside it.
    """
    files = [(p, p.name) for p in sorted((ROOT / "notebooks").glob("*.ipynb"))]
    files += [
        (p, p.relative_to(ROOT).as_posix())
        for p in sorted((ROOT / "training").rglob("*.py"))
        if "__pycache__" not in p.parts
    ]
    files += [(ROOT / "data" / name, f"data/{name}") for name in ("penguins.csv", "README.md")]
    return files


def upload_notebook_bundle(sess, bucket: str) -> dict:
    """Upload the bundle under ``notebooks/``, skipping files already there unchanged."""
    files = {f"notebooks/{key}": path for path, key in notebook_bundle()}
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
    from training.local.trainer import read_channel

    test = read_channel(Path(data_dir) / "test") or read_channel(Path(data_dir) / "train")
    X = np.asarray(test.X[:5].toarray() if hasattr(test.X, "toarray") else test.X[:5])
    predictions = predict.predict(predict.aws_invoker(sess, endpoint), X)
    return predictions[0]


def deploy_all(
    data_dir: Path,
    project: str = "ll-e2e",
    profile: str | None = None,
    region: str | None = None,
    instance_type: str = "ml.m5.large",
    record: Path = RECORD,
    echo=print,
) -> dict:
    sess = aws.session(profile, region)
    base, endpoint_stack = stack_name(project, "Base"), stack_name(project, "Endpoint")
    echo(f"==> 1/5 base stack {base} ({sess.region_name})")
    # the endpoint stack reads the training record this run writes: one path for both
    context = [
        "-c",
        f"model_record={Path(record).resolve()}",
        "-c",
        f"project={project}",
        "-c",
        f"region={sess.region_name}",
    ]
    cdk(["deploy", base, "--require-approval", "never", *context], echo)
    outputs = aws.stack_outputs(sess, base)
    done = upload_notebook_bundle(sess, outputs["BucketName"])
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
    check_endpoint(sess, endpoint_out["EndpointName"], endpoint_out["EndpointConfigName"])
    echo("==> 5/5 smoke prediction")
    first = smoke_prediction(sess, endpoint_out["EndpointName"], data_dir)
    echo(f"    {endpoint_out['EndpointName']} answered {first}")
    return {"record": trained, "endpoint": endpoint_out}


def destroy_all(
    project: str = "ll-e2e", profile: str | None = None, region: str | None = None, echo=print
) -> list:
    sess = aws.session(profile, region)
    base = stack_name(project, "Base")
    echo("==> 1/4 empty the project bucket (every version and delete marker)")
    try:
        bucket = aws.stack_outputs(sess, base).get("BucketName")
    except ValidationError:
        bucket = None
    if bucket:
        echo(f"    {audit.empty_bucket(sess, bucket)} versions and markers removed from {bucket}")
    echo("==> 2/4 stop running training jobs")
    sm = sess.client("sagemaker")
    for page in sm.get_paginator("list_training_jobs").paginate(StatusEquals="InProgress"):
        for job in page["TrainingJobSummaries"]:
            if job["TrainingJobName"].startswith(project):
                sm.stop_training_job(TrainingJobName=job["TrainingJobName"])
                echo(f"    stopped {job['TrainingJobName']}")
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
    found = audit.find_leftovers(sess, project)
    left = audit.delete_and_recheck(sess, project, found, echo=echo)
    if not left:
        echo(f"    audit: nothing billable of '{project}' left in {sess.region_name}")
    return left
