"""``audit``: find everything billable this project left in a region, and optionally remove it.

Looks for the project's CloudFormation stacks in any state but DELETE_COMPLETE (a stack whose
delete failed still holds resources), endpoints, endpoint configs, models, notebook instances,
the model package group (the registry, with its versions), tuning, training and batch
transform jobs still InProgress or Stopping, buckets (with their old versions and delete
markers), interface VPC endpoints, log groups and log streams (the VPC flow-log group too),
the endpoint's alarms and their SNS topic, and KMS keys not yet scheduled for deletion. Exits
non-zero when anything is left; an endpoint, notebook or VPC endpoint already Deleting is
said as going, not counted; says which registry versions have waited for approval over a week.

``--delete`` removes what it found, and refuses to while any of the project's stacks exists:
deleting what a stack still owns is drift, and the stack's own delete would then fail or
recreate it (``destroy-all`` or ``cdk destroy`` first; ``destroy-all`` destroys the stacks,
then removes what they leave). Jobs are stopped and waited for until none is InProgress or
Stopping before any bucket is emptied (a stopping training job still uploads its artifact);
notebooks are stopped first (waiting out Pending and Updating); deleted endpoints and
notebooks are waited for with SageMaker's waiters (deleted VPC endpoints are polled), so the
audit that follows sees what is really left; the group's versions are deleted before the group,
versioned buckets are emptied of every version and delete marker, keys are scheduled for
deletion (7 days).

Ownership is proved, never guessed, since ``--delete`` and ``destroy-all`` act on the answer:
a resource is this project's when it carries the tag ``project=<project>`` (the stacks tag
everything they create; tuning, training and transform jobs are tagged when started, and a
tuning job's tags reach the training jobs it launches), or when its name is exactly one this
project gives (``training.aws.naming.owned_patterns``: the endpoint, the notebook, tuning,
training and transform jobs) and no other project's tag is on it. Stacks are taken by their
exact names (``naming.stack_name``) unless another project's tag is on them; VPC endpoints and
the flow-log group by the tag alone. What cannot carry a tag is taken by exact name only: the
endpoint's log group, log streams of the project's jobs and notebook, and the log groups of
Lambda functions CloudFormation named after the project's stacks (``<Stack>-…``). Another
team's ``ll-e2e-prod``, ``ll-e2ex-…`` or ``LlE2eBaseline`` shares a prefix, not a name, and is
left alone.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass

from training.aws.instance_types import DEFAULT as DEFAULT_INSTANCE_TYPE
from training.aws.naming import (
    TAG_KEY,
    LogGroup,
    Stack,
    endpoint_name,
    model_package_group_name,
    owned_patterns,
    stack_name,
)
from training.errors import TeardownError
from training.limits import TEARDOWN_DELETE_WAIT_S, TEARDOWN_JOB_STOP_S

NOTEBOOK_POLL_S = 10.0
JOB_POLL_S = 15.0  # how often stopping jobs are looked at again
DELETE_POLL_S = 15  # the SageMaker waiters' delay while an endpoint or notebook is Deleting
# ListBuckets, paginated: AWS rejects unpaginated ListBuckets for accounts whose bucket quota is
# above 10,000 and takes pages of 1 to 10,000 buckets ("General purpose bucket quotas,
# limitations, and restrictions", docs.aws.amazon.com/AmazonS3/latest/userguide/
# BucketRestrictions.html; "Listing Amazon S3 general purpose buckets", …/list-buckets.html).
BUCKET_PAGE = 1000
# "To stop a job, SageMaker sends the algorithm the SIGTERM signal, which delays job termination
# for 120 seconds. Algorithms might use this 120-second window to save the model artifacts" and
# the job is Stopping until then (StopTrainingJob, docs.aws.amazon.com/sagemaker/latest/
# APIReference/API_StopTrainingJob.html): a job in either state may still write to the bucket.
ACTIVE_JOB_STATES = ("InProgress", "Stopping")
# each kind of job by its SageMaker API words: list_<op>_jobs answers <Noun>JobSummaries,
# describe_<op>_job <Noun>JobStatus, and Describe/Stop take <Noun>JobName; in the order
# they are stopped (a tuning job first: stopping it stops the training jobs it launched)
JOB_API = {
    "tuning-job": ("hyper_parameter_tuning", "HyperParameterTuning"),
    "training-job": ("training", "Training"),
    "transform-job": ("transform", "Transform"),
}
JOB_KINDS = tuple(JOB_API)
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
    "stack": "free itself; every resource it still holds bills as above",
    # "Hourly billing for VPC endpoints stops when you delete the endpoint" (AWS PrivateLink
    # pricing, aws.amazon.com/privatelink/pricing/)
    "vpc-endpoint": "per AZ-hour while it exists (~$0.01/h), plus per GB processed",
}


@dataclass(frozen=True)
class Leftover:
    kind: str
    name: str
    detail: str = ""
    # already being deleted (SageMaker and EC2 delete asynchronously): going, not left; a
    # delete that fails ends in Failed, which the next audit reports as left
    deleting: bool = False

    def __str__(self) -> str:
        extra = f" ({self.detail})" if self.detail else ""
        going = "going (delete under way); " if self.deleting else ""
        return f"{self.kind:<18} {self.name}{extra} — {going}{COST[self.kind]}"


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
                status = e["EndpointStatus"]
                found.append(Leftover("endpoint", e["EndpointName"], status, status == "Deleting"))
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
                status = n["NotebookInstanceStatus"]
                found.append(
                    Leftover(
                        "notebook-instance",
                        n["NotebookInstanceName"],
                        status,
                        status == "Deleting",
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
    return found + active_jobs(sess, own)


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


def active_jobs(sess, own: Ownership) -> list[Leftover]:
    """The project's tuning, training and transform jobs InProgress or Stopping (tuning jobs
    first: stopping one stops the training jobs it launched), each with its status."""
    return [
        Leftover(kind, name, status)
        for kind in JOB_KINDS
        for status in ACTIVE_JOB_STATES
        for name in _jobs(sess, own, kind, status)
    ]


def _jobs(sess, own: Ownership, kind: str, status: str) -> list[str]:
    """The ``kind`` jobs ``own`` owns in ``status`` (JOB_API: ``list_<op>_jobs`` answers
    ``<Noun>JobSummaries`` with ``<Noun>JobName`` and ``<Noun>JobArn``)."""
    operation, noun = JOB_API[kind]
    sm = sess.client("sagemaker")
    names = []
    pages = sm.get_paginator(f"list_{operation}_jobs").paginate(StatusEquals=status)
    for page in pages:
        for j in page[f"{noun}JobSummaries"]:
            tags = sm.list_tags(ResourceArn=j[f"{noun}JobArn"]).get("Tags", [])
            if own.owns(kind, j[f"{noun}JobName"], tags):
                names.append(j[f"{noun}JobName"])
    return names


def _buckets(sess, own: Ownership) -> list[Leftover]:
    """Buckets by tag alone: the stacks name theirs through CloudFormation (random suffix).
    Listed in pages and only this region's (ListBuckets' MaxBuckets and BucketRegion, botocore's
    S3 model): see BUCKET_PAGE."""
    import botocore.exceptions

    s3 = sess.client("s3")
    found = []
    pages = s3.get_paginator("list_buckets").paginate(
        BucketRegion=sess.region_name, PaginationConfig={"PageSize": BUCKET_PAGE}
    )
    for b in (b for page in pages for b in page.get("Buckets", [])):
        name = b["Name"]
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


def _stacks(sess, project: str) -> list[Leftover]:
    """The project's stacks in any state but DELETE_COMPLETE, by their exact names: ListStacks
    keeps deleted stacks' summaries for 90 days and lists every status asked for (ListStacks,
    docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_ListStacks.html); a stack in
    DELETE_FAILED still holds what it could not delete (DeleteStack's RetainResources, same
    reference). A stack of that name tagged for another project (two projects can share a
    stack prefix: ``ll-e2e`` and ``ll-e-2e``) is not ours."""
    cfn = sess.client("cloudformation")
    names = {stack_name(project, role) for role in Stack.ROLES}
    statuses = [s for s in cfn.meta.service_model.shape_for("StackStatus").enum]
    pages = cfn.get_paginator("list_stacks").paginate(
        StackStatusFilter=[s for s in statuses if s != "DELETE_COMPLETE"]
    )
    found = []
    for summary in (s for page in pages for s in page["StackSummaries"]):
        if summary["StackName"] not in names:
            continue
        stack = cfn.describe_stacks(StackName=summary["StackId"])["Stacks"][0]
        if _project_tag(stack.get("Tags", [])) in (None, project):
            status = stack["StackStatus"]
            found.append(
                Leftover("stack", stack["StackName"], status, status == "DELETE_IN_PROGRESS")
            )
    return found


def _vpc_endpoints(sess, own: Ownership) -> list[Leftover]:
    """Interface VPC endpoints with the project's tag (the base stack's, with notebook_in_vpc):
    each bills per AZ-hour until deleted. Gateway endpoints (S3) are free and not listed."""
    ec2 = sess.client("ec2")
    pages = ec2.get_paginator("describe_vpc_endpoints").paginate(
        Filters=[{"Name": f"tag:{TAG_KEY}", "Values": [own.project]}]
    )
    found = []
    for e in (e for page in pages for e in page["VpcEndpoints"]):
        state = e["State"]
        kind = e.get("VpcEndpointType", "Gateway")  # CreateVpcEndpoint's default type
        if kind != "Interface" or state.lower() in ("deleted", "rejected"):
            continue
        if _project_tag(e.get("Tags", [])) == own.project:  # the filter searched; this proves
            detail = f"{e['ServiceName']}, {state}"
            found.append(
                Leftover("vpc-endpoint", e["VpcEndpointId"], detail, state.lower() == "deleting")
            )
    return found


def _flow_log_groups(sess, own: Ownership) -> list[Leftover]:
    """The base stack's VPC flow-log group, CloudFormation-named: found by the start of its
    name, taken only with the project's tag (the stack tags it)."""
    logs = sess.client("logs")
    found = []
    pages = logs.get_paginator("describe_log_groups").paginate(
        logGroupNamePrefix=LogGroup.flow_logs(own.project)
    )
    for g in (g for page in pages for g in page["logGroups"]):
        # ListTagsForResource takes the group's ARN without the trailing ":*" (logGroupArn)
        tags = logs.list_tags_for_resource(resourceArn=g["logGroupArn"]).get("tags", {})
        if tags.get(TAG_KEY) == own.project:
            found.append(Leftover("log-group", g["logGroupName"], "VPC flow logs"))
    return found


def _log_groups(sess, own: Ownership) -> list[Leftover]:
    logs = sess.client("logs")
    found = _flow_log_groups(sess, own)
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
        _stacks(sess, project)
        + _sagemaker(sess, own)
        + _buckets(sess, own)
        + _vpc_endpoints(sess, own)
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


def refuse_while_stacks(leftovers: list[Leftover]) -> None:
    """Deleting what a deployed stack owns is drift: CloudFormation's delete then fails on, or
    an update recreates, what went missing. Only the stacks' own delete may go first."""
    stacks = [item for item in leftovers if item.kind == "stack"]
    if stacks:
        named = ", ".join(f"{item.name} ({item.detail})" for item in stacks)
        raise TeardownError(
            f"the project's stacks {named} still exist and own resources this would delete "
            "under them; fix: run `python -m training destroy-all` (or `npx cdk destroy "
            "--all`), which destroys the stacks first and then removes what they leave; a "
            "stack in DELETE_FAILED names what it could not delete in its events",
            outcome="nothing was stopped or deleted.",
        )


def stop_jobs(sess, jobs: list[Leftover], echo=print) -> None:
    """Stop the InProgress ones of ``jobs`` (tuning jobs first), then wait until none is
    InProgress or Stopping: a stopping job may still write to the bucket (ACTIVE_JOB_STATES),
    so no bucket is emptied before this returns. Raises TeardownError when a job has not
    stopped within TEARDOWN_JOB_STOP_S."""
    import botocore.exceptions

    sm = sess.client("sagemaker")
    jobs = sorted(jobs, key=lambda j: JOB_KINDS.index(j.kind))
    tuned = any(job.kind == "tuning-job" and job.detail == "InProgress" for job in jobs)
    for job in jobs:
        if job.detail != "InProgress":
            continue
        # "Stops a running hyperparameter tuning job and all running training jobs that the
        # tuning job launched" (StopHyperParameterTuningJob, API reference): those are already
        # Stopping, and StopTrainingJob would only be refused (ValidationException)
        if job.kind == "training-job" and tuned and _status(sm, job) != "InProgress":
            continue
        operation, noun = JOB_API[job.kind]
        try:
            getattr(sm, f"stop_{operation}_job")(**{f"{noun}JobName": job.name})
        except botocore.exceptions.ClientError as err:
            # it ended, or its tuning job stopped it, between the listing and now
            if err.response.get("Error", {}).get("Code") != "ValidationException":
                raise
            echo(f"  {job.kind.replace('-', ' ')} {job.name} was not stopped: {err}")
            continue
        echo(f"  stopped {job.kind.replace('-', ' ')} {job.name}")
    _wait_for_jobs(sm, jobs, echo)


def _status(sm, job: Leftover) -> str:
    """The job's status now (Describe*Job)."""
    operation, noun = JOB_API[job.kind]
    described = getattr(sm, f"describe_{operation}_job")(**{f"{noun}JobName": job.name})
    return described[f"{noun}JobStatus"]


def _wait_for_jobs(sm, jobs: list[Leftover], echo) -> None:
    """Describe each job every JOB_POLL_S until none is InProgress or Stopping; each change of
    status is echoed with the time since the start."""
    started, seen = time.monotonic(), {}
    waiting = list(jobs)
    while waiting:
        elapsed = time.monotonic() - started
        for job in waiting:
            status = _status(sm, job)
            if seen.get(job.name) != status:
                seen[job.name] = status
                clock = f"{int(elapsed) // 60:02d}:{int(elapsed) % 60:02d}"
                echo(f"  [{clock}] {job.kind.replace('-', ' ')} {job.name}: {status}")
        waiting = [job for job in waiting if seen[job.name] in ACTIVE_JOB_STATES]
        if not waiting:
            return
        if elapsed > TEARDOWN_JOB_STOP_S:
            still = ", ".join(f"{j.kind} {j.name} ({seen[j.name]})" for j in waiting)
            raise TeardownError(
                f"{still} still running {TEARDOWN_JOB_STOP_S // 60} minutes after being "
                "stopped; a stopping job may still write its output to the bucket, so it was "
                "not emptied; fix: look at the job in the SageMaker console (or `aws sagemaker "
                "describe-…-job`) and run this again once it has stopped",
                outcome="the jobs were told to stop; nothing was emptied or deleted.",
            )
        time.sleep(JOB_POLL_S)


def delete(sess, leftovers: list[Leftover], echo=print) -> None:
    """Remove what the audit found, in an order that lets each delete succeed; refused (before
    anything is touched) while the project's stacks exist."""
    refuse_while_stacks(leftovers)
    sm, logs, kms = sess.client("sagemaker"), sess.client("logs"), sess.client("kms")
    cloudwatch, sns = sess.client("cloudwatch"), sess.client("sns")
    jobs = [item for item in leftovers if item.kind in JOB_KINDS]
    if jobs:
        stop_jobs(sess, jobs, echo)
    order = [
        "endpoint",
        "endpoint-config",
        "model",
        "notebook-instance",
        "model-package-group",
        "bucket",
        "vpc-endpoint",
        "log-group",
        "alarm",
        "sns-topic",
        "kms-key",
    ]
    rest = [item for item in leftovers if item.kind not in JOB_KINDS]
    given_up = set()  # notebooks never deleted: nothing to wait for
    for item in sorted(rest, key=lambda x: order.index(x.kind)):
        if item.deleting:
            continue  # a delete is under way; endpoints and notebooks are waited for below
        if item.kind == "endpoint":
            sm.delete_endpoint(EndpointName=item.name)
        elif item.kind == "endpoint-config":
            sm.delete_endpoint_config(EndpointConfigName=item.name)
        elif item.kind == "model":
            sm.delete_model(ModelName=item.name)
        elif item.kind == "notebook-instance":
            if not _delete_notebook(sm, item.name, echo):
                given_up.add(item.name)
                continue
        elif item.kind == "model-package-group":  # a group with versions cannot be deleted
            for version in group_versions(sm, item.name):
                sm.delete_model_package(ModelPackageName=version["ModelPackageArn"])
            sm.delete_model_package_group(ModelPackageGroupName=item.name)
        elif item.kind == "bucket":
            removed = empty_bucket(sess, item.name)
            sess.client("s3").delete_bucket(Bucket=item.name)
            echo(f"  emptied ({removed} versions and markers) and deleted bucket {item.name}")
            continue
        elif item.kind == "vpc-endpoint":
            answer = sess.client("ec2").delete_vpc_endpoints(VpcEndpointIds=[item.name])
            for failed in answer.get("Unsuccessful", []):  # the recheck reports it as left
                echo(f"  could not delete vpc-endpoint {item.name}: {failed.get('Error')}")
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
    for item in leftovers:
        if item.kind in ("endpoint", "notebook-instance") and item.name not in given_up:
            _wait_deleted(sm, item, echo)
    vpc_endpoints = [item.name for item in leftovers if item.kind == "vpc-endpoint"]
    if vpc_endpoints:
        _wait_vpc_endpoints_deleted(sess.client("ec2"), vpc_endpoints, echo)


def _wait_deleted(sm, item: Leftover, echo) -> None:
    """SageMaker deletes endpoints and notebook instances asynchronously (Deleting): botocore's
    EndpointDeleted / NotebookInstanceDeleted waiters (botocore/data/sagemaker/2017-07-24/
    waiters-2.json: success when Describe* answers ValidationException, failure on Failed)
    wait until it is gone, so the audit after a delete reports what is really left."""
    import botocore.exceptions

    waiter, name = {
        "endpoint": ("endpoint_deleted", {"EndpointName": item.name}),
        "notebook-instance": ("notebook_instance_deleted", {"NotebookInstanceName": item.name}),
    }[item.kind]
    attempts = max(1, math.ceil(TEARDOWN_DELETE_WAIT_S / max(DELETE_POLL_S, 1)))
    echo(f"  waiting for {item.kind} {item.name} to be gone (deletes are asynchronous) …")
    try:
        sm.get_waiter(waiter).wait(
            **name, WaiterConfig={"Delay": DELETE_POLL_S, "MaxAttempts": attempts}
        )
    except botocore.exceptions.WaiterError as err:  # the recheck reports it as left
        echo(f"  {item.kind} {item.name} is not gone: {err}")


def _wait_vpc_endpoints_deleted(ec2, ids: list[str], echo) -> None:
    """An interface endpoint goes Deleting, then Deleted, once its network interfaces are
    deleted (DeleteVpcEndpoints, docs.aws.amazon.com/AWSEC2/latest/APIReference/
    API_DeleteVpcEndpoints.html; VpcEndpoint State in botocore's EC2 model). botocore has no
    waiter for it: look every DELETE_POLL_S, up to TEARDOWN_DELETE_WAIT_S."""
    echo(f"  waiting for vpc-endpoint {', '.join(ids)} to be gone (deletes are asynchronous) …")
    deadline = time.monotonic() + TEARDOWN_DELETE_WAIT_S
    going = list(ids)
    while True:
        going = [i for i in going if _vpc_endpoint_state(ec2, i) == "deleting"]
        if not going or time.monotonic() > deadline:  # the recheck reports what is left
            return
        time.sleep(DELETE_POLL_S)


def _vpc_endpoint_state(ec2, vpce_id: str) -> str:
    """The endpoint's state in lower case, or "gone": one id a request, since EC2 answers a
    request naming an id it no longer holds with InvalidVpcEndpointId.NotFound ("The specified
    VPC endpoint does not exist", "Error codes for the Amazon EC2 API", docs.aws.amazon.com/
    AWSEC2/latest/APIReference/errors-overview.html) for the whole request, and how long a
    deleted endpoint stays listed as Deleted is not documented."""
    import botocore.exceptions

    try:
        described = ec2.describe_vpc_endpoints(VpcEndpointIds=[vpce_id])["VpcEndpoints"]
    except botocore.exceptions.ClientError as err:
        if err.response.get("Error", {}).get("Code") == "InvalidVpcEndpointId.NotFound":
            return "gone"
        raise
    return described[0]["State"].lower() if described else "gone"


def delete_and_recheck(sess, project: str, found: list[Leftover], echo=print) -> list[Leftover]:
    """Delete what was found, audit again, and report anything still there (what is still
    Deleting after the waits counts: it did not go in time)."""
    delete(sess, found, echo=echo)
    left = find_leftovers(sess, project, echo)
    for item in left:
        echo(f"  still there: {item}")
    return left


def _delete_notebook(sm, name: str, echo) -> bool:
    """Delete needs Stopped or Failed, and Stop needs InService: wait out Pending, Updating
    and Stopping, stop an InService instance, then delete. False when it was given up on
    (not deleted, so not to be waited for as Deleting)."""
    timeout_s = TEARDOWN_DELETE_WAIT_S
    deadline = time.monotonic() + timeout_s
    stopping = False
    while True:
        status = sm.describe_notebook_instance(NotebookInstanceName=name)["NotebookInstanceStatus"]
        if status in ("Stopped", "Failed"):
            sm.delete_notebook_instance(NotebookInstanceName=name)
            return True
        if status == "Deleting":
            return True
        if status == "InService" and not stopping:
            sm.stop_notebook_instance(NotebookInstanceName=name)
            stopping = True
            echo(f"  stopping notebook instance {name} …")
        elif status in ("Pending", "Updating"):
            echo(f"  notebook instance {name} is {status}: waiting for it to stop or serve")
        if time.monotonic() > deadline:  # the recheck then reports it as still there
            echo(f"  gave up on notebook instance {name}: still {status} after {timeout_s:.0f}s")
            return False
        time.sleep(NOTEBOOK_POLL_S)
