"""Base stack: the data and access everything else runs on.

    versioned S3 bucket ──read/write──► execution role (training jobs, endpoint model)
          (SSL only, SSE, lifecycle)          ▲ passed to SageMaker by
      notebooks/ ◄── notebook bundle      notebook role ◄── notebook instance (KMS volume,
                     (BucketDeployment)                      idle stop; created after the
                                                             bundle is in the bucket)

    model package group (the registry) ◄── register; a cleanup custom resource deletes its
                                             versions on destroy, before the group

Everything here is deleted by ``cdk destroy``: the bucket is emptied of every object version
and delete marker first (auto-delete), the model group of every version first (cleanup), the
KMS key is scheduled for deletion.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_deployment as s3deploy
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from stacks import registry_cleanup
from stacks.images import image_parts
from stacks.notebook_lifecycle import on_start_script
from stacks.settings import Settings
from training import limits
from training.aws import naming, notebook_bundle
from training.aws.naming import EXECUTION_S3, LogGroup, Output, Prefix, Stack

# The project bucket's prefixes (training.aws.naming.Prefix): data/ (channels), models/
# (artifacts), notebooks/ (bundle), transform/ (batch transform input and output), capture/.
# Who may do what where, by duty (the deploy step, the transform command and the bundle
# deployment write notebooks/, uploaded models and transform input with their own
# credentials, not these roles):
# EXECUTION_S3 (training jobs, the Model: endpoint and batch transform) is training.aws.naming's,
# the one home transform --target aws checks s3:// inputs and outputs against.
NOTEBOOK_S3 = {
    "read": (f"{Prefix.DATA}*", f"{Prefix.MODELS}*", f"{Prefix.NOTEBOOKS}*"),
    "write": (f"{Prefix.DATA}*",),
}
LOG_WRITE = ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"]
LOG_READ = ["logs:DescribeLogStreams", "logs:GetLogEvents"]
# IAM globs of the project's SageMaker resource names: training.aws.naming's own rules with "*"
# for the per-run (or per-settings) suffix
PROJECT_NAMES = {
    "training-job": lambda project: naming.training_job_name(project, "*"),
    "transform-job": lambda project: naming.transform_job_name(project, "*"),
    "notebook-instance": lambda project: naming.notebook_name(project, "*"),
}
GROUP_ACTIONS = {"logs:CreateLogGroup", "logs:DescribeLogStreams"}  # the rest act on streams


# AWS::SageMaker::NotebookInstance's create-only properties besides its name, CloudFormation
# name -> CDK keyword (the resource schema's createOnlyProperties, as cfn-lint ships it:
# aws-cloudformation/cfn-lint, src/cfnlint/data/schemas/providers/us_east_1/
# aws-sagemaker-notebookinstance.json). Changing one replaces the instance, and "you can't perform
# an update that causes a custom-named resource to be replaced. If you must replace the resource,
# specify a new name" (CloudFormation resource custom naming,
# https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-properties-name.html),
# so each goes into the name (notebook_fingerprint).
NOTEBOOK_CREATE_ONLY = {
    "KmsKeyId": "kms_key_id",
    "SecurityGroupIds": "security_group_ids",
    "SubnetId": "subnet_id",
    "DirectInternetAccess": "direct_internet_access",
    "PlatformIdentifier": "platform_identifier",
}


def notebook_fingerprint(project: str, create_only: dict) -> str:
    """6 hex of the project and the notebook's create-only values as the template states them
    (a key or subnet by its logical ID, so a replaced one is a new value), plus anything that
    replaces what they refer to without changing the reference (the subnet's zone)."""
    text = json.dumps({"project": project, **create_only}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:6]


def alarm_source_conditions(scope: cdk.Stack, alarm_stack: str) -> dict:
    """CloudWatch acting for this account's alarms of one stack (CloudFormation names them
    ``<stack>-<logical id>-<suffix>``), not for anyone's: the confused-deputy guard."""
    alarms = (
        f"arn:{scope.partition}:cloudwatch:{scope.region}:{scope.account}:alarm:{alarm_stack}-*"
    )
    return {
        "StringEquals": {"aws:SourceAccount": scope.account},
        "ArnLike": {"aws:SourceArn": alarms},
    }


def pull_statement(images: dict | list[dict], scope: cdk.Stack) -> iam.PolicyStatement:
    """ECR pull of exactly these repositories (``image_parts`` of each image), the scoped form
    of the execution-role permissions SageMaker lists for CreateModel (DG sagemaker-roles,
    "CreateModel API: Execution Role Permissions": BatchCheckLayerAvailability,
    GetDownloadUrlForLayer, BatchGetImage on the image's repository)."""
    images = [images] if isinstance(images, dict) else images
    return iam.PolicyStatement(
        actions=[
            "ecr:BatchCheckLayerAvailability",
            "ecr:GetDownloadUrlForLayer",
            "ecr:BatchGetImage",
        ],
        resources=[
            cdk.Arn.format(
                cdk.ArnComponents(
                    service="ecr",
                    region=image["region"],
                    account=image["account"],
                    resource="repository",
                    resource_name=image["repository"],
                ),
                scope,
            )
            for image in images
        ],
    )


def acknowledge(scope: Construct, rule: str, reason: str) -> None:
    """Record why a cdk-nag finding is accepted, next to the code it is about."""
    cdk.Validations.of(scope).acknowledge(cdk.Acknowledgment(id=rule, reason=reason))


class BaseStack(cdk.Stack):
    """Bucket, KMS key, execution role, and the notebook instance with its own role."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        settings: Settings,
        image_uri: str,
        featurizer_image_uri: str,
        **kwargs,
    ):
        super().__init__(scope, construct_id, **kwargs)
        self.settings = settings
        self.image_uri = image_uri  # Linear Learner's
        # SageMaker's scikit-learn image: the featurizer and decoder of a model served on raw
        # rows (a serial inference pipeline), by the endpoint and by batch transform jobs
        self.featurizer_image_uri = featurizer_image_uri
        self.key = kms.Key(
            self,
            "Key",
            description=f"{settings.project}: notebook volume and endpoint storage",
            enable_key_rotation=True,
            removal_policy=cdk.RemovalPolicy.DESTROY,
            pending_window=cdk.Duration.days(7),
        )
        self.bucket = self._bucket()
        self.role = self._execution_role()
        self.notebook_role = self._notebook_role()
        self.notebook = self._notebook()
        # OnStart syncs notebooks/ when the instance is created: the bundle must be there
        self.notebook.node.add_dependency(self._notebook_bundle())
        self.model_group = self._model_registry()

        cdk.CfnOutput(
            self,
            Output.BUCKET,
            value=self.bucket.bucket_name,
            export_name=self.export_name(Output.BUCKET),
        )
        if settings.alarms:
            # the endpoint's alarm topic is encrypted with this key; CloudWatch publishes to it
            # ("Enable compatibility between event sources from AWS services and encrypted
            # topics", SNS guide), for the endpoint stack's alarms only
            self.key.add_to_resource_policy(
                iam.PolicyStatement(
                    sid="CloudWatchAlarmsPublishToTheEncryptedTopic",
                    principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                    actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                    resources=["*"],
                    conditions=alarm_source_conditions(
                        self, naming.stack_name(settings.project, Stack.ENDPOINT)
                    ),
                )
            )
        # Named exports, present whether or not an endpoint stack exists yet: the template
        # does not change when the endpoint arrives or leaves (no export-in-use deadlocks).
        cdk.CfnOutput(
            self, Output.ROLE, value=self.role.role_arn, export_name=self.export_name(Output.ROLE)
        )
        cdk.CfnOutput(
            self, Output.KEY, value=self.key.key_arn, export_name=self.export_name(Output.KEY)
        )
        cdk.CfnOutput(self, "NotebookInstanceName", value=self.notebook.attr_notebook_instance_name)
        cdk.CfnOutput(
            self, Output.MODEL_PACKAGE_GROUP, value=self.model_group.model_package_group_name
        )
        cdk.CfnOutput(
            self,
            "NotebookUrl",
            value=cdk.Fn.join(
                "",
                [
                    f"https://{self.region}.console.aws.amazon.com/sagemaker/home?region="
                    f"{self.region}#/notebook-instances/openNotebook/",
                    self.notebook.attr_notebook_instance_name,
                    "?view=lab",
                ],
            ),
        )

    @property
    def pulled_images(self) -> tuple[str, ...]:
        """The images whose repositories the execution role may pull."""
        return (self.image_uri, self.featurizer_image_uri)

    def export_name(self, output: str) -> str:
        return f"{self.stack_name}-{output}"

    # ------------------------------------------------------------------ bucket

    def _bucket(self) -> s3.Bucket:
        s = self.settings
        bucket = s3.Bucket(
            self,
            "Bucket",
            versioned=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            encryption=s3.BucketEncryption.S3_MANAGED,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-noncurrent-versions",
                    noncurrent_version_expiration=cdk.Duration.days(s.noncurrent_version_days),
                    expired_object_delete_marker=True,
                    abort_incomplete_multipart_upload_after=cdk.Duration.days(7),
                ),
                *(
                    [  # captured requests and responses are kept as long as old versions
                        s3.LifecycleRule(
                            id="expire-data-capture",
                            prefix=Prefix.CAPTURE,
                            expiration=cdk.Duration.days(s.noncurrent_version_days),
                        )
                    ]
                    if s.data_capture_percent
                    else []
                ),
            ],
            removal_policy=cdk.RemovalPolicy.DESTROY,
            # when off, scripts/destroy-all.sh empties the bucket itself (all object versions)
            auto_delete_objects=s.auto_delete_objects,
        )
        acknowledge(
            bucket,
            "AwsSolutions-S1",
            "No server access logs by design: an access-log target bucket receives late log "
            "deliveries after it is emptied, so `cdk destroy` fails with BucketNotEmpty "
            "(aws/aws-cdk#16332, #21776). CloudTrail data events are the audit trail to enable.",
        )
        return bucket

    def _notebook_bundle(self) -> s3deploy.BucketDeployment:
        """The notebooks, the training package and the dataset, in the bucket before the
        notebook instance first starts (``training/notebook_bundle.py``)."""
        deployment = s3deploy.BucketDeployment(
            self,
            "NotebookBundle",
            sources=[s3deploy.Source.asset(str(notebook_bundle.stage()))],
            destination_bucket=self.bucket,
            destination_key_prefix=notebook_bundle.PREFIX,
            prune=True,  # a file removed from the bundle leaves the instance too
            retain_on_delete=False,
            memory_limit=256,
        )
        # CDK's one handler per stack for every BucketDeployment (a singleton, outside the
        # deployment's own construct): what cdk-nag finds there is CDK's, scoped by CDK
        handler = next(
            c for c in self.node.children if c.node.id.startswith("Custom::CDKBucketDeployment")
        )
        bucket = f"<{self.get_logical_id(self.bucket.node.default_child)}.Arn>"
        for rule, reason in {
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
            "AWSLambdaBasicExecutionRole]": "CDK's BucketDeployment handler writes its own logs "
            "with the AWS managed basic execution policy (CloudWatch Logs only)",
            "AwsSolutions-L1": "the handler's runtime is chosen by aws-cdk-lib's BucketDeployment "
            "and moves with the pinned aws-cdk-lib version",
            **{
                f"AwsSolutions-IAM5[Action::s3:{action}]": "CDK's BucketDeployment grant: read "
                "the CDK assets bucket, write the project bucket; no other bucket"
                for action in ("GetObject*", "GetBucket*", "List*", "DeleteObject*", "Abort*")
            },
            f"AwsSolutions-IAM5[Resource::{bucket}/*]": "the handler copies the bundle into the "
            "project bucket (under notebooks/, which prune keeps in sync)",
            "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::cdk-hnb659fds-assets-"
            f"<AWS::AccountId>-{self.region}/*]": "the bundle's zip in the CDK bootstrap assets "
            "bucket, named per asset hash at deploy time",
        }.items():
            acknowledge(handler, rule, reason)
        return deployment

    # ------------------------------------------------------------------ model registry

    def _model_registry(self) -> sagemaker.CfnModelPackageGroup:
        """The model package group ``register --target aws`` adds versions to, and what lets
        ``cdk destroy`` delete it: CloudFormation deletes a group with one
        DeleteModelPackageGroup call, which fails while versions are in it (its resource
        handler deletes no versions), so a custom resource created after the group, hence
        deleted before it, deletes every version first (``stacks/registry_cleanup.py``).

        The name is the project's fixed ``<project>-models`` (the commands find the group by
        it); name and description are create-only, so the description never changes."""
        name = naming.model_package_group_name(self.settings.project)
        group = sagemaker.CfnModelPackageGroup(
            self,
            "ModelPackageGroup",
            model_package_group_name=name,
            model_package_group_description=(
                "Linear Learner model versions: register, approve, and only an Approved "
                "version is deployed"
            ),
        )
        group.apply_removal_policy(cdk.RemovalPolicy.DESTROY)
        role = iam.Role(
            self,
            "RegistryCleanupRole",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"{self.settings.project}: delete the model group's versions on destroy",
        )
        function = lambda_.Function(
            self,
            "RegistryCleanup",
            runtime=lambda_.Runtime.PYTHON_3_14,
            handler="index.handler",
            code=lambda_.Code.from_inline(Path(registry_cleanup.__file__).read_text()),
            timeout=cdk.Duration.seconds(registry_cleanup.WAIT_S + 120),
            role=role,
            description=f"{self.settings.project}: delete {name}'s versions before the group",
        )
        policy = iam.Policy(
            self,
            "RegistryCleanupPolicy",
            statements=[
                iam.PolicyStatement(
                    sid="ListTheGroupsVersions",
                    actions=["sagemaker:ListModelPackages"],
                    resources=["*"],
                ),
                iam.PolicyStatement(
                    sid="DeleteTheGroupsVersions",
                    actions=["sagemaker:DeleteModelPackage"],
                    resources=[self._arn("sagemaker", "model-package", f"{name}/*")],
                ),
                iam.PolicyStatement(
                    sid="OwnLogs",
                    actions=LOG_WRITE,
                    resources=[
                        self._arn(
                            "logs",
                            "log-group",
                            f"/aws/lambda/{self.stack_name}-RegistryCleanup*",
                            colon=True,
                        )
                    ],
                ),
            ],
        )
        policy.attach_to_role(role)
        function.node.add_dependency(policy)
        for finding, reason in {
            "Resource::*": "ListModelPackages has no resource-level permission; the handler "
            "lists only the project's group by name",
            f"Resource::arn:<AWS::Partition>:sagemaker:{self.region}:<AWS::AccountId>:"
            f"model-package/{name}/*": "every version of the project's own group, whatever "
            "its number",
            f"Resource::arn:<AWS::Partition>:logs:{self.region}:<AWS::AccountId>:log-group:"
            f"/aws/lambda/{self.stack_name}-RegistryCleanup*": "the function's own log group, "
            "named by Lambda after the generated function name",
        }.items():
            acknowledge(policy, f"AwsSolutions-IAM5[{finding}]", reason)
        cleanup = cdk.CustomResource(
            self,
            "ModelPackageGroupCleanup",
            service_token=function.function_arn,
            resource_type="Custom::ModelPackageGroupCleanup",
            properties={"GroupName": name},
        )
        cleanup.node.add_dependency(group)  # created after the group: deleted before it
        return group

    # ------------------------------------------------------------------ roles

    def _arn(self, service: str, resource: str, name: str, colon: bool = False) -> str:
        return cdk.Arn.format(
            cdk.ArnComponents(
                service=service,
                resource=resource,
                resource_name=name,
                arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME if colon else None,
            ),
            self,
        )

    def _data_statements(self, access: dict[str, tuple[str, ...]]) -> list:
        """The project bucket: list it, read and write only the prefixes ``access`` names."""
        return [
            iam.PolicyStatement(
                sid="ListProjectBucket",
                actions=["s3:ListBucket", "s3:GetBucketLocation"],
                resources=[self.bucket.bucket_arn],
            ),
            iam.PolicyStatement(
                sid="ReadProjectData",
                actions=["s3:GetObject"],
                resources=[self.bucket.arn_for_objects(p) for p in access["read"]],
            ),
            iam.PolicyStatement(
                sid="WriteProjectData",
                actions=["s3:PutObject", "s3:AbortMultipartUpload"],
                resources=[self.bucket.arn_for_objects(p) for p in access["write"]],
            ),
        ]

    def _project_arn(self, kind: str) -> str:
        name = PROJECT_NAMES[kind](self.settings.project)
        return self._arn("sagemaker", kind, name)

    def _log_groups(self) -> dict[str, tuple[str, str]]:
        """The project's log groups and the stream pattern of each: its training and
        transform jobs (streams named after the job), its endpoint, and its notebook."""
        project = self.settings.project
        return {
            "training": (LogGroup.TRAINING_JOBS, PROJECT_NAMES["training-job"](project)),
            "transform": (LogGroup.TRANSFORM_JOBS, PROJECT_NAMES["transform-job"](project)),
            "endpoint": (LogGroup.endpoint(self.settings.endpoint_name), "*"),
            "notebook": (
                LogGroup.NOTEBOOK_INSTANCES,
                PROJECT_NAMES["notebook-instance"](project),
            ),
        }

    def _log_statements(self, sid: str, actions: list[str], which: tuple[str, ...]) -> list:
        """Group actions on the groups (the ARN with a trailing ``:*``, as CloudWatch Logs
        wants it in IAM), stream actions on the project's own streams only."""
        groups = self._log_groups()
        on_group = [a for a in actions if a in GROUP_ACTIONS]
        on_streams = [a for a in actions if a not in GROUP_ACTIONS]

        def arn(name: str) -> str:
            return self._arn("logs", "log-group", name, colon=True)

        statements = []
        if on_group:
            resources = [arn(f"{groups[k][0]}:*") for k in which]
            statements.append(
                iam.PolicyStatement(sid=f"{sid}Groups", actions=on_group, resources=resources)
            )
        if on_streams:
            resources = [arn(f"{groups[k][0]}:log-stream:{groups[k][1]}") for k in which]
            statements.append(
                iam.PolicyStatement(sid=f"{sid}Streams", actions=on_streams, resources=resources)
            )
        return statements

    def _wildcard_reasons(
        self,
        s3: dict[str, tuple[str, ...]],
        logs_of: tuple[str, ...],
        project_kinds: tuple[str, ...] = (),
    ) -> dict[str, str]:
        """Why each wildcard cdk-nag's IAM5 finds is the narrowest possible: the bucket
        prefixes this role uses, the project's own log streams, project-prefixed names."""
        bucket = f"<{self.get_logical_id(self.bucket.node.default_child)}.Arn>"
        scoped = f"Resource::arn:<AWS::Partition>:{{}}:{self.region}:<AWS::AccountId>:{{}}"
        groups = self._log_groups()
        prefixes = sorted({p for ps in s3.values() for p in ps})
        return {
            **{
                f"Resource::{bucket}/{p}": f"objects under the project bucket's {p[:-1]} prefix, "
                "which this role's duty needs"
                for p in prefixes
            },
            **{
                scoped.format(
                    "logs", f"log-group:{groups[k][0]}:log-stream:{groups[k][1]}"
                ): f"the {k} log streams of this project only (SageMaker names each stream "
                "after the job, instance or variant at run time)"
                for k in logs_of
            },
            **{
                scoped.format("logs", f"log-group:{groups[k][0]}:*"): f"the {k} log group "
                "itself: CloudWatch Logs wants group ARNs with a trailing :* in IAM (group "
                "actions only; stream actions are scoped to this project's streams)"
                for k in logs_of
            },
            **{
                scoped.format("sagemaker", f"{kind}/{pattern}"): f"{kind} names carry the "
                "project prefix plus a per-run (or per-settings) suffix"
                for kind, pattern in (
                    (k, PROJECT_NAMES[k](self.settings.project)) for k in project_kinds
                )
            },
        }

    def _role(
        self,
        name: str,
        description: str,
        statements: list,
        reasons: dict[str, str],
        same_account_only: bool,
    ) -> iam.Role:
        """A role SageMaker assumes, its one policy, the project key, and why each wildcard.

        ``same_account_only``: the trust policy requires ``aws:SourceAccount`` = this account
        (confused-deputy prevention), where AWS documents that SageMaker sends the key."""
        conditions = (
            {"StringEquals": {"aws:SourceAccount": self.account}} if same_account_only else None
        )
        role = iam.Role(
            self,
            f"{name}Role",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com", conditions=conditions),
            description=f"{self.settings.project}: {description}",
        )
        policy = iam.Policy(self, f"{name}Policy", statements=statements)
        policy.attach_to_role(role)
        for finding, reason in reasons.items():
            acknowledge(policy, f"AwsSolutions-IAM5[{finding}]", reason)
        self.key.grant_encrypt_decrypt(role)
        # EBS volumes encrypted with the key (the notebook's, a training job's) are created
        # through KMS grants made for that AWS resource: allowed, and nothing else. Only
        # CreateGrant: kms:GrantIsForAWSResource is set on CreateGrant, ListGrants and
        # RevokeGrant alone (KMS developer guide, grant-authorization.html, "Controlling access
        # to grants"), so a DescribeKey under it would never be allowed; and SageMaker asks of
        # a volume key kms:CreateGrant, of an output key kms:Encrypt (DG sagemaker-roles.html,
        # "CreateTrainingJob API: Execution Role Permissions"; Encrypt is in
        # grant_encrypt_decrypt): nothing here calls DescribeKey.
        role.add_to_policy(
            iam.PolicyStatement(
                sid="ProjectKeyGrantsForAwsResources",
                actions=["kms:CreateGrant"],
                resources=[self.key.key_arn],
                conditions={"Bool": {"kms:GrantIsForAWSResource": "true"}},
            )
        )
        for action in ("kms:ReEncrypt*", "kms:GenerateDataKey*"):
            acknowledge(
                role,
                f"AwsSolutions-IAM5[Action::{action}]",
                "CDK's grant_encrypt_decrypt on the project key alone (the statement's "
                "resource is that key's ARN)",
            )
        return role

    def _execution_s3(self) -> dict[str, tuple[str, ...]]:
        """EXECUTION_S3, plus writing capture/ when the endpoint captures data (SageMaker
        writes the captures as the model's execution role)."""
        if not self.settings.data_capture_percent:
            return EXECUTION_S3
        return {**EXECUTION_S3, "write": (*EXECUTION_S3["write"], f"{Prefix.CAPTURE}*")}

    def _execution_role(self) -> iam.Role:
        """What SageMaker itself runs as: training jobs and the endpoint's model."""
        statements = [
            *self._data_statements(self._execution_s3()),
            *self._log_statements(
                "SageMakerLogs",
                [*LOG_WRITE, "logs:DescribeLogStreams"],
                ("training", "transform", "endpoint"),
            ),
            iam.PolicyStatement(
                sid="EcrAuthToken",
                actions=["ecr:GetAuthorizationToken"],
                resources=["*"],
            ),
            iam.PolicyStatement(
                sid="SageMakerMetrics",
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringLike": {"cloudwatch:namespace": "/aws/sagemaker/*"}},
            ),
            # the images every Model of the project runs: Linear Learner and, for a model
            # with preprocessing, the scikit-learn image of its featurizer and decoder (a
            # transform job's own pipeline Model runs as this role too, endpoint stack or not)
            pull_statement([image_parts(i) for i in self.pulled_images], self),
        ]
        reasons = {
            **self._wildcard_reasons(self._execution_s3(), ("training", "transform", "endpoint")),
            "Resource::*": "ecr:GetAuthorizationToken and cloudwatch:PutMetricData have no "
            "resource-level permissions; PutMetricData is limited to /aws/sagemaker/* "
            "namespaces by condition",
        }
        # SageMaker's confused-deputy page documents aws:SourceAccount for training jobs and
        # inference, the two uses of this role
        return self._role(
            "Execution",
            "SageMaker training jobs and the model (endpoint, batch transform)",
            statements,
            reasons,
            same_account_only=True,
        )

    def _notebook_role(self) -> iam.Role:
        """What the notebook's user can do: project data, project training jobs (run as the
        execution role), the project endpoint, and stopping this notebook when idle.

        Separate from the execution role, so a training container cannot start jobs or pass
        roles, and the notebook cannot pull images or write metrics."""
        statements = [
            *self._data_statements(NOTEBOOK_S3),
            # its own logs; and reading its training jobs' logs (train_aws streams them)
            *self._log_statements("NotebookLogs", [*LOG_WRITE, *LOG_READ], ("notebook",)),
            *self._log_statements("TrainingJobLogs", LOG_READ, ("training",)),
            self._bounded_training_jobs(),
            iam.PolicyStatement(
                sid="ProjectTrainingJobs",
                actions=[
                    "sagemaker:DescribeTrainingJob",
                    "sagemaker:StopTrainingJob",
                    "sagemaker:AddTags",
                ],
                resources=[self._project_arn("training-job")],
            ),
            iam.PolicyStatement(
                sid="PassExecutionRoleToSageMaker",
                actions=["iam:PassRole"],
                resources=[self.role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
            ),
            iam.PolicyStatement(
                sid="InvokeProjectEndpoint",
                actions=["sagemaker:InvokeEndpoint", "sagemaker:DescribeEndpoint"],
                resources=[self._arn("sagemaker", "endpoint", self.settings.endpoint_name)],
            ),
            iam.PolicyStatement(
                sid="StopOwnNotebookWhenIdle",
                actions=["sagemaker:StopNotebookInstance", "sagemaker:DescribeNotebookInstance"],
                resources=[self._project_arn("notebook-instance")],
            ),
        ]
        reasons = self._wildcard_reasons(
            NOTEBOOK_S3, ("notebook", "training"), ("training-job", "notebook-instance")
        )
        # not for notebook instances: that page lists no notebook-instance support for the
        # key, and a condition SageMaker does not satisfy would keep the instance from starting
        return self._role(
            "Notebook", "the notebook instance", statements, reasons, same_account_only=False
        )

    def _bounded_training_jobs(self) -> iam.PolicyStatement:
        """CreateTrainingJob for the notebook's user, only as the project trains: on the
        instance types and within the run time ``training.limits`` allows, network-isolated,
        the artifact and the volume encrypted with the project key (what ``train_aws`` sends
        from the notebook: ``training_request``; the notebook gets the key's ARN from OnStart).

        The keys are the ones the Service Authorization Reference lists for
        sagemaker:CreateTrainingJob ("Actions, resources, and condition keys for Amazon
        SageMaker"): sagemaker:InstanceTypes (ArrayOfString), sagemaker:MaxRuntimeInSeconds
        (Numeric), sagemaker:NetworkIsolation (Bool), sagemaker:VolumeKmsKey and
        sagemaker:OutputKmsKey (ARN). A key absent from the request fails every operator but
        ForAllValues, which an absent list passes: hence the Null check on InstanceTypes.
        AddTags, Describe and Stop have none of these keys: they are in their own statement.
        """
        key = self.key.key_arn
        return iam.PolicyStatement(
            sid="StartBoundedProjectTrainingJobs",
            actions=["sagemaker:CreateTrainingJob"],
            resources=[self._project_arn("training-job")],
            conditions={
                "ForAllValues:StringEquals": {
                    "sagemaker:InstanceTypes": list(limits.NOTEBOOK_TRAINING_INSTANCE_TYPES)
                },
                "Null": {"sagemaker:InstanceTypes": "false"},
                "NumericLessThanEquals": {
                    "sagemaker:MaxRuntimeInSeconds": str(limits.NOTEBOOK_TRAINING_MAX_RUNTIME_S)
                },
                "Bool": {"sagemaker:NetworkIsolation": "true"},
                "ArnEquals": {"sagemaker:VolumeKmsKey": key, "sagemaker:OutputKmsKey": key},
            },
        )

    # ------------------------------------------------------------------ notebook

    def _notebook(self) -> sagemaker.CfnNotebookInstance:
        s = self.settings
        lifecycle = sagemaker.CfnNotebookInstanceLifecycleConfig(
            self,
            "NotebookLifecycle",
            on_start=[
                sagemaker.CfnNotebookInstanceLifecycleConfig.NotebookInstanceLifecycleHookProperty(
                    content=cdk.Fn.base64(
                        on_start_script(
                            self.bucket.bucket_name,
                            s.notebook_idle_minutes,
                            internet=not s.notebook_in_vpc,
                            project={
                                "project": s.project,
                                "region": self.region,
                                "bucket": self.bucket.bucket_name,
                                "role_arn": self.role.role_arn,
                                "image_uri": self.image_uri,
                                "endpoint_name": s.endpoint_name,
                                "kms_key_arn": self.key.key_arn,
                            },
                        )
                    )
                )
            ],
        )
        network, endpoints = self._notebook_network() if s.notebook_in_vpc else ({}, [])
        properties = {
            "instance_type": s.notebook_instance_type,
            "role_arn": self.notebook_role.role_arn,
            "kms_key_id": self.key.key_id,
            "volume_size_in_gb": s.notebook_volume_gb,
            "root_access": "Enabled" if s.notebook_root_access else "Disabled",
            "lifecycle_config_name": lifecycle.attr_notebook_instance_lifecycle_config_name,
            "default_code_repository": s.code_repository or None,
            "platform_identifier": s.notebook_platform,
            "instance_metadata_service_configuration": (
                sagemaker.CfnNotebookInstance.InstanceMetadataServiceConfigurationProperty(
                    minimum_instance_metadata_service_version="2"
                )
            ),
            **network,
        }
        create_only = {
            name: self.resolve(properties.get(key)) for name, key in NOTEBOOK_CREATE_ONLY.items()
        }
        if s.notebook_in_vpc:  # the subnet's zone: a new zone replaces the subnet, same Ref
            create_only["subnet_zone"] = self.resolve(self._notebook_subnet.availability_zone)
        notebook = sagemaker.CfnNotebookInstance(
            self,
            "Notebook",
            notebook_instance_name=naming.notebook_name(
                s.project, notebook_fingerprint(s.project, create_only)
            ),
            **properties,
        )
        # OnStart runs as soon as the instance exists: its role's permissions (and, in a VPC,
        # the endpoints it reaches AWS through) must exist first. CloudFormation only orders
        # what a property references: the role, not its policies or the endpoints.
        notebook.node.add_dependency(
            self.notebook_role, self.node.find_child("NotebookPolicy"), *endpoints
        )
        if not s.notebook_in_vpc:
            for rule, what in (
                ("AwsSolutions-SM1", "is not placed in a VPC"),
                ("AwsSolutions-SM3", "has direct internet access"),
            ):
                acknowledge(
                    notebook,
                    rule,
                    f"By default the notebook {what}: it needs to reach S3, SageMaker and "
                    "package registries, and a VPC without internet costs NAT or interface "
                    "endpoints. Set -c notebook_in_vpc=true for an isolated notebook.",
                )
        return notebook

    def _notebook_network(self) -> tuple[dict, list]:
        """An isolated VPC: no internet, VPC endpoints for the AWS APIs the notebook needs.
        Returns the notebook's network properties and the endpoints it must wait for.

        One AZ: context ``notebook_availability_zone`` names it (not every AZ offers the
        SageMaker interface endpoints), else CDK takes the first of the region's."""
        az = self.settings.notebook_availability_zone
        vpc = ec2.Vpc(
            self,
            "NotebookVpc",
            **({"availability_zones": [az]} if az else {"max_azs": 1}),
            nat_gateways=0,
            restrict_default_security_group=False,  # avoids a custom-resource Lambda
            subnet_configuration=[
                ec2.SubnetConfiguration(
                    name="isolated", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED, cidr_mask=24
                )
            ],
        )
        flow_logs = logs.LogGroup(
            self,
            LogGroup.FLOW_LOGS,
            retention=logs.RetentionDays.ONE_WEEK,
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        vpc.add_flow_log(
            "FlowLog", destination=ec2.FlowLogDestination.to_cloud_watch_logs(flow_logs)
        )
        endpoints = [vpc.add_gateway_endpoint("S3", service=ec2.GatewayVpcEndpointAwsService.S3)]
        group = ec2.SecurityGroup(
            self,
            "NotebookSecurityGroup",
            vpc=vpc,
            description="notebook instance: outbound to VPC endpoints",
        )
        endpoint_group = ec2.SecurityGroup(
            self,
            "EndpointSecurityGroup",
            vpc=vpc,
            description="VPC endpoints: HTTPS from the notebook only",
        )
        endpoint_group.add_ingress_rule(group, ec2.Port.tcp(443), "notebook to AWS APIs")
        for name, service in (
            ("SageMakerApi", ec2.InterfaceVpcEndpointAwsService.SAGEMAKER_API),
            ("SageMakerRuntime", ec2.InterfaceVpcEndpointAwsService.SAGEMAKER_RUNTIME),
            ("Logs", ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS),
            ("Sts", ec2.InterfaceVpcEndpointAwsService.STS),
        ):
            endpoints.append(
                vpc.add_interface_endpoint(
                    name, service=service, open=False, security_groups=[endpoint_group]
                )
            )
        subnet = self._notebook_subnet = vpc.isolated_subnets[0]
        network = {
            "subnet_id": subnet.subnet_id,
            "security_group_ids": [group.security_group_id],
            "direct_internet_access": "Disabled",
        }
        return network, endpoints
