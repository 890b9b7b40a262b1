"""Endpoint stack: serve a Linear Learner model artifact, on raw rows when it has preprocessing.

    model.tar.gz (S3) + image ──► Model ──► EndpointConfig ──► Endpoint (named by mode)
                                   realtime (instances, KMS)    ├─ autoscaling (optional)
                                   or serverless (per request)  ├─ alarms ──► SNS (KMS)
                                   data capture ──► capture/    └─ logs

A model with preprocessing (a featurizer artifact) is a serial inference pipeline, one Model
with ``Containers`` instead of a ``PrimaryContainer``:

    raw rows ──► scikit-learn image  ──► Linear Learner image ──► scikit-learn image ──► answer
                 featurizer.tar.gz       model.tar.gz              featurizer.tar.gz
                 featurize.py            (float32 RecordIO in)     decode.py (classifiers:
                 (rows -> features)                                 + predicted_class)

The artifacts come from S3 (the model record, or ``-c model_data_url`` with
``-c featurizer_data_url``) or from local files (``-c model_path``), which ``cdk deploy``
uploads as assets to the bootstrap bucket; a local model's featurizer.tar.gz is built at synth
from the preprocessing.json beside it, byte for byte the same for the same file.

CloudFormation replaces a Model or EndpointConfig on any change (every property of
``AWS::SageMaker::Model`` is create-only), so neither carries a fixed name: a new artifact
creates a new Model and EndpointConfig, and the Endpoint (whose only create-only property is
its name) is updated in place to the new config, without downtime. What SageMaker cannot
update in place (the mode; with autoscaling, the instance type) is in the endpoint's name
(``training.aws.naming.endpoint_name``), so changing it creates a new endpoint under the new
name and deletes the old one.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_applicationautoscaling as appscaling
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_sagemaker as sagemaker
from aws_cdk import aws_sns as sns
from constructs import Construct

from stacks.base_stack import BaseStack, alarm_source_conditions, pull_statement
from stacks.images import image_parts
from stacks.settings import ServedModel, Settings
from training.aws import featurizer_artifact
from training.aws.images import pipeline_containers
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
        served: ServedModel,
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
        if served.model_package_arn and served.model_data_url is None:
            # a version by ARN alone: the registry put its artifacts under the project
            # bucket's models/, which the execution role reads already (the base stack's
            # EXECUTION_S3), and its images are the two the role pulls already
            model_data_url = None
            objects, images = [], [image_uri, base.featurizer_image_uri]
        else:
            model_data_url, model_object = self._artifact(served.model_data_url, served.model_path)
            objects, images = [model_object], [image_uri]
        featurizer_data_url = None
        if served.raw_rows:
            featurizer_data_url, featurizer_object = self._artifact(
                served.featurizer_data_url,
                served.preprocessing_path and self._featurizer_file(served.preprocessing_path),
                "FeaturizerArtifact",
            )
            objects.append(featurizer_object)
            images.append(base.featurizer_image_uri)
        access = self._grant_model_access(base, objects, images)

        if served.model_package_arn:
            model = self._package_model(role_arn, served.model_package_arn)
        elif featurizer_data_url is None:
            model = sagemaker.CfnModel(
                self,
                "Model",
                execution_role_arn=role_arn,
                primary_container=sagemaker.CfnModel.ContainerDefinitionProperty(
                    image=image_uri, model_data_url=model_data_url, mode="SingleModel"
                ),
                # Linear Learner needs no network from inside its container; SageMaker still
                # fetches the artifact and the image for it. Serverless endpoints do not
                # support network isolation (SageMaker refuses the model there).
                enable_network_isolation=not serverless,
            )
        else:
            model = self._pipeline_model(
                role_arn, served, image_uri, model_data_url, base, featurizer_data_url
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
        if access is not None:  # the role can read the artifact before CreateModel
            model.node.add_dependency(access)
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
            **self._retained_capacity(settings),
        )
        endpoint.node.add_dependency(log_group)
        if settings.autoscaling_max_instances:
            self._autoscaling(settings, endpoint)
        if settings.alarms:
            self._alarms(settings, endpoint, key_arn)

        cdk.CfnOutput(self, Output.ENDPOINT, value=endpoint.attr_endpoint_name)
        cdk.CfnOutput(self, Output.ENDPOINT_CONFIG, value=config.attr_endpoint_config_name)
        cdk.CfnOutput(self, Output.MODEL_NAME, value=model.attr_model_name)
        if model_data_url is not None:
            cdk.CfnOutput(self, Output.MODEL_DATA_URL, value=model_data_url)
        if served.model_package_arn:
            cdk.CfnOutput(self, Output.MODEL_PACKAGE_ARN, value=served.model_package_arn)
        cdk.CfnOutput(self, Output.IMAGE_URI, value=image_uri)
        if featurizer_data_url is not None:
            cdk.CfnOutput(self, Output.FEATURIZER_DATA_URL, value=featurizer_data_url)

    def _package_model(self, role_arn: str, arn: str) -> sagemaker.CfnModel:
        """A registry version: one container naming the model package, whose own
        containers SageMaker runs (one or the serial pipeline; "Deploy a Model from the
        Registry": ``Containers=[{'ModelPackageName': arn}]``). Network isolation as for the
        pipeline built here: the featurizer's code is inside its artifact."""
        return sagemaker.CfnModel(
            self,
            "Model",
            execution_role_arn=role_arn,
            containers=[sagemaker.CfnModel.ContainerDefinitionProperty(model_package_name=arn)],
            enable_network_isolation=True,
        )

    def _pipeline_model(
        self,
        role_arn: str,
        served: ServedModel,
        image_uri: str,
        model_data_url: str,
        base: BaseStack,
        featurizer_data_url: str,
    ) -> sagemaker.CfnModel:
        """The serial inference pipeline (``training.aws.images.pipeline_containers``).

        - ``Containers`` instead of ``PrimaryContainer``, two to fifteen of them; the first
          takes the request, each answer is the next one's request, the last one's goes to
          the client (DG inference-pipelines.md).
        - ``InferenceExecutionConfig`` Mode Serial, said explicitly: it is the API's default
          (DG multi-container-endpoints.md: "The default mode is Serial"), and Direct would
          make it a multi-container endpoint whose caller picks one container.
        - Network isolation covers every container (a CreateModel-level flag); the
          scikit-learn containers need none either: their code is inside featurizer.tar.gz
          (``SAGEMAKER_SUBMIT_DIRECTORY=/opt/ml/model/code``), and SageMaker still fetches
          the artifacts and images with the execution role outside the containers (DG
          mkt-algo-model-internet-free.md). The DG feature matrix lists network isolation
          for serial pipelines on real-time endpoints; serverless has neither (refused at
          synth, ``Settings.model_artifact``).
        - Every property of ``AWS::SageMaker::Model`` is create-only (the resource schema's
          createOnlyProperties; "Update requires: Replacement" for InferenceExecutionConfig
          in the CloudFormation reference): the Model has no fixed name, so a replacement
          never collides with the old one.
        """
        containers = pipeline_containers(
            base.featurizer_image_uri,
            featurizer_data_url,
            image_uri,
            model_data_url,
            served.predictor_type,
        )
        return sagemaker.CfnModel(
            self,
            "Model",
            execution_role_arn=role_arn,
            containers=[
                sagemaker.CfnModel.ContainerDefinitionProperty(
                    container_hostname=c["ContainerHostname"],
                    image=c["Image"],
                    model_data_url=c["ModelDataUrl"],
                    environment=c.get("Environment"),
                )
                for c in containers
            ],
            inference_execution_config=sagemaker.CfnModel.InferenceExecutionConfigProperty(
                mode="Serial"
            ),
            enable_network_isolation=True,
        )

    def _artifact(
        self, url: str | None, path: Path | None, asset_id: str = "ModelArtifact"
    ) -> tuple[str, str]:
        """An artifact's ``s3://`` URL and its object's ARN (what the role may read): the URL
        given, or a local file as a CDK asset, which ``cdk deploy`` uploads to the bootstrap
        bucket before the stack (no AWS call at synth: the asset is copied into cdk.out).

        The bootstrap bucket's default key lets any principal of the account decrypt through
        S3 (bootstrap-template.yaml, FileAssetsBucketEncryptionKey: kms:CallerAccount +
        kms:ViaService s3), so the execution role needs s3:GetObject on the object alone."""
        if path is None:
            bucket, key = split_s3_url(url)  # settings checked it is one
            return url, self._object_arn(bucket, key)
        asset = s3_assets.Asset(self, asset_id, path=str(path))
        return asset.s3_object_url, asset.bucket.arn_for_objects(asset.s3_object_key)

    def _featurizer_file(self, preprocessing: Path) -> Path:
        """featurizer.tar.gz for ``preprocessing``, built into the app's output folder under
        its SHA-256 (the same preprocessing gives the same bytes, so the same asset)."""
        data = featurizer_artifact.to_bytes(preprocessing)
        digest = hashlib.sha256(data).hexdigest()
        path = Path(cdk.Stage.of(self).outdir) / ".featurizer" / digest / featurizer_artifact.FILE
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.tmp")
            tmp.write_bytes(data)
            tmp.replace(path)
        return path

    def _object_arn(self, bucket: str, key: str) -> str:
        return cdk.Arn.format(
            cdk.ArnComponents(
                service="s3", region="", account="", resource=bucket, resource_name=key
            ),
            self,
        )

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
        the bucket's lifecycle expires), encrypted with the project key; text kept as text.

        On a serial pipeline this captures what the client sent (raw rows, CSV or JSON) and
        the last container's answer: "capturing and analyzing data is done for the entire
        pipeline, not for individual containers" (DG model-monitor.md). The DG's feature
        matrix marks data capture N/A for serial pipelines; the two pages disagree, and which
        one is current is not verified here (no AWS account)."""
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

    @staticmethod
    def _retained_capacity(settings: Settings) -> dict:
        """With autoscaling, an update (a new model, a new count) keeps the instances the
        variant has scaled to: UpdateEndpoint's RetainAllVariantProperties "defaults to false",
        which resets the variant to the config's InitialInstanceCount (API_UpdateEndpoint).

        Retained "variant properties" are only DesiredInstanceCount, DesiredWeight and
        DataCaptureConfig (API_VariantProperty); the model and the instance type come from the
        new config regardless (and an instance type change is a new endpoint, by its name).
        The weight is excluded, so the config's 1.0 holds; the count is the one kept;
        DataCaptureConfig cannot be excluded ("Not currently supported")."""
        if not settings.autoscaling_max_instances:
            return {}
        return {
            "retain_all_variant_properties": True,
            "exclude_retained_variant_properties": [
                sagemaker.CfnEndpoint.VariantPropertyProperty(variant_property_type="DesiredWeight")
            ],
        }

    def _autoscaling(self, settings: Settings, endpoint: sagemaker.CfnEndpoint) -> None:
        """Instances between endpoint_instance_count and autoscaling_max_instances, tracking
        invocations per instance; scale-in waits longer than scale-out (SageMaker's advice:
        add capacity fast, remove it slowly). The variant is registered under the endpoint's
        name, which carries the instance type: SageMaker refuses to change the instance type
        of a registered variant, so a new type is a new endpoint and a new scalable target."""
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
            # named after the endpoint: a new instance type is a new endpoint, target and
            # policy (ScalingTargetId and PolicyName are create-only: the resource schema), and
            # "CloudFormation doesn't replace a resource that has a custom name unless that
            # custom name is changed" (AWS Knowledge Center, cloudformation-custom-name)
            policy_name=f"{settings.endpoint_name}-invocations-per-instance",
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

    def _grant_model_access(self, base: BaseStack, objects: list[str], images: list[str]):
        """Read exactly these artifacts (they may live outside the project bucket: a model
        made elsewhere, or CDK assets) and pull the images the base stack does not already
        let the role pull (an ``image_uri`` of one's own)."""
        statements = (
            [iam.PolicyStatement(actions=["s3:GetObject"], resources=objects)] if objects else []
        )
        others = [image for image in dict.fromkeys(images) if image not in base.pulled_images]
        if others:
            statements.append(pull_statement([image_parts(i) for i in others], self))
        if not statements:  # nothing the base stack's role cannot do already
            return None
        return iam.Policy(self, "ModelAccess", statements=statements, roles=[self.role])
