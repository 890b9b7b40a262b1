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


ROLE = "arn:aws:iam::123456789012:role/x"


def deploy(
    sess, endpoint: bool = True, name: str = "ll-e2e-endpoint", role_output: bool = False
) -> str:
    """What the base and endpoint stacks leave: bucket, outputs, and a served model behind the
    endpoint ``name`` (running as the base stack's execution role with ``role_output``)."""
    aws.create_bucket(sess, BUCKET, "us-east-1")
    outputs = {"BucketName": {"Value": BUCKET}, "KeyArn": {"Value": KEY}}
    if role_output:
        outputs["RoleArn"] = {"Value": ROLE}
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
        ExecutionRoleArn=ROLE,
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


def nothing_made(sess) -> None:
    """A refused transform left no job, no new Model and no object behind."""
    sm = sess.client("sagemaker")
    assert sm.list_transform_jobs()["TransformJobSummaries"] == []
    assert [m["ModelName"] for m in sm.list_models()["Models"]] == ["LlE2eEndpoint-Model-ABC"]
    assert sess.client("s3").list_objects_v2(Bucket=BUCKET)["KeyCount"] == 0


@pytest.mark.parametrize(
    ("given", "named"),
    [
        (
            {"input": "s3://another-bucket/in/"},
            "--input s3://another-bucket/in/: the job's execution role may read only under "
            f"s3://{BUCKET}/data/, s3://{BUCKET}/models/, s3://{BUCKET}/transform/ "
            f"fix: copy the data under s3://{BUCKET}/transform/",
        ),
        (
            {"input": f"s3://{BUCKET}/uploads/in/"},
            f"--input s3://{BUCKET}/uploads/in/: the job's execution role may read only under",
        ),
        (
            {"input": f"s3://{BUCKET}/transform/in/", "out": f"s3://{BUCKET}/results/"},
            f"--out s3://{BUCKET}/results/: the job's execution role may write only under "
            f"s3://{BUCKET}/models/, s3://{BUCKET}/transform/ fix: write under",
        ),
        (
            {"input": f"s3://{BUCKET}/transform/in/", "out": "s3://another-bucket/out/"},
            "--out s3://another-bucket/out/: the job's execution role may write only under",
        ),
    ],
)
def test_s3_data_outside_the_execution_roles_prefixes_is_refused_before_the_job(
    moto_aws, tmp_path, given, named
):
    """AccessDenied would come after the instances started: refused first, nothing made."""
    deploy(moto_aws, role_output=True)
    config = TransformConfig(
        given["input"], given.get("out", str(tmp_path / "out")), show_progress=False
    )
    with pytest.raises(ValidationError) as err:
        transform_aws(config, AwsTransform(region="us-east-1", poll_s=0), echo=lambda s: None)
    assert named in " ".join(str(err.value).split())  # the problem, then its fix
    nothing_made(moto_aws)


def test_the_role_prefixes_checked_are_the_ones_the_base_stack_grants():
    """One home: the synthesized execution role reads and writes exactly the prefixes the
    transform checks s3:// data against (not a copy that could drift)."""
    from test_stacks import base  # the stack tests' synthesis, cached across them

    from training.aws.naming import EXECUTION_S3

    template = base().to_json()

    def prefixes(resource) -> str:
        return resource["Fn::Join"][1][-1].lstrip("/")

    granted = {"ReadProjectData": set(), "WriteProjectData": set()}
    for res in template["Resources"].values():
        if res["Type"] != "AWS::IAM::Policy":
            continue
        for st in res["Properties"]["PolicyDocument"]["Statement"]:
            if st.get("Sid") in granted:
                listed = st["Resource"] if isinstance(st["Resource"], list) else [st["Resource"]]
                granted[st["Sid"]].add(tuple(sorted(map(prefixes, listed))))
    assert tuple(sorted(EXECUTION_S3["read"])) in granted["ReadProjectData"]
    assert tuple(sorted(EXECUTION_S3["write"])) in granted["WriteProjectData"]


def test_json_lines_input_is_refused_for_a_job_on_sagemaker(moto_aws, tmp_path):
    deploy(moto_aws, role_output=True)
    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"features": [1, 2]}\n')
    config = TransformConfig(
        str(rows), str(tmp_path / "out"), content_type="application/jsonlines", show_progress=False
    )
    with pytest.raises(ValidationError) as err:
        transform_aws(config, AwsTransform(region="us-east-1", poll_s=0), echo=lambda s: None)
    message = str(err.value)
    assert "--content-type application/jsonlines" in message and str(rows) in message
    assert "convert the rows to CSV" in message
    nothing_made(moto_aws)


def test_sub_folders_are_kept_from_upload_to_download(moto_aws, tmp_path, monkeypatch):
    """a/x.csv and b/x.csv: uploaded flat and numbered (no answer's key depends on how
    SageMaker lays out sub-folders: its TransformOutput example contradicts its own words),
    answered at <output>/<key>.out, downloaded back to out/a/x.csv.out and out/b/x.csv.out."""
    deploy(moto_aws, role_output=True)
    inputs = tmp_path / "in"
    for folder, row in (("a", "1,2\n"), ("b", "3,4\n5,6\n")):
        (inputs / folder).mkdir(parents=True)
        (inputs / folder / "x.csv").write_text(row)
    real_wait = aws_transform.wait_for_transform

    def container_then_wait(sm, name, poll_s, echo):
        """SageMaker's part: one answer line per input line, at the mirrored key."""
        job = sm.describe_transform_job(TransformJobName=name)
        s3 = moto_aws.client("s3")
        source = job["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"]
        in_prefix = source.split(BUCKET + "/", 1)[1]
        out_prefix = job["TransformOutput"]["S3OutputPath"].split(BUCKET + "/", 1)[1]
        uploaded = s3.list_objects_v2(Bucket=BUCKET, Prefix=in_prefix)["Contents"]
        assert all("/" not in o["Key"][len(in_prefix) :].strip("/") for o in uploaded)
        for obj in uploaded:
            lines = s3.get_object(Bucket=BUCKET, Key=obj["Key"])["Body"].read().splitlines()
            answer = "".join(f'{{"score": {i}, "of": "{obj["Key"]}"}}\n' for i in range(len(lines)))
            key = out_prefix + obj["Key"][len(in_prefix) :] + ".out"
            s3.put_object(Bucket=BUCKET, Key=key, Body=answer.encode())
        return real_wait(sm, name, poll_s, echo)

    monkeypatch.setattr(aws_transform, "wait_for_transform", container_then_wait)
    config = TransformConfig(str(inputs), str(tmp_path / "out"), show_progress=False)
    result = transform_aws(config, AwsTransform(region="us-east-1", poll_s=0), echo=lambda s: None)
    out = tmp_path / "out"
    assert result.downloaded == [out / "a" / "x.csv.out", out / "b" / "x.csv.out"]
    a, b = (p.read_text().splitlines() for p in result.downloaded)
    assert len(a) == 1 and a[0].endswith('input/0001_a_x.csv"}') and len(b) == 2
    assert b[1].endswith('input/0002_b_x.csv"}')
    # one folder level only: keys stay the file names
    assert aws_transform.upload_keys(["x.csv", "y.csv"]) == ["x.csv", "y.csv"]

    # the same answers read from an S3 prefix: the keys under it are kept
    listed = aws_transform.download_outputs(
        moto_aws, result.output, tmp_path / "again", None, show_progress=False
    )
    assert listed == [
        tmp_path / "again" / "0001_a_x.csv.out",
        tmp_path / "again" / "0002_b_x.csv.out",
    ]
