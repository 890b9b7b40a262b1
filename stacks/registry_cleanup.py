"""The model package group's cleanup handler, run by CloudFormation when the base stack is
deleted: it deletes every version of the group, whatever its status, and waits until none is
left, so CloudFormation's own delete of the group (one DeleteModelPackageGroup call, which
fails on a group that still holds versions) succeeds and ``cdk destroy`` removes it all.

This file is the Lambda function's inline code (``cfnresponse`` is the module CloudFormation
provides to inline Python functions); the tests import and run ``clean`` against moto.
"""

import time

WAIT_S = 600  # versions go through Deleting; the function's timeout is above this
POLL_S = 5


def clean(sm, group: str, wait_s: float = WAIT_S, poll_s: float = POLL_S) -> int:
    """Delete every version of ``group`` and wait until none is listed; returns how many."""
    deleted = set()
    deadline = time.monotonic() + wait_s
    while True:
        try:
            arns = [
                summary["ModelPackageArn"]
                for page in sm.get_paginator("list_model_packages").paginate(
                    ModelPackageGroupName=group, ModelPackageType="Versioned"
                )
                for summary in page["ModelPackageSummaryList"]
            ]
        except sm.exceptions.ClientError as err:
            if "does not exist" in str(err):  # no group (never created, or gone): done
                return len(deleted)
            raise
        if not arns:
            return len(deleted)
        for arn in arns:
            if arn not in deleted:
                sm.delete_model_package(ModelPackageName=arn)
                deleted.add(arn)
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(arns)} versions of {group} still listed after {wait_s}s")
        time.sleep(poll_s)


def handler(event, context):
    import boto3
    import cfnresponse

    status, reason = cfnresponse.SUCCESS, None
    group = event["ResourceProperties"]["GroupName"]
    try:
        if event["RequestType"] == "Delete":
            print(f"deleted {clean(boto3.client('sagemaker'), group)} versions of {group}")
    except Exception as err:  # CloudFormation must hear back, or it waits an hour
        status, reason = cfnresponse.FAILED, f"{type(err).__name__}: {err}"
    cfnresponse.send(event, context, status, {}, physicalResourceId=f"{group}-cleanup",
                     reason=reason)  # fmt: skip
