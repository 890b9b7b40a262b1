"""``tune --target aws``: SageMaker automatic model tuning of Linear Learner, checked before
it bills, and its best model recorded like a trained one.

The request carries the :class:`training.core.tuning.TuningSpec` the local tuner runs: the same
ranges, objective, strategy and limits. Its training-job definition is ``train --target
aws``'s (the region's image, the project's execution role, the uploaded channels, KMS for
output and volume, network isolation), with the static hyperparameters and no
``MetricDefinitions``: SageMaker defines Linear Learner's metrics itself and refuses
overrides (AWS: "Define metrics"; "You can't override the metric definitions for Amazon
SageMaker algorithms"). Tags given here reach every training job the tuner launches
(botocore: CreateHyperParameterTuningJobRequest.Tags), which is how ``audit`` and
``destroy-all`` know them. Waiting shows the jobs completed / running / failed / stopped and the
best so far; at the end the best job's artifact goes to ``models/latest.json``.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from training.aws import session as aws
from training.aws.job import (
    AwsTrainConfig,
    keep_model,
    stage,
    unfinished_record,
)
from training.aws.model_record import ModelRecord, default_path
from training.aws.naming import TUNING_JOB_NAME, LogGroup, tuning_job_name
from training.core.tuning import EARLY_STOPPING, STRATEGIES, TuningSpec
from training.errors import (
    JobFailedError,
    Problem,
    TuningError,
    UserError,
    known_fix,
)

# AWS's default quotas (SageMaker "Limits" for automatic model tuning): raised on request
DEFAULT_PARALLEL_QUOTA = 10  # parallel training jobs per tuning job (up to 100)
MAX_JOBS_QUOTA = 750  # training jobs per tuning job (Random: up to 10,000 on request)
TUNING_RAN = (
    "the channels were uploaded and the tuning job ran (and billed its training jobs) until "
    "it ended."
)

KNOWN_FAILURES = [
    (
        r"ResourceLimitExceeded|resource limit|service limit",
        "an account quota: parallel training jobs per tuning job are 10 by default (lower "
        "--max-parallel-jobs, or ask for an increase in Service Quotas), and every parallel "
        "job's instances count against the training instance quota.",
    ),
    (
        r"enough combinations",
        "the ranges hold fewer distinct combinations than --max-jobs: lower it or widen a range.",
    ),
    (
        r"(?i)metric definitions",
        "built-in algorithms take no MetricDefinitions: SageMaker defines Linear Learner's.",
    ),
    (
        r"(?i)already exists|ResourceInUse",
        "a tuning job of that name exists (names are unique per account and region, even "
        "after it ended): pass another --job-name, or wait a second and run again.",
    ),
    (
        r"(?i)(parameter ?ranges|scaling ?type|static ?hyper ?parameters|"
        r"hyper ?parameter(?! ?tuning ?job)s?\b)",
        "a range or value the algorithm refuses: check --ranges against "
        "`python -m training tune --help`.",
    ),
]


def check_aws_limits(spec: TuningSpec, echo=print) -> None:
    """What the local tuner allows and SageMaker's account defaults do not."""
    if spec.max_jobs > MAX_JOBS_QUOTA and spec.strategy != "random":
        raise TuningError(
            f"--max-jobs {spec.max_jobs}: SageMaker runs at most {MAX_JOBS_QUOTA} training "
            f"jobs per {spec.strategy} tuning job; lower it (only random search can be "
            "raised, on request)."
        )
    if spec.max_parallel_jobs > DEFAULT_PARALLEL_QUOTA:
        echo(
            f"note: --max-parallel-jobs {spec.max_parallel_jobs} is above SageMaker's default "
            f"quota of {DEFAULT_PARALLEL_QUOTA} parallel jobs per tuning job: the job fails "
            "to start unless the account's quota was raised"
        )


def tuning_request(spec: TuningSpec, training: dict, name: str, tags: list[dict]) -> dict:
    """The CreateHyperParameterTuningJob request (pure: tested without AWS), from the spec
    and the CreateTrainingJob request ``train --target aws`` would send."""
    tuned = set(spec.tuned)
    static = {k: v for k, v in training["HyperParameters"].items() if k not in tuned}
    static.update({k: v for k, v in spec.static.items() if k not in tuned})
    definition = {
        "StaticHyperParameters": static,
        # no MetricDefinitions: SageMaker's own for its algorithms
        "AlgorithmSpecification": dict(training["AlgorithmSpecification"]),
        **{
            key: training[key]
            for key in (
                "RoleArn",
                "InputDataConfig",
                "OutputDataConfig",
                "ResourceConfig",
                "StoppingCondition",
                "EnableNetworkIsolation",
            )
        },
    }
    limits = {"MaxParallelTrainingJobs": spec.max_parallel_jobs}
    if spec.strategy != "grid":  # a grid runs every combination: SageMaker counts them
        limits["MaxNumberOfTrainingJobs"] = spec.max_jobs
    config = {
        "Strategy": STRATEGIES[spec.strategy],
        "HyperParameterTuningJobObjective": {
            "Type": spec.objective.direction,
            "MetricName": spec.objective.metric,
        },
        "ResourceLimits": limits,
        "ParameterRanges": spec.parameter_ranges(),
        "TrainingJobEarlyStoppingType": EARLY_STOPPING[spec.early_stopping],
        "RandomSeed": spec.seed,
    }
    if spec.strategy == "hyperband":  # epochs are the resource Hyperband hands out
        config["StrategyConfig"] = {
            "HyperbandStrategyConfig": {"MinResource": 1, "MaxResource": spec.epochs}
        }
    return {
        "HyperParameterTuningJobName": name,
        "HyperParameterTuningJobConfig": config,
        "TrainingJobDefinition": definition,
        "Tags": tags,
    }


def tune_aws(spec: TuningSpec, config: AwsTrainConfig, echo=print) -> ModelRecord | None:
    """Preflight, upload, start, follow, record the best job's model. Returns its record
    (None with ``config.wait`` off: the job was started)."""
    config = replace(config, record=Path(config.record) if config.record else default_path())
    config = replace(config, hyperparameters={**config.hyperparameters, **spec.static})
    if config.job_name is None:
        name = tuning_job_name(config.project, "00000000-000000")
        if not TUNING_JOB_NAME.fullmatch(name):
            raise TuningError(
                f"project '{config.project}' makes tuning job names of {len(name)} "
                "characters; SageMaker takes at most 32: name the job with --job-name."
            )
    # fullmatch: the pattern's "$" also matches before a final line break, which SageMaker's
    # HyperParameterTuningJobName pattern (botocore) does not take
    elif not TUNING_JOB_NAME.fullmatch(config.job_name):
        raise TuningError(
            f"--job-name {config.job_name}: SageMaker takes 1-32 letters, digits and "
            "hyphens, starting and ending with a letter or digit."
        )
    check_aws_limits(spec, echo)

    def same_channels(checked) -> None:
        if spec.objective.channel not in checked.channels:
            raise TuningError(
                f"--objective {spec.objective.metric}: the data has no "
                f"{spec.objective.channel}/ channel."
            )

    staged = stage(config, lambda when: tuning_job_name(config.project, when), echo, same_channels)
    name = staged.name
    training = staged.training_request(config)
    request = tuning_request(spec, training, name, training["Tags"])
    sm = staged.sess.client("sagemaker")
    import botocore.exceptions

    try:
        sm.create_hyper_parameter_tuning_job(**request)
    except botocore.exceptions.ClientError as err:
        said = err.response.get("Error", {})
        message = f"{said.get('Code', '')}: {said.get('Message', '')}"
        raise UserError(
            f"SageMaker refused tuning job {name}: {err}\n    fix: "
            + known_fix(message, KNOWN_FAILURES, "see the message above"),
            "the channels were uploaded; no job started.",
        ) from None
    echo(
        f"tuning job {name} started: {spec.max_jobs} jobs, {spec.max_parallel_jobs} at a "
        f"time, {STRATEGIES[spec.strategy]}, {spec.objective.direction} "
        f"{spec.objective.metric} ({config.instance_count} x {config.instance_type} each)"
    )
    if not config.wait:
        return None
    described = wait_for_tuning(staged.sess, name, config.poll_s, echo, spec)
    best = described.get("BestTrainingJob")
    if not best:
        reason = described.get("FailureReason") or "no training job completed"
        raise JobFailedError(
            [
                Problem(
                    f"tuning job {name}",
                    f"{described['HyperParameterTuningJobStatus']}: {reason}",
                    known_fix(
                        reason,
                        KNOWN_FAILURES,
                        f"see the training jobs' logs ({LogGroup.TRAINING_JOBS}/{name}-…)",
                    ),
                )
            ],
            TUNING_RAN,
        )
    job = best["TrainingJobName"]
    trained = sm.describe_training_job(TrainingJobName=job)
    metric = best.get("FinalHyperParameterTuningJobObjectiveMetric", {})
    echo(
        f"best training job {job}: {metric.get('MetricName', spec.objective.metric)}="
        f"{metric.get('Value', float('nan')):.6g} with "
        + " ".join(f"{k}={v}" for k, v in sorted(best.get("TunedHyperParameters", {}).items()))
    )
    record = unfinished_record(staged, job, trained.get("HyperParameters", {}))
    record = replace(
        record,
        model_data_url=trained["ModelArtifacts"]["S3ModelArtifacts"],
        tuning_job_name=name,
    )
    return keep_model(config, staged, record, echo)


def wait_for_tuning(sess, name: str, poll_s: float, echo, spec: TuningSpec) -> dict:
    """Poll until the tuning job ends, echoing the jobs' counts and the best so far when
    they change."""
    sm = sess.client("sagemaker")
    shown = {"last": None}

    def describe() -> dict:
        described = sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)
        line = progress_line(described, spec)
        if line != shown["last"]:
            echo("  " + line)
            shown["last"] = line
        return described

    return aws.wait_for(describe, "HyperParameterTuningJobStatus", name, poll_s, echo)


def progress_line(described: dict, spec: TuningSpec) -> str:
    counts = described.get("TrainingJobStatusCounters", {})
    failed = counts.get("RetryableError", 0) + counts.get("NonRetryableError", 0)
    line = (
        f"jobs: {counts.get('Completed', 0)} completed, {counts.get('InProgress', 0)} "
        f"running, {failed} failed, {counts.get('Stopped', 0)} stopped"
        f" (of {spec.max_jobs})"
    )
    best = described.get("BestTrainingJob")
    if best and "FinalHyperParameterTuningJobObjectiveMetric" in best:
        value = best["FinalHyperParameterTuningJobObjectiveMetric"]["Value"]
        line += f"; best so far {best['TrainingJobName']} {spec.objective.metric}={value:.6g}"
    return line
