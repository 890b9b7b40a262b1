"""``audit``: find everything billable this project left in a region, and optionally remove it.

Looks for resources carrying the project's tag or name: endpoints, endpoint configs, models,
notebook instances, running training jobs, buckets (with their old versions and delete
markers), log groups, KMS keys not yet scheduled for deletion. Exits non-zero when anything is
left. ``--delete`` removes what it found: notebooks are stopped first, versioned buckets are
emptied of every version and delete marker, keys are scheduled for deletion (7 days).
"""

from __future__ import annotations

from dataclasses import dataclass

from training.naming import stack_name

TAG = "project"
NOTEBOOK_POLL_S = 10.0
COST = {
    "endpoint": "instance-hours while it exists (ml.m5.large ~ $0.115/h)",
    "endpoint-config": "free, but keeps its model referenced",
    "model": "free (its artifact is stored in S3)",
    "notebook-instance": "instance-hours while InService, volume GB-month while it exists",
    "training-job": "instance-seconds while it runs",
    "bucket": "GB-month of every object version it holds",
    "log-group": "GB-month stored",
    "kms-key": "$1/month until deleted",
}


@dataclass
class Leftover:
    kind: str
    name: str
    detail: str = ""

    def __str__(self) -> str:
        extra = f" ({self.detail})" if self.detail else ""
        return f"{self.kind:<18} {self.name}{extra} — {COST[self.kind]}"


def _tagged(tags: list[dict], project: str) -> bool:
    return any(t.get("Key") == TAG and t.get("Value") == project for t in tags)


def _sagemaker(sess, project: str) -> list[Leftover]:
    sm = sess.client("sagemaker")
    found = []
    stack_prefix = stack_name(project, "")

    def mine(name: str, arn: str) -> bool:
        if name.startswith((project, stack_prefix)):  # named by us, or after our stacks
            return True
        return _tagged(sm.list_tags(ResourceArn=arn).get("Tags", []), project)

    for page in sm.get_paginator("list_endpoints").paginate():
        for e in page["Endpoints"]:
            if mine(e["EndpointName"], e["EndpointArn"]):
                found.append(Leftover("endpoint", e["EndpointName"], e["EndpointStatus"]))
    for page in sm.get_paginator("list_endpoint_configs").paginate():
        for c in page["EndpointConfigs"]:
            if mine(c["EndpointConfigName"], c["EndpointConfigArn"]):
                found.append(Leftover("endpoint-config", c["EndpointConfigName"]))
    for page in sm.get_paginator("list_models").paginate():
        for m in page["Models"]:
            if mine(m["ModelName"], m["ModelArn"]):
                found.append(Leftover("model", m["ModelName"]))
    for page in sm.get_paginator("list_notebook_instances").paginate():
        for n in page["NotebookInstances"]:
            if mine(n["NotebookInstanceName"], n["NotebookInstanceArn"]):
                found.append(
                    Leftover(
                        "notebook-instance", n["NotebookInstanceName"], n["NotebookInstanceStatus"]
                    )
                )
    for page in sm.get_paginator("list_training_jobs").paginate(StatusEquals="InProgress"):
        for j in page["TrainingJobSummaries"]:
            if mine(j["TrainingJobName"], j["TrainingJobArn"]):
                found.append(Leftover("training-job", j["TrainingJobName"], "InProgress"))
    return found


def _buckets(sess, project: str) -> list[Leftover]:
    import botocore.exceptions

    s3 = sess.client("s3")
    found = []
    for b in s3.list_buckets().get("Buckets", []):
        name = b["Name"]
        try:
            region = s3.get_bucket_location(Bucket=name).get("LocationConstraint") or "us-east-1"
        except botocore.exceptions.ClientError:
            continue
        if region != sess.region_name:
            continue
        try:
            tags = s3.get_bucket_tagging(Bucket=name).get("TagSet", [])
        except botocore.exceptions.ClientError:
            tags = []
        if project in name or _tagged(tags, project):
            versions, markers = _count_versions(sess, name)
            found.append(
                Leftover("bucket", name, f"{versions} object versions, {markers} delete markers")
            )
    return found


def _count_versions(sess, bucket: str) -> tuple[int, int]:
    s3 = sess.client("s3")
    versions = markers = 0
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        versions += len(page.get("Versions", []))
        markers += len(page.get("DeleteMarkers", []))
    return versions, markers


def _log_groups(sess, project: str, stack_prefix: str) -> list[Leftover]:
    logs = sess.client("logs")
    found = []
    prefixes = (f"/aws/sagemaker/Endpoints/{project}", f"/aws/lambda/{stack_prefix}")
    for prefix in prefixes:
        for page in logs.get_paginator("describe_log_groups").paginate(logGroupNamePrefix=prefix):
            found += [Leftover("log-group", g["logGroupName"]) for g in page["logGroups"]]
    training = "/aws/sagemaker/TrainingJobs"
    streams = logs.get_paginator("describe_log_streams")
    try:
        pages = list(streams.paginate(logGroupName=training, logStreamNamePrefix=f"{project}-"))
    except logs.exceptions.ResourceNotFoundException:
        pages = []
    for page in pages:
        found += [
            Leftover("log-group", f"{training}:{s['logStreamName']}", "log stream")
            for s in page["logStreams"]
        ]
    return found


def _keys(sess, project: str) -> list[Leftover]:
    kms = sess.client("kms")
    found = []
    for page in kms.get_paginator("list_keys").paginate():
        for k in page["Keys"]:
            # tags first: only the project's keys need describing (and AWS-managed keys
            # cannot be tagged by users anyway)
            tags = kms.list_resource_tags(KeyId=k["KeyId"]).get("Tags", [])
            if not any(t["TagKey"] == TAG and t["TagValue"] == project for t in tags):
                continue
            meta = kms.describe_key(KeyId=k["KeyId"])["KeyMetadata"]
            if meta["KeyState"] not in ("PendingDeletion", "PendingReplicaDeletion"):
                found.append(Leftover("kms-key", k["KeyId"], meta["KeyState"]))
    return found


def find_leftovers(sess, project: str) -> list[Leftover]:
    stack_prefix = stack_name(project, "")
    return (
        _sagemaker(sess, project)
        + _buckets(sess, project)
        + _log_groups(sess, project, stack_prefix)
        + _keys(sess, project)
    )


def empty_bucket(sess, bucket: str) -> int:
    """Delete every object version and delete marker (a versioned bucket's whole history)."""
    s3 = sess.client("s3")
    deleted = 0
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        batch = [
            {"Key": v["Key"], "VersionId": v["VersionId"]}
            for v in page.get("Versions", []) + page.get("DeleteMarkers", [])
        ]
        for start in range(0, len(batch), 1000):
            s3.delete_objects(
                Bucket=bucket, Delete={"Objects": batch[start : start + 1000], "Quiet": True}
            )
        deleted += len(batch)
    return deleted


def delete(sess, leftovers: list[Leftover], echo=print) -> None:
    """Remove what the audit found, in an order that lets each delete succeed."""
    sm, logs, kms = sess.client("sagemaker"), sess.client("logs"), sess.client("kms")
    order = [
        "training-job",
        "endpoint",
        "endpoint-config",
        "model",
        "notebook-instance",
        "bucket",
        "log-group",
        "kms-key",
    ]
    for item in sorted(leftovers, key=lambda x: order.index(x.kind)):
        if item.kind == "training-job":
            sm.stop_training_job(TrainingJobName=item.name)
        elif item.kind == "endpoint":
            sm.delete_endpoint(EndpointName=item.name)
        elif item.kind == "endpoint-config":
            sm.delete_endpoint_config(EndpointConfigName=item.name)
        elif item.kind == "model":
            sm.delete_model(ModelName=item.name)
        elif item.kind == "notebook-instance":
            _delete_notebook(sm, item.name, echo)
        elif item.kind == "bucket":
            removed = empty_bucket(sess, item.name)
            sess.client("s3").delete_bucket(Bucket=item.name)
            echo(f"  emptied ({removed} versions and markers) and deleted bucket {item.name}")
            continue
        elif item.kind == "log-group":
            if ":" in item.name:
                group, stream = item.name.split(":", 1)
                logs.delete_log_stream(logGroupName=group, logStreamName=stream)
            else:
                logs.delete_log_group(logGroupName=item.name)
        elif item.kind == "kms-key":
            kms.schedule_key_deletion(KeyId=item.name, PendingWindowInDays=7)
        echo(f"  deleted {item.kind} {item.name}")


def delete_and_recheck(sess, project: str, found: list[Leftover], echo=print) -> list[Leftover]:
    """Delete what was found, audit again, and report anything still there."""
    delete(sess, found, echo=echo)
    left = find_leftovers(sess, project)
    for item in left:
        echo(f"  still there: {item}")
    return left


def _delete_notebook(sm, name: str, echo, timeout_s: float = 900) -> None:
    """A notebook must be Stopped (or Failed) before it can be deleted."""
    import time

    status = sm.describe_notebook_instance(NotebookInstanceName=name)["NotebookInstanceStatus"]
    if status == "InService":
        sm.stop_notebook_instance(NotebookInstanceName=name)
        echo(f"  stopping notebook instance {name} …")
    deadline = time.monotonic() + timeout_s
    while status not in ("Stopped", "Failed") and time.monotonic() < deadline:
        time.sleep(NOTEBOOK_POLL_S)
        status = sm.describe_notebook_instance(NotebookInstanceName=name)["NotebookInstanceStatus"]
    sm.delete_notebook_instance(NotebookInstanceName=name)
