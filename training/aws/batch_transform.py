"""``transform --target aws``: a SageMaker Batch Transform job on the deployed model.

Scores whole files from S3 on instances that exist only while the job runs: no endpoint is
needed or left behind. Local input is uploaded to ``transform/<job>/input/``, the answers land
in ``transform/<job>/output/<file>.out`` (or a given ``s3://`` prefix), encrypted with the
project key, and are downloaded in input order when ``--out`` is a folder. The job carries the
project tag and a name of the project's (``<project>-transform-<UTC stamp>``), so ``audit``
and ``destroy-all`` find (and stop) it and nothing of another project.

A model with preprocessing is scored as the endpoint serves it, on raw rows: the job's Model
is the same serial inference pipeline (``training.aws.images.pipeline_containers``; SageMaker
runs pipeline Models in batch transform too, DG inference-pipeline-batch.md). A local raw CSV
with a header is sent without it (SplitType Line would send the header as a record of its
own), its input columns in source order; MaxPayloadInMB keeps each batch's features under the
5 MB a pipeline's containers may pass each other.
"""

from __future__ import annotations

import dataclasses
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from training.aws import session as aws
from training.aws.download import split_s3_url
from training.aws.instance_types import DEFAULT as DEFAULT_INSTANCE_TYPE
from training.aws.instance_types import accepts_volume_key
from training.aws.naming import (
    DEFAULT_PROJECT,
    EXECUTION_S3,
    TAG_KEY,
    Container,
    LogGroup,
    Output,
    Prefix,
    Stack,
    is_s3_url,
    stack_name,
    stamp,
    transform_job_name,
)
from training.aws.upload import upload_files
from training.batch_transform import (
    MB,
    PIPELINE_BYTES,
    TransformConfig,
    input_files,
    pipeline_payload_mb,
    raw_records,
    records,
)
from training.content_types import CSV, JSON, JSONLINES, RECORDIO
from training.core import artifact
from training.core.featurizer import PREPROCESSING_FILE, Featurizer, PreprocessingError
from training.errors import (
    ArtifactError,
    Problem,
    TransformFailedError,
    ValidationError,
    known_fix,
)
from training.limits import MAX_ARCHIVE_BYTES, MAX_PREPROCESSING_BYTES
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


# What a job on SageMaker may send Linear Learner: "For inference, the linear learner algorithm
# supports the application/json, application/x-recordio-protobuf, and text/csv formats"
# (SageMaker DG, "Linear Learner Algorithm", Input/Output interface, linear-learner.html);
# "Common data formats for inference" (cdf-inference.html) has application/jsonlines as an
# answer (Accept) format only. application/json does not split into records (SplitType None:
# a file is one request), so a transform takes CSV or RecordIO.
AWS_INPUTS = (CSV, RECORDIO)


def check_aws_input(config: TransformConfig) -> None:
    """Refuse, before anything is read, uploaded or made, an input type Linear Learner is not
    documented to take (JSON lines: the local transform reads them, SageMaker's need not)."""
    if config.content_type in AWS_INPUTS:
        return
    raise ValidationError(
        [
            Problem(
                f"--content-type {config.content_type}",
                f"{config.input}: Linear Learner on SageMaker is documented to take "
                f"{CSV}, {RECORDIO} or application/json for inference, not "
                f"{config.content_type}",
                f"convert the rows to CSV (features only, no header) or RecordIO, or score "
                f"them with predict --target aws; --target local reads {JSONLINES} too",
            )
        ]
    )


def check_role_reach(config: TransformConfig, bucket: str) -> None:
    """An ``s3://`` input the execution role may not read, or an output it may not write,
    refused before the job starts: the job would fail with AccessDenied after its instances
    were billed. The role's grants are :data:`training.aws.naming.EXECUTION_S3` on the project
    bucket alone, the one home the base stack builds them from."""
    problems = []
    for flag, uri, access in (("--input", config.input, "read"), ("--out", config.out, "write")):
        if not is_s3_url(str(uri)):
            continue
        where, key = split_s3_url(str(uri))
        prefixes = [p.rstrip("*") for p in EXECUTION_S3[access]]
        if where == bucket and any(key.startswith(p) for p in prefixes):
            continue
        allowed = ", ".join(f"s3://{bucket}/{p}" for p in prefixes)
        problems.append(
            Problem(
                f"{flag} {uri}",
                f"the job's execution role may {access} only under {allowed}",
                f"copy the data under s3://{bucket}/{Prefix.TRANSFORM} (aws s3 cp --recursive)"
                if access == "read"
                else f"write under s3://{bucket}/{Prefix.TRANSFORM}, or to a local folder",
            )
        )
    if problems:
        raise ValidationError(problems)


def relative_names(input_path: str | Path, files: list[Path]) -> list[str]:
    """Each local input's path relative to the input folder (its name for one file): the key
    it is uploaded under and, as SageMaker mirrors input keys in the output prefix
    (TransformOutput.S3OutputPath: "in a corresponding subfolder"), its answer's."""
    root = Path(input_path)
    if not root.is_dir():
        return [f.name for f in files]
    return [f.relative_to(root).as_posix() for f in files]


def upload_keys(names: list[str]) -> list[str]:
    """The key each input is uploaded under, below the job's input prefix: its relative path
    when none is in a sub-folder, else numbered and flat (``0002_b_x.csv``), mapped back to
    the sub-folder on download. TransformOutput.S3OutputPath promises "a corresponding
    subfolder" but its own example does not keep one (input-name-prefix/dataset01/data.csv ->
    output-name-prefix/input-name-prefix/data.csv.out), so no answer's key depends on how
    SageMaker lays sub-folders out."""
    if not any("/" in n for n in names):
        return list(names)
    return [f"{i:04d}_{n.replace('/', '_')}" for i, n in enumerate(names, 1)]


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
    # model_path's preprocessing (default: the preprocessing.json beside a local model): the
    # job's Model is then the serial pipeline on raw rows; False: encoded features
    preprocessing: str | None = None
    use_preprocessing: bool = True


@dataclass(frozen=True)
class Pipeline:
    """The preprocessing a job's Model runs behind (its featurizer container), and whether
    the Model ends in the class decoder."""

    featurizer: Featurizer
    decodes: bool
    preprocessing: Path | None = None  # the local preprocessing.json (to build the artifact)


def deployed_model(sm, endpoint: str) -> str:
    """The SageMaker Model behind the project's endpoint (CloudFormation names it)."""
    import botocore.exceptions

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
    check_aws_input(config)
    files = [] if is_s3_url(config.input) else input_files(config.input)
    names = relative_names(config.input, files)
    sess = aws.session(where.profile, where.region)
    sm = sess.client("sagemaker")
    outputs = aws.stack_outputs(sess, stack_name(where.project, Stack.BASE))
    bucket = outputs[Output.BUCKET]
    name = transform_job_name(where.project, stamp())
    made = None
    if where.model_path:
        pipeline = artifact_pipeline(where)  # checked before anything is uploaded or made
        check_role_reach(config, bucket)  # the job's Model runs as the project's role
    else:
        model = where.model_name or deployed_model(sm, aws.deployed_endpoint(sess, where.project))
        described = sm.describe_model(ModelName=model)
        if described.get("ExecutionRoleArn") == outputs.get(Output.ROLE):
            check_role_reach(config, bucket)  # another role's grants are not ours to know
        pipeline = served_pipeline(sess, described)
    with tempfile.TemporaryDirectory(prefix="ll-transform-") as tmp:
        if pipeline is not None:
            check_pipeline_accept(config, pipeline)
            sampled = (
                None
                if files
                else s3_shortest(sess, config.input, pipeline.featurizer, config.content_type)
            )
            files, payload_mb = pipeline_input(
                config, pipeline.featurizer, files, Path(tmp), sampled
            )
            config = dataclasses.replace(config, max_payload_mb=payload_mb)
            echo(
                f"raw rows through the model's preprocessing ({len(pipeline.featurizer.inputs)}"
                f" input columns): MaxPayloadInMB {payload_mb}"
            )
        if where.model_path:
            model = made = _model_from_artifact(
                sess, sm, where, outputs, name, config.show_progress, pipeline
            )
            kind = "serial pipeline" if pipeline is not None else "model"
            echo(f"{kind} {model} made for this job from {where.model_path}")
        try:
            s3 = aws.s3_client_for(sess, bucket)
            if files:
                prefix = Prefix.transform_input(name)
                keys = upload_keys(names)
                upload = {f"{prefix}/{k}": f for k, f in zip(keys, files, strict=True)}
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
                f"transform job {name} started ({where.instance_count} x "
                f"{where.instance_type}, model {model})"
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
        downloaded = download_outputs(
            sess, output_uri, Path(config.out), names or None, config.show_progress,
            upload_keys(names) if names else None,
        )  # fmt: skip
    return TransformResult(name, status, output_uri, downloaded)


def artifact_pipeline(where: AwsTransform) -> Pipeline | None:
    """The preprocessing ``where.model_path`` is served behind (None: encoded features): a
    local model is checked against it (width, predictor type, classes) before anything is
    uploaded; a model in S3 takes ``where.preprocessing`` as given."""
    from training.model_source import load_pipeline, preprocessing_path

    if not where.use_preprocessing:
        return None
    path = preprocessing_path(where.model_path, where.preprocessing, where.use_preprocessing)
    if path is None:
        return None
    if is_s3_url(where.model_path):
        try:
            featurizer = Featurizer.load(path)
        except PreprocessingError as err:
            raise ValidationError([Problem(str(path), str(err), "check --preprocessing")]) from None
    else:
        featurizer = load_pipeline(where.model_path, path, show_progress=False).featurizer
    from training.aws.images import decodes

    return Pipeline(featurizer, decodes(featurizer.predictor_type), Path(path))


def served_pipeline(sess, described: dict) -> Pipeline | None:
    """The preprocessing of a deployed Model (DescribeModel), when it is the project's serial
    pipeline: read from its featurizer container's artifact (the preprocessing.json inside
    featurizer.tar.gz), so raw files are sent as the pipeline takes them."""
    containers = described.get("Containers") or []
    hosts = [c.get("ContainerHostname") for c in containers]
    if not containers or hosts[0] != Container.FEATURIZE:
        return None
    url = containers[0]["ModelDataUrl"]
    bucket, key = split_s3_url(url)
    obj = aws.s3_client_for(sess, bucket).get_object(Bucket=bucket, Key=key)
    body = obj["Body"].read(MAX_ARCHIVE_BYTES + 1)  # past it tar_member refuses it
    try:
        raw = artifact.tar_member(body, url, PREPROCESSING_FILE, MAX_PREPROCESSING_BYTES)
        featurizer = Featurizer.from_text(raw, url)
    except (ArtifactError, PreprocessingError) as err:
        raise ValidationError(
            [
                Problem(
                    url,
                    f"the deployed pipeline's featurizer artifact cannot be read ({err})",
                    "redeploy the model (python -m training deploy --model …)",
                )
            ]
        ) from None
    return Pipeline(featurizer, Container.DECODE in hosts)


def check_pipeline_accept(config: TransformConfig, pipeline: Pipeline) -> None:
    """A classifier pipeline ends in the decoder, which answers JSON or JSON lines only
    (``featurizer_code/decode.py``): RecordIO is refused here, not by a failed job."""
    if pipeline.decodes and config.accept not in (JSON, JSONLINES):
        raise ValidationError(
            [
                Problem(
                    "--accept",
                    f"'{config.accept}': the model's pipeline ends in the class decoder, "
                    f"which answers {JSONLINES} or {JSON} (with predicted_class) only",
                    f"use --accept {JSONLINES} (the default), or --no-preprocessing to score "
                    "encoded features with Linear Learner alone",
                )
            ]
        )


def pipeline_input(
    config: TransformConfig,
    featurizer: Featurizer,
    files: list[Path],
    folder: Path,
    s3_shortest: int | None = None,
) -> tuple[list[Path], int]:
    """The files to upload for a job on a pipeline Model, and its MaxPayloadInMB.

    A raw CSV with a header is rewritten into ``folder`` (same name) as the records the
    pipeline takes: headerless, the input columns in source order
    (``training.batch_transform.raw_records``), since SplitType Line would send the header as
    a record. MaxPayloadInMB comes from the shortest record (``pipeline_payload_mb``): a batch
    of rows that short has the most rows, so the most features to pass on. An S3 input is not
    read here: ``s3_shortest`` is its sampled shortest record (:func:`s3_shortest`). RecordIO
    passes the featurizer unchanged, so its batches stay under the same 4 MB."""
    if config.content_type == RECORDIO:
        return files, max(1, min(int(config.max_payload_mb), PIPELINE_BYTES // MB))
    from training.data.raw_files import has_header

    out, lengths = [], []
    for path in files:
        if config.content_type == CSV and has_header(path, featurizer):
            target = folder / str(len(out)) / path.name  # a/x.csv and b/x.csv stay apart
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(target, "wb") as fh:
                for _, record in raw_records(path, featurizer):
                    fh.write(record)
                    lengths.append(len(record))
            out.append(target)
        else:
            every = records(path, config.content_type, int(config.max_payload_mb * MB))
            lengths += [len(record) for _, record in every]
            out.append(path)
    if s3_shortest is not None:
        lengths.append(s3_shortest)
    shortest = min(lengths, default=len(featurizer.inputs))
    return out, pipeline_payload_mb(config.max_payload_mb, featurizer.width, max(1, shortest))


SAMPLE_BYTES = 1 << 20  # read of each S3 input object to size a pipeline job's batches
SAMPLE_OBJECTS = 20


def s3_shortest(sess, uri: str, featurizer: Featurizer, content_type: str) -> int:
    """The shortest record (line, with its newline) in the first MiB of the first objects of
    an S3 input, for :func:`pipeline_input`: a sample, so rows further in may be shorter (a
    job failing on the 5 MB between containers then needs a lower --max-payload-mb). A raw
    CSV with a header is refused: it cannot be rewritten in S3, and SplitType Line would send
    its header as a row."""
    import csv

    bucket, prefix = split_s3_url(uri)
    s3 = aws.s3_client_for(sess, bucket)
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=SAMPLE_OBJECTS)
    names = {c.name for c in featurizer.inputs}
    shortest = None
    for obj in listed.get("Contents", []):
        if obj["Size"] == 0:
            continue
        body = s3.get_object(Bucket=bucket, Key=obj["Key"], Range=f"bytes=0-{SAMPLE_BYTES - 1}")
        lines = body["Body"].read().split(b"\n")
        if obj["Size"] > SAMPLE_BYTES or not lines[-1]:
            lines = lines[:-1]  # cut by the range, or the empty rest after the last newline
        first = next(csv.reader([lines[0].decode("utf-8", "replace")]), []) if lines else []
        if content_type == CSV and names <= {cell.strip() for cell in first}:
            raise ValidationError(
                [
                    Problem(
                        f"s3://{bucket}/{obj['Key']}",
                        "a raw CSV with a header: SplitType Line would send the header as a "
                        "row, which the featurizer refuses",
                        "pass the local file (its header is left out before upload), or "
                        "remove the header in S3",
                    )
                ]
            )
        for line in lines:
            size = len(line.rstrip(b"\r")) + 1
            shortest = size if shortest is None else min(shortest, size)
    return shortest if shortest is not None else len(featurizer.inputs)


def _model_from_artifact(
    sess, sm, where: AwsTransform, outputs: dict, name: str, show, pipeline: Pipeline | None
) -> str:
    """A Model for the job from an artifact: a local file is checked and uploaded
    content-addressed (as ``deploy --model`` does); an S3 one must be in the project
    bucket's models/, which the execution role may read. With preprocessing, the Model is the
    endpoint's serial pipeline, its featurizer.tar.gz uploaded content-addressed too."""
    from training.aws.images import linear_learner_image, sklearn_image
    from training.aws.job import upload_featurizer
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
    region = sess.region_name
    featurizer = None
    if pipeline is not None:
        featurizer_url, _ = upload_featurizer(
            aws.s3_client_for(sess, bucket), bucket, pipeline.preprocessing, show
        )
        featurizer = (sklearn_image(region), featurizer_url, pipeline.featurizer.predictor_type)
    sm.create_model(
        **model_request(
            name, outputs[Output.ROLE], linear_learner_image(region), url, where.project, featurizer
        )
    )
    return name


def model_request(
    name: str,
    role_arn: str,
    image: str,
    url: str,
    project: str,
    featurizer: tuple[str, str, str | None] | None = None,
) -> dict:
    """CreateModel for a job's own model: as the endpoint stack's (network-isolated, run as
    the execution role), named after the job and tagged, so audit knows it (pure).

    With ``featurizer`` (the scikit-learn image, the featurizer.tar.gz URL, the predictor
    type), the endpoint stack's serial pipeline: the same ``Containers``, Mode Serial."""
    request = {"ModelName": name, "ExecutionRoleArn": role_arn}
    if featurizer is None:
        request["PrimaryContainer"] = {"Image": image, "ModelDataUrl": url}
    else:
        from training.aws.images import pipeline_containers

        featurizer_image, featurizer_url, predictor_type = featurizer
        request["Containers"] = pipeline_containers(
            featurizer_image, featurizer_url, image, url, predictor_type
        )
        request["InferenceExecutionConfig"] = {"Mode": "Serial"}
    request["EnableNetworkIsolation"] = True
    request["Tags"] = [{"Key": TAG_KEY, "Value": project}]
    return request


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
    sess,
    output_uri: str,
    out: Path,
    names: list[str] | None,
    show_progress: bool = True,
    keys: list[str] | None = None,
) -> list[Path]:
    """``<key>.out`` of each input (``keys``: as uploaded, :func:`upload_keys`; default
    ``names``), in input order, landing at ``<name>.out`` under ``out`` (``names``: paths
    relative to the input folder, so a/x.csv and b/x.csv do not overwrite each other); or every
    ``.out`` object under the output prefix, sorted, at its relative key, when the input was an
    S3 prefix. A missing output is an error, not a silently shorter result."""
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
        targets = [out / key[len(prefix) :] for key in keys]
    else:
        targets = [out / f"{n}.out" for n in names]
        keys = [f"{prefix}{k}.out" for k in (keys or names)]
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
        for key, target in zip(keys, targets, strict=True):
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".{target.name}.part")
            s3.download_file(bucket, key, str(tmp), Callback=bar.update)
            tmp.replace(target)
            written.append(target)
    finally:
        bar.close()
    return written
