"""How the project's AWS resources are named: one place for the CDK app and the scripts.

Dependency-free on purpose: the CDK app (``stacks/settings.py``) imports it, so the training
side and the infrastructure cannot drift apart on a stack or endpoint name.
"""

from __future__ import annotations


def stack_prefix(project: str) -> str:
    """``ll-e2e`` -> ``LlE2e``: CloudFormation stack names are the prefix plus the stack's role."""
    return "".join(part.capitalize() for part in project.split("-"))


def stack_name(project: str, role: str) -> str:
    """The stack of one role (``Base``, ``Endpoint``), e.g. ``LlE2eBase``."""
    return stack_prefix(project) + role


def endpoint_name(project: str) -> str:
    """The endpoint's fixed name (the endpoint updates in place; Model and config are unnamed)."""
    return f"{project}-endpoint"
