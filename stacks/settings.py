"""Typed settings for the CDK app, read once from CDK context (cdk.json / ``-c key=value``).

Every value is validated here with a message that names the context key and the fix, so a
typo fails ``cdk synth`` in a second instead of a deployment half-way through.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from pathlib import Path

from training.aws import naming
from training.aws.instance_types import DEFAULT as DEFAULT_INSTANCE_TYPE
from training.aws.model_record import RECORD_FILE, ModelRecord
from training.aws.naming import DEFAULT_PROJECT, ENDPOINT_MODES
from training.core.losses import PREDICTOR_TYPES
from training.errors import ModelRecordError, UserError

ROOT = Path(__file__).resolve().parents[1]
_REGION = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d$")
_INSTANCE = re.compile(r"^ml\.[a-z0-9]+\.[0-9]*[a-z]+$")
_PROJECT = re.compile(r"^[a-z][a-z0-9-]{1,30}[a-z0-9]$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# The stacks' names drop the project's hyphens (naming.stack_prefix: ll-e2e -> LlE2e), and the
# capital letters mark where each part began: only when every part starts with a letter. A
# hyphen before a digit or another hyphen would make two projects one pair of stacks
# (a1b-x and a-1b-x are both A1bX), so those names are refused.
_PROJECT_PART = re.compile(r"-(?![a-z])")
# EndpointName: at most 63 characters (botocore's sagemaker model, EndpointName)
ENDPOINT_NAME_MAX = 63


# Pinned, so the instance's OS and Jupyter do not change under the OnStart script (which still
# arms cron where there is one, as on AL2, and a systemd timer on AL2023: tests/test_onstart.py).
# AL2023 only: "Starting July 1, 2026, you can no longer create new or restart stopped AL2
# notebook instances" (SageMaker DG, Amazon Linux 2 notebook instances,
# https://docs.aws.amazon.com/sagemaker/latest/dg/nbi-al2.html): an AL2 platform would fail
# the deploy, or never start again after its first idle stop. The platform is create-only:
# changing it replaces the instance and its volume (docs/aws.md).
NOTEBOOK_PLATFORMS = ("notebook-al2023-v1",)
RETIRED_NOTEBOOK_PLATFORMS = ("notebook-al2-v1", "notebook-al2-v2", "notebook-al2-v3")


class SettingsError(UserError):
    """A context value is invalid; the message names the key and how to fix it."""


@dataclass(frozen=True)
class ServedModel:
    """The model artifact the endpoint stack serves, its image, and where that was read; with
    the featurizer artifact when the model serves raw rows (a serial inference pipeline)."""

    model_data_url: str | None  # s3://…/model.tar.gz; None: model_path, a CDK asset
    image_uri: str | None  # None: the region's Linear Learner image
    source: str  # "context model_data_url", "context model_path", or the record's path
    featurizer_data_url: str | None = None  # s3://…/featurizer.tar.gz
    predictor_type: str | None = None  # None: unknown (a model made elsewhere, by URL)
    model_path: Path | None = None  # a local model.tar.gz, uploaded as a CDK asset
    preprocessing_path: Path | None = None  # its preprocessing.json: featurizer built at synth
    # a registry version (model package) to serve: the Model runs it by ModelPackageName
    model_package_arn: str | None = None

    @property
    def raw_rows(self) -> bool:
        """Whether the model is served behind its preprocessing (raw rows in). A registry
        version by ARN alone may be either: its package says, and SageMaker runs it."""
        return bool(self.featurizer_data_url or self.preprocessing_path)


@dataclass(frozen=True)
class Settings:
    """Everything the stacks are built from. Defaults live in cdk.json's context."""

    project: str = DEFAULT_PROJECT
    region: str = "us-east-1"
    account: str | None = None
    notebook_instance_type: str = "ml.t3.medium"
    notebook_volume_gb: int = 10
    notebook_root_access: bool = False
    notebook_idle_minutes: int = 60
    notebook_in_vpc: bool = False
    notebook_availability_zone: str = ""  # notebook_in_vpc: "" lets CDK take the first AZ
    notebook_platform: str = "notebook-al2023-v1"
    code_repository: str = ""
    noncurrent_version_days: int = 30
    endpoint_instance_type: str = DEFAULT_INSTANCE_TYPE
    endpoint_instance_count: int = 1
    endpoint_mode: str = "realtime"  # or "serverless": pay per request, no instances
    serverless_memory_mb: int = 2048
    serverless_max_concurrency: int = 5
    autoscaling_max_instances: int = 0  # 0: off; else scale instances up to this (realtime)
    autoscaling_target_invocations: int = 100  # per instance per minute
    alarms: bool = True  # 5XX errors, p99 model latency (and serverless saturation) -> SNS
    alarm_email: str = ""  # subscribe this address to the alarm topic
    alarm_latency_p99_ms: int = 1000
    data_capture_percent: int = 0  # 0: off; else capture this share of requests to capture/
    model_record: str = RECORD_FILE
    model_data_url: str = ""
    image_uri: str = ""
    # a model made elsewhere, by URL: its featurizer, and its predictor type (regressor: no
    # decoder container); both read from the model record otherwise
    featurizer_data_url: str = ""
    # a version of the project's model package group (the registry) to serve instead
    model_package_arn: str = ""
    predictor_type: str = ""
    # a local model.tar.gz (and the preprocessing.json beside it, or this one), uploaded by
    # `cdk deploy` as assets: what `python -m training run` synthesizes offline
    model_path: str = ""
    preprocessing_path: str = ""
    auto_delete_objects: bool = True

    @property
    def endpoint_name(self) -> str:
        """This project's endpoint under these settings (the endpoint stack, its IAM and log
        group, and the notebook's project.json take it from here): the mode, and with
        autoscaling the instance type, are in it, since SageMaker cannot change those in
        place (``naming.endpoint_name``; audit knows every such name by
        ``naming.owned_patterns``)."""
        scaled = self.endpoint_instance_type if self.autoscaling_max_instances else None
        return naming.endpoint_name(self.project, self.endpoint_mode, scaled)

    @classmethod
    def from_context(cls, get) -> Settings:
        """Build from a ``node.try_get_context``-like callable; strings from ``-c`` are parsed."""
        values = {}
        for f in fields(cls):
            raw = get(f.name)
            if raw is None:
                continue
            values[f.name] = _coerce(f.name, raw, f.type)
        settings = cls(**values)
        settings.check()
        return settings

    def check(self) -> None:
        problems = []
        if not _PROJECT.match(self.project):
            problems.append(
                f"project='{self.project}': use 3-32 lower-case letters, digits and hyphens, "
                "starting with a letter (it prefixes resource names and tags)"
            )
        elif _PROJECT_PART.search(self.project):
            prefix = naming.stack_prefix(self.project)
            problems.append(
                f"project='{self.project}': start every hyphen-separated part with a letter "
                f"(e.g. '{_PROJECT_PART.sub('-v', self.project)}'): stack names drop the "
                f"hyphens, so '{self.project}' and '{_PROJECT_PART.sub('', self.project)}' "
                f"would both be the stacks {prefix}{naming.Stack.BASE} and "
                f"{prefix}{naming.Stack.ENDPOINT}"
            )
        if not _REGION.match(self.region):
            problems.append(f"region='{self.region}' is not an AWS region name (e.g. eu-west-1)")
        for key in ("notebook_instance_type", "endpoint_instance_type"):
            value = getattr(self, key)
            if not _INSTANCE.match(value):
                problems.append(
                    f"{key}='{value}' is not a SageMaker instance type ({DEFAULT_INSTANCE_TYPE})"
                )
        ranges = {
            "notebook_volume_gb": (5, 16384),
            "notebook_idle_minutes": (5, 24 * 60),
            "noncurrent_version_days": (1, 3650),
            "endpoint_instance_count": (1, 10),
            "serverless_memory_mb": (1024, 6144),
            "serverless_max_concurrency": (1, 200),
            "autoscaling_max_instances": (0, 100),
            "autoscaling_target_invocations": (1, 100_000),
            "alarm_latency_p99_ms": (1, 60_000),
            "data_capture_percent": (0, 100),
        }
        for key, (low, high) in ranges.items():
            value = getattr(self, key)
            if not low <= value <= high:
                problems.append(f"{key}={value} must be between {low} and {high}")
        problems += self._endpoint_option_problems()
        if self.notebook_platform in RETIRED_NOTEBOOK_PLATFORMS:
            problems.append(
                f"notebook_platform='{self.notebook_platform}': SageMaker no longer creates or "
                "restarts Amazon Linux 2 notebook instances (since 2026-07-01): use "
                f"-c notebook_platform={NOTEBOOK_PLATFORMS[0]} (docs/aws.md, The notebook instance)"
            )
        elif self.notebook_platform not in NOTEBOOK_PLATFORMS:
            problems.append(
                f"notebook_platform='{self.notebook_platform}' must be one of "
                + ", ".join(NOTEBOOK_PLATFORMS)
            )
        az = self.notebook_availability_zone
        if az and not re.fullmatch(re.escape(self.region) + r"[a-z]", az):
            problems.append(
                f"notebook_availability_zone='{az}' is not an availability zone of "
                f"{self.region} (e.g. {self.region}b)"
            )
        if self.model_data_url and not naming.split_s3_url(self.model_data_url):
            problems.append(
                f"model_data_url='{self.model_data_url}' must be an s3://bucket/key URL of a "
                "model.tar.gz"
            )
        if self.image_uri and ".dkr.ecr." not in self.image_uri:
            problems.append(f"image_uri='{self.image_uri}' is not an ECR image URI")
        problems += self._model_source_problems()
        if problems:
            raise SettingsError("invalid CDK context:\n  - " + "\n  - ".join(problems))

    def _model_source_problems(self) -> list[str]:
        """The model-source keys that contradict each other or name nothing."""
        problems = []
        if self.model_package_arn:
            problems += self._package_problems(self.model_package_arn, "model_package_arn")
            if self.model_path or self.model_data_url:
                problems.append(
                    "model_package_arn names the model to serve: drop model_path / model_data_url"
                )
        if self.model_path and self.model_data_url:
            problems.append(
                "model_path and model_data_url both name the model to serve: pass one (a "
                "local model.tar.gz, or an s3:// URL)"
            )
        if self.featurizer_data_url:
            if not naming.split_s3_url(self.featurizer_data_url):
                problems.append(
                    f"featurizer_data_url='{self.featurizer_data_url}' must be an "
                    "s3://bucket/key URL of a featurizer.tar.gz"
                )
            if not self.model_data_url:
                problems.append(
                    "featurizer_data_url goes with model_data_url (the model it preprocesses "
                    "for); a local model takes its preprocessing.json from model_path's folder "
                    "or preprocessing_path"
                )
        if self.predictor_type:
            if self.predictor_type not in PREDICTOR_TYPES:
                problems.append(
                    f"predictor_type='{self.predictor_type}' must be one of "
                    + ", ".join(PREDICTOR_TYPES)
                )
            elif not self.featurizer_data_url:
                problems.append(
                    "predictor_type only decides whether a pipeline given by "
                    "featurizer_data_url ends in the class decoder: pass it with "
                    "featurizer_data_url, or leave it out"
                )
        if self.preprocessing_path and not self.model_path:
            problems.append(
                "preprocessing_path goes with model_path (the local model it preprocesses for); "
                "a model in S3 takes featurizer_data_url"
            )
        return problems

    def _package_problems(self, arn: str, key: str) -> list[str]:
        """A version of this project's own group, in the app's region (a package of another
        region cannot be served: SageMaker reads artifacts and images from the endpoint's)."""
        group = naming.model_package_group_name(self.project)
        pattern = (
            rf"arn:aws[a-z-]*:sagemaker:{re.escape(self.region)}:\d{{12}}:model-package/"
            rf"{re.escape(group)}/\d+"
        )
        if re.fullmatch(pattern, arn):
            return []
        return [
            f"{key}='{arn}' is not a version of this project's model group {group} in "
            f"{self.region} (arn:aws:sagemaker:{self.region}:<account>:model-package/{group}/<N>)"
            "; register the model in this project and region"
        ]

    def _endpoint_option_problems(self) -> list[str]:
        """Combinations SageMaker refuses, refused at synth (serverless endpoints have no
        instances to scale, and support neither data capture nor network isolation)."""
        problems = []
        if self.endpoint_mode not in ENDPOINT_MODES:
            problems.append(
                f"endpoint_mode='{self.endpoint_mode}' must be one of {', '.join(ENDPOINT_MODES)}"
            )
        if self.serverless_memory_mb % 1024:
            problems.append(
                f"serverless_memory_mb={self.serverless_memory_mb} must be a multiple of 1024 "
                "(1024, 2048, … 6144)"
            )
        serverless = self.endpoint_mode == "serverless"
        if serverless and self.autoscaling_max_instances:
            problems.append(
                "autoscaling_max_instances applies to realtime endpoints; a serverless one "
                "scales by itself up to serverless_max_concurrency (set it to 0)"
            )
        if serverless and self.data_capture_percent:
            problems.append(
                "data_capture_percent: serverless endpoints do not support data capture "
                "(set it to 0, or endpoint_mode=realtime)"
            )
        scaling = self.autoscaling_max_instances
        if scaling and scaling < self.endpoint_instance_count:
            problems.append(
                f"autoscaling_max_instances={scaling} is below endpoint_instance_count="
                f"{self.endpoint_instance_count} (the minimum it scales down to)"
            )
        if self.alarm_email and not _EMAIL.match(self.alarm_email):
            problems.append(f"alarm_email='{self.alarm_email}' is not an e-mail address")
        if len(self.endpoint_name) > ENDPOINT_NAME_MAX:
            problems.append(
                f"the endpoint's name {self.endpoint_name} is over {ENDPOINT_NAME_MAX} "
                "characters (SageMaker's limit): use a shorter project name"
            )
        return problems

    def model_artifact(self) -> ServedModel | None:
        """The model to serve: context ``model_path`` (local files), else context
        ``model_data_url`` (S3), else the training record; None when there is none yet."""
        served = self._served_model()
        if served is not None and served.model_package_arn and self.endpoint_mode == "serverless":
            raise SettingsError(
                "endpoint_mode=serverless cannot serve a registry version: a version with "
                "preprocessing is a serial inference pipeline, which serverless endpoints do "
                "not support; use -c endpoint_mode=realtime"
            )
        if served is not None and served.raw_rows and self.endpoint_mode == "serverless":
            # DG serverless-endpoints.md, "Feature exclusions": "… network isolation, data
            # capture, multiple production variants, Model Monitor, and inference pipelines"
            raise SettingsError(
                f"endpoint_mode=serverless cannot serve the model of {served.source}: it has "
                "preprocessing (raw rows in), which SageMaker serves as a serial inference "
                "pipeline, and serverless endpoints support neither inference pipelines nor "
                "network isolation; use -c endpoint_mode=realtime, or score files with "
                "`python -m training transform --target aws` (batch transform runs pipelines)"
            )
        return served

    def _served_model(self) -> ServedModel | None:
        if self.model_package_arn:
            return ServedModel(
                None,
                self.image_uri or None,
                "context model_package_arn",
                model_package_arn=self.model_package_arn,
            )
        if self.model_path:
            return self._local_model()
        if self.model_data_url:
            return ServedModel(
                self.model_data_url,
                self.image_uri or None,
                "context model_data_url",
                featurizer_data_url=self.featurizer_data_url or None,
                predictor_type=self.predictor_type or None,
            )
        path = _in_project(self.model_record)
        if not path.exists():
            return None
        try:
            record = ModelRecord.load(path)
        except ModelRecordError as err:
            raise SettingsError(
                f"model_record: {err}; rerun training or pass -c model_data_url=s3://…"
            ) from None
        url = record.model_data_url
        if not naming.split_s3_url(str(url)):
            raise SettingsError(f"model_record {path}: model_data_url '{url}' is not s3://…")
        if record.region and record.region != self.region:
            raise SettingsError(
                f"model_record {path} was trained in {record.region} but the app targets "
                f"{self.region}: SageMaker reads model artifacts from the endpoint's region; "
                "pass -c region=" + record.region
            )
        featurizer = record.featurizer_data_url
        if featurizer is not None and not naming.split_s3_url(str(featurizer)):
            raise SettingsError(
                f"model_record {path}: featurizer_data_url '{featurizer}' is not s3://…"
            )
        package = record.model_package_arn
        if package and self._package_problems(package, "model_package_arn"):
            raise SettingsError(
                f"model_record {path}: " + self._package_problems(package, "model_package_arn")[0]
            )
        return ServedModel(
            url,
            self.image_uri or record.image_uri,
            str(path),
            featurizer_data_url=featurizer,
            predictor_type=record.predictor_type,
            model_package_arn=package,
        )

    def _local_model(self) -> ServedModel:
        """``model_path``, checked as ``deploy --model`` checks it (a foreign or damaged file,
        or preprocessing that does not fit the model, fails synth), with its preprocessing:
        ``preprocessing_path``, else the ``preprocessing.json`` train wrote beside it."""
        from training.model_source import load_pipeline, preprocessing_path

        model = _in_project(self.model_path)
        given = _in_project(self.preprocessing_path) if self.preprocessing_path else None
        fix = "pass the model.tar.gz `python -m training train` wrote"
        if not model.is_file():
            raise SettingsError(f"model_path='{self.model_path}': no such file; {fix}")
        try:
            pipeline = load_pipeline(str(model), given, show_progress=False)
            preprocessing = preprocessing_path(str(model), given)
        except UserError as err:
            raise SettingsError(f"model_path='{self.model_path}': {err}") from None
        return ServedModel(
            None,
            self.image_uri or None,
            f"context model_path {model}",
            predictor_type=pipeline.model.predictor_type,
            model_path=model,
            preprocessing_path=preprocessing,
        )


def _in_project(name: str) -> Path:
    """A path from context: relative ones are the project folder's (where the CDK app runs)."""
    path = Path(name)
    return path if path.is_absolute() else ROOT / path


def _coerce(name: str, raw, kind):
    kind = str(kind)
    try:
        if kind.startswith("bool"):
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text not in ("true", "false"):
                raise ValueError
            return text == "true"
        if kind.startswith("int"):
            if isinstance(raw, bool):
                raise ValueError
            return int(str(raw).strip())
        return None if raw is None else str(raw).strip()
    except ValueError:
        expected = "true or false" if kind.startswith("bool") else "an integer"
        raise SettingsError(f"invalid CDK context: {name}='{raw}' must be {expected}") from None
