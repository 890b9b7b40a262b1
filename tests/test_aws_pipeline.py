"""The serial inference pipeline's AWS commands against moto (the only AWS here): deploy
--model uploads the featurizer beside the model and smoke-tests raw rows, train --target aws
records the data's featurizer, and a batch transform on a model with preprocessing runs on a
pipeline Model of its own, sent headerless raw rows.

moto neither runs CloudFormation's view of the stacks here nor any container: `cdk deploy`
is stood in for by what the endpoint stack would leave (a Model built from the record the
CDK app reads, its config, endpoint and outputs), and the endpoint's answers are planted."""

import hashlib
import json
import shutil
from pathlib import Path

import boto3
import numpy as np
import pytest
import requests
from moto import mock_aws

from stacks.settings import Settings
from training import predict
from training.aws import batch_transform as aws_transform
from training.aws import deploy, featurizer_artifact
from training.aws import session as aws
from training.aws.batch_transform import (
    AwsTransform,
    model_request,
    pipeline_input,
    transform_aws,
)
from training.aws.images import linear_learner_image, sklearn_image
from training.aws.job import AwsTrainConfig, train_aws
from training.aws.model_record import ModelRecord
from training.batch_transform import TransformConfig, pipeline_payload_mb, raw_records
from training.core.featurizer import Featurizer, with_classes
from training.data.prepare import PrepareConfig, prepare
from training.errors import DeployStepError, ValidationError
from training.local.trainer import train_local
from training.model_source import load_pipeline

ROOT = Path(__file__).parents[1]
BUCKET = "ll-e2e-bucket-123"
ROLE = "arn:aws:iam::123456789012:role/ll-e2e-exec"
KEY = "arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A real binary model on the penguins, with the preprocessing train puts beside it."""
    out = tmp_path_factory.mktemp("penguins")
    prepare(
        PrepareConfig(
            ROOT / "training" / "datasets" / "penguins.csv",
            "sex",
            "binary_classifier",
            out / "data",
            drop_unlabeled=True,
            show_progress=False,
        )
    )
    train_local(
        out / "data", out / "model", {"epochs": "2"}, show_progress=False, echo=lambda s: None
    )
    assert (out / "model" / "preprocessing.json").is_file()
    return out


@pytest.fixture
def moto_aws():
    with mock_aws():
        yield boto3.Session(region_name="us-east-1")


def base_stack(sess) -> None:
    """What the base stack leaves: the bucket and its outputs."""
    aws.create_bucket(sess, BUCKET, "us-east-1")
    outputs = {
        "BucketName": {"Value": BUCKET},
        "RoleArn": {"Value": ROLE},
        "KeyArn": {"Value": KEY},
    }
    sess.client("cloudformation").create_stack(
        StackName="LlE2eBase",
        TemplateBody=json.dumps(
            {"Resources": {"T": {"Type": "AWS::SNS::Topic"}}, "Outputs": outputs}
        ),
    )


def plant(answers: list[dict]) -> None:
    """The endpoint's next answer (moto runs no container)."""
    body = json.dumps({"predictions": answers})
    requests.post(
        "http://motoapi.amazonaws.com/moto-api/static/sagemaker/endpoint-results",
        json={"results": [{"Body": body, "ContentType": "application/json"}]},
        timeout=10,
    )


class StandInCdk:
    """`cdk deploy` as the endpoint stack would leave things: the CDK app's own reading of
    the context (Settings.model_artifact, so the record deploy writes is what the app
    serves), the Model as pipeline_containers describes it, and the stack's outputs."""

    def __init__(self, sess):
        self.sess, self.served, self.deploys = sess, None, 0

    def __call__(self, args: list[str], echo) -> None:
        context = dict(args[i + 1].split("=", 1) for i, a in enumerate(args) if a == "-c")
        self.served = served = Settings.from_context(context.get).model_artifact()
        self.deploys += 1
        sm = self.sess.client("sagemaker")
        name, config = f"LlE2eEndpoint-Model-{self.deploys}", f"EndpointConfig-{self.deploys}"
        featurizer = None
        if served.featurizer_data_url:
            featurizer = (
                sklearn_image("us-east-1"),
                served.featurizer_data_url,
                served.predictor_type,
            )
        if served.model_package_arn:  # a registry version: one container naming it
            sm.create_model(
                ModelName=name,
                ExecutionRoleArn=ROLE,
                Containers=[{"ModelPackageName": served.model_package_arn}],
                EnableNetworkIsolation=True,
            )
        else:
            request = model_request(
                name, ROLE, served.image_uri, served.model_data_url, "ll-e2e", featurizer
            )
            sm.create_model(**{k: v for k, v in request.items() if k != "InferenceExecutionConfig"})
        sm.create_endpoint_config(
            EndpointConfigName=config,
            ProductionVariants=[
                {
                    "VariantName": "AllTraffic",
                    "ModelName": name,
                    "InitialInstanceCount": 1,
                    "InstanceType": "ml.m5.large",
                }
            ],
        )
        if self.deploys > 1:  # CloudFormation updates it in place; moto has no UpdateEndpoint
            sm.delete_endpoint(EndpointName="ll-e2e-endpoint")
        sm.create_endpoint(EndpointName="ll-e2e-endpoint", EndpointConfigName=config)
        outputs = {
            "EndpointName": "ll-e2e-endpoint",
            "EndpointConfigName": config,
            "ModelName": name,
            "ModelDataUrl": served.model_data_url,
            "ImageUri": served.image_uri,
        }
        if served.featurizer_data_url:
            outputs["FeaturizerDataUrl"] = served.featurizer_data_url
        if served.model_package_arn:
            outputs["ModelPackageArn"] = served.model_package_arn
        template = {
            "Resources": {"T": {"Type": "AWS::SNS::Topic"}},
            "Outputs": {k: {"Value": v} for k, v in outputs.items()},
        }
        cfn = self.sess.client("cloudformation")
        call = cfn.create_stack if self.deploys == 1 else cfn.update_stack
        call(StackName="LlE2eEndpoint", TemplateBody=json.dumps(template))


@pytest.fixture
def sent(monkeypatch):
    """Every request the smoke prediction sends the endpoint: (body, content type)."""
    requests_sent = []
    real = predict.aws_invoker

    def recording(sess, endpoint):
        invoke = real(sess, endpoint)

        def call(body, content_type):
            requests_sent.append((body, content_type))
            return invoke(body, content_type)

        return call

    monkeypatch.setattr(predict, "aws_invoker", recording)
    return requests_sent


def local_answer(model_file: Path, lines: list[str]) -> list[dict]:
    """What the model behind its preprocessing answers here for these raw rows."""
    served = load_pipeline(str(model_file))
    X = served.featurizer.features_from_csv("\n".join(lines) + "\n")
    return with_classes(served.model.predict(X).rows(), served.classes)


# ----------------------------------------------------------------------------- deploy --model


def test_deploy_model_uploads_the_featurizer_content_addressed_and_smoke_tests_raw_rows(
    moto_aws, trained, tmp_path, monkeypatch, sent
):
    base_stack(moto_aws)
    stand_in = StandInCdk(moto_aws)
    monkeypatch.setattr(deploy, "cdk", stand_in)
    model_file = trained / "model" / "model.tar.gz"
    preprocessing = trained / "model" / "preprocessing.json"
    featurizer = Featurizer.load(preprocessing)
    row = deploy.fill_row(featurizer)  # no --data-dir: one row of the fill values
    assert row.split(",")[:2] == [str(featurizer.inputs[0].fill), str(featurizer.inputs[1].fill)]
    plant(local_answer(model_file, [row]))
    lines = []
    record_file = tmp_path / "latest.json"
    done = deploy.deploy_model(
        model_file, record=record_file, show_progress=False, echo=lines.append
    )

    model_key = f"models/sha256/{hashlib.sha256(model_file.read_bytes()).hexdigest()}/model.tar.gz"
    featurizer_bytes = featurizer_artifact.to_bytes(preprocessing)
    digest = hashlib.sha256(featurizer_bytes).hexdigest()
    featurizer_key = f"models/featurizer/sha256/{digest}/featurizer.tar.gz"
    s3 = moto_aws.client("s3")
    assert s3.get_object(Bucket=BUCKET, Key=model_key)["Body"].read() == model_file.read_bytes()
    assert s3.get_object(Bucket=BUCKET, Key=featurizer_key)["Body"].read() == featurizer_bytes
    record = ModelRecord.load(record_file)
    assert record == done.record
    assert record.model_data_url == f"s3://{BUCKET}/{model_key}"
    assert record.featurizer_data_url == f"s3://{BUCKET}/{featurizer_key}"
    assert record.predictor_type == "binary_classifier"
    # the CDK app reads the record as a pipeline; the endpoint's Model is one
    assert stand_in.served.featurizer_data_url == record.featurizer_data_url
    model = moto_aws.client("sagemaker").describe_model(ModelName=done.endpoint.model_name)
    assert [c["Image"] for c in model["Containers"]] == [
        sklearn_image("us-east-1"),
        linear_learner_image("us-east-1"),
        sklearn_image("us-east-1"),
    ]
    assert done.endpoint.featurizer_data_url == record.featurizer_data_url
    # the smoke prediction: the raw row as a client sends it, compared with the local answer
    assert sent == [((row + "\n").encode(), "text/csv")]
    assert any(
        "smoke prediction on raw rows, compared with the artifact's own answer" in line
        for line in lines
    )
    assert any("as the artifact does" in line for line in lines)

    # again, with the data: its first five test rows; nothing new uploaded
    data = trained / "data"
    test_rows = predict.read_raw(data / "test_rows.csv", featurizer, labelled=False).lines[:5]
    plant(local_answer(model_file, test_rows))
    lines.clear()
    sent.clear()
    deploy.deploy_model(
        model_file, record=record_file, data_dir=data, show_progress=False, echo=lines.append
    )
    assert sent == [(("\n".join(test_rows) + "\n").encode(), "text/csv")]
    assert any(f"{record.featurizer_data_url} (already there)" in line for line in lines)


def test_deploy_model_refuses_an_endpoint_whose_pipeline_answers_otherwise(
    moto_aws, trained, tmp_path, monkeypatch, sent
):
    base_stack(moto_aws)
    monkeypatch.setattr(deploy, "cdk", StandInCdk(moto_aws))
    plant([{"score": 0.01, "predicted_label": 0, "predicted_class": "female"}])
    with pytest.raises(DeployStepError, match="answered scores"):
        deploy.deploy_model(
            trained / "model" / "model.tar.gz",
            record=tmp_path / "latest.json",
            show_progress=False,
            echo=lambda s: None,
        )


def test_deploy_model_without_its_preprocessing_serves_encoded_features(
    moto_aws, trained, tmp_path, monkeypatch, sent
):
    base_stack(moto_aws)
    stand_in = StandInCdk(moto_aws)
    monkeypatch.setattr(deploy, "cdk", stand_in)
    alone = tmp_path / "model.tar.gz"
    shutil.copyfile(trained / "model" / "model.tar.gz", alone)
    model = load_pipeline(str(alone)).model
    expected = model.predict(np.zeros((5, model.feature_dim), np.float32))
    plant(expected.rows())
    done = deploy.deploy_model(
        alone, record=tmp_path / "latest.json", show_progress=False, echo=lambda s: None
    )
    assert done.record.featurizer_data_url is None and not stand_in.served.raw_rows
    assert sent[0][1] == "text/csv" and sent[0][0].startswith(b"0,0,0")
    keys = [o["Key"] for o in moto_aws.client("s3").list_objects_v2(Bucket=BUCKET)["Contents"]]
    assert not [k for k in keys if "featurizer" in k]


# ----------------------------------------------------------------------------- train --target aws


def test_a_training_job_records_the_datas_featurizer(moto_aws, trained, tmp_path):
    base_stack(moto_aws)
    data = trained / "data"
    config = AwsTrainConfig(
        data_dir=data, region="us-east-1", poll_s=0, record=tmp_path / "r.json", show_progress=False
    )
    lines = []
    record = train_aws(config, echo=lines.append)
    featurizer_bytes = featurizer_artifact.to_bytes(data / "preprocessing.json")
    key = (
        f"models/featurizer/sha256/{hashlib.sha256(featurizer_bytes).hexdigest()}/featurizer.tar.gz"
    )
    assert record.featurizer_data_url == f"s3://{BUCKET}/{key}"
    assert record.predictor_type == "binary_classifier"
    assert ModelRecord.load(tmp_path / "r.json") == record
    body = moto_aws.client("s3").get_object(Bucket=BUCKET, Key=key)["Body"].read()
    assert body == featurizer_bytes
    assert any("the endpoint will take raw rows" in line for line in lines)
    # without the preprocessing: encoded features, the predictor type still recorded
    plain = train_aws(
        AwsTrainConfig(
            data_dir=data,
            region="us-east-1",
            poll_s=0,
            record=tmp_path / "plain.json",
            show_progress=False,
            use_preprocessing=False,
        ),
        echo=lambda s: None,
    )
    assert plain.featurizer_data_url is None and plain.predictor_type == "binary_classifier"


def test_preprocessing_that_does_not_describe_the_job_stops_it_before_any_upload(
    moto_aws, trained, tmp_path
):
    base_stack(moto_aws)
    data = tmp_path / "data"
    shutil.copytree(trained / "data", data)
    doc = json.loads((data / "preprocessing.json").read_text())
    doc["predictor_type"], doc["classes"] = "regressor", []
    (data / "preprocessing.json").write_text(json.dumps(doc))
    config = AwsTrainConfig(
        data_dir=data, region="us-east-1", poll_s=0, record=tmp_path / "r.json", show_progress=False
    )
    with pytest.raises(
        ValidationError, match="was fitted for a regressor; the job trains a binary"
    ):
        train_aws(config, echo=lambda s: None)
    assert "Contents" not in moto_aws.client("s3").list_objects_v2(Bucket=BUCKET)
    assert not moto_aws.client("sagemaker").list_training_jobs()["TrainingJobSummaries"]


# ----------------------------------------------------------------------------- batch transform


def container_writes(sess, seen: dict, body: bytes = b"{}\n"):
    """SageMaker's part of a job, which moto does not play: what the job was given is kept
    (its Model, its input objects) and each input gets an output."""
    real_wait = aws_transform.wait_for_transform

    def wait(sm, name, poll_s, echo):
        job = sm.describe_transform_job(TransformJobName=name)
        seen["job"] = job
        seen["model"] = sm.describe_model(ModelName=job["ModelName"])
        s3 = sess.client("s3")
        source = job["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"]
        prefix = source.split(BUCKET + "/", 1)[1]
        out = job["TransformOutput"]["S3OutputPath"].split(BUCKET + "/", 1)[1]
        seen["inputs"] = {}
        for obj in s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix)["Contents"]:
            file = obj["Key"].rsplit("/", 1)[1]
            seen["inputs"][file] = s3.get_object(Bucket=BUCKET, Key=obj["Key"])["Body"].read()
            s3.put_object(Bucket=BUCKET, Key=f"{out}{file}.out", Body=body)
        return real_wait(sm, name, poll_s, echo)

    return wait


def test_a_transform_on_a_pipeline_artifact_runs_a_pipeline_model_on_headerless_raw_rows(
    moto_aws, trained, tmp_path, monkeypatch
):
    base_stack(moto_aws)
    seen = {}
    monkeypatch.setattr(aws_transform, "wait_for_transform", container_writes(moto_aws, seen))
    raw = tmp_path / "in"
    raw.mkdir()
    shutil.copyfile(trained / "data" / "test_rows.csv", raw / "penguins.csv")
    model_file = trained / "model" / "model.tar.gz"
    featurizer = Featurizer.load(trained / "model" / "preprocessing.json")
    config = TransformConfig(str(raw), str(tmp_path / "out"), show_progress=False)
    lines = []
    result = transform_aws(
        config,
        AwsTransform(region="us-east-1", poll_s=0, model_path=str(model_file)),
        echo=lines.append,
    )
    # the job's own Model: the endpoint's pipeline, on content-addressed artifacts
    made = seen["model"]
    assert made["ModelName"] == result.name
    hosts = [c["ContainerHostname"] for c in made["Containers"]]
    assert hosts == ["featurize", "linear-learner", "decode"]
    digest = hashlib.sha256(
        featurizer_artifact.to_bytes(trained / "model" / "preprocessing.json")
    ).hexdigest()
    assert made["Containers"][0]["ModelDataUrl"] == (
        f"s3://{BUCKET}/models/featurizer/sha256/{digest}/featurizer.tar.gz"
    )
    # (moto keeps neither InferenceExecutionConfig nor EnableNetworkIsolation: the request has
    # them, built by the same function the job used)
    request = model_request("j", ROLE, "ll", "s3://b/m", "ll-e2e", ("sk", "s3://b/f", None))
    assert request["InferenceExecutionConfig"] == {"Mode": "Serial"}
    assert request["EnableNetworkIsolation"] is True and "PrimaryContainer" not in request
    # the input went up headerless, the input columns in source order
    expected = b"".join(r for _, r in raw_records(raw / "penguins.csv", featurizer))
    assert seen["inputs"] == {"penguins.csv": expected}
    assert not expected.startswith(b"species")
    shortest = min(len(r) for _, r in raw_records(raw / "penguins.csv", featurizer))
    assert seen["job"]["MaxPayloadInMB"] == pipeline_payload_mb(6, featurizer.width, shortest)
    assert seen["job"]["TransformOutput"]["Accept"] == "application/jsonlines"
    names = [m["ModelName"] for m in moto_aws.client("sagemaker").list_models()["Models"]]
    assert result.name not in names  # deleted once the job ended
    assert [p.name for p in result.downloaded] == ["penguins.csv.out"]
    assert any("MaxPayloadInMB" in line for line in lines)


def test_a_classifier_pipeline_refuses_recordio_answers_before_anything_is_made(
    moto_aws, trained, tmp_path
):
    base_stack(moto_aws)
    (tmp_path / "a.csv").write_text("1,2\n")
    config = TransformConfig(
        str(tmp_path / "a.csv"),
        str(tmp_path / "out"),
        accept="application/x-recordio-protobuf",
        show_progress=False,
    )
    where = AwsTransform(region="us-east-1", model_path=str(trained / "model" / "model.tar.gz"))
    with pytest.raises(ValidationError, match="ends in the class decoder"):
        transform_aws(config, where, echo=lambda s: None)
    assert not moto_aws.client("sagemaker").list_models()["Models"]
    assert "Contents" not in moto_aws.client("s3").list_objects_v2(Bucket=BUCKET)


def test_a_transform_with_the_deployed_pipeline_reads_its_featurizer_from_s3(
    moto_aws, trained, tmp_path, monkeypatch
):
    """No --model: the endpoint's Model. When that is the project's pipeline, the
    preprocessing inside its featurizer artifact says how to send a raw file."""
    base_stack(moto_aws)
    preprocessing = trained / "model" / "preprocessing.json"
    s3 = moto_aws.client("s3")
    s3.put_object(
        Bucket=BUCKET, Key="models/f.tar.gz", Body=featurizer_artifact.to_bytes(preprocessing)
    )
    request = model_request(
        "LlE2eEndpoint-Model-1",
        ROLE,
        "ll",
        f"s3://{BUCKET}/models/m.tar.gz",
        "ll-e2e",
        ("sk", f"s3://{BUCKET}/models/f.tar.gz", "binary_classifier"),
    )
    sm = moto_aws.client("sagemaker")
    sm.create_model(**{k: v for k, v in request.items() if k != "InferenceExecutionConfig"})
    sm.create_endpoint_config(
        EndpointConfigName="c",
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": "LlE2eEndpoint-Model-1",
                "InitialInstanceCount": 1,
                "InstanceType": "ml.m5.large",
            }
        ],
    )
    sm.create_endpoint(EndpointName="ll-e2e-endpoint", EndpointConfigName="c")
    seen = {}
    monkeypatch.setattr(aws_transform, "wait_for_transform", container_writes(moto_aws, seen))
    raw = tmp_path / "rows.csv"
    shutil.copyfile(trained / "data" / "test_rows.csv", raw)
    config = TransformConfig(str(raw), str(tmp_path / "out"), show_progress=False)
    transform_aws(config, AwsTransform(region="us-east-1", poll_s=0), echo=lambda s: None)
    featurizer = Featurizer.load(preprocessing)
    assert seen["job"]["ModelName"] == "LlE2eEndpoint-Model-1"
    assert seen["inputs"]["rows.csv"] == b"".join(r for _, r in raw_records(raw, featurizer))


def test_pipeline_input_sizes_batches_by_the_shortest_row_and_passes_recordio(trained, tmp_path):
    featurizer = Featurizer.load(trained / "model" / "preprocessing.json")
    headerless = tmp_path / "rows.csv"
    headerless.write_text("Adelie,Dream,40,18,190,3700,2008\n")
    config = TransformConfig(str(headerless), str(tmp_path / "out"), max_payload_mb=100)
    files, mb = pipeline_input(config, featurizer, [headerless], tmp_path)
    assert files == [headerless]  # no header: sent as it is
    assert mb == pipeline_payload_mb(100, featurizer.width, len(headerless.read_bytes()))
    assert mb < 100
    # an S3 input is not read there: its sampled shortest row is given
    s3_config = TransformConfig("s3://b/in/", "s3://b/out/")
    assert pipeline_input(s3_config, featurizer, [], tmp_path, 30)[1] == pipeline_payload_mb(
        6, featurizer.width, 30
    )
    recordio = TransformConfig(
        "s3://b/in/", "s3://b/out/", content_type="application/x-recordio-protobuf"
    )
    assert pipeline_input(recordio, featurizer, [], tmp_path)[1] == 4  # under 5 MB between


def test_an_s3_input_is_sampled_for_its_shortest_row_and_a_header_there_refused(moto_aws, trained):
    featurizer = Featurizer.load(trained / "model" / "preprocessing.json")
    aws.create_bucket(moto_aws, BUCKET, "us-east-1")
    s3 = moto_aws.client("s3")
    s3.put_object(Bucket=BUCKET, Key="in/a.csv", Body=b"Adelie,Dream,40,18,190,3700,2008\n")
    s3.put_object(Bucket=BUCKET, Key="in/b.csv", Body=b"Gentoo,Biscoe,5,1,2,3,9\r\nx,y,1,2,3,4,5")
    assert aws_transform.s3_shortest(moto_aws, f"s3://{BUCKET}/in/", featurizer, "text/csv") == 14
    header = (trained / "data" / "test_rows.csv").read_bytes()
    s3.put_object(Bucket=BUCKET, Key="raw/rows.csv", Body=header)
    with pytest.raises(ValidationError, match="a raw CSV with a header"):
        aws_transform.s3_shortest(moto_aws, f"s3://{BUCKET}/raw/", featurizer, "text/csv")


# ----------------------------------------------------------------------------- deploy --approved


def test_deploy_approved_serves_the_registrys_approved_version_and_refuses_otherwise(
    moto_aws, trained, tmp_path, monkeypatch, sent
):
    from training.aws.registry import AwsRegistry
    from training.core.registry import APPROVED, REJECTED
    from training.errors import RegistryError

    base_stack(moto_aws)
    moto_aws.client("sagemaker").create_model_package_group(
        ModelPackageGroupName="ll-e2e-models", Tags=[{"Key": "project", "Value": "ll-e2e"}]
    )
    stand_in = StandInCdk(moto_aws)
    monkeypatch.setattr(deploy, "cdk", stand_in)
    registry = AwsRegistry(moto_aws, "ll-e2e", "ll-e2e-models")
    model_file = trained / "model" / "model.tar.gz"
    registry.register(model_file, trained / "model" / "preprocessing.json")
    record_file = tmp_path / "latest.json"
    with pytest.raises(RegistryError, match="no Approved version .* pending: 1"):
        deploy.deploy_approved(record=record_file, echo=lambda line: None)
    assert not record_file.exists() and stand_in.deploys == 0  # nothing written or deployed

    approved = registry.set_status(1, APPROVED, "beats the baseline")
    featurizer = Featurizer.load(trained / "model" / "preprocessing.json")
    plant(local_answer(model_file, [deploy.fill_row(featurizer)]))
    lines = []
    done = deploy.deploy_approved(record=record_file, echo=lines.append)
    record = ModelRecord.load(record_file)
    assert record.model_package_arn == approved.arn and record.model_data_url == approved.model
    assert record.featurizer_data_url == approved.preprocessing
    assert stand_in.served.model_package_arn == approved.arn  # the app serves the package
    model = moto_aws.client("sagemaker").describe_model(ModelName=done.endpoint.model_name)
    assert model["Containers"] == [{"ModelPackageName": approved.arn}]
    assert done.endpoint.model_package_arn == approved.arn
    assert any("version 1 (Approved: beats the baseline)" in line for line in lines)
    assert any("as the artifact does" in line for line in lines)  # smoke-tested on raw rows

    registry.register(model_file)  # version 2: pending
    with pytest.raises(RegistryError, match="version 2 is PendingManualApproval, not Approved"):
        deploy.deploy_approved(record=record_file, echo=lambda line: None, version_number=2)
    registry.set_status(1, REJECTED, "withdrawn")
    with pytest.raises(RegistryError, match="version 1 is Rejected, not Approved"):
        deploy.deploy_approved(record=record_file, echo=lambda line: None, version_number=1)
    with pytest.raises(RegistryError, match="no Approved version"):
        deploy.deploy_approved(record=record_file, echo=lambda line: None)
    assert ModelRecord.load(record_file) == record and stand_in.deploys == 1  # untouched
