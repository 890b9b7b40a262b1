"""AWS sessions, stack outputs and S3 buckets, done the way that avoids the classic errors.

- Credentials and region come from the standard chain, or ``--profile`` / ``--region``.
- S3 clients are created in the bucket's own region, so no request goes through the global
  endpoint's 307 redirects.
- ``create_bucket`` sends no LocationConstraint in us-east-1 and the matching one elsewhere
  (the ``IllegalLocationConstraintException`` that hand-written scripts hit).
- Bucket names a user supplies are checked against S3's naming rules before anything exists.
- Jobs are waited for by one poll loop (:func:`wait_for`), which prints each status change
  with the time since the start.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable

from training.aws.naming import TERMINAL_STATES, Output, Stack, endpoint_name, stack_name
from training.errors import Problem, ValidationError

_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_IP = re.compile(r"^\d+\.\d+\.\d+\.\d+$")


def session(profile: str | None = None, region: str | None = None):
    import boto3
    import botocore.exceptions

    try:
        s = boto3.Session(profile_name=profile or None, region_name=region or None)
    except botocore.exceptions.ProfileNotFound as err:
        raise ValidationError(
            [
                Problem(
                    "--profile",
                    str(err),
                    "pass a profile from ~/.aws/config, or none for the default chain",
                )
            ]
        ) from None
    if not s.region_name:
        raise ValidationError(
            [
                Problem(
                    "--region",
                    "no AWS region configured",
                    "pass --region (e.g. us-east-1) or set AWS_REGION",
                )
            ]
        )
    return s


def check_bucket_name(name: str) -> None:
    """S3's naming rules, with the rule each violation breaks."""
    problems = []
    if not 3 <= len(name) <= 63:
        problems.append("must be 3 to 63 characters long")
    if name != name.lower():
        problems.append("must be lower case")
    if not _BUCKET.match(name.lower()):
        problems.append(
            "may hold only a-z, 0-9, '.' and '-', starting and ending with a letter or digit"
        )
    if ".." in name or ".-" in name or "-." in name:
        problems.append("must not have adjacent periods or a period next to a hyphen")
    if _IP.match(name):
        problems.append("must not look like an IP address")
    if name.startswith(("xn--", "sthree-")) or name.endswith(("-s3alias", "--ol-s3")):
        problems.append("uses a prefix or suffix S3 reserves")
    if problems:
        raise ValidationError(
            [
                Problem(
                    f"bucket '{name}'",
                    "invalid S3 bucket name: " + "; ".join(problems),
                    "choose a name that follows S3's bucket naming rules",
                )
            ]
        )


def bucket_region(sess, bucket: str) -> str:
    """The region a bucket lives in (None from GetBucketLocation means us-east-1)."""
    location = sess.client("s3").get_bucket_location(Bucket=bucket).get("LocationConstraint")
    return {None: "us-east-1", "": "us-east-1", "EU": "eu-west-1"}.get(location, location)


def s3_client_for(sess, bucket: str):
    """An S3 client in the bucket's own region."""
    return sess.client("s3", region_name=bucket_region(sess, bucket))


def create_bucket(sess, bucket: str, region: str) -> None:
    """Create ``bucket`` in ``region`` with the LocationConstraint that region needs."""
    check_bucket_name(bucket)
    client = sess.client("s3", region_name=region)
    kwargs = (
        {}
        if region == "us-east-1"
        else {"CreateBucketConfiguration": {"LocationConstraint": region}}
    )
    client.create_bucket(Bucket=bucket, **kwargs)


def stack_outputs(sess, stack_name: str) -> dict[str, str]:
    """Outputs of a deployed stack, with a clear error when it is not deployed."""
    import botocore.exceptions

    cfn = sess.client("cloudformation")
    try:
        stack = cfn.describe_stacks(StackName=stack_name)["Stacks"][0]
    except botocore.exceptions.ClientError as err:
        raise ValidationError(
            [
                Problem(
                    stack_name,
                    f"stack not found in {sess.region_name} ({err.response['Error']['Message']})",
                    "deploy it first (npx cdk deploy --all), or pass --bucket and --role",
                )
            ]
        ) from None
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


def deployed_endpoint(sess, project: str) -> str:
    """The project's endpoint as its endpoint stack named it: the name carries the mode and,
    autoscaled, the instance type (``naming.endpoint_name``), which only the deployed stack
    knows. Without an endpoint stack, the real-time name (what is then missing is named by
    the call that uses it)."""
    import botocore.exceptions

    cfn = sess.client("cloudformation")
    try:
        stack = cfn.describe_stacks(StackName=stack_name(project, Stack.ENDPOINT))["Stacks"][0]
    except botocore.exceptions.ClientError as err:
        if err.response["Error"]["Code"] != "ValidationError":  # not "does not exist"
            raise
        return endpoint_name(project)
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    return outputs.get(Output.ENDPOINT) or endpoint_name(project)


def wait_for(
    describe: Callable[[], dict],
    status: str,
    name: str,
    poll_s: float,
    echo,
    detail: str | None = None,
    each_poll: Callable[[], None] | None = None,
) -> dict:
    """Call ``describe`` every ``poll_s`` seconds until its ``status`` field is terminal
    (Completed, Failed, Stopped); echo each change of status (and of its ``detail`` field,
    e.g. SecondaryStatus) with the time since the start; ``each_poll`` runs after each look
    (e.g. printing new log lines). Returns the last description."""
    started, last = time.monotonic(), None
    while True:
        described = describe()
        shown = described[status] + (f" / {described.get(detail)}" if detail else "")
        if shown != last:
            elapsed = int(time.monotonic() - started)
            echo(f"  [{elapsed // 60:02d}:{elapsed % 60:02d}] {name}: {shown}")
            last = shown
        if each_poll is not None:
            each_poll()
        if described[status] in TERMINAL_STATES:
            return described
        time.sleep(poll_s)
