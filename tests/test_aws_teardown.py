"""Teardown as a real account answers it: moto, plus tests/aws_async.py for what AWS does over
time and moto at once. destroy-all stops the project's jobs and waits until they have stopped
before it empties the bucket; the audit sees the project's stacks in any state, its interface
VPC endpoints and its flow-log group; ``audit --delete`` refuses while the stacks exist and
waits for what SageMaker deletes asynchronously; ListBuckets is paginated and region-filtered;
another project's look-alikes survive every delete.
"""

import json

import boto3
import pytest
from aws_async import (
    AsyncSageMaker,
    AsyncVpcEndpoints,
    PagedBuckets,
    artifact_key,
    backend,
    record_emptying,
)
from lookalikes import assert_look_alikes_survive, plant_look_alikes, still_there
from moto import mock_aws
from moto.cloudformation.models import cloudformation_backends
from moto.core import DEFAULT_ACCOUNT_ID
from test_aws import endpoint_config

from training.aws import audit, deploy
from training.aws import session as aws
from training.cli import main

OURS = [{"Key": "project", "Value": "ll-e2e"}]
ROLE = "arn:aws:iam::123456789012:role/x"
BUCKET = "lle2ebase-bucket-1"
JOB = "ll-e2e-20261205-010000"
FLOW_LOGS = "LlE2eBase-FlowLogs16C1943A-Q1w2E3r4T5y6"  # as CloudFormation names ours


@pytest.fixture
def sess(monkeypatch):
    for poll in ("NOTEBOOK_POLL_S", "JOB_POLL_S", "DELETE_POLL_S"):
        monkeypatch.setattr(audit, poll, 0)
    with mock_aws():
        yield boto3.Session(region_name="us-east-1")


def stack(sess, name: str, tags=OURS, outputs=None) -> None:
    properties = {"Name": f"/{name}", "Type": "String", "Value": "x"}
    resource = {"Type": "AWS::SSM::Parameter", "Properties": properties}
    template = {"Resources": {"P": resource}, "Outputs": outputs or {}}
    sess.client("cloudformation").create_stack(
        StackName=name, TemplateBody=json.dumps(template), Tags=tags
    )


def base_with_a_running_job(sess) -> None:
    """The base stack (its BucketName output; the bucket tagged and versioned beside it, since
    moto ignores versioning set through CloudFormation) and one of our training jobs running,
    writing to that bucket."""
    s3 = sess.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_tagging(Bucket=BUCKET, Tagging={"TagSet": OURS})
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket=BUCKET, Key=f"data/{JOB}/train/train.rec", Body=b"rows")
    stack(sess, "LlE2eBase", outputs={"BucketName": {"Value": BUCKET}})
    sess.client("sagemaker").create_training_job(
        TrainingJobName=JOB,
        AlgorithmSpecification={"TrainingImage": "img", "TrainingInputMode": "File"},
        RoleArn=ROLE,
        OutputDataConfig={"S3OutputPath": f"s3://{BUCKET}/models/"},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 10},
        StoppingCondition={"MaxRuntimeInSeconds": 600},
        Tags=OURS,
    )
    backend().training_jobs[JOB].training_job_status = "InProgress"


def cdk_destroy(sess, monkeypatch) -> list:
    """`cdk destroy --all` as it ends on AWS, the project's stacks deleted (the CDK CLI cannot
    reach moto's in-process mock); each call recorded."""
    calls = []

    def cdk(args, echo):
        calls.append(args)
        for name in ("LlE2eBase", "LlE2eEndpoint"):
            sess.client("cloudformation").delete_stack(StackName=name)

    monkeypatch.setattr(deploy, "cdk", cdk)
    return calls


def test_destroy_all_empties_the_bucket_only_once_the_stopped_job_has_uploaded(sess, monkeypatch):
    stand_in = AsyncSageMaker(monkeypatch, reads=2)
    emptied = record_emptying(monkeypatch)
    base_with_a_running_job(sess)
    calls = cdk_destroy(sess, monkeypatch)
    lines = []
    assert deploy.destroy_all(region="us-east-1", echo=lines.append) == []
    assert stand_in.stopped == [JOB]
    # when the bucket was first emptied the job had stopped, and the artifact it saved while
    # stopping was there to be removed with everything else
    bucket, keys, statuses = emptied[0]
    assert (bucket, statuses[JOB]) == (BUCKET, "Stopped")
    assert artifact_key(JOB) in keys
    assert [args[:3] for args in calls] == [["destroy", "--all", "--force"]]
    assert BUCKET not in [b["Name"] for b in sess.client("s3").list_buckets()["Buckets"]]
    order = [
        f"    stopped training job {JOB}",
        f"    [00:00] training job {JOB}: Stopping",
        f"    [00:00] training job {JOB}: Stopped",
        "==> 2/4 empty the project bucket (every version and delete marker)",
    ]
    assert [lines.index(line) for line in order] == sorted(lines.index(line) for line in order)


def test_destroy_all_leaves_the_bucket_alone_while_a_job_will_not_stop(sess, monkeypatch, capsys):
    AsyncSageMaker(monkeypatch, reads=None)  # stays Stopping
    monkeypatch.setattr(audit, "TEARDOWN_JOB_STOP_S", 0)
    emptied = record_emptying(monkeypatch)
    base_with_a_running_job(sess)
    calls = cdk_destroy(sess, monkeypatch)
    assert main(["destroy-all", "--region", "us-east-1"]) == 2
    err = capsys.readouterr().err
    assert f"training-job {JOB} (Stopping) still running 0 minutes after being stopped" in err
    assert "so it was not emptied" in err and "run this again once it has stopped" in err
    assert "(the jobs were told to stop; nothing was emptied or deleted.)" in err
    assert (emptied, calls) == ([], [])
    objects = sess.client("s3").list_object_versions(Bucket=BUCKET)["Versions"]
    assert [o["Key"] for o in objects] == [f"data/{JOB}/train/train.rec"]


def test_a_failed_cdk_destroy_says_what_is_still_there(sess, monkeypatch, capsys):
    """A stack left in DELETE_FAILED holds what it could not delete: destroy-all names it (and
    the bucket it emptied) before it stops, instead of a bare 'cdk destroy exited 1'."""
    AsyncSageMaker(monkeypatch, reads=2)
    base_with_a_running_job(sess)

    def failing_cdk(args, echo):
        deploy._fail("npx --no-install cdk destroy", "exited 1", "read the CDK output above")

    monkeypatch.setattr(deploy, "cdk", failing_cdk)
    assert main(["destroy-all", "--region", "us-east-1"]) == 2
    out, err = capsys.readouterr()
    assert "cdk destroy failed; still there (python -m training audit lists it again):" in out
    listed = out.split("still there", 1)[1]
    assert "LlE2eBase" in listed and BUCKET in listed
    assert "npx --no-install cdk destroy: exited 1" in err


def plant_network(sess) -> str:
    """What the base stack makes with notebook_in_vpc, tagged as it tags them: an interface
    endpoint, a gateway endpoint (free, not listed) and the flow-log group. Returns the
    interface endpoint's id."""
    ec2 = sess.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.0.0/24")["Subnet"]["SubnetId"]
    tags = [{"ResourceType": "vpc-endpoint", "Tags": [*OURS, {"Key": "Name", "Value": "x"}]}]
    interface = ec2.create_vpc_endpoint(
        VpcId=vpc,
        ServiceName="com.amazonaws.us-east-1.sagemaker.api",
        VpcEndpointType="Interface",
        SubnetIds=[subnet],
        TagSpecifications=tags,
    )["VpcEndpoint"]["VpcEndpointId"]
    ec2.create_vpc_endpoint(
        VpcId=vpc, ServiceName="com.amazonaws.us-east-1.s3", TagSpecifications=tags
    )
    sess.client("logs").create_log_group(logGroupName=FLOW_LOGS, tags={"project": "ll-e2e"})
    return interface


def test_audit_sees_a_failed_stack_and_what_it_holds_and_deletes_nothing_under_it(
    sess, monkeypatch, capsys
):
    deleting = AsyncVpcEndpoints(monkeypatch, reads=2)
    planted = plant_look_alikes(sess)
    interface = plant_network(sess)
    stack(sess, "LlE2eBase")
    cfn = cloudformation_backends[DEFAULT_ACCOUNT_ID]["us-east-1"]
    next(s for s in cfn.stacks.values() if s.name == "LlE2eBase").status = "DELETE_FAILED"
    # another project whose stack prefix is ours too (ll-e-2e -> LlE2e…), its tag says whose
    stack(sess, "LlE2eEndpoint", tags=[{"Key": "project", "Value": "ll-e-2e"}])
    found = audit.find_leftovers(sess, "ll-e2e")
    assert sorted((i.kind, i.name, i.detail) for i in found) == [
        ("log-group", FLOW_LOGS, "VPC flow logs"),
        ("stack", "LlE2eBase", "DELETE_FAILED"),
        ("vpc-endpoint", interface, "com.amazonaws.us-east-1.sagemaker.api, available"),
    ]
    assert main(["audit", "--region", "us-east-1", "--delete"]) == 2
    captured = capsys.readouterr()
    assert "stack              LlE2eBase (DELETE_FAILED)" in captured.out
    assert "the project's stacks LlE2eBase (DELETE_FAILED) still exist" in captured.err
    assert "run `python -m training destroy-all` (or `npx cdk destroy --all`)" in captured.err
    assert "(nothing was stopped or deleted.)" in captured.err
    assert audit.find_leftovers(sess, "ll-e2e") == found  # nothing was touched
    # once the stack is gone (its delete retried), --delete removes what it left
    sess.client("cloudformation").delete_stack(StackName="LlE2eBase")
    assert main(["audit", "--region", "us-east-1", "--delete"]) == 0
    assert f"waiting for vpc-endpoint {interface} to be gone" in capsys.readouterr().out
    assert deleting.looks == {interface: 2}  # Deleting, looked at until Deleted
    assert audit.find_leftovers(sess, "ll-e2e") == []
    states = {
        e["VpcEndpointId"]: e["State"]
        for e in sess.client("ec2").describe_vpc_endpoints()["VpcEndpoints"]
    }
    assert states[interface] == "deleted"
    assert_look_alikes_survive(
        {**planted, "stack": [*planted["stack"], "LlE2eEndpoint"]}, still_there(sess)
    )


def test_audit_delete_waits_for_what_sagemaker_deletes_asynchronously(sess, monkeypatch, capsys):
    stand_in = AsyncSageMaker(monkeypatch, reads=3)
    sm = sess.client("sagemaker")
    sm.create_model(
        ModelName="CfnModel-1",
        ExecutionRoleArn=ROLE,
        PrimaryContainer={"Image": "img", "ModelDataUrl": "s3://b/m.tar.gz"},
        Tags=OURS,
    )
    endpoint_config(sm, "CfnConfig-1", "CfnModel-1", Tags=OURS)
    sm.create_endpoint(EndpointName="ll-e2e-endpoint", EndpointConfigName="CfnConfig-1")
    sm.create_notebook_instance(
        NotebookInstanceName="ll-e2e-notebook-abc123", InstanceType="ml.t3.medium", RoleArn=ROLE
    )
    assert main(["audit", "--region", "us-east-1", "--delete"]) == 0
    out = capsys.readouterr().out
    for what in ("endpoint ll-e2e-endpoint", "notebook-instance ll-e2e-notebook-abc123"):
        assert f"waiting for {what} to be gone (deletes are asynchronous)" in out
    assert "still there" not in out
    # each was Deleting and looked at until gone
    assert stand_in.looks == {"ll-e2e-endpoint": 3, "ll-e2e-notebook-abc123": 3}
    assert sm.list_endpoints()["Endpoints"] == []
    assert sm.list_notebook_instances()["NotebookInstances"] == []


def test_an_endpoint_already_deleting_is_going_not_left(sess, capsys):
    sm = sess.client("sagemaker")
    sm.create_model(
        ModelName="CfnModel-1",
        ExecutionRoleArn=ROLE,
        PrimaryContainer={"Image": "img", "ModelDataUrl": "s3://b/m.tar.gz"},
    )
    endpoint_config(sm, "CfnConfig-1", "CfnModel-1")
    sm.create_endpoint(EndpointName="ll-e2e-endpoint", EndpointConfigName="CfnConfig-1")
    backend().endpoints["ll-e2e-endpoint"].endpoint_status = "Deleting"
    assert main(["audit", "--region", "us-east-1"]) == 0
    out = capsys.readouterr().out
    assert "going: endpoint           ll-e2e-endpoint (Deleting) — going (delete under way)" in out
    assert "nothing billable of project 'll-e2e' left in us-east-1" in out


def test_buckets_are_listed_in_pages_of_this_region_only(sess, monkeypatch):
    paged = PagedBuckets(monkeypatch)  # rejects an unpaginated ListBuckets
    monkeypatch.setattr(audit, "BUCKET_PAGE", 5)
    s3 = sess.client("s3")
    for i in range(11):
        s3.create_bucket(Bucket=f"team-bucket-{i:02d}")
    ours = "zz-lle2ebase-bucket-1"  # on the last page
    aws.create_bucket(sess, ours, "us-east-1")
    aws.create_bucket(sess, "lle2ebase-bucket-eu", "eu-west-1")  # ours, another region's audit
    for name in (ours, "lle2ebase-bucket-eu"):
        s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": OURS})
    found = [i.name for i in audit.find_leftovers(sess, "ll-e2e") if i.kind == "bucket"]
    assert found == [ours]
    assert [r["ContinuationToken"] for r in paged.requests] == [None, "5", "10"]
    assert {(r["MaxBuckets"], r["BucketRegion"]) for r in paged.requests} == {("5", "us-east-1")}


def test_what_the_audit_looks_for_in_vpc_mode_is_what_the_base_stack_makes():
    """The flow-log group (named by CloudFormation ``<stack>-<logical id>-<suffix>``) and the
    interface endpoints, synthesized: the audit's name and tag are theirs."""
    from test_stacks import base

    from training.aws.naming import LogGroup

    resources = base(notebook_in_vpc=True).to_json()["Resources"]
    flow_log = next(r for r in resources.values() if r["Type"] == "AWS::EC2::FlowLog")
    group = flow_log["Properties"]["LogGroupName"]["Ref"]
    assert f"LlE2eBase-{group}-".startswith(LogGroup.flow_logs("ll-e2e"))
    assert {"Key": "project", "Value": "ll-e2e"} in resources[group]["Properties"]["Tags"]
    interfaces = [
        r["Properties"]
        for r in resources.values()
        if r["Type"] == "AWS::EC2::VPCEndpoint"
        and r["Properties"]["VpcEndpointType"] == "Interface"
    ]
    assert len(interfaces) == 4
    assert all({"Key": "project", "Value": "ll-e2e"} in p["Tags"] for p in interfaces)


def test_a_vpc_endpoint_that_is_gone_before_the_next_look_ends_the_wait(sess, monkeypatch, capsys):
    """EC2 answers a describe naming an id it no longer holds with InvalidVpcEndpointId.NotFound;
    the wait took that for a failure and ended destroy-all's last step in a traceback."""
    deleting = AsyncVpcEndpoints(monkeypatch, reads=2, forgotten=True)
    interface = plant_network(sess)
    assert main(["audit", "--region", "us-east-1", "--delete"]) == 0
    out = capsys.readouterr().out
    assert f"waiting for vpc-endpoint {interface} to be gone" in out
    assert f"deleted vpc-endpoint {interface}" in out
    assert "still there" not in out
    assert deleting.looks == {interface: 2}  # looked at while Deleting, then it was gone
    ids = [e["VpcEndpointId"] for e in sess.client("ec2").describe_vpc_endpoints()["VpcEndpoints"]]
    assert interface not in ids
    assert audit.find_leftovers(sess, "ll-e2e") == []


def test_a_notebook_given_up_on_is_not_then_waited_for_as_deleting(sess, monkeypatch, capsys):
    """A notebook that never left Pending was never deleted: the NotebookInstanceDeleted waiter
    then spent TEARDOWN_DELETE_WAIT_S (30 min) more looking for a delete nobody had asked for."""
    AsyncSageMaker(monkeypatch)
    monkeypatch.setattr(audit, "TEARDOWN_DELETE_WAIT_S", 0)
    name = "ll-e2e-notebook-abc123"
    sess.client("sagemaker").create_notebook_instance(
        NotebookInstanceName=name, InstanceType="ml.t3.medium", RoleArn=ROLE
    )
    backend().notebook_instances[name].status = "Pending"  # stuck: never InService or Stopped
    assert main(["audit", "--region", "us-east-1", "--delete"]) == 1
    out = capsys.readouterr().out
    assert f"gave up on notebook instance {name}: still Pending after 0s" in out
    assert f"waiting for notebook-instance {name}" not in out
    assert f"deleted notebook-instance {name}" not in out
    assert f"still there: notebook-instance  {name} (Pending)" in out


def test_a_tuning_jobs_trials_are_stopped_by_their_tuning_job_not_again(sess, monkeypatch):
    """StopHyperParameterTuningJob stops the training jobs it launched: a StopTrainingJob after
    it was refused (ValidationException) and said for every trial as 'was not stopped'."""
    stand_in = AsyncSageMaker(monkeypatch, reads=2)
    sess.client("s3").create_bucket(Bucket=BUCKET)  # where the stopped trials save their models
    sm = sess.client("sagemaker")
    tuning = "ll-e2e-hpo-261205-010000"
    definition = {
        "AlgorithmSpecification": {"TrainingImage": "img", "TrainingInputMode": "File"},
        "RoleArn": ROLE,
        "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/models/"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 10},
        "StoppingCondition": {"MaxRuntimeInSeconds": 600},
    }
    sm.create_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=tuning,
        HyperParameterTuningJobConfig={
            "Strategy": "Bayesian",
            "ResourceLimits": {"MaxNumberOfTrainingJobs": 2, "MaxParallelTrainingJobs": 2},
        },
        TrainingJobDefinition=definition,
        Tags=OURS,
    )
    backend().hyper_parameter_tuning_jobs[tuning].hyper_parameter_tuning_job_status = "InProgress"
    trials = [f"{tuning}-00{i}-0123abcd" for i in (1, 2)]
    for trial in trials:  # a tuning job's tags reach the training jobs it launches
        sm.create_training_job(TrainingJobName=trial, Tags=OURS, **definition)
        backend().training_jobs[trial].training_job_status = "InProgress"
    lines = []
    jobs = audit.active_jobs(sess, audit.Ownership("ll-e2e"))
    assert sorted((j.kind, j.name) for j in jobs) == sorted(
        [("tuning-job", tuning), *(("training-job", t) for t in trials)]
    )
    audit.stop_jobs(sess, jobs, lines.append)
    assert stand_in.stopped == [tuning]  # the trials were stopped by it, not asked again
    assert not [line for line in lines if "was not stopped" in line]
    assert f"  stopped tuning job {tuning}" in lines
    for name in (tuning, *trials):
        assert any(line.endswith(f" {name}: Stopped") for line in lines), (name, lines)
