"""Another team's resources that share this project's name prefix: planted in moto by the
audit tests and the rehearsal, which then show that no teardown of ours touches them."""

import contextlib
import json


def plant_look_alikes(sess) -> dict:
    """Another team's resources whose names share this project's prefix (ll-e2e-prod,
    ll-e2ex, LlE2eBaseline), untagged or tagged for their own project. Returns what to find
    again after any teardown, by kind."""
    sm = sess.client("sagemaker")
    role = "arn:aws:iam::123456789012:role/x"
    theirs = [{"Key": "project", "Value": "ll-e2ex"}]
    models = ["ll-e2e-prod-model", "LlE2eBase-Model-lookalike", "ll-e2ex-model"]
    for name in models:
        sm.create_model(
            ModelName=name,
            ExecutionRoleArn=role,
            PrimaryContainer={"Image": "img", "ModelDataUrl": "s3://b/m.tar.gz"},
            **({"Tags": theirs} if "e2ex" in name else {}),
        )
    configs = ["ll-e2e-prod-config", "ll-e2ex-config"]
    for name in configs:
        sm.create_endpoint_config(
            EndpointConfigName=name,
            ProductionVariants=[
                {
                    "VariantName": "AllTraffic",
                    "ModelName": models[0],
                    "InitialInstanceCount": 1,
                    "InstanceType": "ml.m5.large",
                }
            ],
            **({"Tags": theirs} if "e2ex" in name else {}),
        )
    endpoints = ["ll-e2e-prod", "ll-e2e-endpoint-v2", "ll-e2ex-endpoint"]
    for name in endpoints:
        sm.create_endpoint(
            EndpointName=name,
            EndpointConfigName=configs[0],
            **({"Tags": theirs} if "e2ex" in name else {}),
        )
    # their notebook even has our exact name pattern, but their tag says whose it is
    notebooks = ["ll-e2e-prod-notebook-abc123", "ll-e2e-notebook-ffffff"]
    sm.create_notebook_instance(
        NotebookInstanceName=notebooks[0], InstanceType="ml.t3.medium", RoleArn=role
    )
    sm.create_notebook_instance(
        NotebookInstanceName=notebooks[1], InstanceType="ml.t3.medium", RoleArn=role, Tags=theirs
    )
    s3 = sess.client("s3")
    buckets = ["ll-e2e-prod-data", "ll-e2ex-data", "lle2ebase-lookalike"]
    for name in buckets:
        s3.create_bucket(Bucket=name)
    s3.put_bucket_tagging(Bucket="ll-e2ex-data", Tagging={"TagSet": theirs})
    logs = sess.client("logs")
    groups = [
        "/aws/sagemaker/Endpoints/ll-e2e-prod",
        "/aws/sagemaker/Endpoints/ll-e2e-endpoint-v2",
        "/aws/lambda/LlE2eBaseline-Handler-x",
    ]
    for name in groups:
        logs.create_log_group(logGroupName=name)
    streams = {
        "/aws/sagemaker/TrainingJobs": [
            "ll-e2e-prod-20261125-120000/algo-1-1",
            "ll-e2ex-20261125-120000/algo-1-1",
        ],
        "/aws/sagemaker/NotebookInstances": [
            "ll-e2e-prod-notebook-abc123/jupyter.log",
            "ll-e2ex-notebook-abc123/jupyter.log",
        ],
    }
    for group, names in streams.items():
        with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
            logs.create_log_group(logGroupName=group)
        for name in names:
            logs.create_log_stream(logGroupName=group, logStreamName=name)
    kms = sess.client("kms")
    key = kms.create_key(Tags=[{"TagKey": "project", "TagValue": "ll-e2ex"}])["KeyMetadata"]
    # their stacks, whose names start like ours (untagged, and tagged for them)
    cfn = sess.client("cloudformation")
    stacks = {"LlE2eBaseline": [], "LlE2eEndpointV2": theirs}
    for name, tags in stacks.items():
        template = {"Resources": {"P": {"Type": "AWS::SSM::Parameter", "Properties": {
            "Name": f"/theirs/{name}", "Type": "String", "Value": "theirs"}}}}  # fmt: skip
        cfn.create_stack(StackName=name, TemplateBody=json.dumps(template), Tags=tags)
    # their interface VPC endpoints (one tagged for them, one untagged) and flow-log groups,
    # one named exactly as CloudFormation names ours but without our tag
    ec2 = sess.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.9.0.0/24")["Subnet"]["SubnetId"]
    vpc_endpoints = [
        ec2.create_vpc_endpoint(
            VpcId=vpc,
            ServiceName="com.amazonaws.us-east-1.sts",
            VpcEndpointType="Interface",
            SubnetIds=[subnet],
            TagSpecifications=[{"ResourceType": "vpc-endpoint", "Tags": tags}] if tags else [],
        )["VpcEndpoint"]["VpcEndpointId"]
        for tags in (theirs, [])
    ]
    flow_logs = {
        "LlE2eBaseline-FlowLogs1A2B3C4D-AbCdEfGh1234": {"project": "ll-e2ex"},
        "LlE2eBase-FlowLogs16C1943A-Untagged0000": {},
    }
    for name, tags in flow_logs.items():
        logs.create_log_group(logGroupName=name, **({"tags": tags} if tags else {}))
    return {
        "stack": list(stacks),
        "vpc-endpoint": vpc_endpoints,
        "model": models,
        "endpoint-config": configs,
        "endpoint": endpoints,
        "notebook": notebooks,
        "bucket": buckets,
        "log-group": groups + list(flow_logs),
        "log-stream": [f"{g}:{n}" for g, names in streams.items() for n in names],
        "kms-key": [key["KeyId"]],
    }


def still_there(sess) -> dict:
    """What exists now, in the shape plant_look_alikes returns."""
    sm, logs, kms = sess.client("sagemaker"), sess.client("logs"), sess.client("kms")
    streams = []
    for group in ("/aws/sagemaker/TrainingJobs", "/aws/sagemaker/NotebookInstances"):
        try:
            listed = logs.describe_log_streams(logGroupName=group)["logStreams"]
        except logs.exceptions.ResourceNotFoundException:
            listed = []
        streams += [f"{group}:{s['logStreamName']}" for s in listed]
    configs = sm.list_endpoint_configs()["EndpointConfigs"]
    notebooks = sm.list_notebook_instances()["NotebookInstances"]
    stacks = sess.client("cloudformation").list_stacks()["StackSummaries"]
    vpc_endpoints = sess.client("ec2").describe_vpc_endpoints()["VpcEndpoints"]
    return {
        "stack": [s["StackName"] for s in stacks if s["StackStatus"] != "DELETE_COMPLETE"],
        "vpc-endpoint": [e["VpcEndpointId"] for e in vpc_endpoints if e["State"] != "deleted"],
        "model": [m["ModelName"] for m in sm.list_models()["Models"]],
        "endpoint-config": [c["EndpointConfigName"] for c in configs],
        "endpoint": [e["EndpointName"] for e in sm.list_endpoints()["Endpoints"]],
        "notebook": [n["NotebookInstanceName"] for n in notebooks],
        "bucket": [b["Name"] for b in sess.client("s3").list_buckets()["Buckets"]],
        "log-group": [g["logGroupName"] for g in logs.describe_log_groups()["logGroups"]],
        "log-stream": streams,
        "kms-key": [k for k in (k["KeyId"] for k in kms.list_keys()["Keys"]) if _enabled(kms, k)],
    }


def assert_look_alikes_survive(planted: dict, now: dict) -> None:
    for kind, names in planted.items():
        missing = set(names) - set(now[kind])
        assert not missing, f"{kind} of another project deleted: {sorted(missing)}"


def _enabled(kms, key_id: str) -> bool:
    """moto's DescribeKey answers 500 for CloudFormation-created keys: those are not planted."""
    import botocore.exceptions

    try:
        return kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Enabled"
    except botocore.exceptions.ClientError:
        return False
