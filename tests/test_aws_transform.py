"""Batch transform on SageMaker, against moto: the request, the upload, the assembled output,
and audit / destroy-all stopping the project's running jobs and nothing else."""

import json

import boto3
import numpy as np
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from training.aws import audit
from training.aws import batch_transform as aws_transform
from training.aws import session as aws
from training.aws.batch_transform import AwsTransform, transform_aws, transform_request
from training.batch_transform import TransformConfig
from training.core.model import LinearModel
from training.errors import ValidationError
from training.local.batch_transform import transform_local

KEY = "arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555"
BUCKET = "ll-e2e-bucket-123"


@pytest.fixture
def moto_aws():
    with mock_aws():
        yield boto3.Session(region_name="us-east-1")


def deploy(sess, endpoint: bool = True, name: str = "ll-e2e-endpoint") -> str:
    """What the base and endpoint stacks leave: bucket, outputs, and a served model behind the
    endpoint ``name``."""
    aws.create_bucket(sess, BUCKET, "us-east-1")
    outputs = {"BucketName": {"Value": BUCKET}, "KeyArn": {"Value": KEY}}
    sess.client("cloudformation").create_stack(
        StackName="LlE2eBase",
        TemplateBody=json.dumps(
            {"Resources": {"T": {"Type": "AWS::SNS::Topic"}}, "Outputs": outputs}
        ),
    )
    if not endpoint:
        return ""
    sm = sess.client("sagemaker")
    sm.create_model(
        ModelName="LlE2eEndpoint-Model-ABC",
        ExecutionRoleArn="arn:aws:iam::123456789012:role/x",
        PrimaryContainer={"Image": "img", "ModelDataUrl": "s3://b/m.tar.gz"},
    )
    sm.create_endpoint_config(
        EndpointConfigName="EndpointConfig-abc",
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": "LlE2eEndpoint-Model-ABC",
                "InitialInstanceCount": 1,
                "InstanceType": "ml.m5.large",
            }
        ],
    )
    sm.create_endpoint(EndpointName=name, EndpointConfigName="EndpointConfig-abc")
    return "LlE2eEndpoint-Model-ABC"


def test_a_job_on_the_deployed_model_is_requested_and_its_output_assembled(
    moto_aws, tmp_path, monkeypatch
):
    model_name = deploy(moto_aws)
    model = LinearModel(
        "regressor", "squared_loss", np.array([1.0, -2.0], np.float32), np.array(0.5, np.float32)
    )
    inputs = tmp_path / "in"
    inputs.mkdir()
    (inputs / "b.csv").write_text("1,2\n3,4\n")
    (inputs / "a.csv").write_text("0.5,0.25\n")
    # SageMaker's part, which moto does not play: the container writes <input>.out. Here it
    # writes what the local transform answers for the same file, so the assembled result can
    # be checked against it.
    expected = transform_local(
        model, TransformConfig(str(inputs), str(tmp_path / "local"), show_progress=False)
    )
    real_wait = aws_transform.wait_for_transform

    def container_then_wait(sm, name, poll_s, echo):
        job = sm.describe_transform_job(TransformJobName=name)
        out = job["TransformOutput"]["S3OutputPath"]
        s3 = moto_aws.client("s3")
        prefix = out.split(BUCKET + "/", 1)[1]
        for path in expected:
            s3.put_object(Bucket=BUCKET, Key=f"{prefix}{path.name}", Body=path.read_bytes())
        return real_wait(sm, name, poll_s, echo)

    monkeypatch.setattr(aws_transform, "wait_for_transform", container_then_wait)
    config = TransformConfig(str(inputs), str(tmp_path / "out"), show_progress=False)
    result = transform_aws(config, AwsTransform(region="us-east-1", poll_s=0), echo=lambda s: None)

    sm = moto_aws.client("sagemaker")
    job = sm.describe_transform_job(TransformJobName=result.name)
    assert result.name.startswith("ll-e2e-transform-")
    assert job["ModelName"] == model_name  # the model the endpoint serves
    assert job["BatchStrategy"] == "MultiRecord" and job["MaxPayloadInMB"] == 6
    assert job["TransformInput"]["ContentType"] == "text/csv"
    assert job["TransformInput"]["SplitType"] == "Line"
    source = job["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"]
    assert source == f"s3://{BUCKET}/transform/{result.name}/input/"
    assert job["TransformOutput"]["Accept"] == "application/jsonlines"
    assert job["TransformOutput"]["AssembleWith"] == "Line"
    assert job["TransformOutput"]["KmsKeyId"] == KEY
    assert job["TransformResources"]["VolumeKmsKeyId"] == KEY
    tags = sm.list_tags(ResourceArn=job["TransformJobArn"])["Tags"]
    assert {"Key": "project", "Value": "ll-e2e"} in tags
    keys = [o["Key"] for o in moto_aws.client("s3").list_objects_v2(Bucket=BUCKET)["Contents"]]
    assert f"transform/{result.name}/input/a.csv" in keys
    # downloaded in input order, byte for byte what the container wrote
    assert [p.name for p in result.downloaded] == ["a.csv.out", "b.csv.out"]
    for got, want in zip(result.downloaded, expected):
        assert got.read_bytes() == want.read_bytes()


def test_without_a_deployed_endpoint_the_error_says_what_to_deploy(moto_aws, tmp_path):
    deploy(moto_aws, endpoint=False)
    (tmp_path / "a.csv").write_text("1,2\n")
    config = TransformConfig(str(tmp_path / "a.csv"), str(tmp_path / "out"), show_progress=False)
    with pytest.raises(
        ValidationError, match=r"(?s)no deployed model to transform with.*deploy-all"
    ):
        transform_aws(config, AwsTransform(region="us-east-1"), echo=lambda s: None)


@pytest.mark.parametrize(
    "name",
    ["ll-e2e-endpoint-serverless", "ll-e2e-endpoint-ml-c5-xlarge"],
    ids=["serverless", "scaled"],
)
def test_the_model_is_found_behind_the_endpoint_the_endpoint_stack_named(moto_aws, name):
    """The endpoint's name carries its mode (and, autoscaled, its instance type), so the
    model to transform with is looked up under the name the endpoint stack deployed, not
    under the real-time default."""
    model = deploy(moto_aws, name=name)
    sm = moto_aws.client("sagemaker")
    # no endpoint stack: the real-time name, which this deployment does not have, is named
    assert aws.deployed_endpoint(moto_aws, "ll-e2e") == "ll-e2e-endpoint"
    with pytest.raises(
        ValidationError, match=r"endpoint ll-e2e-endpoint: no deployed model to transform with"
    ):
        aws_transform.deployed_model(sm, aws.deployed_endpoint(moto_aws, "ll-e2e"))
    outputs = {"EndpointName": {"Value": name}}
    moto_aws.client("cloudformation").create_stack(
        StackName="LlE2eEndpoint",
        TemplateBody=json.dumps(
            {"Resources": {"T": {"Type": "AWS::SNS::Topic"}}, "Outputs": outputs}
        ),
    )
    assert aws.deployed_endpoint(moto_aws, "ll-e2e") == name
    assert aws_transform.deployed_model(sm, aws.deployed_endpoint(moto_aws, "ll-e2e")) == model
    # another project's endpoint stack is not this one's
    assert aws.deployed_endpoint(moto_aws, "other-project") == "other-project-endpoint"


@pytest.mark.parametrize(
    "instance, content_type, accept, payload, split, assemble, volume",
    [
        ("ml.m5.large", "text/csv", "application/jsonlines", 6, "Line", "Line", True),
        (
            "ml.m5d.large",
            "application/x-recordio-protobuf",
            "application/x-recordio-protobuf",
            0.5,
            "RecordIO",
            "None",
            False,
        ),
    ],
)
def test_the_request_follows_the_data_and_the_instance(
    instance, content_type, accept, payload, split, assemble, volume
):
    config = TransformConfig("in", "out", content_type, accept, payload)
    req = transform_request(
        config, AwsTransform(instance_type=instance), "j", "m", "s3://b/i/", "s3://b/o/", KEY
    )
    assert req["TransformInput"]["SplitType"] == split
    assert req["TransformOutput"]["AssembleWith"] == assemble
    assert req["MaxPayloadInMB"] == max(1, int(payload))
    assert ("VolumeKmsKeyId" in req["TransformResources"]) is volume  # NVMe types refuse it


OURS = ["ll-e2e-transform-20261126-001200", "ll-e2e-transform-20261126-001201"]
THEIRS = {  # name -> project tag (None: untagged)
    "ll-e2e-prod-transform-20261126-001200": None,
    "ll-e2ex-transform-20261126-001200": "ll-e2ex",
    "ll-e2e-transform-20261126-001202": "other",  # our pattern, someone else's tag
    "ll-e2e-transform-latest": None,
}


class StubbedSession:
    """A session whose SageMaker client answers from a botocore Stubber (moto neither keeps
    transform jobs running nor implements StopTransformJob)."""

    region_name = "us-east-1"

    def __init__(self, client):
        self._client = client

    def client(self, name):
        if name == "sagemaker":
            return self._client
        # delete() makes its other clients up front; nothing may be called on them
        return Stubber(
            boto3.client(
                name, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
            )
        ).client


def test_audit_finds_and_stops_the_projects_running_transform_jobs_only():
    sm = boto3.client(
        "sagemaker", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    jobs = {OURS[0]: "ll-e2e", OURS[1]: None, **THEIRS}
    arn = "arn:aws:sagemaker:us-east-1:123456789012:transform-job/{}"
    summaries = [
        {
            "TransformJobName": n,
            "TransformJobArn": arn.format(n),
            "CreationTime": 0,
            "TransformJobStatus": "InProgress",
        }
        for n in jobs
    ]
    with Stubber(sm) as stub:
        for status in ("InProgress", "Stopping"):  # the tuning and training jobs: none
            stub.add_response(
                "list_hyper_parameter_tuning_jobs",
                {"HyperParameterTuningJobSummaries": []},
                {"StatusEquals": status},
            )
        for status in ("InProgress", "Stopping"):
            stub.add_response(
                "list_training_jobs", {"TrainingJobSummaries": []}, {"StatusEquals": status}
            )
        stub.add_response(
            "list_transform_jobs",
            {"TransformJobSummaries": summaries},
            {"StatusEquals": "InProgress"},
        )
        for name, tag in jobs.items():
            tags = [{"Key": "project", "Value": tag}] if tag else []
            stub.add_response("list_tags", {"Tags": tags}, {"ResourceArn": arn.format(name)})
        stub.add_response(
            "list_transform_jobs", {"TransformJobSummaries": []}, {"StatusEquals": "Stopping"}
        )
        sess = StubbedSession(sm)
        found = audit.active_jobs(sess, audit.Ownership("ll-e2e"))
        assert found == [audit.Leftover("transform-job", n, "InProgress") for n in OURS]
        for name in OURS:
            stub.add_response("stop_transform_job", {}, {"TransformJobName": name})
        for name in OURS:  # then waited for until stopped (StopTransformJob is asynchronous)
            described = {
                "TransformJobName": name,
                "TransformJobArn": arn.format(name),
                "TransformJobStatus": "Stopped",
                "ModelName": "m",
                "TransformInput": {
                    "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://b/t"}}
                },
                "TransformResources": {"InstanceType": "ml.m5.large", "InstanceCount": 1},
                "CreationTime": 0,
            }
            stub.add_response("describe_transform_job", described, {"TransformJobName": name})
        audit.delete(StubbedSession(sm), found, echo=lambda s: None)
        stub.assert_no_pending_responses()  # stopped exactly ours, nothing else was called


def test_a_given_artifact_gets_a_model_for_the_job_that_is_deleted_after_it(
    moto_aws, tmp_path, monkeypatch
):
    from training.core import artifact
    from training.core.artifact import ArtifactError

    deploy(moto_aws)
    outputs = {
        "BucketName": {"Value": BUCKET},
        "KeyArn": {"Value": KEY},
        "RoleArn": {"Value": "arn:aws:iam::123456789012:role/ll-e2e-exec"},
    }
    cfn = moto_aws.client("cloudformation")
    cfn.update_stack(
        StackName="LlE2eBase",
        TemplateBody=json.dumps(
            {"Resources": {"T": {"Type": "AWS::SNS::Topic"}}, "Outputs": outputs}
        ),
    )
    model = LinearModel(
        "regressor", "squared_loss", np.array([1.0, -2.0], np.float32), np.array(0.5, np.float32)
    )
    path = artifact.save(model, tmp_path / "model.tar.gz")
    (tmp_path / "a.csv").write_text("1,2\n")
    seen = {}
    real_wait = aws_transform.wait_for_transform

    def container_then_wait(sm, name, poll_s, echo):
        job = sm.describe_transform_job(TransformJobName=name)
        seen["model"] = sm.describe_model(ModelName=job["ModelName"])
        out = job["TransformOutput"]["S3OutputPath"].split(BUCKET + "/", 1)[1]
        moto_aws.client("s3").put_object(Bucket=BUCKET, Key=f"{out}a.csv.out", Body=b"{}\n")
        return real_wait(sm, name, poll_s, echo)

    monkeypatch.setattr(aws_transform, "wait_for_transform", container_then_wait)
    config = TransformConfig(str(tmp_path / "a.csv"), str(tmp_path / "out"), show_progress=False)
    where = AwsTransform(region="us-east-1", poll_s=0, model_path=str(path))
    result = transform_aws(config, where, echo=lambda s: None)

    from training.checksums import file_sha256

    made = seen["model"]
    assert made["ModelName"] == result.name  # not the endpoint's model
    url = f"s3://{BUCKET}/models/sha256/{file_sha256(path)}/model.tar.gz"  # content-addressed
    assert made["PrimaryContainer"]["ModelDataUrl"] == url
    assert made["ExecutionRoleArn"] == "arn:aws:iam::123456789012:role/ll-e2e-exec"
    # (moto reports EnableNetworkIsolation False for every model: the request says True)
    request = aws_transform.model_request("j", "role", "img", "s3://b/k", "ll-e2e")
    assert request["EnableNetworkIsolation"] is True
    assert request["Tags"] == [{"Key": "project", "Value": "ll-e2e"}]
    names = [m["ModelName"] for m in moto_aws.client("sagemaker").list_models()["Models"]]
    assert result.name not in names and "LlE2eEndpoint-Model-ABC" in names  # cleaned up
    # an S3 artifact the execution role cannot read is refused before anything is made
    outside = AwsTransform(region="us-east-1", model_path="s3://elsewhere/m.tar.gz")
    with pytest.raises(
        ValidationError, match="reads artifacts under s3://ll-e2e-bucket-123/models/"
    ):
        transform_aws(config, outside, echo=lambda s: None)
    (tmp_path / "bad.tar.gz").write_bytes(b"not a model")
    with pytest.raises(ArtifactError, match="bad.tar.gz"):
        transform_aws(
            config,
            AwsTransform(region="us-east-1", model_path=str(tmp_path / "bad.tar.gz")),
            echo=lambda s: None,
        )
