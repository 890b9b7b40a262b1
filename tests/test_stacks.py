"""The CDK app, synthesized for real: resources, properties, cdk-nag, cfn-lint, the CLI."""

import base64
import dataclasses
import datetime
import functools
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import aws_cdk as cdk
import botocore.session
import pytest
from aws_cdk.assertions import Template
from cdk_nag import AwsSolutionsChecks

from stacks.app_builder import build_app
from stacks.assets import idle_stop
from stacks.images import linear_learner_image
from stacks.notebook_lifecycle import program
from stacks.settings import Settings, SettingsError
from training import limits
from training.aws import notebook_bundle
from training.aws.instance_types import DEFAULT as DEFAULT_INSTANCE_TYPE
from training.aws.instance_types import accepts_volume_key
from training.aws.job import AwsTrainConfig, training_request
from training.aws.naming import owned_patterns

ROOT = Path(__file__).parents[1]
MODEL = "s3://some-bucket/runs/ll-e2e-20261125/output/model.tar.gz"
PACKAGE = "arn:aws:sagemaker:us-east-1:123456789012:model-package/ll-e2e-models/3"
SERVERLESS = {"endpoint_mode": "serverless", "serverless_memory_mb": 3072}
SCALED = {
    "endpoint_instance_count": 2,
    "autoscaling_max_instances": 4,
    "data_capture_percent": 20,
    "alarm_email": "ops@example.com",
}
SDK_ACCOUNTS = {
    "us-east-1": "382416733822",
    "eu-west-1": "438346466558",
    "ap-southeast-2": "712309505854",
}


@functools.cache
def synth(**context):
    """App, stacks and templates for one context (cached: synthesis takes seconds)."""
    # hermetic: a training record left in models/ by a real run must not change the app
    app = cdk.App(context={"model_record": "/nonexistent/latest.json", **context})
    stacks = build_app(app)
    templates = {name: Template.from_stack(stack) for name, stack in stacks.items()}
    return app, stacks, templates


def base(**context):
    return synth(**context)[2]["base"]


def endpoint(**context):
    return synth(**{"model_data_url": MODEL, **context})[2]["endpoint"]


def resources(template, kind):
    return template.find_resources(kind)


def only(template, kind):
    found = resources(template, kind)
    assert len(found) == 1, f"{len(found)} {kind}"
    return next(iter(found.values()))


# ----------------------------------------------------------------------------- bucket


def test_bucket_is_versioned_private_encrypted_ssl_only():
    t = base()
    bucket = only(t, "AWS::S3::Bucket")
    props = bucket["Properties"]
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    rule = props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    assert "LoggingConfiguration" not in props  # deliberate: see AwsSolutions-S1 reason
    policy = only(t, "AWS::S3::BucketPolicy")["Properties"]["PolicyDocument"]["Statement"]
    assert any(
        s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        for s in policy
    )


@pytest.mark.parametrize("days", [30, 7])
def test_noncurrent_versions_expire_after_configured_days(days):
    t = base() if days == 30 else base(noncurrent_version_days=days)
    rules = only(t, "AWS::S3::Bucket")["Properties"]["LifecycleConfiguration"]["Rules"]
    assert rules[0]["NoncurrentVersionExpiration"] == {"NoncurrentDays": days}
    assert rules[0]["ExpiredObjectDeleteMarker"] is True
    assert rules[0]["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 7}


def test_destroy_deletes_bucket_key_and_log_groups():
    t = base()
    bucket = only(t, "AWS::S3::Bucket")
    assert bucket["DeletionPolicy"] == "Delete" and bucket["UpdateReplacePolicy"] == "Delete"
    assert {"Key": "aws-cdk:auto-delete-objects", "Value": "true"} in bucket["Properties"]["Tags"]
    assert len(resources(t, "Custom::S3AutoDeleteObjects")) == 1
    key = only(t, "AWS::KMS::Key")
    assert key["DeletionPolicy"] == "Delete" and key["Properties"]["PendingWindowInDays"] == 7
    assert key["Properties"]["EnableKeyRotation"] is True
    for kind in ("AWS::Logs::LogGroup",):
        for group in {
            **resources(base(notebook_in_vpc=True), kind),
            **resources(endpoint(), kind),
        }.values():
            assert group["DeletionPolicy"] == "Delete"
    # nothing outlives `cdk destroy`: no resource says Retain or Snapshot (an absent policy
    # is CloudFormation's Delete), and those CDK retains by default carry an explicit Delete
    retaining = {"Retain", "RetainExceptOnCreate", "Snapshot"}
    templates = (t, base(notebook_in_vpc=True), endpoint(), base(**SCALED))
    templates += tuple(endpoint(**options) for options in (SERVERLESS, SCALED))
    for template in templates:
        for name, res in template.to_json()["Resources"].items():
            assert res.get("DeletionPolicy") not in retaining, name
            assert res.get("UpdateReplacePolicy") not in retaining, name
            if res["Type"] in ("AWS::S3::Bucket", "AWS::KMS::Key", "AWS::Logs::LogGroup"):
                assert res["DeletionPolicy"] == "Delete", name


def test_the_notebook_bundle_is_in_the_bucket_before_the_notebook_first_starts():
    """OnStart syncs notebooks/ when the instance is created: the stack puts the bundle there
    first (a BucketDeployment the notebook depends on), not a later deploy step."""
    app, _, templates = synth()
    t = templates["base"].to_json()["Resources"]
    (deployment,) = [n for n, r in t.items() if r["Type"] == "Custom::CDKBucketDeployment"]
    (notebook,) = [r for r in t.values() if r["Type"] == "AWS::SageMaker::NotebookInstance"]
    assert deployment in notebook["DependsOn"]
    props = t[deployment]["Properties"]
    (bucket,) = [n for n, r in t.items() if r["Type"] == "AWS::S3::Bucket"]
    assert props["DestinationBucketName"] == {"Ref": bucket}
    assert props["DestinationBucketKeyPrefix"] == "notebooks/"
    assert props.get("Prune", True) is True
    # the asset CDK staged holds exactly the bundle, laid out as the instance syncs it
    (key,) = props["SourceObjectKeys"]
    staged = Path(app.outdir) / f"asset.{key.removesuffix('.zip')}"
    files = {p.relative_to(staged).as_posix() for p in staged.rglob("*") if p.is_file()}
    assert files == {key for _, key in notebook_bundle.files()}
    assert {
        "linear_learner.ipynb",
        "training/core/artifact.py",
        "training/datasets/penguins.csv",
    } <= files


def test_the_moto_rehearsal_takes_out_only_what_moto_cannot_run():
    """The stacks have no switch for moto: tests/rehearsal_app.py rewrites the synthesized
    template. Everything else reaches moto exactly as it would reach AWS."""
    from rehearsal_app import for_moto

    template = base().to_json()
    assert "CheckBootstrapVersion" in template["Rules"]
    rewritten = json.loads(json.dumps(template))
    removed = for_moto(rewritten)
    kinds = {template["Resources"][k]["Type"] for k in removed}
    assert kinds == {
        "Custom::CDKBucketDeployment",
        "Custom::S3AutoDeleteObjects",
        "Custom::ModelPackageGroupCleanup",
    }
    assert "Rules" not in rewritten and "BootstrapVersion" not in rewritten["Parameters"]
    assert set(rewritten["Resources"]) == set(template["Resources"]) - set(removed)
    for key, resource in rewritten["Resources"].items():
        original = template["Resources"][key]
        if original["Type"] == "AWS::KMS::Key":
            assert "Tags" in original["Properties"] and "Tags" not in resource["Properties"]
            continue
        # the notebook waited for its bundle; nothing else changed
        depends = original.get("DependsOn", [])
        kept = [d for d in ([depends] if isinstance(depends, str) else depends) if d not in removed]
        assert resource.get("DependsOn", []) == kept, key
        assert {k: v for k, v in resource.items() if k != "DependsOn"} == {
            k: v for k, v in original.items() if k != "DependsOn"
        }, key


# ----------------------------------------------------------------------------- role


def role_statements(template, policy_prefix: str = ""):
    out = []
    for name, policy in resources(template, "AWS::IAM::Policy").items():
        if name.startswith(policy_prefix):
            out += policy["Properties"]["PolicyDocument"]["Statement"]
    return out


def actions_of(statements) -> set[str]:
    return {
        a
        for s in statements
        for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    }


def test_two_roles_trust_sagemaker_only_and_have_no_managed_policies():
    t = base()
    roles = {
        name: r["Properties"]
        for name, r in resources(t, "AWS::IAM::Role").items()
        if r["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"].get("Service")
        == "sagemaker.amazonaws.com"
    }
    assert sorted(n.rstrip("0123456789ABCDEF") for n in roles) == ["ExecutionRole", "NotebookRole"]
    trust = {"Action": "sts:AssumeRole", "Effect": "Allow"}
    trust["Principal"] = {"Service": "sagemaker.amazonaws.com"}
    for name, role in roles.items():
        # confused-deputy prevention where SageMaker documents the key (jobs, inference)
        same_account = {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}
        expected = {**trust, "Condition": same_account} if name.startswith("Execution") else trust
        assert role["AssumeRolePolicyDocument"]["Statement"] == [expected], name
        assert "ManagedPolicyArns" not in role
    notebook = only(t, "AWS::SageMaker::NotebookInstance")["Properties"]
    assert notebook["RoleArn"]["Fn::GetAtt"][0].startswith("NotebookRole")
    # the endpoint stack and training jobs use the execution role (the base stack's export)
    export = t.to_json()["Outputs"]["RoleArn"]
    assert export["Value"]["Fn::GetAtt"][0].startswith("ExecutionRole")


def test_role_policies_are_scoped_and_split_by_duty():
    t = base()
    execution, notebook = role_statements(t, "ExecutionPolicy"), role_statements(t, "Notebook")
    for statements in (execution, notebook):
        assert not [a for a in actions_of(statements) if a in ("s3:*", "*", "sagemaker:*", "iam:*")]
        for s in statements:
            if s["Resource"] == "*":
                assert set([s["Action"]] if isinstance(s["Action"], str) else s["Action"]) <= {
                    "ecr:GetAuthorizationToken",
                    "cloudwatch:PutMetricData",
                }, s
        for s in statements:  # logs only on this project's groups and streams
            if any(a.startswith("logs:") for a in actions_of([s])):
                for r in s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]]:
                    arn = "".join(p for p in r["Fn::Join"][1] if isinstance(p, str))
                    assert arn.split(":log-group:")[1] in PROJECT_LOGS, arn

    def prefixes(statements, sid):
        resources = next(s for s in statements if s.get("Sid") == sid)["Resource"]
        resources = resources if isinstance(resources, list) else [resources]
        return [r["Fn::Join"][1][1] for r in resources]

    # by duty: jobs read channels and write artifacts, the Model reads artifacts and (batch
    # transform) reads its input and writes its output under transform/; the notebook reads
    # everything and writes channels; nobody but deploy writes notebooks/
    assert prefixes(execution, "ReadProjectData") == ["/data/*", "/models/*", "/transform/*"]
    assert prefixes(execution, "WriteProjectData") == ["/models/*", "/transform/*"]
    assert prefixes(notebook, "ReadProjectData") == ["/data/*", "/models/*", "/notebooks/*"]
    assert prefixes(notebook, "WriteProjectData") == ["/data/*"]
    assert not {"s3:DeleteObject", "s3:*"} & actions_of(execution + notebook)
    for statements in (
        role_statements(t, "ExecutionRoleDefault"),
        role_statements(t, "NotebookRoleDefault"),
    ):
        grants = next(s for s in statements if s.get("Sid") == "ProjectKeyGrantsForAwsResources")
        assert grants["Condition"] == {"Bool": {"kms:GrantIsForAWSResource": "true"}}
        assert grants["Resource"]["Fn::GetAtt"][0].startswith("Key")
        # the condition key exists on grant operations only: nothing else may sit under it
        assert grants["Action"] == "kms:CreateGrant"
        assert "kms:DescribeKey" not in actions_of(statements)
    # what a training container runs as cannot start jobs, pass roles or call the endpoint
    assert not actions_of(execution) & {
        "sagemaker:CreateTrainingJob",
        "iam:PassRole",
        "sagemaker:InvokeEndpoint",
        "sagemaker:StopNotebookInstance",
    }
    metrics = next(s for s in execution if s.get("Sid") == "SageMakerMetrics")
    assert metrics["Condition"] == {"StringLike": {"cloudwatch:namespace": "/aws/sagemaker/*"}}
    # the notebook cannot pull images or write metrics, and passes only the execution role
    assert not actions_of(notebook) & {"ecr:BatchGetImage", "cloudwatch:PutMetricData"}
    passrole = next(s for s in notebook if s.get("Sid") == "PassExecutionRoleToSageMaker")
    assert passrole["Resource"]["Fn::GetAtt"][0].startswith("ExecutionRole")
    assert passrole["Condition"] == {
        "StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}
    }
    jobs = next(s for s in notebook if s.get("Sid") == "ProjectTrainingJobs")
    assert "training-job/ll-e2e-*" in json.dumps(jobs["Resource"])
    assert "sagemaker:CreateTrainingJob" not in actions_of([jobs])  # only bounded, below
    invoke = next(s for s in notebook if s.get("Sid") == "InvokeProjectEndpoint")
    assert json.dumps(invoke["Resource"]).endswith(':endpoint/ll-e2e-endpoint"]]}')
    stop = next(s for s in notebook if s.get("Sid") == "StopOwnNotebookWhenIdle")
    assert "notebook-instance/ll-e2e-notebook-*" in json.dumps(stop["Resource"])


PROJECT_LOGS = {  # what either role may touch in CloudWatch Logs: nothing of another project
    "/aws/sagemaker/TrainingJobs:*",
    "/aws/sagemaker/TrainingJobs:log-stream:ll-e2e-*",
    "/aws/sagemaker/TransformJobs:*",
    "/aws/sagemaker/TransformJobs:log-stream:ll-e2e-transform-*",
    "/aws/sagemaker/Endpoints/ll-e2e-endpoint:*",
    "/aws/sagemaker/Endpoints/ll-e2e-endpoint:log-stream:*",
    "/aws/sagemaker/NotebookInstances:*",
    "/aws/sagemaker/NotebookInstances:log-stream:ll-e2e-notebook-*",
}


SKLEARN_ACCOUNTS = {  # sagemaker-core's scikit-learn table (the serial pipeline's featurizer)
    "us-east-1": "683313688378",
    "eu-west-1": "141502667606",
    "ap-southeast-2": "783357654285",
}


@pytest.mark.parametrize("region", sorted(SDK_ACCOUNTS))
def test_role_pulls_only_the_regions_linear_learner_and_scikit_learn_repositories(region):
    """Every Model of the project runs on these two: Linear Learner, and for a model with
    preprocessing the scikit-learn image of its featurizer (a transform job's own pipeline
    Model runs as this role too, endpoint stack or not)."""
    statements = role_statements(base(region=region))
    pull = [s for s in statements if "ecr:BatchGetImage" in s["Action"]]
    assert len(pull) == 1
    repositories = {json.dumps(r).split(":ecr:")[1].split('"')[0] for r in pull[0]["Resource"]}
    assert repositories == {
        f"{region}:{SDK_ACCOUNTS[region]}:repository/linear-learner",
        f"{region}:{SKLEARN_ACCOUNTS[region]}:repository/sagemaker-scikit-learn",
    }


# ----------------------------------------------------------------------------- notebook


def lifecycle_script(template) -> str:
    config = only(template, "AWS::SageMaker::NotebookInstanceLifecycleConfig")
    content = config["Properties"]["OnStart"][0]["Content"]["Fn::Base64"]
    parts = content["Fn::Join"][1]

    def token(part) -> str:
        if isinstance(part, str):
            return part
        ref = part.get("Ref") or part.get("Fn::GetAtt", [""])[0]
        if ref.startswith("Bucket"):
            return "<BUCKET>"
        return "<ROLE_ARN>" if ref.startswith("ExecutionRole") else f"<{ref}>"

    return "".join(token(p) for p in parts)


def test_notebook_instance_defaults():
    props = only(base(), "AWS::SageMaker::NotebookInstance")["Properties"]
    assert props["InstanceType"] == "ml.t3.medium"
    assert set(props["KmsKeyId"]) == {"Ref"}
    assert props["RootAccess"] == "Disabled"
    assert props["InstanceMetadataServiceConfiguration"] == {
        "MinimumInstanceMetadataServiceVersion": "2"
    }
    assert props["NotebookInstanceName"].startswith("ll-e2e-notebook-")
    assert "SubnetId" not in props and "DirectInternetAccess" not in props
    assert props["LifecycleConfigName"]["Fn::GetAtt"][1] == "NotebookInstanceLifecycleConfigName"


def test_notebook_root_access_and_instance_type_configurable():
    props = only(
        base(notebook_root_access=True, notebook_instance_type="ml.t3.large"),
        "AWS::SageMaker::NotebookInstance",
    )["Properties"]
    assert props["RootAccess"] == "Enabled" and props["InstanceType"] == "ml.t3.large"


@pytest.mark.parametrize("minutes", [60, 15])
def test_lifecycle_script_syncs_notebooks_and_stops_when_idle(minutes):
    script = lifecycle_script(base() if minutes == 60 else base(notebook_idle_minutes=minutes))
    assert script.startswith("#!/bin/bash")
    assert 'aws s3 sync "s3://<BUCKET>/notebooks/"' in script
    assert f"idle_stop.py {minutes} --region us-east-1 >>" in script
    assert "/etc/cron.d/idle-stop" in script and "/etc/systemd/system/idle-stop.timer" in script
    assert "'stop-notebook-instance'" in script
    assert program(ROOT / "stacks" / "assets" / "idle_stop.py") in script
    assert len(base64.b64encode(script.encode())) < 16384  # SageMaker's limit per script


def test_lifecycle_script_tells_the_notebooks_what_to_train_with():
    script = lifecycle_script(base(region="eu-west-1"))
    body = script.split("<<'PROJECT_JSON'\n", 1)[1].split("\nPROJECT_JSON", 1)[0]
    project = json.loads(body)
    account = SDK_ACCOUNTS["eu-west-1"]
    assert project == {
        "bucket": "<BUCKET>",
        "endpoint_name": "ll-e2e-endpoint",
        "image_uri": f"{account}.dkr.ecr.eu-west-1.amazonaws.com/linear-learner:1",
        "kms_key_arn": "<Key961B73FD>",
        "project": "ll-e2e",
        "region": "eu-west-1",
        "role_arn": "<ROLE_ARN>",
    }
    assert "/home/ec2-user/SageMaker/linear-learner/project.json" in script


def test_the_notebook_waits_for_its_permissions_and_network(tmp_path):
    """OnStart runs as soon as the instance exists; CloudFormation orders only what properties
    reference (the role), so the policies and VPC endpoints are explicit dependencies."""
    for template, endpoints in ((base(), 0), (base(notebook_in_vpc=True), 5)):
        t = template.to_json()["Resources"]
        notebook = next(r for r in t.values() if r["Type"] == "AWS::SageMaker::NotebookInstance")
        after = set(notebook["DependsOn"])
        policies = {n for n, r in t.items() if r["Type"] == "AWS::IAM::Policy"}
        notebook_policies = {n for n in policies if n.startswith("NotebookPolicy")} | {
            n for n in policies if n.startswith("NotebookRoleDefaultPolicy")
        }
        assert len(notebook_policies) == 2 and notebook_policies <= after
        kinds = {t[n]["Type"] for n in after}
        assert kinds >= {"Custom::CDKBucketDeployment", "AWS::IAM::Role"}
        vpc_endpoints = {n for n, r in t.items() if r["Type"] == "AWS::EC2::VPCEndpoint"}
        assert len(vpc_endpoints) == endpoints and vpc_endpoints <= after
        assert notebook["Properties"]["PlatformIdentifier"] == "notebook-al2023-v1"


def test_the_notebooks_availability_zone_comes_from_context():
    t = base(notebook_in_vpc=True, notebook_availability_zone="us-east-1d").to_json()
    zones = {
        r["Properties"]["AvailabilityZone"]
        for r in t["Resources"].values()
        if r["Type"] == "AWS::EC2::Subnet"
    }
    assert zones == {"us-east-1d"}
    with pytest.raises(
        SettingsError, match="'eu-west-1a' is not an availability zone of us-east-1"
    ):
        Settings.from_context({"notebook_availability_zone": "eu-west-1a"}.get)
    with pytest.raises(SettingsError, match="notebook_platform='notebook-al1-v1' must be one of"):
        Settings.from_context({"notebook_platform": "notebook-al1-v1"}.get)


def test_an_amazon_linux_2_notebook_is_refused_at_synth():
    """SageMaker no longer creates or restarts AL2 notebook instances (DG nbi-al2.html,
    "Starting July 1, 2026"): the deploy would fail, or the first idle stop would be final."""
    for platform in ("notebook-al2-v3", "notebook-al2-v2"):
        with pytest.raises(SettingsError) as err:
            Settings.from_context({"notebook_platform": platform}.get)
        message = str(err.value)
        assert f"notebook_platform='{platform}'" in message
        assert "no longer creates or restarts Amazon Linux 2 notebook instances" in message
        assert "-c notebook_platform=notebook-al2023-v1" in message
    assert Settings.from_context({}.get).notebook_platform == "notebook-al2023-v1"


def test_cdk_json_context_states_every_setting_at_its_default():
    """One source for each default: cdk.json shows users the values Settings would use."""
    context = json.loads((ROOT / "cdk.json").read_text())["context"]
    defaults = {f.name: f.default for f in dataclasses.fields(Settings) if f.name != "account"}
    assert {k: v for k, v in context.items() if not k.startswith("@")} == defaults


def test_lifecycle_script_is_valid_bash():
    script = lifecycle_script(base())
    res = subprocess.run(["bash", "-n"], input=script, text=True, capture_output=True)
    assert res.returncode == 0, res.stderr


def test_notebook_in_vpc_has_no_direct_internet():
    t = base(notebook_in_vpc=True)
    props = only(t, "AWS::SageMaker::NotebookInstance")["Properties"]
    assert props["DirectInternetAccess"] == "Disabled"
    assert "SubnetId" in props and props["SecurityGroupIds"]
    assert not resources(t, "AWS::EC2::NatGateway")
    assert not resources(t, "AWS::EC2::InternetGateway")
    services = [
        json.dumps(e["Properties"]["ServiceName"])
        for e in resources(t, "AWS::EC2::VPCEndpoint").values()
    ]
    for name in ("sagemaker.api", "sagemaker.runtime", "logs", "sts", "s3"):
        assert any(name in s for s in services), name
    assert len(resources(t, "AWS::EC2::FlowLog")) == 1
    # a different create-only network setting gives the instance a different name
    assert (
        props["NotebookInstanceName"]
        != only(base(), "AWS::SageMaker::NotebookInstance")["Properties"]["NotebookInstanceName"]
    )


def test_idle_stop_decision():
    now = 1_000_000.0

    def iso(t):
        return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).isoformat()

    idle = [{"id": "k1", "execution_state": "idle", "last_activity": iso(now - 3700)}]
    assert idle_stop.idle_reason(idle, [], now, 7200, 3600) is None
    assert "up for 1800s" in idle_stop.idle_reason(idle, [], now, 1800, 3600)  # just started
    busy = [{"id": "k2", "execution_state": "busy", "last_activity": iso(now - 9000)}]
    assert idle_stop.idle_reason(busy, [], now, 9999, 3600) == "kernel k2 is busy"
    recent = [{"id": "k3", "execution_state": "idle", "last_activity": iso(now - 60)}]
    assert "kernel k3 active 60s ago" in idle_stop.idle_reason(recent, [], now, 9999, 3600)
    typing = [{"name": "1", "last_activity": iso(now - 30)}]
    assert "terminal 1 active 30s ago" in idle_stop.idle_reason(idle, typing, now, 9999, 3600)
    assert idle_stop.idle_reason([], [], now, 4000, 3600) is None  # no kernels ever started


# ----------------------------------------------------------------------------- endpoint


@pytest.mark.parametrize("region", sorted(SDK_ACCOUNTS))
def test_model_uses_the_regions_linear_learner_image(region):
    container = only(endpoint(region=region), "AWS::SageMaker::Model")["Properties"][
        "PrimaryContainer"
    ]
    assert container["Image"] == linear_learner_image(region)
    assert container["Image"] == (
        f"{SDK_ACCOUNTS[region]}.dkr.ecr.{region}.amazonaws.com/linear-learner:1"
    )
    assert container["ModelDataUrl"] == MODEL
    model = only(endpoint(region=region), "AWS::SageMaker::Model")["Properties"]
    assert model["EnableNetworkIsolation"] is True


def test_model_and_config_have_no_fixed_names_and_the_endpoint_follows_the_config():
    t = endpoint()
    model = only(t, "AWS::SageMaker::Model")["Properties"]
    config = only(t, "AWS::SageMaker::EndpointConfig")["Properties"]
    ep = only(t, "AWS::SageMaker::Endpoint")["Properties"]
    assert "ModelName" not in model and "EndpointConfigName" not in config
    variant = config["ProductionVariants"][0]
    assert variant["ModelName"]["Fn::GetAtt"][1] == "ModelName"
    assert (variant["InstanceType"], variant["InitialInstanceCount"]) == ("ml.m5.large", 1)
    assert ep["EndpointConfigName"]["Fn::GetAtt"][1] == "EndpointConfigName"
    assert ep["EndpointName"] == "ll-e2e-endpoint"


def test_a_new_artifact_changes_model_and_config_but_not_the_endpoint_name():
    other = "s3://some-bucket/runs/ll-e2e-20261126/output/model.tar.gz"
    a, b = endpoint().to_json()["Resources"], endpoint(model_data_url=other).to_json()
    b = b["Resources"]
    model = next(k for k, v in a.items() if v["Type"] == "AWS::SageMaker::Model")
    assert a[model]["Properties"] != b[model]["Properties"]  # replaced: a fresh generated name
    ep = next(k for k, v in a.items() if v["Type"] == "AWS::SageMaker::Endpoint")
    assert a[ep]["Properties"] == b[ep]["Properties"]  # same name, GetAtt of the new config


@pytest.mark.parametrize(
    "instance, has_kms",
    [
        ("ml.m5.large", True),
        ("ml.c5.xlarge", True),
        ("ml.m5d.large", False),
        ("ml.g4dn.xlarge", False),
        ("ml.g5.xlarge", False),
    ],
)
def test_endpoint_config_kms_only_where_the_instance_allows(instance, has_kms):
    assert accepts_volume_key(instance) is has_kms
    config = only(
        endpoint(endpoint_instance_type=instance, endpoint_instance_count=2),
        "AWS::SageMaker::EndpointConfig",
    )["Properties"]
    assert ("KmsKeyId" in config) is has_kms
    assert config["ProductionVariants"][0]["InitialInstanceCount"] == 2


def test_model_made_elsewhere_with_its_own_image():
    image = "123456789012.dkr.ecr.us-east-1.amazonaws.com/my-linear-learner:7"
    t = endpoint(image_uri=image)
    assert only(t, "AWS::SageMaker::Model")["Properties"]["PrimaryContainer"]["Image"] == image
    statements = only(t, "AWS::IAM::Policy")["Properties"]["PolicyDocument"]["Statement"]
    text = json.dumps(statements)
    assert "s3:::some-bucket/runs/ll-e2e-20261125/output/model.tar.gz" in text
    assert ":ecr:us-east-1:123456789012:repository/my-linear-learner" in text


def test_endpoint_log_group_is_owned_by_the_stack():
    group = only(endpoint(), "AWS::Logs::LogGroup")
    assert group["Properties"]["LogGroupName"] == "/aws/sagemaker/Endpoints/ll-e2e-endpoint"
    assert group["DeletionPolicy"] == "Delete"


def test_without_an_artifact_the_endpoint_stack_is_left_out(capsys, tmp_path):
    app = cdk.App(context={"model_record": str(tmp_path / "none.json")})
    stacks = build_app(app)
    assert set(stacks) == {"base"}
    err = capsys.readouterr().err
    assert "endpoint stack skipped" in err and "train first" in err and len(err.splitlines()) == 1


def test_the_training_record_feeds_the_endpoint(tmp_path):
    record = tmp_path / "latest.json"
    record.write_text(
        json.dumps(
            {"model_data_url": MODEL, "region": "us-east-1", "training_job_name": "ll-e2e-1"}
        )
    )
    app = cdk.App(context={"model_record": str(record)})
    stacks = build_app(app)
    container = only(Template.from_stack(stacks["endpoint"]), "AWS::SageMaker::Model")
    assert container["Properties"]["PrimaryContainer"]["ModelDataUrl"] == MODEL
    record.write_text(json.dumps({"model_data_url": MODEL, "region": "eu-west-1"}))
    with pytest.raises(SettingsError, match="trained in eu-west-1 .* -c region=eu-west-1"):
        build_app(cdk.App(context={"model_record": str(record)}))
    record.write_text(json.dumps({"model_data_url": MODEL, "endpoint": "typo"}))
    with pytest.raises(SettingsError, match=r"is not a model record \(.*unknown fields endpoint"):
        build_app(cdk.App(context={"model_record": str(record)}))


# ----------------------------------------------------------------------------- cross-cutting


def test_everything_taggable_carries_the_project_tag():
    tag = {"Key": "project", "Value": "ll-e2e"}
    kinds = [
        "AWS::S3::Bucket",
        "AWS::IAM::Role",
        "AWS::KMS::Key",
        "AWS::SageMaker::NotebookInstance",
        "AWS::SageMaker::Model",
        "AWS::SageMaker::EndpointConfig",
        "AWS::SageMaker::Endpoint",
        "AWS::Logs::LogGroup",
    ]
    for template in (base(), endpoint()):
        for name, res in template.to_json()["Resources"].items():
            if res["Type"] in kinds:
                assert tag in res["Properties"].get("Tags", []), name


def test_outputs():
    """Every output the AWS commands read back (naming.Output) is declared by its stack."""
    from training.aws.naming import Output

    assert set(base().to_json()["Outputs"]) >= {
        Output.BUCKET,
        Output.ROLE,
        Output.KEY,
        "NotebookInstanceName",
        "NotebookUrl",
    }
    assert set(endpoint().to_json()["Outputs"]) >= {
        Output.ENDPOINT,
        Output.ENDPOINT_CONFIG,
        "ModelName",
        "ModelDataUrl",
        "ImageUri",
    }
    exports = {o.get("Export", {}).get("Name") for o in base().to_json()["Outputs"].values()}
    assert {f"LlE2eBase-{o}" for o in (Output.BUCKET, Output.ROLE, Output.KEY)} <= exports
    url = json.dumps(base().to_json()["Outputs"]["NotebookUrl"])
    assert "us-east-1.console.aws.amazon.com/sagemaker" in url


@pytest.mark.parametrize(
    "context",
    [
        {},
        {"model_data_url": MODEL},
        {"model_data_url": MODEL, "notebook_in_vpc": True, "region": "eu-west-1"},
        {
            "model_data_url": MODEL,
            "endpoint_instance_type": "ml.m5d.large",
            "image_uri": "123456789012.dkr.ecr.us-east-1.amazonaws.com/other:1",
        },
        {"model_data_url": MODEL, **SERVERLESS},
        {"model_data_url": MODEL, **SCALED},
    ],
    ids=[
        "base-only",
        "with-endpoint",
        "vpc-eu-west-1",
        "nvme-foreign-image",
        "serverless",
        "scaled-captured",
    ],
)
def test_cdk_nag_aws_solutions_pass(context):
    app = synth(**context)[0]
    report = AwsSolutionsChecks().validate_scope(app)
    assert report.success, [v.rule_name for v in report.violations]


def test_settings_errors_name_the_context_key():
    with pytest.raises(SettingsError) as err:
        Settings.from_context(
            {
                "region": "europe",
                "endpoint_instance_type": "m5.large",
                "notebook_idle_minutes": "0",
                "project": "LL",
            }.get
        )
    text = str(err.value)
    for piece in (
        "region='europe'",
        "endpoint_instance_type='m5.large'",
        "notebook_idle_minutes=0 must be between 5",
        "project='LL'",
    ):
        assert piece in text
    with pytest.raises(SettingsError, match="notebook_in_vpc='yes' must be true or false"):
        Settings.from_context({"notebook_in_vpc": "yes"}.get)
    assert (
        Settings.from_context(
            {"notebook_in_vpc": "true", "notebook_volume_gb": "20"}.get
        ).notebook_volume_gb
        == 20
    )


# ----------------------------------------------------------------------------- real toolchain


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    # Any AWS call would have to go through this dead proxy and fail: synth must need none.
    env.update(
        HTTPS_PROXY="http://127.0.0.1:9",
        HTTP_PROXY="http://127.0.0.1:9",
        AWS_EC2_METADATA_DISABLED="true",
        CDK_DISABLE_CLI_TELEMETRY="1",
        **extra,
    )
    return env


VALIDATION_REPORT_FLAG = "@aws-cdk/core:validationReportJson"  # writes validation-report.json


@pytest.fixture(scope="module")
def synthesized(tmp_path_factory):
    """`npx cdk synth` through the pinned CLI, without AWS credentials."""
    out = tmp_path_factory.mktemp("cdk.out")
    for variant, ctx in (
        ("default", []),
        ("endpoint", ["-c", f"model_data_url={MODEL}"]),
        ("package", ["-c", f"model_package_arn={PACKAGE}"]),
        (
            "vpc",
            [
                "-c",
                f"model_data_url={MODEL}",
                "-c",
                "notebook_in_vpc=true",
                "-c",
                "region=ap-southeast-2",
            ],
        ),
        *(
            (
                name,
                [
                    "-c",
                    f"model_data_url={MODEL}",
                    *[a for k, v in ctx.items() for a in ("-c", f"{k}={v}")],
                ],
            )
            for name, ctx in (("serverless", SERVERLESS), ("scaled", SCALED))
        ),
    ):
        res = subprocess.run(
            [
                "npx",
                "--no-install",
                "cdk",
                "synth",
                "--no-notices",
                "-q",
                "-o",
                str(out / variant),
                "-c",
                "model_record=/nonexistent/latest.json",
                "-c",
                f"{VALIDATION_REPORT_FLAG}=true",
                *ctx,
            ],
            cwd=ROOT,
            env=clean_env(),
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert res.returncode == 0, res.stderr[-3000:]
    return out


def test_the_cdks_own_cloudformation_validation_finds_nothing_in_any_variant(synthesized):
    """aws-cdk-lib checks every template against CloudFormation's schemas at synth (its
    "CloudFormation Validate" plugin) but only warns; this makes its findings fail the suite.
    ``python -m training run`` skips that check to save its ~5.5 s, relying on this test."""
    variants = sorted(p.name for p in synthesized.iterdir())
    assert len(variants) == 6
    for variant in variants:
        report = json.loads((synthesized / variant / "validation-report.json").read_text())
        findings = [
            (plugin["pluginName"], v["ruleName"], v["description"])
            for plugin in report["pluginReports"]
            for v in plugin["violations"]
        ]
        assert findings == [], variant


def test_pinned_cli_version():
    res = subprocess.run(
        ["npx", "--no-install", "cdk", "--version"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=120,
    )
    assert res.stdout.startswith("2.1148."), res.stdout + res.stderr


def test_cli_synth_without_credentials_writes_templates(synthesized):
    assert (synthesized / "default" / "LlE2eBase.template.json").exists()
    assert not (synthesized / "default" / "LlE2eEndpoint.template.json").exists()
    assert (synthesized / "endpoint" / "LlE2eEndpoint.template.json").exists()
    template = json.loads((synthesized / "vpc" / "LlE2eEndpoint.template.json").read_text())
    images = [
        r["Properties"]["PrimaryContainer"]["Image"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::SageMaker::Model"
    ]
    assert images == [linear_learner_image("ap-southeast-2")]


def test_cfn_lint_passes_on_every_synthesized_template(synthesized):
    templates = sorted(str(p) for p in synthesized.glob("*/*.template.json"))
    assert len(templates) == 11
    cfn_lint = Path(sys.executable).parent / "cfn-lint"
    res = subprocess.run(
        [str(cfn_lint), *templates], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert res.returncode == 0, res.stdout + res.stderr


def checkov_skips() -> dict[str, str]:
    """.checkov.yaml's skipped checks, each with the comment lines above it (its reason)."""
    skips, reason = {}, []
    for line in (ROOT / ".checkov.yaml").read_text().splitlines()[1:]:
        text = line.strip()
        if text.startswith("#"):
            reason.append(text.lstrip("# "))
        elif text.startswith("- CKV"):
            skips[text[2:]] = " ".join(reason)
            reason = []
        else:
            reason = []
    return skips


def test_checkov_passes_on_every_synthesized_template(synthesized):
    skips = checkov_skips()
    assert skips and all(len(reason) > 30 for reason in skips.values()), skips
    checkov = ROOT / ".venv-checkov" / "bin" / "checkov"
    res = subprocess.run(
        [str(checkov), "--config-file", ".checkov.yaml", "-d", str(synthesized), "-o", "json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    reports = json.loads(res.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    summary = reports[0]["summary"]
    failed = [
        (c["check_id"], c["resource"], c["file_path"])
        for r in reports
        for c in r["results"]["failed_checks"]
    ]
    assert summary["resource_count"] > 50 and summary["passed"] > 200, summary
    assert failed == [] and summary["failed"] == 0, failed
    assert summary["parsing_errors"] == 0 and res.returncode == 0, res.stderr[-2000:]


def test_bad_context_fails_synth_with_a_message_not_a_traceback(tmp_path):
    res = subprocess.run(
        [sys.executable, "app.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env=clean_env(CDK_OUTDIR=str(tmp_path), CDK_CONTEXT_JSON=json.dumps({"region": "mars"})),
    )
    assert res.returncode == 1
    assert "region='mars' is not an AWS region name" in res.stderr
    assert "Traceback" not in res.stderr


# ----------------------------------------------------------------------------- endpoint options


def test_the_default_endpoint_is_realtime_encrypted_and_alarmed():
    t = endpoint()
    variant = only(t, "AWS::SageMaker::EndpointConfig")["Properties"]["ProductionVariants"][0]
    assert variant["InstanceType"] == "ml.m5.large" and "ServerlessConfig" not in variant
    config = only(t, "AWS::SageMaker::EndpointConfig")["Properties"]
    assert "KmsKeyId" in config and "DataCaptureConfig" not in config
    assert only(t, "AWS::SageMaker::Model")["Properties"]["EnableNetworkIsolation"] is True
    assert not resources(t, "AWS::ApplicationAutoScaling::ScalableTarget")
    assert not resources(t, "AWS::SNS::Subscription")
    topic = only(t, "AWS::SNS::Topic")["Properties"]
    assert "KmsMasterKeyId" in topic
    # audit proves ownership of CloudFormation-named alarms and topics by this tag alone
    project_tag = {"Key": "project", "Value": "ll-e2e"}
    assert project_tag in topic["Tags"]
    for alarm in resources(t, "AWS::CloudWatch::Alarm").values():
        assert project_tag in alarm["Properties"]["Tags"]
    alarms = {
        a["Properties"]["MetricName"]: a["Properties"]
        for a in resources(t, "AWS::CloudWatch::Alarm").values()
    }
    assert set(alarms) == {"Invocation5XXErrors", "ModelLatency"}
    latency = alarms["ModelLatency"]
    assert latency["ExtendedStatistic"] == "p99" and latency["Threshold"] == 1_000_000  # µs
    for alarm in alarms.values():
        dims = {d["Name"]: d["Value"] for d in alarm["Dimensions"]}
        assert dims == {"EndpointName": "ll-e2e-endpoint", "VariantName": "AllTraffic"}
        assert alarm["AlarmActions"][0]["Ref"].startswith("Alarms")
    # CloudWatch may use the project key and publish to the topic, for this stack's alarms
    key_policy = only(base(), "AWS::KMS::Key")["Properties"]["KeyPolicy"]["Statement"]
    topic_policy = only(t, "AWS::SNS::TopicPolicy")["Properties"]["PolicyDocument"]["Statement"]
    for statements, action in ((key_policy, "kms:GenerateDataKey*"), (topic_policy, "sns:Publish")):
        (grant,) = [
            s
            for s in statements
            if isinstance(s.get("Principal"), dict)
            and s["Principal"].get("Service") == "cloudwatch.amazonaws.com"
        ]
        assert action in json.dumps(grant["Action"]) and grant["Effect"] == "Allow"
        assert "aws:SourceAccount" in grant["Condition"]["StringEquals"]
        source = json.dumps(grant["Condition"]["ArnLike"]["aws:SourceArn"])
        assert ":alarm:LlE2eEndpoint-*" in source


def test_serverless_has_no_instances_no_volume_key_no_isolation_and_watches_saturation():
    t = endpoint(**SERVERLESS)
    config = only(t, "AWS::SageMaker::EndpointConfig")["Properties"]
    variant = config["ProductionVariants"][0]
    assert variant["ServerlessConfig"] == {"MaxConcurrency": 5, "MemorySizeInMB": 3072}
    assert not {"InstanceType", "InitialInstanceCount"} & set(variant)
    assert "KmsKeyId" not in config  # serverless variants refuse a volume key
    assert only(t, "AWS::SageMaker::Model")["Properties"]["EnableNetworkIsolation"] is False
    names = {a["Properties"]["MetricName"] for a in resources(t, "AWS::CloudWatch::Alarm").values()}
    assert "ServerlessConcurrentExecutionsUtilization" in names


def test_autoscaling_data_capture_and_an_alarm_email():
    t = endpoint(**SCALED)
    target = only(t, "AWS::ApplicationAutoScaling::ScalableTarget")["Properties"]
    assert target["ResourceId"] == "endpoint/ll-e2e-endpoint-ml-m5-large/variant/AllTraffic"
    assert (target["MinCapacity"], target["MaxCapacity"]) == (2, 4)
    assert target["ScalableDimension"] == "sagemaker:variant:DesiredInstanceCount"
    policy = only(t, "AWS::ApplicationAutoScaling::ScalingPolicy")["Properties"]
    tracking = policy["TargetTrackingScalingPolicyConfiguration"]
    assert tracking["PredefinedMetricSpecification"]["PredefinedMetricType"] == (
        "SageMakerVariantInvocationsPerInstance"
    )
    assert tracking["TargetValue"] == 100
    assert tracking["ScaleInCooldown"] > tracking["ScaleOutCooldown"]
    capture = only(t, "AWS::SageMaker::EndpointConfig")["Properties"]["DataCaptureConfig"]
    assert capture["InitialSamplingPercentage"] == 20 and capture["EnableCapture"] is True
    assert {o["CaptureMode"] for o in capture["CaptureOptions"]} == {"Input", "Output"}
    assert "KmsKeyId" in capture
    join = capture["DestinationS3Uri"]["Fn::Join"][1]
    assert join[0] == "s3://" and join[2] == "/capture"
    assert join[1]["Fn::ImportValue"] == "LlE2eBase-BucketName"
    email = only(t, "AWS::SNS::Subscription")["Properties"]
    assert (email["Protocol"], email["Endpoint"]) == ("email", "ops@example.com")
    # the base stack: captures expire like old versions, and the model's role may write them
    b = base(**SCALED)
    rules = only(b, "AWS::S3::Bucket")["Properties"]["LifecycleConfiguration"]["Rules"]
    capture_rule = next(r for r in rules if r.get("Prefix") == "capture/")
    assert capture_rule["ExpirationInDays"] == 30
    writes = next(
        s for s in role_statements(b, "ExecutionPolicy") if s.get("Sid") == "WriteProjectData"
    )["Resource"]
    assert [r["Fn::Join"][1][1] for r in writes] == ["/models/*", "/transform/*", "/capture/*"]


@pytest.mark.parametrize(
    "options, name",
    [
        ({}, "ll-e2e-endpoint"),
        (SERVERLESS, "ll-e2e-endpoint-serverless"),
        (SCALED, "ll-e2e-endpoint-ml-m5-large"),
        ({"alarms": "false"}, "ll-e2e-endpoint"),
    ],
)
def test_every_option_keeps_the_config_unnamed_and_the_endpoint_named(options, name):
    t = endpoint(**options)
    assert "EndpointConfigName" not in only(t, "AWS::SageMaker::EndpointConfig")["Properties"]
    assert "ModelName" not in only(t, "AWS::SageMaker::Model")["Properties"]
    assert only(t, "AWS::SageMaker::Endpoint")["Properties"]["EndpointName"] == name
    assert Settings.from_context({**options, "model_data_url": MODEL}.get).endpoint_name == name
    # audit and destroy-all recognise it as this project's by its exact name
    assert re.match(owned_patterns("ll-e2e")["endpoint"], name)
    # and SageMaker takes it (botocore's model of CreateEndpoint's EndpointName)
    shape = botocore.session.get_session().get_service_model("sagemaker")
    rule = shape.shape_for("EndpointName").metadata
    assert len(name) <= rule["max"] and re.fullmatch(rule["pattern"], name)
    log_group = only(t, "AWS::Logs::LogGroup")["Properties"]["LogGroupName"]
    assert log_group == f"/aws/sagemaker/Endpoints/{name}"
    if options.get("alarms") == "false":
        assert not resources(t, "AWS::CloudWatch::Alarm") and not resources(t, "AWS::SNS::Topic")


@pytest.mark.parametrize(
    "context, message",
    [
        ({**SERVERLESS, "autoscaling_max_instances": "3"}, "a serverless one scales by itself"),
        ({**SERVERLESS, "data_capture_percent": "10"}, "do not support data capture"),
        ({"serverless_memory_mb": "1500"}, "must be a multiple of 1024"),
        ({"endpoint_instance_count": "3", "autoscaling_max_instances": "2"}, "is below"),
        ({"alarm_email": "ops"}, "is not an e-mail address"),
        ({"endpoint_mode": "batch"}, "endpoint_mode='batch' must be one of realtime, serverless"),
        ({"data_capture_percent": "101"}, "data_capture_percent=101 must be between 0 and 100"),
        (
            {
                "project": "a-thirty-two-character-project-x",
                "autoscaling_max_instances": "2",
                "endpoint_instance_type": "ml.abcdefghijklmnopqrstu.24xlarge",
            },
            "is over 63 characters (SageMaker's limit): use a shorter project name",
        ),
    ],
)
def test_endpoint_options_that_sagemaker_would_refuse_fail_synth(context, message):
    with pytest.raises(SettingsError, match=re.escape(message)):
        Settings.from_context(context.get)


# ----------------------------------------------------------------------------- registry


def test_a_registry_version_is_served_by_its_package_arn():
    t = synth(model_package_arn=PACKAGE)[2]["endpoint"]
    model = only(t, "AWS::SageMaker::Model")["Properties"]
    assert model["Containers"] == [{"ModelPackageName": PACKAGE}]
    assert "PrimaryContainer" not in model and "InferenceExecutionConfig" not in model
    assert model["EnableNetworkIsolation"] is True
    outputs = t.find_outputs("*")
    assert outputs["ModelPackageArn"]["Value"] == PACKAGE and "ModelDataUrl" not in outputs


@pytest.mark.parametrize(
    ("context", "said"),
    [
        (
            {"model_package_arn": PACKAGE.replace("ll-e2e-models", "other-models")},
            "is not a version of this project's model group ll-e2e-models in us-east-1",
        ),
        (
            {"model_package_arn": PACKAGE.replace("us-east-1", "eu-west-1")},
            "is not a version of this project's model group ll-e2e-models in us-east-1",
        ),
        (
            {"model_package_arn": PACKAGE, "model_data_url": MODEL},
            "model_package_arn names the model to serve",
        ),
        (
            {"model_package_arn": PACKAGE, **SERVERLESS},
            "serverless cannot serve a registry version",
        ),
    ],
)
def test_a_package_outside_the_projects_group_or_region_is_refused_at_synth(context, said):
    from stacks.settings import SettingsError

    with pytest.raises(SettingsError) as err:
        synth(**context)
    assert said in str(err.value)


# ----------------------------------------------------------------------------- real-account rules


def create_only(resource_type: str) -> list[str]:
    """The resource's create-only properties, from CloudFormation's own resource schema (the
    copy cfn-lint ships): a change to one of them replaces the resource."""
    from cfnlint.schema.manager import PROVIDER_SCHEMA_MANAGER

    schema = PROVIDER_SCHEMA_MANAGER.get_resource_schema("us-east-1", resource_type).schema
    return schema["createOnlyProperties"]


def test_a_mode_change_replaces_the_endpoint_instead_of_updating_it():
    """SageMaker cannot update a real-time endpoint to serverless (DG
    serverless-endpoints-update.html): the mode is in the name, which is create-only, so
    CloudFormation creates the new endpoint and deletes the old one, no UpdateEndpoint."""
    assert create_only("AWS::SageMaker::Endpoint") == ["/properties/EndpointName"]
    realtime, serverless = (
        only(endpoint(**options), "AWS::SageMaker::Endpoint")["Properties"]
        for options in ({}, SERVERLESS)
    )
    assert realtime["EndpointName"] == "ll-e2e-endpoint"  # the default's name, as before
    assert serverless["EndpointName"] == "ll-e2e-endpoint-serverless"
    # the notebook's role may invoke the endpoint of its own settings
    invoke = next(
        s
        for s in role_statements(synth(model_data_url=MODEL, **SERVERLESS)[2]["base"], "Notebook")
        if s.get("Sid") == "InvokeProjectEndpoint"
    )
    assert json.dumps(invoke["Resource"]).endswith(':endpoint/ll-e2e-endpoint-serverless"]]}')


def test_with_autoscaling_an_instance_type_change_replaces_the_endpoint_and_its_target():
    """SageMaker fails an update that changes the instance type of a variant registered for
    autoscaling (DG endpoint-scaling-update.html): with autoscaling the type is in the name;
    without it, a new type updates the endpoint in place (same name)."""
    assert "/properties/ResourceId" in create_only("AWS::ApplicationAutoScaling::ScalableTarget")
    before, after = (
        endpoint(**SCALED, **extra) for extra in ({}, {"endpoint_instance_type": "ml.c5.xlarge"})
    )
    names = [
        only(t, "AWS::SageMaker::Endpoint")["Properties"]["EndpointName"] for t in (before, after)
    ]
    assert names == ["ll-e2e-endpoint-ml-m5-large", "ll-e2e-endpoint-ml-c5-xlarge"]
    targets = [
        only(t, "AWS::ApplicationAutoScaling::ScalableTarget")["Properties"]["ResourceId"]
        for t in (before, after)
    ]
    assert targets == [f"endpoint/{n}/variant/AllTraffic" for n in names]
    # the scaling policy moves with its target: both create-only, so it is replaced too, and
    # CloudFormation replaces a custom-named resource only under a new name (AWS Knowledge
    # Center, cloudformation-custom-name)
    policy = "AWS::ApplicationAutoScaling::ScalingPolicy"
    assert {"/properties/PolicyName", "/properties/ScalingTargetId"} <= set(create_only(policy))
    policies = [only(t, policy)["Properties"]["PolicyName"] for t in (before, after)]
    assert policies == [f"{n}-invocations-per-instance" for n in names]
    # without autoscaling (the synth of the volume-key test), the type changes in place
    unscaled = endpoint(endpoint_instance_type="ml.c5.xlarge", endpoint_instance_count=2)
    assert only(unscaled, "AWS::SageMaker::Endpoint")["Properties"]["EndpointName"] == (
        "ll-e2e-endpoint"
    )


def test_with_autoscaling_a_new_model_keeps_the_scaled_out_capacity():
    """UpdateEndpoint resets the variant to the config's InitialInstanceCount unless
    RetainAllVariantProperties (API_UpdateEndpoint: "The default is false"); retained are the
    count and the weight (API_VariantProperty), the weight given back to the config."""
    scaled = only(endpoint(**SCALED), "AWS::SageMaker::Endpoint")["Properties"]
    assert scaled["RetainAllVariantProperties"] is True
    assert scaled["ExcludeRetainedVariantProperties"] == [{"VariantPropertyType": "DesiredWeight"}]
    model = botocore.session.get_session().get_service_model("sagemaker")
    assert {"RetainAllVariantProperties", "ExcludeRetainedVariantProperties"} <= set(
        model.operation_model("UpdateEndpoint").input_shape.members
    )
    assert model.shape_for("VariantPropertyType").enum == [
        "DesiredInstanceCount",
        "DesiredWeight",
        "DataCaptureConfig",
    ]
    # the model and the instance type are not variant properties: the new config's own
    variant = only(endpoint(**SCALED), "AWS::SageMaker::EndpointConfig")["Properties"][
        "ProductionVariants"
    ][0]
    assert variant["InstanceType"] == "ml.m5.large" and "Fn::GetAtt" in variant["ModelName"]
    for options in ({}, SERVERLESS):  # nothing scales them: the config's count is the count
        props = only(endpoint(**options), "AWS::SageMaker::Endpoint")["Properties"]
        assert not {"RetainAllVariantProperties", "ExcludeRetainedVariantProperties"} & set(props)


def test_the_notebook_starts_only_bounded_training_jobs_and_its_own_requests_pass():
    """CreateTrainingJob for the notebook's role carries the condition keys the Service
    Authorization Reference lists for it; the request train_aws sends from the notebook (its
    defaults, the key OnStart hands it) satisfies every one of them."""
    t = base()
    notebook = role_statements(t, "Notebook")
    (create,) = [s for s in notebook if "sagemaker:CreateTrainingJob" in actions_of([s])]
    assert create["Action"] == "sagemaker:CreateTrainingJob"
    assert "training-job/ll-e2e-*" in json.dumps(create["Resource"])
    conditions = create["Condition"]
    key = conditions["ArnEquals"]["sagemaker:VolumeKmsKey"]
    assert key["Fn::GetAtt"][0].startswith("Key") and key["Fn::GetAtt"][1] == "Arn"
    assert conditions == {
        "ForAllValues:StringEquals": {
            "sagemaker:InstanceTypes": list(limits.NOTEBOOK_TRAINING_INSTANCE_TYPES)
        },
        "Null": {"sagemaker:InstanceTypes": "false"},
        "NumericLessThanEquals": {
            "sagemaker:MaxRuntimeInSeconds": str(limits.NOTEBOOK_TRAINING_MAX_RUNTIME_S)
        },
        "Bool": {"sagemaker:NetworkIsolation": "true"},
        "ArnEquals": {"sagemaker:VolumeKmsKey": key, "sagemaker:OutputKmsKey": key},
    }
    # the key the notebook is given is that key's ARN (the OnStart script's project.json)
    lifecycle = only(t, "AWS::SageMaker::NotebookInstanceLifecycleConfig")
    assert key in lifecycle["Properties"]["OnStart"][0]["Content"]["Fn::Base64"]["Fn::Join"][1]
    # the notebook trains with train_aws's defaults for type and run time (the cell sets none)
    cells = json.loads((ROOT / "notebooks" / "linear_learner.ipynb").read_text())["cells"]
    train = next("".join(c["source"]) for c in cells if "train_aws(" in "".join(c["source"]))
    assert "instance_type" not in train and "max_runtime_s" not in train
    assert "kms_key_arn=PROJECT" in train
    config = AwsTrainConfig(data_dir=Path("data"), kms_key_arn="arn:aws:kms:k")
    request = training_request(
        config,
        {},
        {"train": "application/x-recordio-protobuf"},
        "b",
        "data/j",
        "img",
        "arn:aws:iam::1:role/r",
        "ll-e2e-20261205-000000",
        kms_key_arn=config.kms_key_arn,
    )
    resources_of = request["ResourceConfig"]
    assert {resources_of["InstanceType"]} <= set(limits.NOTEBOOK_TRAINING_INSTANCE_TYPES)
    assert request["StoppingCondition"]["MaxRuntimeInSeconds"] <= (
        limits.NOTEBOOK_TRAINING_MAX_RUNTIME_S
    )
    assert request["EnableNetworkIsolation"] is True
    assert (
        resources_of["VolumeKmsKeyId"]
        == request["OutputDataConfig"]["KmsKeyId"]
        == (config.kms_key_arn)
    )
    # every allowed type takes the volume key the policy requires, the default among them
    assert DEFAULT_INSTANCE_TYPE in limits.NOTEBOOK_TRAINING_INSTANCE_TYPES
    assert all(accepts_volume_key(i) for i in limits.NOTEBOOK_TRAINING_INSTANCE_TYPES)


@pytest.mark.parametrize(
    "project, partner",
    [("a-1b-x", "a1b-x"), ("ll--e2e", "ll-e2e"), ("ll-e2e-2024", "ll-e2e2024")],
)
def test_project_names_that_would_share_stacks_are_refused(project, partner):
    """Stack names drop the hyphens (LlE2eBase): a part starting with a digit or a hyphen
    would make two projects one pair of stacks, and the second deploy would overwrite the
    first's."""
    from training.aws.naming import stack_prefix

    assert stack_prefix(project) == stack_prefix(partner)
    with pytest.raises(SettingsError) as err:
        Settings.from_context({"project": project}.get)
    said = str(err.value)
    assert f"project='{project}': start every hyphen-separated part with a letter" in said
    assert f"'{project}' and '{partner}' would both be the stacks" in said
    assert f"{stack_prefix(project)}Base and {stack_prefix(project)}Endpoint" in said
    # the names that are accepted map to stacks one to one
    accepted = ["a1b-x", "ll-e2e", "ll-e2e2024", "ab-c", "abc", "a-bc", "ll-e2e-v2024"]
    for name in accepted:
        assert Settings.from_context({"project": name}.get).project == name
    assert len({stack_prefix(n) for n in accepted}) == len(accepted)
