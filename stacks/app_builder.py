"""Assemble the stacks from settings; shared by app.py and the tests."""

from __future__ import annotations

import sys

import aws_cdk as cdk

from stacks.base_stack import BaseStack
from stacks.endpoint_stack import EndpointStack
from stacks.images import linear_learner_image, sklearn_image
from stacks.settings import ROOT, Settings, SettingsError
from training.aws import deploy_options
from training.aws.naming import TAG_KEY, Stack, stack_name
from training.errors import ValidationError


def build_app(app: cdk.App, settings: Settings | None = None) -> dict[str, cdk.Stack]:
    """Add the project's stacks to ``app``; returns them by role ("base", "endpoint")."""
    settings = settings or Settings.from_context(_context(app))
    env = cdk.Environment(account=settings.account, region=settings.region)
    image = linear_learner_image(settings.region)
    stacks: dict[str, cdk.Stack] = {}
    base = BaseStack(
        app,
        stack_name(settings.project, Stack.BASE),
        settings=settings,
        image_uri=image,
        featurizer_image_uri=sklearn_image(settings.region),
        env=env,
        description=f"{settings.project}: bucket, SageMaker role, notebook",
    )
    stacks["base"] = base
    artifact = settings.model_artifact()
    if artifact is None:
        print(
            f"endpoint stack skipped: no model artifact yet (no {settings.model_record}); "
            "train first with `python -m training train --target aws …` or deploy a model "
            "made elsewhere with -c model_data_url=s3://bucket/path/model.tar.gz (or a local "
            "one with -c model_path=path/to/model.tar.gz)",
            file=sys.stderr,
        )
    else:
        stacks["endpoint"] = EndpointStack(
            app,
            stack_name(settings.project, Stack.ENDPOINT),
            settings=settings,
            base=base,
            served=artifact,
            image_uri=artifact.image_uri or image,
            env=env,
            description=f"{settings.project}: "
            + (
                "serial pipeline (scikit-learn featurizer, Linear Learner)"
                if artifact.raw_rows
                else "Linear Learner model"
            )
            + ", endpoint config, endpoint",
        )
    cdk.Tags.of(app).add(TAG_KEY, settings.project)
    for stack in stacks.values():
        _tag_untaggable(stack, settings.project)
    return stacks


def _context(app: cdk.App):
    """The app's context: cdk.json and ``-c``, and, when the CDK CLI runs the app by hand
    rather than through our commands, the stack options a deploy kept (they are what is
    deployed: :func:`training.aws.deploy_options.for_app`)."""
    try:
        return deploy_options.for_app(
            app.node.try_get_context,
            deploy_options.cdk_defaults(ROOT),
            deploy_options.option_keys(Settings),
            ROOT,
            lambda message: print(f"note: {message}", file=sys.stderr),
            Settings.from_context,
        )
    except ValidationError as err:
        raise SettingsError(str(err)) from None


def _tag_untaggable(stack: cdk.Stack, value: str) -> None:
    """CDK's own custom-resource provider (S3 auto-delete) is a raw CfnResource that
    ``Tags.of`` skips; tag it by property so the leftover audit can find it too."""
    for node in stack.node.find_all():
        if (
            isinstance(node, cdk.CfnResource)
            and node.cfn_resource_type in ("AWS::IAM::Role", "AWS::Lambda::Function")
            and not cdk.TagManager.is_taggable(node)
        ):
            node.add_property_override("Tags", [{"Key": TAG_KEY, "Value": value}])
