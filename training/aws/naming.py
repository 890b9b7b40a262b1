"""How the project's AWS resources are named and laid out: one home for every name, prefix,
time stamp, output and status the CDK app, the AWS commands and the audit must agree on.

Dependency-free on purpose: the CDK app (``stacks/``) imports it, so the infrastructure and the
commands cannot drift apart on a stack, endpoint, job, log group or bucket prefix.
"""

from __future__ import annotations

import datetime as dt
import re

DEFAULT_PROJECT = "ll-e2e"  # the project name when none is given (cdk.json context too)
VARIANT_NAME = "AllTraffic"  # the endpoint's one production variant
TAG_KEY = "project"  # every resource of a project carries TAG_KEY=<project>: how audit knows it


class Stack:
    """The roles of the project's CloudFormation stacks (a stack's name ends in its role)."""

    BASE = "Base"  # bucket, key, execution role, notebook
    ENDPOINT = "Endpoint"  # model, endpoint config, endpoint
    ROLES = (BASE, ENDPOINT)


class Output:
    """The CloudFormation outputs the stacks declare and the AWS commands read back by name."""

    BUCKET = "BucketName"  # the base stack's, exported for the endpoint stack
    ROLE = "RoleArn"  # the base stack's, exported
    KEY = "KeyArn"  # the base stack's, exported
    ENDPOINT = "EndpointName"  # the endpoint stack's
    ENDPOINT_CONFIG = "EndpointConfigName"  # the endpoint stack's
    MODEL_NAME = "ModelName"  # the endpoint stack's
    MODEL_DATA_URL = "ModelDataUrl"  # the endpoint stack's: the artifact it serves
    IMAGE_URI = "ImageUri"  # the endpoint stack's
    # the endpoint stack's, when it serves raw rows: the scikit-learn containers' artifact
    FEATURIZER_DATA_URL = "FeaturizerDataUrl"
    ALARM_TOPIC = "AlarmTopicArn"  # the endpoint stack's, with alarms on
    MODEL_PACKAGE_GROUP = "ModelPackageGroupName"  # the base stack's: the model registry
    MODEL_PACKAGE_ARN = "ModelPackageArn"  # the endpoint stack's, serving a registry version


class Container:
    """The ContainerHostname of each container of the serial inference pipeline: SageMaker
    names the pipeline's log streams ``<endpoint>/<variant>/<instance>/<hostname>`` and says
    which container failed by it (set on every container or on none)."""

    FEATURIZE = "featurize"  # scikit-learn image: raw rows -> Linear Learner's features
    MODEL = "linear-learner"  # the Linear Learner image: the model artifact
    DECODE = "decode"  # scikit-learn image: class indices -> the classes as the data spelled them


class LogGroup:
    """Where SageMaker writes the logs of what the project runs (CloudFormation does not own
    them, so the audit and ``destroy-all`` find them by these names)."""

    TRAINING_JOBS = "/aws/sagemaker/TrainingJobs"
    TRANSFORM_JOBS = "/aws/sagemaker/TransformJobs"
    NOTEBOOK_INSTANCES = "/aws/sagemaker/NotebookInstances"

    @staticmethod
    def endpoint(endpoint: str) -> str:
        return f"/aws/sagemaker/Endpoints/{endpoint}"

    # The base stack's VPC flow-log group (notebook_in_vpc): CloudFormation names it
    # ``<base stack>-<FLOW_LOGS><8 hex>-<suffix>`` after this construct id.
    FLOW_LOGS = "FlowLogs"

    @staticmethod
    def flow_logs(project: str) -> str:
        """The start of the flow-log group's CloudFormation-given name (a search, not a
        proof: the audit takes the group only with the project's tag on it)."""
        return f"{stack_name(project, Stack.BASE)}-{LogGroup.FLOW_LOGS}"

    @staticmethod
    def stack_lambdas(project: str) -> tuple[str, ...]:
        """Prefixes of the log groups of Lambda functions CloudFormation names after the
        project's stacks (``<stack name>-<logical id>-<suffix>``)."""
        return tuple(f"/aws/lambda/{stack_name(project, role)}-" for role in Stack.ROLES)


class Prefix:
    """The project bucket's layout: what the execution role, the notebook and the lifecycle
    rules are scoped to."""

    DATA = "data/"  # training channels, data/<job>/<channel>/
    MODELS = "models/"  # training output (models/<job>/output/) and uploaded models
    TRANSFORM = "transform/"  # batch transform input and output, transform/<job>/
    CAPTURE = "capture/"  # endpoint data capture
    NOTEBOOKS = "notebooks/"  # the notebook bundle

    @staticmethod
    def model_key(sha256: str) -> str:
        """Content-addressed: the same artifact always lands on the same key, a new one never
        overwrites an object an endpoint may still be reading."""
        return f"{Prefix.MODELS}sha256/{sha256}/model.tar.gz"

    @staticmethod
    def featurizer_key(sha256: str) -> str:
        """Content-addressed, as :meth:`model_key`: the serial pipeline's featurizer.tar.gz."""
        return f"{Prefix.MODELS}featurizer/sha256/{sha256}/featurizer.tar.gz"

    @staticmethod
    def metrics_key(sha256: str) -> str:
        """Content-addressed: a registered version's metrics (ModelMetrics' statistics)."""
        return f"{Prefix.MODELS}metrics/sha256/{sha256}/metrics.json"

    @staticmethod
    def training_data(job: str) -> str:
        return f"{Prefix.DATA}{job}"

    @staticmethod
    def transform_input(job: str) -> str:
        return f"{Prefix.TRANSFORM}{job}/input"

    @staticmethod
    def transform_output(job: str) -> str:
        return f"{Prefix.TRANSFORM}{job}/output/"


# What the execution role (training jobs, the endpoint's and batch transform's Model) may do
# in the project bucket, by prefix: the base stack grants exactly this (stacks/base_stack.py),
# and transform --target aws refuses an s3:// input or output outside it before a job starts.
EXECUTION_S3 = {
    "read": (f"{Prefix.DATA}*", f"{Prefix.MODELS}*", f"{Prefix.TRANSFORM}*"),
    "write": (f"{Prefix.MODELS}*", f"{Prefix.TRANSFORM}*"),
}

# Every job name and record time carries the UTC time it started, in this form.
STAMP_FORMAT = "%Y%m%d-%H%M%S"
STAMP_PATTERN = r"\d{8}-\d{6}"
# The statuses in which a training or transform job has ended.
TERMINAL_STATES = ("Completed", "Failed", "Stopped")


def stamp(now: dt.datetime | None = None) -> str:
    """``YYYYmmdd-HHMMSS`` of ``now`` (default: the current time), UTC."""
    return (now or dt.datetime.now(dt.timezone.utc)).strftime(STAMP_FORMAT)


def stack_prefix(project: str) -> str:
    """``ll-e2e`` -> ``LlE2e``: CloudFormation stack names are the prefix plus the stack's role."""
    return "".join(part.capitalize() for part in project.split("-"))


def stack_name(project: str, role: str) -> str:
    """The stack of one role (``Stack.BASE``, ``Stack.ENDPOINT``), e.g. ``LlE2eBase``."""
    return stack_prefix(project) + role


# What an endpoint's name carries beyond the project: the changes SageMaker cannot make to a
# live endpoint, so that making one creates a new endpoint (EndpointName is the only
# create-only property of AWS::SageMaker::Endpoint; its resource schema) instead of an
# UpdateEndpoint that fails:
# - the mode: "Updating a real-time inference endpoint to ... serverless ... is currently not
#   supported" (DG serverless-endpoints-update.html, and its "Feature exclusions");
# - with autoscaling, the instance type: "If the update would change the instance type for
#   any model that is a target for auto scaling, the update fails" (DG
#   endpoint-scaling-update.html, "Update endpoints that use auto scaling").
# Everything else (a new model, a count, instances without autoscaling) updates in place.
REALTIME, SERVERLESS = "realtime", "serverless"
ENDPOINT_MODES = (REALTIME, SERVERLESS)
# an instance type as it stands in a name (dots are not allowed there): ml.m5.large -> ml-m5-large
_INSTANCE_IN_NAME = r"ml-[a-z0-9]+-[0-9]*[a-z]+"


def endpoint_name(
    project: str, mode: str = REALTIME, autoscaled_instance_type: str | None = None
) -> str:
    """``<project>-endpoint`` (real-time, the default), ``<project>-endpoint-serverless``, or,
    real-time with autoscaling, ``<project>-endpoint-ml-m5-large`` (its instance type): a
    change between them replaces the endpoint (see above); Model and config are unnamed."""
    if mode == SERVERLESS:
        return f"{project}-endpoint-serverless"
    if autoscaled_instance_type:
        return f"{project}-endpoint-{autoscaled_instance_type.replace('.', '-')}"
    return f"{project}-endpoint"


def model_package_group_name(project: str) -> str:
    """``<project>-models``: the base stack's model package group (the registry)."""
    return f"{project}-models"


def notebook_name(project: str, fingerprint: str) -> str:
    """``<project>-notebook-<6 hex>``: the fingerprint of the create-only settings, so a change
    to one of them replaces the instance instead of failing on a custom-named resource."""
    return f"{project}-notebook-{fingerprint[:6]}"


def training_job_name(project: str, when: str) -> str:
    """``<project>-YYYYmmdd-HHMMSS`` (UTC), the name of every training job this project starts."""
    return f"{project}-{when}"


# A tuning job's name is at most 32 characters of letters, digits and hyphens (botocore's
# HyperParameterTuningJobName) and prefixes its training jobs' names (observed:
# <tuning job>-<NNN>-<8 hex>), so it carries the stamp without the century.
# (botocore's pattern lets repeated hyphens run past 32: the length is checked on its own)
TUNING_JOB_NAME = re.compile(r"^(?=.{1,32}$)[a-zA-Z0-9](-*[a-zA-Z0-9])*$")
TUNING_STAMP_PATTERN = r"\d{6}-\d{6}"
TUNED_JOB_SUFFIX = r"-\d{3}-[0-9a-f]{8}"  # what the tuner appends for each training job


def tuning_job_name(project: str, when: str) -> str:
    """``<project>-hpo-YYmmdd-HHMMSS`` (``when`` as :func:`stamp` makes it)."""
    return f"{project}-hpo-{when[2:]}"


def transform_job_name(project: str, when: str) -> str:
    """``<project>-transform-YYYYmmdd-HHMMSS`` (UTC): every batch transform job it starts."""
    return f"{project}-transform-{when}"


def owned_patterns(project: str) -> dict[str, str]:
    """Regular expressions matching exactly the names above for ``project``, and nothing of a
    project that merely shares a prefix (``ll-e2e-prod``, ``ll-e2ex``): what teardown may take
    by name alone."""
    p = re.escape(project)
    return {
        # every name endpoint_name gives: each mode, and each autoscaled instance type
        "endpoint": rf"^{p}-endpoint(-serverless|-{_INSTANCE_IN_NAME})?$",
        "notebook": rf"^{p}-notebook-[0-9a-f]{{6}}$",
        # its own training jobs, and those its tuning jobs launch
        "training-job": rf"^{p}-({STAMP_PATTERN}|hpo-{TUNING_STAMP_PATTERN}{TUNED_JOB_SUFFIX})$",
        "tuning-job": rf"^{p}-hpo-{TUNING_STAMP_PATTERN}$",
        "model-package-group": f"^{re.escape(model_package_group_name(project))}$",
        "transform-job": rf"^{p}-transform-{STAMP_PATTERN}$",
    }


S3_URL = re.compile(r"^s3://([^/]+)/(.+)$")


def is_s3_url(text) -> bool:
    return str(text).startswith("s3://")


def split_s3_url(url: str) -> tuple[str, str] | None:
    """``s3://bucket/key`` -> (bucket, key); None for anything else."""
    match = S3_URL.match(str(url))
    return (match.group(1), match.group(2)) if match else None
