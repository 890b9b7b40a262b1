"""How the project's AWS resources are named: one place for the CDK app and the scripts.

Dependency-free on purpose: the CDK app (``stacks/settings.py``) imports it, so the training
side and the infrastructure cannot drift apart on a stack or endpoint name.
"""

from __future__ import annotations

DEFAULT_PROJECT = "ll-e2e"  # the project name when none is given (cdk.json context too)
VARIANT_NAME = "AllTraffic"  # the endpoint's one production variant
TAG_KEY = "project"  # every resource of a project carries TAG_KEY=<project>: how audit knows it


class Output:
    """The CloudFormation outputs the stacks declare and the AWS commands read back by name."""

    BUCKET = "BucketName"  # the base stack's, exported for the endpoint stack
    ROLE = "RoleArn"  # the base stack's, exported
    KEY = "KeyArn"  # the base stack's, exported
    ENDPOINT = "EndpointName"  # the endpoint stack's
    ENDPOINT_CONFIG = "EndpointConfigName"  # the endpoint stack's


def stack_prefix(project: str) -> str:
    """``ll-e2e`` -> ``LlE2e``: CloudFormation stack names are the prefix plus the stack's role."""
    return "".join(part.capitalize() for part in project.split("-"))


def stack_name(project: str, role: str) -> str:
    """The stack of one role (``Base``, ``Endpoint``), e.g. ``LlE2eBase``."""
    return stack_prefix(project) + role


def endpoint_name(project: str) -> str:
    """The endpoint's fixed name (the endpoint updates in place; Model and config are unnamed)."""
    return f"{project}-endpoint"


def notebook_name(project: str, fingerprint: str) -> str:
    """``<project>-notebook-<6 hex>``: the fingerprint of the create-only settings, so a change
    to one of them replaces the instance instead of failing on a custom-named resource."""
    return f"{project}-notebook-{fingerprint[:6]}"


def training_job_name(project: str, stamp: str) -> str:
    """``<project>-YYYYmmdd-HHMMSS`` (UTC), the name of every training job this project starts."""
    return f"{project}-{stamp}"


def transform_job_name(project: str, stamp: str) -> str:
    """``<project>-transform-YYYYmmdd-HHMMSS`` (UTC): every batch transform job it starts."""
    return f"{project}-transform-{stamp}"


def owned_patterns(project: str) -> dict[str, str]:
    """Regular expressions matching exactly the names above for ``project``, and nothing of a
    project that merely shares a prefix (``ll-e2e-prod``, ``ll-e2ex``): what teardown may take
    by name alone."""
    import re

    p = re.escape(project)
    return {
        "endpoint": f"^{re.escape(endpoint_name(project))}$",
        "notebook": rf"^{p}-notebook-[0-9a-f]{{6}}$",
        "training-job": rf"^{p}-\d{{8}}-\d{{6}}$",
        "transform-job": rf"^{p}-transform-\d{{8}}-\d{{6}}$",
    }
