"""Endpoint stack: serve a Linear Learner model artifact.

    model.tar.gz (S3) + image ──► Model ──► EndpointConfig ──► Endpoint (fixed name)

CloudFormation replaces a Model or EndpointConfig on any change, so neither carries a fixed
name: a new artifact creates a new Model and EndpointConfig, and the Endpoint (whose only
create-only property is its name) is updated in place to the new config, without downtime.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from stacks.base_stack import BaseStack, pull_statement
from stacks.images import image_parts
from stacks.settings import Settings
from training.instance_types import accepts_volume_key


def _bucket_and_key(url: str) -> tuple[str, str]:
    bucket, _, key = url.removeprefix("s3://").partition("/")
    return bucket, key


class EndpointStack(cdk.Stack):
    """Model, endpoint config and endpoint for one model artifact."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        settings: Settings,
        base: BaseStack,
        model_data_url: str,
        image_uri: str,
        **kwargs,
    ):
        super().__init__(scope, construct_id, **kwargs)
        self.add_stack_dependency(base)
        # The base stack's role and key, by their named exports (not CDK's implicit ones).
        role_arn = cdk.Fn.import_value(base.export_name("RoleArn"))
        key_arn = cdk.Fn.import_value(base.export_name("KeyArn"))
        self.role = iam.Role.from_role_arn(self, "ExecutionRole", role_arn, mutable=True)
        access = self._grant_model_access(base, model_data_url, image_uri)

        model = sagemaker.CfnModel(
            self,
            "Model",
            execution_role_arn=role_arn,
            primary_container=sagemaker.CfnModel.ContainerDefinitionProperty(
                image=image_uri, model_data_url=model_data_url, mode="SingleModel"
            ),
            # Linear Learner needs no network from inside its container; SageMaker still
            # fetches the artifact and the image for it
            enable_network_isolation=True,
        )
        model.node.add_dependency(access)  # the role can read the artifact before CreateModel
        variant = sagemaker.CfnEndpointConfig.ProductionVariantProperty(
            variant_name="AllTraffic",
            model_name=model.attr_model_name,
            initial_instance_count=settings.endpoint_instance_count,
            instance_type=settings.endpoint_instance_type,
            initial_variant_weight=1.0,
        )
        config = sagemaker.CfnEndpointConfig(
            self,
            "EndpointConfig",
            production_variants=[variant],
            kms_key_id=(key_arn if accepts_volume_key(settings.endpoint_instance_type) else None),
        )
        # SageMaker writes here; created (and deleted) with the stack instead of lingering.
        # Encrypted by CloudWatch Logs' own keys, not the project key: the container logs
        # start-up and errors, never request or response bodies, and the project key lives in
        # the base stack, whose key policy would then have to name this stack's log group.
        log_group = logs.LogGroup(
            self,
            "EndpointLogs",
            log_group_name=f"/aws/sagemaker/Endpoints/{settings.endpoint_name}",
            retention=logs.RetentionDays.ONE_MONTH,
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        endpoint = sagemaker.CfnEndpoint(
            self,
            "Endpoint",
            endpoint_name=settings.endpoint_name,
            endpoint_config_name=config.attr_endpoint_config_name,
        )
        endpoint.node.add_dependency(log_group)

        cdk.CfnOutput(self, "EndpointName", value=endpoint.attr_endpoint_name)
        cdk.CfnOutput(self, "EndpointConfigName", value=config.attr_endpoint_config_name)
        cdk.CfnOutput(self, "ModelName", value=model.attr_model_name)
        cdk.CfnOutput(self, "ModelDataUrl", value=model_data_url)
        cdk.CfnOutput(self, "ImageUri", value=image_uri)

    def _grant_model_access(self, base: BaseStack, model_data_url: str, image_uri: str):
        """Read exactly this artifact (it may live outside the project bucket: a model made
        elsewhere) and pull its image when it is not the region's Linear Learner image."""
        bucket, key = _bucket_and_key(model_data_url)
        statements = [
            iam.PolicyStatement(
                actions=["s3:GetObject"],
                resources=[
                    cdk.Arn.format(
                        cdk.ArnComponents(
                            service="s3", region="", account="", resource=bucket, resource_name=key
                        ),
                        self,
                    )
                ],
            )
        ]
        if image_uri != base.image_uri:
            statements.append(pull_statement(image_parts(image_uri), self))
        return iam.Policy(self, "ModelAccess", statements=statements, roles=[self.role])
