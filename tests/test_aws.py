"""The AWS path against moto (the only AWS here): buckets, upload, training job, audit.

moto completes training jobs instantly and writes no artifact, ignores versioning set by
CloudFormation, and returns canned invoke bodies: the tests plant what moto cannot produce and
assert on this project's behaviour, not moto's.
"""

import json
import time
from pathlib import Path

import boto3
import botocore.exceptions
import numpy as np
import pytest
from lookalikes import assert_look_alikes_survive, plant_look_alikes, still_there
from moto import mock_aws

from training.aws import audit, upload
from training.aws import session as aws
from training.aws.job import AwsTrainConfig, explain_failure, train_aws, training_request
from training.aws.model_record import ModelRecord
from training.core.hyperparameters import HyperparameterError
from training.data.prepare import PrepareConfig, prepare
from training.errors import ValidationError

ROOT = Path(__file__).parents[1]
KEY = "arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555"


@pytest.fixture
def moto_aws(monkeypatch):
    monkeypatch.setattr(audit, "NOTEBOOK_POLL_S", 0.0)
    with mock_aws():
        yield boto3.Session(region_name="us-east-1")


def endpoint_config(sm, name: str, model: str, **extra) -> None:
    """One-variant endpoint config, as the endpoint stack makes it."""
    sm.create_endpoint_config(
        EndpointConfigName=name,
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": model,
                "InitialInstanceCount": 1,
                "InstanceType": "ml.m5.large",
            }
        ],
        **extra,
    )


# ----------------------------------------------------------------------------- buckets


@pytest.mark.parametrize("region", ["us-east-1", "eu-west-1", "ap-southeast-2"])
def test_create_bucket_sends_the_location_constraint_each_region_needs(moto_aws, region):
    aws.create_bucket(moto_aws, f"ll-e2e-test-{region}", region)
    assert aws.bucket_region(moto_aws, f"ll-e2e-test-{region}") == region


def test_the_wrong_location_constraint_is_what_users_hit(moto_aws):
    s3 = moto_aws.client("s3", region_name="eu-west-1")
    with pytest.raises(botocore.exceptions.ClientError, match="IllegalLocationConstraint"):
        s3.create_bucket(Bucket="ll-e2e-wrong")  # no LocationConstraint outside us-east-1


@pytest.mark.parametrize(
    "name, rule",
    [
        ("My_Bucket", "lower case"),
        ("ab", "3 to 63"),
        ("a..b", "adjacent periods"),
        ("192.168.1.1", "IP address"),
        ("xn--bucket", "reserves"),
        ("bucket-", "starting and ending"),
    ],
)
def test_bucket_names_are_checked_before_anything_is_created(moto_aws, name, rule):
    with pytest.raises(ValidationError, match=rule):
        aws.create_bucket(moto_aws, name, "us-east-1")
    assert moto_aws.client("s3").list_buckets()["Buckets"] == []


def test_s3_client_is_made_in_the_buckets_region(moto_aws):
    aws.create_bucket(moto_aws, "ll-e2e-frankfurt", "eu-central-1")
    assert aws.s3_client_for(moto_aws, "ll-e2e-frankfurt").meta.region_name == "eu-central-1"


# ----------------------------------------------------------------------------- upload


def test_upload_skips_unchanged_files_and_uses_multipart(moto_aws, tmp_path, monkeypatch):
    monkeypatch.setattr(upload, "MULTIPART_THRESHOLD", 5 * 1024 * 1024)
    aws.create_bucket(moto_aws, "ll-e2e-up", "us-east-1")
    s3 = moto_aws.client("s3")
    small, big = tmp_path / "a.rec", tmp_path / "b.rec"
    small.write_bytes(b"x" * 100)
    big.write_bytes(b"y" * (11 * 1024 * 1024))
    files = {"data/run/train/a.rec": small, "data/run/train/b.rec": big}
    first = upload.upload_files(s3, "ll-e2e-up", files, show_progress=False)
    assert first["uploaded"] == sorted(files) and first["skipped"] == []
    etag = s3.head_object(Bucket="ll-e2e-up", Key="data/run/train/b.rec")["ETag"]
    assert "-" in etag  # a multipart upload's ETag carries its part count
    second = upload.upload_files(s3, "ll-e2e-up", files, show_progress=False)
    assert second == {"uploaded": [], "skipped": sorted(files)}
    small.write_bytes(b"changed")
    third = upload.upload_files(s3, "ll-e2e-up", files, show_progress=False)
    assert third["uploaded"] == ["data/run/train/a.rec"]


# ----------------------------------------------------------------------------- training job


@pytest.fixture
def prepared(tmp_path_factory):
    out = tmp_path_factory.mktemp("prep")
    prepare(
        PrepareConfig(
            ROOT / "training" / "datasets" / "penguins.csv",
            "species",
            "multiclass_classifier",
            out,
            show_progress=False,
        )
    )
    return out


def deploy_base(sess, project="ll-e2e"):
    """What the base stack provides: a bucket and a role SageMaker can assume."""
    aws.create_bucket(sess, f"{project}-bucket-123", sess.region_name)
    role = sess.client("iam").create_role(
        RoleName=f"{project}-role",
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "sagemaker.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            }
        ),
    )
    return f"{project}-bucket-123", role["Role"]["Arn"]


def test_training_job_end_to_end_records_the_artifact(moto_aws, prepared, tmp_path):
    bucket, role = deploy_base(moto_aws)
    record_path = tmp_path / "latest.json"
    lines = []
    record = train_aws(
        AwsTrainConfig(
            data_dir=prepared,
            bucket=bucket,
            role_arn=role,
            region="us-east-1",
            hyperparameters={"epochs": "5"},
            record=record_path,
            poll_s=0,
            show_progress=False,
            job_name="ll-e2e-test-job",
        ),
        echo=lines.append,
    )
    sm = moto_aws.client("sagemaker")
    job = sm.describe_training_job(TrainingJobName="ll-e2e-test-job")
    assert (
        job["AlgorithmSpecification"]["TrainingImage"]
        == "382416733822.dkr.ecr.us-east-1.amazonaws.com/linear-learner:1"
    )
    channels = {c["ChannelName"]: c for c in job["InputDataConfig"]}
    assert set(channels) == {"train", "validation", "test"}
    assert {c["ContentType"] for c in channels.values()} == {"application/x-recordio-protobuf"}
    hp = job["HyperParameters"]
    assert hp["predictor_type"] == "multiclass_classifier" and hp["num_classes"] == "3"
    assert hp["epochs"] == "5" and hp["feature_dim"].isdigit()
    keys = [o["Key"] for o in moto_aws.client("s3").list_objects_v2(Bucket=bucket)["Contents"]]
    assert "data/ll-e2e-test-job/train/train-00000.rec" in keys
    saved = json.loads(record_path.read_text())
    assert saved == record.to_json() and ModelRecord.load(record_path) == record
    assert saved["model_data_url"].startswith(f"s3://{bucket}/models/ll-e2e-test-job/")
    assert job["OutputDataConfig"] == {"S3OutputPath": f"s3://{bucket}/models/"}  # no key given
    assert job["EnableNetworkIsolation"] is True
    assert saved["region"] == "us-east-1" and saved["data_manifest_sha256"]
    assert any("Completed" in line for line in lines)


def test_stack_outputs_provide_bucket_and_role(moto_aws, prepared, tmp_path):
    bucket, role = deploy_base(moto_aws)
    template = {
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {
            "BucketName": {"Value": bucket},
            "RoleArn": {"Value": role},
            "KeyArn": {"Value": KEY},
        },
    }
    moto_aws.client("cloudformation").create_stack(
        StackName="LlE2eBase", TemplateBody=json.dumps(template)
    )
    record = train_aws(
        AwsTrainConfig(
            data_dir=prepared,
            region="us-east-1",
            poll_s=0,
            record=tmp_path / "r.json",
            show_progress=False,
        ),
        echo=lambda line: None,
    )
    assert record.bucket == bucket
    job = moto_aws.client("sagemaker").describe_training_job(
        TrainingJobName=record.training_job_name
    )
    # the project key from the stack encrypts the artifact and the instance's volume
    assert job["OutputDataConfig"]["KmsKeyId"] == KEY
    assert job["ResourceConfig"]["VolumeKmsKeyId"] == KEY


@pytest.mark.parametrize("instance, volume_key", [("ml.m5.large", True), ("ml.m5d.large", False)])
def test_training_request_encrypts_with_the_key_where_the_instance_allows(instance, volume_key):
    config = AwsTrainConfig(data_dir=Path("."), instance_type=instance)
    request = training_request(
        config, {}, {"train": "text/csv"}, "b", "data/j", "img", "role", "j", None, KEY
    )
    assert request["OutputDataConfig"]["KmsKeyId"] == KEY
    assert ("VolumeKmsKeyId" in request["ResourceConfig"]) is volume_key
    assert request["EnableNetworkIsolation"] is True


def test_no_stack_and_no_flags_is_a_clear_error(moto_aws, prepared, tmp_path):
    with pytest.raises(ValidationError, match="(?s)LlE2eBase.*npx cdk deploy --all"):
        train_aws(
            AwsTrainConfig(
                data_dir=prepared,
                region="us-east-1",
                record=tmp_path / "r.json",
                show_progress=False,
            )
        )


def test_bad_hyperparameter_fails_before_any_upload_or_job(moto_aws, prepared, tmp_path):
    bucket, role = deploy_base(moto_aws)
    with pytest.raises(HyperparameterError, match="Did you mean 'epochs'"):
        train_aws(
            AwsTrainConfig(
                data_dir=prepared,
                bucket=bucket,
                role_arn=role,
                region="us-east-1",
                hyperparameters={"epoch": "5"},
                record=tmp_path / "r.json",
                show_progress=False,
            )
        )
    assert "Contents" not in moto_aws.client("s3").list_objects_v2(Bucket=bucket)
    assert moto_aws.client("sagemaker").list_training_jobs()["TrainingJobSummaries"] == []


def test_bad_channel_fails_before_any_upload(moto_aws, tmp_path):
    bucket, role = deploy_base(moto_aws)
    (tmp_path / "d" / "train").mkdir(parents=True)
    (tmp_path / "d" / "train" / "t.csv").write_text("label,a\n1,2\n")
    with pytest.raises(ValidationError, match="header row present"):
        train_aws(
            AwsTrainConfig(
                data_dir=tmp_path / "d",
                bucket=bucket,
                role_arn=role,
                region="us-east-1",
                hyperparameters={"predictor_type": "binary_classifier"},
                record=tmp_path / "r.json",
                show_progress=False,
            )
        )
    assert "Contents" not in moto_aws.client("s3").list_objects_v2(Bucket=bucket)


def test_multi_instance_training_uploads_a_shard_manifest(moto_aws, tmp_path):
    bucket, role = deploy_base(moto_aws)
    data = tmp_path / "sharded"
    prepare(
        PrepareConfig(
            ROOT / "training" / "datasets" / "penguins.csv",
            "species",
            "multiclass_classifier",
            data,
            shard_bytes=4096,
            show_progress=False,
        )
    )
    train_aws(
        AwsTrainConfig(
            data_dir=data,
            bucket=bucket,
            role_arn=role,
            region="us-east-1",
            instance_count=2,
            record=tmp_path / "r.json",
            poll_s=0,
            show_progress=False,
            job_name="ll-e2e-sharded",
        ),
        echo=lambda line: None,
    )
    job = moto_aws.client("sagemaker").describe_training_job(TrainingJobName="ll-e2e-sharded")
    train = next(c for c in job["InputDataConfig"] if c["ChannelName"] == "train")
    source = train["DataSource"]["S3DataSource"]
    assert source["S3DataType"] == "ManifestFile"
    assert source["S3DataDistributionType"] == "ShardedByS3Key"
    body = (
        moto_aws.client("s3")
        .get_object(Bucket=bucket, Key="data/ll-e2e-sharded/train.amazon.manifest")["Body"]
        .read()
    )
    manifest = json.loads(body)
    assert manifest[0] == {"prefix": f"s3://{bucket}/data/ll-e2e-sharded/train/"}
    assert len(manifest) > 2 and manifest[1] == "train-00000.rec"


def test_multi_instance_training_shards_the_train_channel():
    config = AwsTrainConfig(data_dir=Path("."), instance_count=2)
    request = training_request(
        config,
        {"predictor_type": "regressor"},
        {"train": "text/csv", "validation": "text/csv"},
        "b",
        "data/j",
        "img",
        "arn:role",
        "j",
    )
    dist = {
        c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3DataDistributionType"]
        for c in request["InputDataConfig"]
    }
    assert dist == {"train": "ShardedByS3Key", "validation": "FullyReplicated"}
    assert request["ResourceConfig"]["InstanceCount"] == 2
    assert request["Tags"] == [{"Key": "project", "Value": "ll-e2e"}]
    assert request["StoppingCondition"]["MaxRuntimeInSeconds"] == 3600


@pytest.mark.parametrize(
    "reason, fix",
    [
        (
            "ClientError: Rows 1-1000 in file /opt/ml/input/data/train/train.csv have "
            "different fields "
            "than the expected size 15.",
            "header row",
        ),
        ("No iterator has been registered for ContentType ('csv', '1.0')", "exactly 'text/csv'"),
        ("Data type Float64Tensor is not supported", "Float32"),
        ("Missing required hyperparameter feature_dim", "predictor_type and feature_dim"),
    ],
)
def test_known_failures_are_explained(reason, fix):
    assert fix in explain_failure(reason)


def test_failed_job_shows_reason_and_fix(moto_aws, prepared, tmp_path, monkeypatch):
    bucket, role = deploy_base(moto_aws)
    from training.aws import job as job_module

    def failed(sess, name, poll_s, echo, show_progress=True):
        return {
            "TrainingJobStatus": "Failed",
            "FailureReason": "Rows 1-1000 in file /opt/ml/input/data/train/x.csv have "
            "different fields "
            "than the expected size 15.",
        }

    monkeypatch.setattr(job_module, "wait_for_job", failed)
    with pytest.raises(ValidationError) as err:
        train_aws(
            AwsTrainConfig(
                data_dir=prepared,
                bucket=bucket,
                role_arn=role,
                region="us-east-1",
                record=tmp_path / "r.json",
                show_progress=False,
            ),
            echo=lambda line: None,
        )
    assert "different fields" in str(err.value) and "index column" in str(err.value)
    # it did upload and run: the message must not say otherwise
    assert "the job ran (and billed) until it failed" in str(err.value)
    assert "nothing was uploaded" not in str(err.value)
    assert not (tmp_path / "r.json").exists()


# ----------------------------------------------------------------------------- audit


def plant_leftovers(sess):
    sm = sess.client("sagemaker")
    tags = [{"Key": "project", "Value": "ll-e2e"}]
    role = "arn:aws:iam::123456789012:role/x"
    sm.create_model(
        ModelName="CfnGenerated-Model-1",
        ExecutionRoleArn=role,
        Tags=tags,
        PrimaryContainer={"Image": "img", "ModelDataUrl": "s3://b/m.tar.gz"},
    )
    endpoint_config(sm, "EndpointConfig-abc", "CfnGenerated-Model-1", Tags=tags)
    sm.create_endpoint(EndpointName="ll-e2e-endpoint", EndpointConfigName="EndpointConfig-abc")
    # the endpoint of another mode (untagged: its exact name is the proof)
    sm.create_endpoint(
        EndpointName="ll-e2e-endpoint-serverless", EndpointConfigName="EndpointConfig-abc"
    )
    sm.create_notebook_instance(
        NotebookInstanceName="ll-e2e-notebook-abc123", InstanceType="ml.t3.medium", RoleArn=role
    )
    s3 = sess.client("s3")
    s3.create_bucket(Bucket="llE2ebase-bucket".lower())
    s3.put_bucket_tagging(Bucket="lle2ebase-bucket", Tagging={"TagSet": tags})
    s3.put_bucket_versioning(
        Bucket="lle2ebase-bucket", VersioningConfiguration={"Status": "Enabled"}
    )
    for body in (b"v1", b"v2"):
        s3.put_object(Bucket="lle2ebase-bucket", Key="data/train.rec", Body=body)
    s3.delete_object(Bucket="lle2ebase-bucket", Key="data/train.rec")  # a delete marker
    logs = sess.client("logs")
    for name in ("", "-serverless", "-ml-m5-large"):  # every name the endpoint may have had
        logs.create_log_group(logGroupName=f"/aws/sagemaker/Endpoints/ll-e2e-endpoint{name}")
    logs.create_log_group(logGroupName="/aws/lambda/LlE2eBase-CustomS3AutoDeleteObjects-x")
    logs.create_log_group(logGroupName="/aws/sagemaker/TrainingJobs")
    logs.create_log_stream(
        logGroupName="/aws/sagemaker/TrainingJobs",
        logStreamName="ll-e2e-20261125-120000/algo-1-1764072000",
    )
    logs.create_log_group(logGroupName="/aws/sagemaker/NotebookInstances")
    logs.create_log_stream(
        logGroupName="/aws/sagemaker/NotebookInstances",
        logStreamName="ll-e2e-notebook-abc123/LifecycleConfigOnStart",
    )
    logs.create_log_group(logGroupName="/aws/sagemaker/TransformJobs")
    for stream in (  # ours, then another project's that shares the prefix
        "ll-e2e-transform-20261126-001200/i-0abc-1764115200",
        "ll-e2e-transformer-20261126-001200/i-0abc-1764115200",
    ):
        logs.create_log_stream(logGroupName="/aws/sagemaker/TransformJobs", logStreamName=stream)
    cw, sns = sess.client("cloudwatch"), sess.client("sns")
    for name, owner in (
        ("LlE2eEndpoint-LatencyP99-ABC", "ll-e2e"),  # ours, by its tag
        ("LlE2eEndpoint-Errors5xx-untagged", None),  # a look-alike name proves nothing
        ("LlE2eEndpoint-Errors5xx-theirs", "ll-e2ex"),
    ):
        cw.put_metric_alarm(
            AlarmName=name,
            MetricName="ModelLatency",
            Namespace="AWS/SageMaker",
            Statistic="Average",
            Period=300,
            EvaluationPeriods=1,
            Threshold=1.0,
            ComparisonOperator="GreaterThanThreshold",
            Tags=[{"Key": "project", "Value": owner}] if owner else [],
        )
        sns.create_topic(
            Name=f"{name}-topic", Tags=[{"Key": "project", "Value": owner}] if owner else []
        )
    kms = sess.client("kms")
    kms.create_key(Tags=[{"TagKey": "project", "TagValue": "ll-e2e"}])
    # someone else's things stay untouched
    s3.create_bucket(Bucket="someone-elses-bucket")
    kms.create_key(Tags=[{"TagKey": "project", "TagValue": "other"}])


def test_audit_finds_every_leftover_and_delete_removes_them(moto_aws):
    plant_leftovers(moto_aws)
    planted = plant_look_alikes(moto_aws)
    found = audit.find_leftovers(moto_aws, "ll-e2e")
    kinds = sorted(item.kind for item in found)
    assert kinds == [
        "alarm",
        "bucket",
        "endpoint",
        "endpoint",
        "endpoint-config",
        "kms-key",
        *["log-group"] * 7,
        "model",
        "notebook-instance",
        "sns-topic",
    ]
    assert [i.name for i in found if i.kind == "alarm"] == ["LlE2eEndpoint-LatencyP99-ABC"]
    assert {i.name for i in found if i.kind == "log-group"} == {
        "/aws/sagemaker/Endpoints/ll-e2e-endpoint",
        "/aws/sagemaker/Endpoints/ll-e2e-endpoint-serverless",
        "/aws/sagemaker/Endpoints/ll-e2e-endpoint-ml-m5-large",
        "/aws/lambda/LlE2eBase-CustomS3AutoDeleteObjects-x",
        "/aws/sagemaker/TrainingJobs:ll-e2e-20261125-120000/algo-1-1764072000",
        "/aws/sagemaker/NotebookInstances:ll-e2e-notebook-abc123/LifecycleConfigOnStart",
        "/aws/sagemaker/TransformJobs:ll-e2e-transform-20261126-001200/i-0abc-1764115200",
    }
    bucket = next(i for i in found if i.kind == "bucket")
    assert bucket.detail == "2 object versions, 1 delete markers"
    audit.delete(moto_aws, found, echo=lambda line: None)
    assert audit.find_leftovers(moto_aws, "ll-e2e") == []
    assert_look_alikes_survive(planted, still_there(moto_aws))
    streams = moto_aws.client("logs").describe_log_streams(
        logGroupName="/aws/sagemaker/TransformJobs"
    )["logStreams"]
    assert [s["logStreamName"] for s in streams] == [
        "ll-e2e-transformer-20261126-001200/i-0abc-1764115200"
    ]
    names = [b["Name"] for b in moto_aws.client("s3").list_buckets()["Buckets"]]
    assert "someone-elses-bucket" in names and "lle2ebase-bucket" not in names
    alarms = moto_aws.client("cloudwatch").describe_alarms()["MetricAlarms"]
    assert sorted(a["AlarmName"] for a in alarms) == [
        "LlE2eEndpoint-Errors5xx-theirs",
        "LlE2eEndpoint-Errors5xx-untagged",
    ]
    topics = [
        t["TopicArn"].rsplit(":", 1)[1] for t in moto_aws.client("sns").list_topics()["Topics"]
    ]
    assert sorted(topics) == [
        "LlE2eEndpoint-Errors5xx-theirs-topic",
        "LlE2eEndpoint-Errors5xx-untagged-topic",
    ]


def test_audit_command_exit_codes(moto_aws, capsys):
    from training.cli import main

    assert main(["audit", "--region", "us-east-1"]) == 0
    assert "nothing billable" in capsys.readouterr().out
    plant_leftovers(moto_aws)
    assert main(["audit", "--region", "us-east-1"]) == 1
    out = capsys.readouterr().out
    assert "endpoint           ll-e2e-endpoint" in out and "--delete" in out
    assert main(["audit", "--region", "us-east-1", "--delete"]) == 0
    assert main(["audit", "--region", "us-east-1"]) == 0


def test_job_log_lines_are_streamed_once(moto_aws):
    from training.aws.job import LogTail

    tail = LogTail(moto_aws, "ll-e2e-job")
    assert tail.new_lines() == []  # no log group yet: nothing, no error
    logs = moto_aws.client("logs")
    logs.create_log_group(logGroupName=LogTail.GROUP)
    logs.create_log_stream(logGroupName=LogTail.GROUP, logStreamName="ll-e2e-job/algo-1-1")

    def put(*messages):
        logs.put_log_events(
            logGroupName=LogTail.GROUP,
            logStreamName="ll-e2e-job/algo-1-1",
            logEvents=[
                {"timestamp": int(time.time() * 1000) + i, "message": m}
                for i, m in enumerate(messages)
            ],
        )

    put("#quality_metric: host=algo-1, epoch=0, validation x_objective <loss>=0.5")
    assert tail.new_lines() == [
        "#quality_metric: host=algo-1, epoch=0, validation x_objective <loss>=0.5"
    ]
    put("Epoch 1: Loss improved. Updating best model")
    assert tail.new_lines() == ["Epoch 1: Loss improved. Updating best model"]
    assert tail.new_lines() == []


def test_endpoint_check_catches_a_silent_rollback(moto_aws):
    from training.aws.deploy import DeployStepError, check_endpoint

    sm = moto_aws.client("sagemaker")
    sm.create_model(
        ModelName="m",
        ExecutionRoleArn="arn:aws:iam::123456789012:role/x",
        PrimaryContainer={"Image": "img", "ModelDataUrl": "s3://b/m.tar.gz"},
    )
    for name in ("config-old", "config-new"):
        endpoint_config(sm, name, "m")
    sm.create_endpoint(EndpointName="ll-e2e-endpoint", EndpointConfigName="config-old")
    assert check_endpoint(moto_aws, "ll-e2e-endpoint", "config-old") == "config-old"
    with pytest.raises(DeployStepError, match="runs config-old, not the new config-new"):
        check_endpoint(moto_aws, "ll-e2e-endpoint", "config-new")


# ----------------------------------------------------------------------------- models in S3

REAL_MODELS = ROOT.parent / "shared" / "fixtures" / "ll-artifacts"


@pytest.mark.skipif(not REAL_MODELS.exists(), reason="../shared/fixtures not laid out")
def test_a_sagemaker_artifact_in_s3_is_inspected_and_served_locally(moto_aws, tmp_path, capsys):
    """The bucket is in another region than the credentials: the regional client finds it."""
    from training.cli import main

    aws.create_bucket(moto_aws, "team-models", "eu-west-1")
    tee = REAL_MODELS / "attrition-binary-teelenzi"
    s3 = moto_aws.client("s3", region_name="eu-west-1")
    s3.upload_file(str(tee / "model_algo-1"), "team-models", "jobs/tee/output/model_algo-1")
    url = "s3://team-models/jobs/tee/output/model_algo-1"
    assert main(["-q", "inspect", url, "--json", "--region", "us-east-1"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert (doc["source"], doc["predictor_type"], doc["feature_dim"]) == (
        url,
        "binary_classifier",
        20,
    )
    assert doc["threshold"] == 0.5315272808074951
    out = tmp_path / "p.jsonl"
    args = ["-q", "predict", "--model", url, "--input", str(tee / "TrainData.csv")]
    assert main([*args, "--labelled", "--out", str(out)]) == 0
    assert "test:binary_classification_accuracy     0.71121" in capsys.readouterr().out
    assert len(out.read_text().splitlines()) == 6548


def test_a_missing_model_in_s3_is_a_clear_error(moto_aws, capsys):
    from training.cli import main

    aws.create_bucket(moto_aws, "team-models", "us-east-1")
    assert main(["-q", "inspect", "s3://team-models/nothing/model.tar.gz"]) == 2
    err = capsys.readouterr().err
    assert "s3://team-models/nothing/model.tar.gz: no such object" in err
    assert main(["-q", "inspect", "s3://team-models"]) == 2
    assert "not an s3://bucket/key URL" in capsys.readouterr().err


def test_deploy_refuses_an_endpoint_that_answers_for_another_model():
    from training.aws.deploy import check_answers
    from training.core.model import LinearModel, Predictions
    from training.errors import DeployStepError

    model = LinearModel("binary_classifier", "logistic", np.array([1.0, -1.0], np.float32), 0.0)
    X = np.array([[0.0, 0.0], [2.0, 0.0]], np.float32)
    right = Predictions.from_rows(
        [
            {"score": 0.5, "predicted_label": 0},
            {"score": 0.8807970779778823, "predicted_label": 1},
        ]
    )
    check_answers(model, X, right, "ll-e2e-endpoint")
    wrong = Predictions.from_rows([{"score": 0.93, "predicted_label": 1}] * 2)
    with pytest.raises(DeployStepError) as failed:
        check_answers(model, X, wrong, "ll-e2e-endpoint")
    message = str(failed.value)
    assert "the deploy stopped at this step" in message and "nothing was uploaded" not in message
    assert "endpoint ll-e2e-endpoint: answered scores [0.93, 0.93]" in message
    assert "fix: it is not serving this model" in message
    with pytest.raises(DeployStepError, match="answered scores"):
        check_answers(model, X, Predictions(right.score[:1]), "ll-e2e-endpoint")


def test_a_kms_key_the_caller_may_not_read_is_skipped_and_said(moto_aws, capsys):
    """moto enforces no key policies: AWS's AccessDeniedException for one key is answered
    through botocore's before-call hook, everything else is moto."""
    kms = moto_aws.client("kms")
    locked = kms.create_key()["KeyMetadata"]["KeyId"]
    ours = kms.create_key(Tags=[{"TagKey": "project", "TagValue": "ll-e2e"}])["KeyMetadata"]

    class Denied:
        status_code, headers = 400, {}

    def deny(params, **kwargs):  # params: the serialized request
        if locked in params["body"].decode():
            error = {"Code": "AccessDeniedException", "Message": "not authorized"}
            return Denied(), {"Error": error, "ResponseMetadata": {"HTTPStatusCode": 400}}
        return None

    moto_aws.events.register("before-call.kms.ListResourceTags", deny)
    found = audit.find_leftovers(moto_aws, "ll-e2e")
    assert [(i.kind, i.name) for i in found] == [("kms-key", ours["KeyId"])]
    assert f"skipped KMS key {locked}: its tags are not readable here (AccessDeniedException)" in (
        capsys.readouterr().out
    )


class NotebookService:
    """AWS's documented notebook rules (StopNotebookInstance only from InService,
    DeleteNotebookInstance only from Stopped or Failed), advancing one state per describe:
    what moto, whose notebooks are InService at once, cannot show."""

    def __init__(self, states: list[str]):
        self.states = states
        self.calls: list[str] = []

    def describe_notebook_instance(self, NotebookInstanceName):
        state = self.states.pop(0) if len(self.states) > 1 else self.states[0]
        self.calls.append(state)
        return {"NotebookInstanceStatus": state}

    def stop_notebook_instance(self, NotebookInstanceName):
        if self.calls[-1] != "InService":
            raise botocore.exceptions.ClientError(
                {"Error": {"Code": "ValidationException", "Message": "not InService"}}, "Stop"
            )
        self.calls.append("stop")
        self.states = ["Stopping", "Stopping", "Stopped"]

    def delete_notebook_instance(self, NotebookInstanceName):
        if self.calls[-1] not in ("Stopped", "Failed"):
            raise botocore.exceptions.ClientError(
                {"Error": {"Code": "ValidationException", "Message": "not stopped"}}, "Delete"
            )
        self.calls.append("delete")


@pytest.mark.parametrize(
    "states, expected",
    [
        (["Pending", "Pending", "InService"], ["Pending", "Pending", "InService", "stop"]),
        (["Updating", "InService"], ["Updating", "InService", "stop"]),
        (["InService"], ["InService", "stop"]),
        (["Stopping", "Stopped"], ["Stopping", "Stopped", "delete"]),
        (["Failed"], ["Failed", "delete"]),
    ],
)
def test_a_notebook_is_deleted_from_whatever_state_it_is_in(monkeypatch, states, expected):
    monkeypatch.setattr(audit, "NOTEBOOK_POLL_S", 0.0)
    service = NotebookService(states)
    audit._delete_notebook(service, "ll-e2e-notebook-abc123", echo=lambda line: None)
    assert service.calls[: len(expected)] == expected
    assert service.calls[-1] == "delete"
