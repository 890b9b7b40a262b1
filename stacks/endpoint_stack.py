"""Endpoint stack: serve a Linear Learner model artifact.

    model.tar.gz (S3) + image ──► Model ──► EndpointConfig ──► Endpoint (fixed name)
                                   realtime (instances, KMS)    ├─ autoscaling (optional)
                                   or serverless (per request)  ├─ alarms ──► SNS (KMS)
                                   data capture ──► capture/    └─ logs

CloudFormation replaces a Model or EndpointConfig on any change, so neither carries a fixed
name: a new artifact creates a new Model and EndpointConfig, and the Endpoint (whose only
create-only property is its name) is updated in place to the new config, without downtime.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_applicationautoscaling as appscaling
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sagemaker as sagemaker
from aws_cdk import aws_sns as sns
from constructs import Construct

from stacks.base_stack import BaseStack, alarm_source_conditions, pull_statement
from stacks.images import image_parts
from stacks.settings import Settings
from training.aws.instance_types import accepts_volume_key
from training.aws.naming import VARIANT_NAME, LogGroup, Output, Prefix, split_s3_url
from training.content_types import CSV, JSON, JSONLINES


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
        serverless = settings.endpoint_mode == "serverless"
        # The base stack's role and key, by their named exports (not CDK's implicit ones).
        role_arn = cdk.Fn.import_value(base.export_name(Output.ROLE))
        key_arn = cdk.Fn.import_value(base.export_name(Output.KEY))
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
            # fetches the artifact and the image for it. Serverless endpoints do not support
            # network isolation (SageMaker refuses the model there).
            enable_network_isolation=not serverless,
        )
        if serverless:  # checkov's inline skip, where the reason holds
            model.add_metadata(
                "checkov",
                {
                    "skip": [
                        {
                            "id": "CKV_AWS_370",
                            "comment": "serverless endpoints do not support network isolation "
                            "(SageMaker's serverless feature exclusions)",
                        }
                    ]
                },
            )
        model.node.add_dependency(access)  # the role can read the artifact before CreateModel
        # Options change the config, and CloudFormation then makes a new one (it has no fixed
        # name) and updates the endpoint to it in place.
        config = sagemaker.CfnEndpointConfig(
            self,
            "EndpointConfig",
            production_variants=[self._variant(settings, model.attr_model_name)],
            # a volume key is refused by serverless variants and by instances with NVMe storage
            kms_key_id=(
                key_arn
                if not serverless and accepts_volume_key(settings.endpoint_instance_type)
                else None
            ),
            data_capture_config=self._data_capture(settings, base, key_arn),
        )
        # SageMaker writes here; created (and deleted) with the stack instead of lingering.
        # Encrypted by CloudWatch Logs' own keys, not the project key: the container logs
        # start-up and errors, never request or response bodies, and the project key lives in
        # the base stack, whose key policy would then have to name this stack's log group.
        log_group = logs.LogGroup(
            self,
            "EndpointLogs",
            log_group_name=LogGroup.endpoint(settings.endpoint_name),
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
        if settings.autoscaling_max_instances:
            self._autoscaling(settings, endpoint)
        if settings.alarms:
            self._alarms(settings, endpoint, key_arn)

        cdk.CfnOutput(self, Output.ENDPOINT, value=endpoint.attr_endpoint_name)
        cdk.CfnOutput(self, Output.ENDPOINT_CONFIG, value=config.attr_endpoint_config_name)
        cdk.CfnOutput(self, Output.MODEL_NAME, value=model.attr_model_name)
        cdk.CfnOutput(self, Output.MODEL_DATA_URL, value=model_data_url)
        cdk.CfnOutput(self, Output.IMAGE_URI, value=image_uri)

    def _variant(self, settings: Settings, model_name: str):
        if settings.endpoint_mode == "serverless":
            return sagemaker.CfnEndpointConfig.ProductionVariantProperty(
                variant_name=VARIANT_NAME,
                model_name=model_name,
                serverless_config=sagemaker.CfnEndpointConfig.ServerlessConfigProperty(
                    max_concurrency=settings.serverless_max_concurrency,
                    memory_size_in_mb=settings.serverless_memory_mb,
                ),
            )
        return sagemaker.CfnEndpointConfig.ProductionVariantProperty(
            variant_name=VARIANT_NAME,
            model_name=model_name,
            initial_instance_count=settings.endpoint_instance_count,
            instance_type=settings.endpoint_instance_type,
            initial_variant_weight=1.0,
        )

    def _data_capture(self, settings: Settings, base: BaseStack, key_arn: str):
        """Requests and responses, a share of them, to the project bucket's capture/ (which
        the bucket's lifecycle expires), encrypted with the project key; text kept as text."""
        if not settings.data_capture_percent:
            return None
        bucket = cdk.Fn.import_value(base.export_name(Output.BUCKET))
        return sagemaker.CfnEndpointConfig.DataCaptureConfigProperty(
            enable_capture=True,
            initial_sampling_percentage=settings.data_capture_percent,
            destination_s3_uri=cdk.Fn.join("", ["s3://", bucket, "/" + Prefix.CAPTURE.rstrip("/")]),
            kms_key_id=key_arn,
            capture_options=[
                sagemaker.CfnEndpointConfig.CaptureOptionProperty(capture_mode=mode)
                for mode in ("Input", "Output")
            ],
            capture_content_type_header=sagemaker.CfnEndpointConfig.CaptureContentTypeHeaderProperty(
                csv_content_types=[CSV], json_content_types=[JSON, JSONLINES]
            ),
        )

    def _autoscaling(self, settings: Settings, endpoint: sagemaker.CfnEndpoint) -> None:
        """Instances between endpoint_instance_count and autoscaling_max_instances, tracking
        invocations per instance; scale-in waits longer than scale-out (SageMaker's advice:
        add capacity fast, remove it slowly)."""
        target = appscaling.CfnScalableTarget(
            self,
            "ScalableTarget",
            service_namespace="sagemaker",
            scalable_dimension="sagemaker:variant:DesiredInstanceCount",
            resource_id=f"endpoint/{settings.endpoint_name}/variant/{VARIANT_NAME}",
            min_capacity=settings.endpoint_instance_count,
            max_capacity=settings.autoscaling_max_instances,
        )
        target.node.add_dependency(endpoint)  # the variant must exist to be registered
        appscaling.CfnScalingPolicy(
            self,
            "InvocationsPerInstance",
            policy_name=f"{settings.project}-invocations-per-instance",
            policy_type="TargetTrackingScaling",
            scaling_target_id=target.ref,
            target_tracking_scaling_policy_configuration=appscaling.CfnScalingPolicy.TargetTrackingScalingPolicyConfigurationProperty(
                target_value=float(settings.autoscaling_target_invocations),
                predefined_metric_specification=appscaling.CfnScalingPolicy.PredefinedMetricSpecificationProperty(
                    predefined_metric_type="SageMakerVariantInvocationsPerInstance"
                ),
                scale_out_cooldown=60,
                scale_in_cooldown=600,
            ),
        )

    def _alarms(self, settings: Settings, endpoint: sagemaker.CfnEndpoint, key_arn: str) -> None:
        """Errors, tail latency (and, serverless, saturation) notify an encrypted topic."""
        topic = sns.Topic(
            self,
            "Alarms",
            master_key=kms.Key.from_key_arn(self, "ProjectKey", key_arn),
            enforce_ssl=True,
        )
        # enforce_ssl writes a topic policy, which replaces SNS's default one: CloudWatch
        # must be allowed to publish explicitly (or the alarms fire and notify nobody)
        topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchAlarmsPublish",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[topic.topic_arn],
                conditions=alarm_source_conditions(self, self.stack_name),
            )
        )
        if settings.alarm_email:
            sns.Subscription(
                self,
                "AlarmEmail",
                topic=topic,
                protocol=sns.SubscriptionProtocol.EMAIL,
                endpoint=settings.alarm_email,
            )
        dims = {"EndpointName": settings.endpoint_name, "VariantName": VARIANT_NAME}

        def metric(name: str, statistic: str) -> cloudwatch.Metric:
            return cloudwatch.Metric(
                namespace="AWS/SageMaker",
                metric_name=name,
                dimensions_map=dims,
                statistic=statistic,
                period=cdk.Duration.minutes(5),
            )

        alarms = [
            cloudwatch.Alarm(
                self,
                "Errors5xx",
                alarm_description="the model answered 5xx: see the endpoint's log group",
                metric=metric("Invocation5XXErrors", "Sum"),
                threshold=1,
                evaluation_periods=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            ),
            cloudwatch.Alarm(
                self,
                "LatencyP99",
                alarm_description=f"p99 model latency above {settings.alarm_latency_p99_ms} ms",
                metric=metric("ModelLatency", "p99"),  # microseconds
                threshold=settings.alarm_latency_p99_ms * 1000,
                evaluation_periods=2,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            ),
        ]
        if settings.endpoint_mode == "serverless":
            alarms.append(
                cloudwatch.Alarm(
                    self,
                    "ConcurrencySaturated",
                    alarm_description="every concurrent slot busy: further requests are "
                    "throttled; raise serverless_max_concurrency",
                    metric=metric("ServerlessConcurrentExecutionsUtilization", "Maximum"),
                    threshold=1.0,
                    evaluation_periods=1,
                    comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                    treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
                )
            )
        for alarm in alarms:
            alarm.add_alarm_action(cw_actions.SnsAction(topic))
            alarm.node.add_dependency(endpoint)
        cdk.CfnOutput(self, Output.ALARM_TOPIC, value=topic.topic_arn)

    def _grant_model_access(self, base: BaseStack, model_data_url: str, image_uri: str):
        """Read exactly this artifact (it may live outside the project bucket: a model made
        elsewhere) and pull its image when it is not the region's Linear Learner image."""
        bucket, key = split_s3_url(model_data_url)  # settings checked it is one
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
