"""``audit``: find everything billable this project left in a region, and optionally remove it.

Looks for endpoints, endpoint configs, models, notebook instances, the model package group
(the registry, with its versions), running tuning, training and batch transform jobs, buckets
(with their old versions and delete markers), log groups and log streams, the endpoint's
alarms and their SNS topic, and KMS keys not yet scheduled for deletion. Exits non-zero when
anything is left; says which registry versions have waited for approval over a week.
``--delete`` removes what it found: jobs are stopped, notebooks are stopped first (waiting out
Pending and Updating), the group's versions are deleted before the group, versioned buckets
are emptied of every version and delete marker, keys are scheduled for deletion (7 days).

Ownership is proved, never guessed, since ``--delete`` and ``destroy-all`` act on the answer:
a resource is this project's when it carries the tag ``project=<project>`` (the stacks tag
everything they create; tuning, training and transform jobs are tagged when started, and a
tuning job's tags reach the training jobs it launches), or when its name is exactly one this
project gives (``training.aws.naming.owned_patterns``: the endpoint, the notebook, tuning,
training and transform jobs) and no other project's tag is on it. What cannot carry a tag is
taken by exact name only: the endpoint's log group, log streams of the project's jobs and
notebook, and the log groups of Lambda functions CloudFormation named after the project's
stacks (``<Stack>-…``). Another team's ``ll-e2e-prod`` or ``ll-e2ex-…`` shares a
prefix, not a name, and is left alone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from training.aws.instance_types import DEFAULT as DEFAULT_INSTANCE_TYPE
from training.aws.naming import (
    TAG_KEY,
    LogGroup,
    endpoint_name,
    model_package_group_name,
    owned_patterns,
)

NOTEBOOK_POLL_S = 10.0
PENDING_DAYS = 7  # a registry version pending approval longer than this is reported
TRAINING_LOGS = LogGroup.TRAINING_JOBS
TRANSFORM_LOGS = LogGroup.TRANSFORM_JOBS
NOTEBOOK_LOGS = LogGroup.NOTEBOOK_INSTANCES
COST = {
    "endpoint": f"instance-hours while it exists ({DEFAULT_INSTANCE_TYPE} ~ $0.115/h)",
    "endpoint-config": "free, but keeps its model referenced",
    "model": "free (its artifact is stored in S3)",
    "notebook-instance": "instance-hours while InService, volume GB-month while it exists",
    "tuning-job": "instance-seconds of every training job it runs",
    "training-job": "instance-seconds while it runs",
    "transform-job": "instance-seconds while it runs",
    "model-package-group": "free (its versions' artifacts are stored in S3)",
    "bucket": "GB-month of every object version it holds",
    "log-group": "GB-month stored",
    "alarm": "$0.10 per alarm-month",
    "sns-topic": "free idle; per message and e-mail sent",
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


def _project_tag(tags: list[dict]) -> str | None:
    """The value of the ``project`` tag ({Key, Value} or KMS's {TagKey, TagValue}), if any."""
    for t in tags:
        if t.get("Key", t.get("TagKey")) == TAG_KEY:
            return t.get("Value", t.get("TagValue"))
    return None


class Ownership:
    """Whether a resource is ``project``'s: its tag, or an exact name no other project claims."""

    def __init__(self, project: str):
        self.project = project
        self.names = {kind: re.compile(rx) for kind, rx in owned_patterns(project).items()}

    def owns(self, kind: str, name: str, tags: list[dict]) -> bool:
        tag = _project_tag(tags)
        if tag is not None:
            return tag == self.project
        pattern = self.names.get(kind)
        return bool(pattern and pattern.match(name))

    def owns_stream(self, group: str, stream: str) -> bool:
        """Log streams are ``<job or notebook name>/<suffix>``."""
        kind = {
            TRAINING_LOGS: "training-job",
            TRANSFORM_LOGS: "transform-job",
            NOTEBOOK_LOGS: "notebook",
        }[group]
        return self.names[kind].match(stream.split("/", 1)[0]) is not None


def _sagemaker(sess, own: Ownership) -> list[Leftover]:
    sm = sess.client("sagemaker")
    found = []

    def mine(kind: str, name: str, arn: str) -> bool:
        return own.owns(kind, name, sm.list_tags(ResourceArn=arn).get("Tags", []))

    for page in sm.get_paginator("list_endpoints").paginate():
        for e in page["Endpoints"]:
            if mine("endpoint", e["EndpointName"], e["EndpointArn"]):
                found.append(Leftover("endpoint", e["EndpointName"], e["EndpointStatus"]))
    for page in sm.get_paginator("list_endpoint_configs").paginate():
        for c in page["EndpointConfigs"]:
            if mine("endpoint-config", c["EndpointConfigName"], c["EndpointConfigArn"]):
                found.append(Leftover("endpoint-config", c["EndpointConfigName"]))
    for page in sm.get_paginator("list_models").paginate():
        for m in page["Models"]:
            if mine("model", m["ModelName"], m["ModelArn"]):
                found.append(Leftover("model", m["ModelName"]))
    for page in sm.get_paginator("list_notebook_instances").paginate():
        for n in page["NotebookInstances"]:
            if mine("notebook", n["NotebookInstanceName"], n["NotebookInstanceArn"]):
                found.append(
                    Leftover(
                        "notebook-instance", n["NotebookInstanceName"], n["NotebookInstanceStatus"]
                    )
                )
    for page in sm.get_paginator("list_model_package_groups").paginate():
        for g in page["ModelPackageGroupSummaryList"]:
            if g.get("ModelPackageGroupStatus") in ("Deleting",):
                continue  # going: deletes are asynchronous
            name = g["ModelPackageGroupName"]
            if mine("model-package-group", name, g["ModelPackageGroupArn"]):
                versions = len(group_versions(sm, name))
                found.append(Leftover("model-package-group", name, f"{versions} versions"))
    found += [Leftover("tuning-job", name, "InProgress") for name in running_tuning_jobs(sess, own)]
    found += [Leftover("training-job", name, "InProgress") for name in running_jobs(sess, own)]
    found += [
        Leftover("transform-job", name, "InProgress") for name in running_transforms(sess, own)
    ]
    return found


def group_versions(sm, group: str) -> list[dict]:
    """Every version of a model package group (summaries, any status)."""
    pages = sm.get_paginator("list_model_packages").paginate(
        ModelPackageGroupName=group, ModelPackageType="Versioned"
    )
    return [p for page in pages for p in page["ModelPackageSummaryList"]]


def stale_pending(sess, project: str, days: int = PENDING_DAYS) -> list[str]:
    """The project registry's versions waiting for approval longer than ``days``: someone
    registered a model and nobody decided (not billable: said beside the audit)."""
    import datetime as dt

    sm = sess.client("sagemaker")
    group = model_package_group_name(project)
    try:
        versions = group_versions(sm, group)
    except sm.exceptions.ClientError:
        return []  # no registry (the base stack is not deployed)
    cutoff = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=days)
    return [
        f"{group} version {v['ModelPackageVersion']} has waited for approval since "
        f"{v['CreationTime']:%Y-%m-%d} (more than {days} days): approve or reject it"
        for v in versions
        if v.get("ModelApprovalStatus") == "PendingManualApproval" and v["CreationTime"] < cutoff
    ]


def running_jobs(sess, own: Ownership) -> list[str]:
    """The project's training jobs still running (destroy-all stops exactly these)."""
    return _running(sess, own, "training", "Training", "training-job")


def running_tuning_jobs(sess, own: Ownership) -> list[str]:
    """The project's tuning jobs still running (destroy-all stops exactly these; stopping one
    stops the training jobs it launched)."""
    return _running(sess, own, "hyper_parameter_tuning", "HyperParameterTuning", "tuning-job")


def running_transforms(sess, own: Ownership) -> list[str]:
    """The project's batch transform jobs still running (destroy-all stops exactly these)."""
    return _running(sess, own, "transform", "Transform", "transform-job")


def _running(sess, own: Ownership, operation: str, noun: str, kind: str) -> list[str]:
    """The ``kind`` jobs ``own`` owns that are InProgress: ``list_<operation>_jobs`` answers
    ``<noun>JobSummaries`` with ``<noun>JobName`` and ``<noun>JobArn``."""
    sm = sess.client("sagemaker")
    names = []
    pages = sm.get_paginator(f"list_{operation}_jobs").paginate(StatusEquals="InProgress")
    for page in pages:
        for j in page[f"{noun}JobSummaries"]:
            tags = sm.list_tags(ResourceArn=j[f"{noun}JobArn"]).get("Tags", [])
            if own.owns(kind, j[f"{noun}JobName"], tags):
                names.append(j[f"{noun}JobName"])
    return names


def _buckets(sess, own: Ownership) -> list[Leftover]:
    """Buckets by tag alone: the stacks name theirs through CloudFormation (random suffix)."""
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
        if _project_tag(tags) == own.project:
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


def _log_groups(sess, own: Ownership) -> list[Leftover]:
    logs = sess.client("logs")
    found = []
    # the endpoint's log group under each name the endpoint may have had (its mode, and its
    # instance type when autoscaled), matched exactly: another project's is left alone
    endpoint_logs = LogGroup.endpoint(endpoint_name(own.project))
    endpoint_group = LogGroup.endpoint("")
    lambdas = LogGroup.stack_lambdas(own.project)
    groups = logs.get_paginator("describe_log_groups")
    for prefix in (endpoint_logs, *lambdas):
        for page in groups.paginate(logGroupNamePrefix=prefix):
            for g in page["logGroups"]:
                name = g["logGroupName"]
                endpoint = name.removeprefix(endpoint_group) if prefix == endpoint_logs else ""
                if own.names["endpoint"].match(endpoint) or name.startswith(lambdas):
                    found.append(Leftover("log-group", name))
    streams = logs.get_paginator("describe_log_streams")
    for group, prefix in (
        (TRAINING_LOGS, f"{own.project}-"),
        (TRANSFORM_LOGS, f"{own.project}-transform-"),
        (NOTEBOOK_LOGS, own.project),
    ):
        try:
            pages = list(streams.paginate(logGroupName=group, logStreamNamePrefix=prefix))
        except logs.exceptions.ResourceNotFoundException:
            pages = []
        found += [
            Leftover("log-group", f"{group}:{s['logStreamName']}", "log stream")
            for page in pages
            for s in page["logStreams"]
            if own.owns_stream(group, s["logStreamName"])
        ]
    return found


def _keys(sess, own: Ownership, echo) -> list[Leftover]:
    import botocore.exceptions

    kms = sess.client("kms")
    found = []
    for page in kms.get_paginator("list_keys").paginate():
        for k in page["Keys"]:
            # tags first: only the project's keys need describing (and AWS-managed keys
            # cannot be tagged by users anyway)
            try:
                tags = kms.list_resource_tags(KeyId=k["KeyId"]).get("Tags", [])
            except botocore.exceptions.ClientError as err:
                # a key whose policy does not let this caller read it is skipped, not fatal;
                # the project's own key grants its account root, so it is never one of these
                code = err.response.get("Error", {}).get("Code", "")
                echo(f"  skipped KMS key {k['KeyId']}: its tags are not readable here ({code})")
                continue
            if _project_tag(tags) != own.project:
                continue
            meta = kms.describe_key(KeyId=k["KeyId"])["KeyMetadata"]
            if meta["KeyState"] not in ("PendingDeletion", "PendingReplicaDeletion"):
                found.append(Leftover("kms-key", k["KeyId"], meta["KeyState"]))
    return found


def find_leftovers(sess, project: str, echo=print) -> list[Leftover]:
    own = Ownership(project)
    return (
        _sagemaker(sess, own)
        + _buckets(sess, own)
        + _log_groups(sess, own)
        + _alarms_and_topics(sess, own)
        + _keys(sess, own, echo)
    )


def _alarms_and_topics(sess, own: Ownership) -> list[Leftover]:
    """The endpoint's alarms and their topic: CloudFormation names them, so only the
    project tag (which the stacks put on both) proves they are ours."""
    found = []
    cw = sess.client("cloudwatch")
    for page in cw.get_paginator("describe_alarms").paginate():
        for alarm in page["MetricAlarms"]:
            tags = cw.list_tags_for_resource(ResourceARN=alarm["AlarmArn"]).get("Tags", [])
            if _project_tag(tags) == own.project:
                found.append(Leftover("alarm", alarm["AlarmName"]))
    sns = sess.client("sns")
    for page in sns.get_paginator("list_topics").paginate():
        for topic in page["Topics"]:
            tags = sns.list_tags_for_resource(ResourceArn=topic["TopicArn"]).get("Tags", [])
            if _project_tag(tags) == own.project:
                found.append(Leftover("sns-topic", topic["TopicArn"]))
    return found


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
    cloudwatch, sns = sess.client("cloudwatch"), sess.client("sns")
    order = [
        "tuning-job",
        "training-job",
        "transform-job",
        "endpoint",
        "endpoint-config",
        "model",
        "notebook-instance",
        "model-package-group",
        "bucket",
        "log-group",
        "alarm",
        "sns-topic",
        "kms-key",
    ]
    for item in sorted(leftovers, key=lambda x: order.index(x.kind)):
        if item.kind == "tuning-job":
            sm.stop_hyper_parameter_tuning_job(HyperParameterTuningJobName=item.name)
        elif item.kind == "training-job":
            sm.stop_training_job(TrainingJobName=item.name)
        elif item.kind == "transform-job":
            sm.stop_transform_job(TransformJobName=item.name)
        elif item.kind == "endpoint":
            sm.delete_endpoint(EndpointName=item.name)
        elif item.kind == "endpoint-config":
            sm.delete_endpoint_config(EndpointConfigName=item.name)
        elif item.kind == "model":
            sm.delete_model(ModelName=item.name)
        elif item.kind == "notebook-instance":
            _delete_notebook(sm, item.name, echo)
        elif item.kind == "model-package-group":  # a group with versions cannot be deleted
            for version in group_versions(sm, item.name):
                sm.delete_model_package(ModelPackageName=version["ModelPackageArn"])
            sm.delete_model_package_group(ModelPackageGroupName=item.name)
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
        elif item.kind == "alarm":
            cloudwatch.delete_alarms(AlarmNames=[item.name])
        elif item.kind == "sns-topic":
            sns.delete_topic(TopicArn=item.name)
        elif item.kind == "kms-key":
            kms.schedule_key_deletion(KeyId=item.name, PendingWindowInDays=7)
        echo(f"  deleted {item.kind} {item.name}")


def delete_and_recheck(sess, project: str, found: list[Leftover], echo=print) -> list[Leftover]:
    """Delete what was found, audit again, and report anything still there."""
    delete(sess, found, echo=echo)
    left = find_leftovers(sess, project, echo)
    for item in left:
        echo(f"  still there: {item}")
    return left


def _delete_notebook(sm, name: str, echo, timeout_s: float = 1800) -> None:
    """Delete needs Stopped or Failed, and Stop needs InService: wait out Pending, Updating
    and Stopping, stop an InService instance, then delete."""
    import time

    deadline = time.monotonic() + timeout_s
    stopping = False
    while True:
        status = sm.describe_notebook_instance(NotebookInstanceName=name)["NotebookInstanceStatus"]
        if status in ("Stopped", "Failed"):
            sm.delete_notebook_instance(NotebookInstanceName=name)
            return
        if status == "Deleting":
            return
        if status == "InService" and not stopping:
            sm.stop_notebook_instance(NotebookInstanceName=name)
            stopping = True
            echo(f"  stopping notebook instance {name} …")
        elif status in ("Pending", "Updating"):
            echo(f"  notebook instance {name} is {status}: waiting for it to stop or serve")
        if time.monotonic() > deadline:  # the recheck then reports it as still there
            echo(f"  gave up on notebook instance {name}: still {status} after {timeout_s:.0f}s")
            return
        time.sleep(NOTEBOOK_POLL_S)
