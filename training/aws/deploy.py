"""Deploy everything and destroy everything, each as one command (``scripts/``), and deploy a
model made elsewhere.

deploy: base stack -> notebooks (with the training package) to the bucket -> train on
SageMaker -> endpoint stack -> check the endpoint runs the new config -> a smoke prediction;
stops at the first failure.

destroy: stop the project's tuning, training and transform jobs and wait until none is running
or stopping (a stopping job still uploads its output) -> empty the versioned bucket (every
version and delete marker; moto and late writers both make relying on the auto-delete handler
alone unsafe) -> ``cdk destroy --all --force`` -> remove what CloudFormation does not own
(SageMaker's log groups, the auto-delete handler's log group) -> the audit, which must find
nothing.

deploy a model (``python -m training deploy --model``): artifact checked locally -> uploaded
under a content-addressed key (with the featurizer built from the preprocessing.json beside
it, when there is one) -> recorded -> endpoint stack -> endpoint check -> a smoke prediction
that must equal the artifact's own answer.

A model with preprocessing is served on raw rows (the endpoint stack makes it a serial
inference pipeline): the smoke prediction then sends raw CSV rows, the data's own test rows or
a row of the preprocessing's fill values, and compares the endpoint's scores with what the
featurizer and the model compute here.
"""

from __future__ import annotations

import csv
import io
import os
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from training import project as project_folder
from training.aws import audit, deploy_options, notebook_bundle
from training.aws import session as aws
from training.aws.deploy_options import NO_OPTIONS, DeployOptions, OptionsPlan
from training.aws.instance_types import DEFAULT as DEFAULT_INSTANCE_TYPE
from training.aws.job import AwsTrainConfig, train_aws, upload_featurizer
from training.aws.model_record import ModelRecord, default_path
from training.aws.naming import (
    DEFAULT_PROJECT,
    LogGroup,
    Output,
    Prefix,
    Stack,
    split_s3_url,
    stack_name,
    stamp,
)
from training.aws.upload import upload_files
from training.core import artifact
from training.core.featurizer import CATEGORICAL, NUMERIC, Featurizer
from training.core.model import LinearModel
from training.data.manifest import Manifest
from training.errors import DeployStepError, Problem, ValidationError
from training.limits import MAX_PREPROCESSING_BYTES


@dataclass(frozen=True)
class EndpointOutputs:
    """The endpoint stack's outputs, as the deploy read them back."""

    endpoint_name: str
    endpoint_config_name: str
    model_data_url: str | None = None
    model_name: str | None = None
    image_uri: str | None = None
    featurizer_data_url: str | None = None  # a serial pipeline on raw rows
    model_package_arn: str | None = None  # a registry version

    @classmethod
    def of(cls, outputs: dict[str, str]) -> EndpointOutputs:
        return cls(
            endpoint_name=outputs[Output.ENDPOINT],
            endpoint_config_name=outputs[Output.ENDPOINT_CONFIG],
            model_data_url=outputs.get(Output.MODEL_DATA_URL),
            model_name=outputs.get(Output.MODEL_NAME),
            image_uri=outputs.get(Output.IMAGE_URI),
            featurizer_data_url=outputs.get(Output.FEATURIZER_DATA_URL),
            model_package_arn=outputs.get(Output.MODEL_PACKAGE_ARN),
        )


@dataclass(frozen=True)
class Deployed:
    """What a deploy leaves: the model record the endpoint stack read, and that stack's
    outputs."""

    record: ModelRecord
    endpoint: EndpointOutputs


def _fail(step: str, message: str, fix: str):
    raise DeployStepError([Problem(step, message, fix)])


def cdk(args: list[str], echo) -> None:
    """The pinned CDK CLI (npx cdk), plus CDK_ARGS (and CDK_DEPLOY_ARGS for deploys)."""
    extra = shlex.split(os.environ.get("CDK_ARGS", ""))
    if args[0] == "deploy":
        extra += shlex.split(os.environ.get("CDK_DEPLOY_ARGS", ""))
    cmd = ["npx", "--no-install", "cdk", *args, "--no-notices", *extra]
    echo("$ " + " ".join(cmd))
    res = subprocess.run(cmd, cwd=project_folder.root("the CDK app (cdk.json)"))
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
            f"look at the {LogGroup.endpoint(endpoint)} logs; the old model is still serving",
        )
    if d["EndpointStatus"] != "InService":
        _fail(
            f"endpoint {endpoint}",
            f"status {d['EndpointStatus']}: {d.get('FailureReason', '')}",
            "see the endpoint's CloudWatch logs",
        )
    return d["EndpointConfigName"]


def smoke_rows(data_dir: Path | None, feature_dim: int | None = None) -> np.ndarray:
    """Rows to send a freshly deployed model: the prepared test split's first five, or, for
    a model made elsewhere without data, five rows of zeros of its feature_dim."""
    if data_dir is not None:
        from training.data.channels import read_channel

        data = read_channel(Path(data_dir) / "test") or read_channel(Path(data_dir) / "train")
        if data is not None:
            return np.asarray(data.X[:5].toarray() if hasattr(data.X, "toarray") else data.X[:5])
    return np.zeros((5, feature_dim), np.float32)


def smoke_raw_rows(data_dir: Path | None, featurizer: Featurizer) -> list[str]:
    """Raw rows to send a freshly deployed pipeline, as a client sends them (CSV, the input
    columns in source order, no header): the first five of the data's test rows (prepare's
    ``test_rows.csv``), or, without data, one row of the preprocessing's fill values."""
    from training import predict

    manifest = Manifest.read(Path(data_dir)) if data_dir is not None else None
    if manifest is not None and manifest.test_rows:
        path = Path(data_dir) / manifest.test_rows
        if path.is_file():
            return predict.read_raw(path, featurizer, labelled=False).lines[:5]
    return [fill_row(featurizer)]


def fill_row(featurizer: Featurizer) -> str:
    """One raw row of every input column's fill value (the median of a numeric column, the
    most frequent category of a categorical one; a dropped column's cell left empty)."""
    cells = [
        "" if c.role not in (NUMERIC, CATEGORICAL) or c.fill is None else str(c.fill)
        for c in featurizer.inputs
    ]
    buf = io.StringIO()
    csv.writer(buf, lineterminator="").writerow(cells)
    return buf.getvalue()


def check_answers(model: LinearModel, X: np.ndarray, answers, endpoint: str) -> None:
    """The endpoint must answer what the artifact computes: else it serves another model."""
    expected = model.predict(X).score
    got = np.asarray(answers.score, np.float64)
    if got.shape != np.shape(expected) or not np.allclose(got, expected, rtol=1e-4, atol=1e-5):
        _fail(
            f"endpoint {endpoint}",
            f"answered scores {got.tolist()} where the deployed artifact gives "
            f"{np.asarray(expected).tolist()}",
            "it is not serving this model: check the stack's ModelDataUrl output",
        )


def deploy_endpoint(
    sess,
    project: str,
    record: ModelRecord,
    context: list[str],
    step: int,
    total: int,
    data_dir: Path | None,
    model: LinearModel | None,
    echo,
    featurizer: Featurizer | None = None,
    kept: OptionsPlan | None = None,
) -> EndpointOutputs:
    """The steps every deploy ends with: the endpoint stack (serving ``record``'s artifact,
    behind its featurizer when it has one), the endpoint checked to run the new config, a smoke
    prediction (raw rows through ``featurizer`` when given, else encoded features; compared
    with ``model``'s own answer when the artifact is at hand)."""
    from training import predict

    endpoint_stack = stack_name(project, Stack.ENDPOINT)
    echo(f"==> {step}/{total} endpoint stack {endpoint_stack}")
    cdk(["deploy", "--all", "--require-approval", "never", *context], echo)
    if kept is not None:
        kept.keep()
    outputs = EndpointOutputs.of(aws.stack_outputs(sess, endpoint_stack))
    served = (
        {"registry version": (record.model_package_arn, outputs.model_package_arn)}
        if record.model_package_arn
        else {
            "model": (record.model_data_url, outputs.model_data_url),
            "featurizer": (record.featurizer_data_url, outputs.featurizer_data_url),
        }
    )
    for what, (recorded, deployed) in served.items():
        if recorded and deployed != recorded:
            _fail(
                endpoint_stack,
                f"serves the {what} {deployed}, not {recorded}",
                "look at the stack's events in the CloudFormation console",
            )
    endpoint = outputs.endpoint_name
    mode = next((c for c in kept.changes if c.key == deploy_options.MODE), None) if kept else None
    if mode is not None:  # confirmed with --replace-endpoint: clients must be told
        echo(f"    endpoint_mode {mode}: the endpoint is now {endpoint}; point clients at it")
    echo(f"==> {step + 1}/{total} endpoint runs the new config")
    check_endpoint(sess, endpoint, outputs.endpoint_config_name)
    compared = ", compared with the artifact's own answer" if model is not None else ""
    raw = " on raw rows" if featurizer is not None else ""
    echo(f"==> {step + 2}/{total} smoke prediction{raw}{compared}")
    invoke = predict.aws_invoker(sess, endpoint)
    if featurizer is not None:
        lines = smoke_raw_rows(data_dir, featurizer)
        rows = predict.RawRows(Path("smoke"), lines, [str(i + 1) for i in range(len(lines))], "row")
        answers = predict.predict_raw(invoke, rows, featurizer)
        X = featurizer.features_from_csv("\n".join(lines) + "\n") if model is not None else None
    else:
        X = smoke_rows(data_dir, model.feature_dim if model is not None else None)
        shape = model.predict(X[:1]).rows()[0] if model is not None else None
        answers = predict.predict(invoke, X, shape=shape)
    if model is not None:
        check_answers(model, X, answers, endpoint)
    first = answers.rows()[0]
    echo(f"    {endpoint} answered {first}" + (", as the artifact does" if compared else ""))
    return outputs


def deploy_model(
    model_path: Path,
    project: str = DEFAULT_PROJECT,
    profile: str | None = None,
    region: str | None = None,
    record: Path | None = None,
    data_dir: Path | None = None,
    show_progress: bool = True,
    echo=print,
    preprocessing: Path | None = None,
    use_preprocessing: bool = True,
    options: DeployOptions = NO_OPTIONS,
    replace_endpoint: bool = False,
) -> Deployed:
    """Serve a model made elsewhere (``train --target local``, or a SageMaker job's artifact
    copied around): check it locally, upload it content-addressed, record it where the endpoint
    stack reads it, deploy that stack, then check the endpoint runs it and answers as it does.

    With preprocessing (``preprocessing``, else the ``preprocessing.json`` train wrote beside
    the model; ``use_preprocessing=False`` serves encoded features), its featurizer.tar.gz is
    uploaded content-addressed too and recorded: the endpoint then takes raw rows.

    ``options`` (``-c key=value``) go on top of those kept by earlier deploys
    (:mod:`training.aws.deploy_options`); a mode change needs ``replace_endpoint``."""
    from training.aws.images import linear_learner_image
    from training.checksums import file_sha256
    from training.model_source import load_pipeline, preprocessing_path

    model_path = Path(model_path)
    record = Path(record) if record else default_path()  # outside a project: stops here
    # a foreign or damaged file, or preprocessing that does not fit it, stops here
    pipeline = load_pipeline(str(model_path), preprocessing, use_preprocessing, show_progress=False)
    model, featurizer = pipeline.model, pipeline.featurizer
    digest = file_sha256(model_path)
    sess = aws.session(profile, region)
    kept = deploy_options.plan(sess, project, record, options, replace_endpoint, echo)
    deploy_options.check_servable(kept, project, sess.region_name, featurizer is not None)
    echo(
        f"==> 1/4 upload {model_path} ({model.predictor_type}, feature_dim "
        f"{model.feature_dim}) to the project bucket"
    )
    bucket = aws.stack_outputs(sess, stack_name(project, Stack.BASE))[Output.BUCKET]
    key = Prefix.model_key(digest)
    s3 = aws.s3_client_for(sess, bucket)
    done = upload_files(s3, bucket, {key: model_path}, show_progress)
    echo(f"    s3://{bucket}/{key} ({'uploaded' if done['uploaded'] else 'already there'})")
    featurizer_url = None
    if featurizer is not None:
        described = preprocessing_path(str(model_path), preprocessing, use_preprocessing)
        featurizer_url, sent = upload_featurizer(s3, bucket, described, show_progress)
        echo(
            f"    {featurizer_url} ({'uploaded' if sent else 'already there'}), from "
            f"{described}: the endpoint takes raw rows"
        )
    entry = ModelRecord(
        model_data_url=f"s3://{bucket}/{key}",
        region=sess.region_name,
        image_uri=linear_learner_image(sess.region_name),
        bucket=bucket,
        featurizer_data_url=featurizer_url,
        predictor_type=model.predictor_type,
        source=str(model_path.resolve()),
        sha256=digest,
        feature_dim=model.feature_dim,
        recorded=stamp(),
    )
    return _record_and_deploy(sess, project, entry, record, data_dir, model, featurizer, echo, kept)


def _record_and_deploy(sess, project, entry, record, data_dir, model, featurizer, echo, kept):
    """Write the model record the endpoint stack reads, then deploy and check that stack
    (steps 2-4 of a deploy) with the ``kept`` options."""
    entry.write(record)
    echo(f"    recorded in {record}")
    context = _context(project, sess.region_name, record, kept.options)
    outputs = deploy_endpoint(
        sess, project, entry, context, 2, 4, data_dir, model, echo, featurizer, kept
    )
    return Deployed(entry, outputs)


def deploy_approved(
    project: str = DEFAULT_PROJECT,
    profile: str | None = None,
    region: str | None = None,
    record: Path | None = None,
    data_dir: Path | None = None,
    echo=print,
    version_number: int | None = None,
    options: DeployOptions = NO_OPTIONS,
    replace_endpoint: bool = False,
) -> Deployed:
    """Serve the registry's latest Approved version (``deploy --approved``), or version
    ``version_number`` (refused, naming its status, unless it is Approved); recorded with its
    package ARN, which the endpoint stack's Model runs; then checked and smoke-tested as
    every deploy is, against the version's own artifact. Nothing is written or deployed for a
    version that is not approved."""
    from training.aws.images import linear_learner_image
    from training.aws.registry import AwsRegistry
    from training.core.registry import check_deployable, find, latest_approved

    record = Path(record) if record else default_path()  # outside a project: stops here
    registry = AwsRegistry.open(project, profile, region)
    sess = registry.sess
    versions = registry.versions()
    if version_number is None:
        version = latest_approved(versions)
    else:
        version = find(versions, version_number)
    check_deployable(version)
    kept = deploy_options.plan(sess, project, record, options, replace_endpoint, echo)
    deploy_options.check_servable(kept, project, sess.region_name, False, version.arn)
    echo(
        f"==> 1/4 {version.group} version {version.version} (Approved"
        + (f": {version.approval_description}" if version.approval_description else "")
        + f"), {version.model}"
    )
    model, featurizer = _version_pipeline(version, sess)
    entry = ModelRecord(
        model_data_url=version.model,
        region=sess.region_name,
        image_uri=linear_learner_image(sess.region_name),
        bucket=split_s3_url(version.model)[0],
        featurizer_data_url=version.preprocessing,
        predictor_type=version.predictor_type,
        sha256=version.model_sha256,
        feature_dim=version.feature_dim,
        model_package_arn=version.arn,
        source=f"{version.group} version {version.version}",
        recorded=stamp(),
    )
    return _record_and_deploy(sess, project, entry, record, data_dir, model, featurizer, echo, kept)


def _version_pipeline(version, sess):
    """The version's model and featurizer, read from S3, to compare the endpoint with."""
    from training.aws.download import fetch
    from training.core.featurizer import PREPROCESSING_FILE

    region = sess.region_name
    model = artifact.from_bytes(fetch(version.model, None, region, False), version.model)
    if not version.preprocessing:
        return model, None
    data = fetch(version.preprocessing, None, region, False)
    raw = artifact.tar_member(
        data, version.preprocessing, PREPROCESSING_FILE, MAX_PREPROCESSING_BYTES
    )
    return model, Featurizer.from_text(raw, version.preprocessing)


def _context(project: str, region: str, record: Path, options: DeployOptions) -> list[str]:
    """CDK context for a deploy: the endpoint stack reads the record this run writes; the
    stack options are those kept and given (never cdk.json's defaults over them)."""
    return [
        *options.context_args(),
        *deploy_options.CALLER_GIVES_ARGS,
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
    record: Path | None = None,
    echo=print,
    options: DeployOptions = NO_OPTIONS,
    replace_endpoint: bool = False,
) -> Deployed:
    """Everything in order (the module's docstring); ``options`` as for :func:`deploy_model`,
    checked before the base stack is touched."""
    record = Path(record) if record else default_path()  # outside a project: stops here
    sess = aws.session(profile, region)
    kept = deploy_options.plan(sess, project, record, options, replace_endpoint, echo)
    raw_rows = bool(Manifest.load(data_dir).preprocessing)  # the endpoint will take raw rows
    deploy_options.check_servable(kept, project, sess.region_name, raw_rows)
    base = stack_name(project, Stack.BASE)
    echo(f"==> 1/5 base stack {base} ({sess.region_name})")
    context = _context(project, sess.region_name, record, kept.options)
    cdk(["deploy", base, "--require-approval", "never", *context], echo)
    kept.keep()
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
    featurizer = None
    if trained.featurizer_data_url:  # the data's preprocessing: the endpoint takes raw rows
        manifest = Manifest.load(data_dir)
        featurizer = Featurizer.load(Path(data_dir) / manifest.preprocessing)
    endpoint = deploy_endpoint(
        sess, project, trained, context, 3, 5, data_dir, None, echo, featurizer, kept
    )
    return Deployed(trained, endpoint)


def destroy_all(
    project: str = DEFAULT_PROJECT,
    profile: str | None = None,
    region: str | None = None,
    echo=print,
) -> list:
    sess = aws.session(profile, region)
    base = stack_name(project, Stack.BASE)
    # Jobs first: a stopping training job still uploads its artifact to the bucket for up to
    # 120 s (StopTrainingJob), so the bucket is emptied only once none is running or stopping.
    echo("==> 1/4 stop tuning, training and batch transform jobs; wait until they have stopped")
    jobs = audit.active_jobs(sess, audit.Ownership(project))
    audit.stop_jobs(sess, jobs, lambda line: echo("  " + line))
    echo("==> 2/4 empty the project bucket (every version and delete marker)")
    try:
        bucket = aws.stack_outputs(sess, base).get(Output.BUCKET)
    except ValidationError:
        bucket = None
    if bucket:
        echo(f"    {audit.empty_bucket(sess, bucket)} versions and markers removed from {bucket}")
    echo("==> 3/4 cdk destroy --all")
    # A placeholder artifact puts the endpoint stack in the app whether or not a training
    # record is still around: `destroy --all` must see every stack it has to remove.
    try:
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
                *deploy_options.CALLER_GIVES_ARGS,  # options do not decide what is destroyed
            ],
            echo,
        )
    except DeployStepError:
        # a stack in DELETE_FAILED still holds what it could not delete: say what is billing
        # now, not only that a step failed (the audit's --delete is refused while it exists)
        echo("    cdk destroy failed; still there (python -m training audit lists it again):")
        for item in audit.find_leftovers(sess, project, lambda _: None):
            echo(f"    - {item}")
        raise
    echo("==> 4/4 what CloudFormation does not own, then the audit")
    found = audit.find_leftovers(sess, project, echo)
    left = audit.delete_and_recheck(sess, project, found, echo=echo)
    if not left:
        echo(f"    audit: nothing billable of '{project}' left in {sess.region_name}")
    return left
