"""``tune --target aws`` against moto: the CreateHyperParameterTuningJob request as SageMaker
stores it, the best job recorded like a trained model, the refusals before anything is sent,
and audit / destroy-all stopping the project's running tuning jobs and nothing else.

moto stores the request verbatim and completes the job at once, naming a fake best job
("FakeTrainingJobName") that the tests create as a real moto training job. moto implements
no StopHyperParameterTuningJob and keeps no job InProgress: the tests patch moto's stand-in
for AWS (never this project's code) to stop jobs and to keep or fail them.
"""

import json
import re
import shutil

import boto3
import pytest
from aws_async import AsyncSageMaker
from botocore.stub import Stubber
from lookalikes import assert_look_alikes_survive, plant_look_alikes, still_there
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.sagemaker.models import SageMakerModelBackend, sagemaker_backends
from test_aws import KEY, ROOT, deploy_base
from test_aws_transform import StubbedSession

from training.aws import audit, deploy
from training.aws.job import AwsTrainConfig
from training.aws.model_record import ModelRecord
from training.aws.tuning_job import TUNING_RAN, tune_aws, wait_for_tuning
from training.cli import build_parser, main
from training.data.prepare import PrepareConfig, prepare
from training.errors import JobFailedError, TuningError, UserError
from training.tune import spec_for

BEST = "FakeTrainingJobName"  # moto's BestTrainingJob for every tuning job
NAME = re.compile(r"^ll-e2e-hpo-\d{6}-\d{6}$")
RECORDIO = "application/x-recordio-protobuf"


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """Penguins' sex as a binary classifier, with preprocessing and all three channels."""
    out = tmp_path_factory.mktemp("tune-prep")
    data = ROOT / "training" / "datasets" / "penguins.csv"
    prepare(
        PrepareConfig(
            data, "sex", "binary_classifier", out, drop_unlabeled=True, show_progress=False
        )
    )
    return out


@pytest.fixture(autouse=True)
def project(tmp_path, monkeypatch):
    """A project folder of the test's own: models/latest.json never lands in the repo's."""
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "cdk.json").write_text("{}")
    monkeypatch.setenv("LL_E2E_PROJECT", str(folder))
    return folder


@pytest.fixture
def sess():
    with mock_aws():
        yield boto3.Session(region_name="us-east-1")


def backend() -> SageMakerModelBackend:
    return sagemaker_backends[DEFAULT_ACCOUNT_ID]["us-east-1"]


def base_stack(sess) -> tuple[str, str]:
    """The base stack's bucket, role and key as outputs, and moto's fake best job."""
    bucket, role = deploy_base(sess)
    values = {"BucketName": bucket, "RoleArn": role, "KeyArn": KEY}
    outputs = {key: {"Value": value} for key, value in values.items()}
    template = {"Resources": {"T": {"Type": "AWS::SNS::Topic"}}, "Outputs": outputs}
    sess.client("cloudformation").create_stack(
        StackName="LlE2eBase", TemplateBody=json.dumps(template)
    )
    sess.client("sagemaker").create_training_job(
        TrainingJobName=BEST,
        AlgorithmSpecification={"TrainingImage": "img", "TrainingInputMode": "File"},
        RoleArn=role,
        HyperParameters={"learning_rate": "0.0123", "use_bias": "false"},
        OutputDataConfig={"S3OutputPath": f"s3://{bucket}/models/"},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 10},
        StoppingCondition={"MaxRuntimeInSeconds": 3600},
    )
    return bucket, role


def tune(data_dir, *flags: str):
    """``python -m training tune --target aws …``, its errors raised as they are."""
    args = build_parser().parse_args(
        ["-q", "tune", "--target", "aws", "--data-dir", str(data_dir), *flags]
    )
    return args.func(args)


def tuning_jobs(sess) -> list[dict]:
    sm = sess.client("sagemaker")
    listed = sm.list_hyper_parameter_tuning_jobs()["HyperParameterTuningJobSummaries"]
    names = [j["HyperParameterTuningJobName"] for j in listed]
    return [sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=n) for n in names]


def objects(sess, bucket: str) -> list[str]:
    return [o["Key"] for o in sess.client("s3").list_objects_v2(Bucket=bucket).get("Contents", [])]


# ----------------------------------------------------------------------------- the request


def test_tune_aws_sends_the_spec_with_trains_job_definition(sess, prepared, project):
    bucket, role = base_stack(sess)
    ranges = ["learning_rate=0.0001:1:log", "mini_batch_size=100:500", "use_bias"]
    flags = ["--ranges", *ranges, "--max-jobs", "4", "--max-parallel-jobs", "2"]
    assert main(["-q", "tune", "--target", "aws", "--data-dir", str(prepared), *flags]) == 0
    [job] = tuning_jobs(sess)
    name = job["HyperParameterTuningJobName"]
    assert NAME.match(name) and len(name) <= 32
    config = job["HyperParameterTuningJobConfig"]
    assert config["ParameterRanges"] == {
        "IntegerParameterRanges": [
            {"Name": "mini_batch_size", "MinValue": "100", "MaxValue": "500", "ScalingType": "Auto"}
        ],
        "ContinuousParameterRanges": [
            {
                "Name": "learning_rate",
                "MinValue": "0.0001",
                "MaxValue": "1",
                "ScalingType": "Logarithmic",
            }
        ],
        "CategoricalParameterRanges": [{"Name": "use_bias", "Values": ["true", "false"]}],
    }
    assert config["HyperParameterTuningJobObjective"] == {
        "Type": "Minimize",
        "MetricName": "validation:objective_loss",
    }
    assert config["Strategy"] == "Bayesian" and "StrategyConfig" not in config
    assert config["ResourceLimits"] == {"MaxNumberOfTrainingJobs": 4, "MaxParallelTrainingJobs": 2}
    assert config["TrainingJobEarlyStoppingType"] == "Auto"
    definition = job["TrainingJobDefinition"]
    assert definition["RoleArn"] == role
    assert {c["ChannelName"]: (c["DataSource"]["S3DataSource"]["S3Uri"], c["ContentType"])
            for c in definition["InputDataConfig"]} == {
        ch: (f"s3://{bucket}/data/{name}/{ch}/", RECORDIO) for ch in ("train", "validation", "test")
    }  # fmt: skip
    assert f"data/{name}/train/train-00000.rec" in objects(sess, bucket)
    assert definition["OutputDataConfig"] == {
        "S3OutputPath": f"s3://{bucket}/models/",
        "KmsKeyId": KEY,
    }
    assert definition["ResourceConfig"]["VolumeKmsKeyId"] == KEY
    assert definition["EnableNetworkIsolation"] is True
    static = definition["StaticHyperParameters"]
    assert static["num_models"] == "1" and static["predictor_type"] == "binary_classifier"
    assert not {"learning_rate", "mini_batch_size", "use_bias"} & set(static)
    assert "MetricDefinitions" not in definition["AlgorithmSpecification"]
    tags = sess.client("sagemaker").list_tags(ResourceArn=job["HyperParameterTuningJobArn"])
    assert {"Key": "project", "Value": "ll-e2e"} in tags["Tags"]
    saved = ModelRecord.load(project / "models" / "latest.json")
    assert (saved.tuning_job_name, saved.training_job_name) == (name, BEST)


@pytest.mark.parametrize("epochs, flags", [(7, ["--hyperparameters", "epochs=7"]), (15, [])])
def test_tune_aws_hyperband_hands_out_epochs_with_early_stopping_off(sess, prepared, epochs, flags):
    base_stack(sess)
    tune(prepared, "--strategy", "hyperband", "--ranges", "wd", "l1", "--max-jobs", "6",
         "--max-parallel-jobs", "3", "--no-wait", *flags)  # fmt: skip
    [job] = tuning_jobs(sess)
    config = job["HyperParameterTuningJobConfig"]
    assert config["Strategy"] == "Hyperband"
    assert config["StrategyConfig"] == {
        "HyperbandStrategyConfig": {"MinResource": 1, "MaxResource": epochs}
    }
    assert config["TrainingJobEarlyStoppingType"] == "Off"
    static = job["TrainingJobDefinition"]["StaticHyperParameters"]
    assert static.get("epochs", "15") == str(epochs)  # unset: SageMaker's default, 15


def test_tune_aws_grid_sends_values_and_lets_sagemaker_count_the_jobs(sess, prepared):
    base_stack(sess)
    assert tune(prepared, "--strategy", "grid", "--ranges", "use_bias", "mini_batch_size=100,200",
                "--max-parallel-jobs", "2", "--no-wait") == 0  # fmt: skip
    [job] = tuning_jobs(sess)
    config = job["HyperParameterTuningJobConfig"]
    assert config["ResourceLimits"] == {"MaxParallelTrainingJobs": 2}
    assert config["ParameterRanges"]["CategoricalParameterRanges"] == [
        {"Name": "use_bias", "Values": ["true", "false"]},
        {"Name": "mini_batch_size", "Values": ["100", "200"]},
    ]
    assert not config["ParameterRanges"].get("IntegerParameterRanges")
    assert config["TrainingJobEarlyStoppingType"] == "Off"


def test_tune_aws_sends_categorical_values_spelled_as_train_sends_them(sess, prepared):
    """Linear Learner checks hyperparameters as text; a tuning job's values go as train's
    request spells them (booleans lower-case, integers bare), not as they were typed."""
    base_stack(sess)
    ranges = ["use_bias=True,False", "mini_batch_size=+100,0200"]
    flags = ["--strategy", "grid", "--max-parallel-jobs", "1", "--no-wait"]
    assert tune(prepared, "--ranges", *ranges, *flags) == 0
    [job] = tuning_jobs(sess)
    config = job["HyperParameterTuningJobConfig"]
    assert config["ParameterRanges"]["CategoricalParameterRanges"] == [
        {"Name": "use_bias", "Values": ["true", "false"]},
        {"Name": "mini_batch_size", "Values": ["100", "200"]},
    ]
    static = job["TrainingJobDefinition"]["StaticHyperParameters"]
    assert static["num_models"] == "1"  # train's spelling for the static ones too


# ----------------------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    "flags, says",
    [
        (["--strategy", "grid", "--ranges", "use_bias", "mini_batch_size=100:200"],
         ["--strategy grid", "mini_batch_size is a range", "mini_batch_size=100,500"]),
        (["--ranges", "wd", "--max-jobs", "5", "--objective", "validation:mse"],
         ["--objective validation:mse", "binary_classifier does not emit it",
          "validation:binary_f_beta"]),
        (["--ranges", "wd", "--max-jobs", "2", "--max-parallel-jobs", "3"],
         ["--max-parallel-jobs 3 is above --max-jobs 2", "lower it"]),
        (["--ranges", "wd", "--max-jobs", "1000"], ["--max-jobs 1000", "at most 750"]),
        (["--ranges", "wd", "--max-jobs", "5", "--project", "a-very-long-project-name",
          "--bucket", "ll-e2e-bucket-123", "--role", "arn:aws:iam::123456789012:role/r"],
         ["a-very-long-project-name", "at most 32", "--job-name"]),
    ],
    ids=["grid-with-a-range", "mse-on-binary", "parallel-above-max", "750-quota", "long-project"],
)  # fmt: skip
def test_tune_aws_refuses_before_anything_is_sent(sess, prepared, flags, says):
    bucket, _ = base_stack(sess)
    flags = flags if "--max-parallel-jobs" in flags else [*flags, "--max-parallel-jobs", "1"]
    with pytest.raises(TuningError) as refused:
        tune(prepared, *flags)
    for text in says:
        assert text in str(refused.value)
    assert "nothing was uploaded or started" in str(refused.value)
    assert objects(sess, bucket) == [] and tuning_jobs(sess) == []


@pytest.mark.parametrize("command", ["tune", "train"])
def test_register_with_no_wait_is_refused_before_anything_starts(
    sess, prepared, command, capsys, tmp_path
):
    """--no-wait ends the command before the job has a model: --register was refused only
    after the job had been started (and billed)."""
    bucket, _ = base_stack(sess)
    flags = {
        "tune": ["--ranges", "wd", "--max-jobs", "2", "--max-parallel-jobs", "1"],
        "train": ["--out", str(tmp_path / "out")],
    }[command]
    argv = [command, "--target", "aws", "--data-dir", str(prepared), "--no-wait", "--register"]
    assert main(["-q", *argv, *flags]) == 2
    err = capsys.readouterr().err
    assert "--register" in err and "--no-wait" in err and "drop --no-wait" in err
    assert objects(sess, bucket) == [] and tuning_jobs(sess) == []
    listed = sess.client("sagemaker").list_training_jobs()["TrainingJobSummaries"]
    assert [j["TrainingJobName"] for j in listed] == [BEST]  # moto's fake best job only


def test_tune_aws_refuses_a_validation_objective_without_validation_data(sess, prepared, tmp_path):
    bucket, _ = base_stack(sess)
    data = tmp_path / "no-validation"
    shutil.copytree(prepared, data)
    shutil.rmtree(data / "validation")
    with pytest.raises(TuningError) as refused:
        tune(data, "--ranges", "wd", "--max-jobs", "3", "--max-parallel-jobs", "1")
    message = str(refused.value)
    assert "--objective validation:objective_loss: the data has no validation/ channel" in message
    assert "test:objective_loss" in message
    assert objects(sess, bucket) == [] and tuning_jobs(sess) == []


def test_tune_aws_refuses_a_33_character_tuning_job_name(sess, prepared):
    """``my-team-ml-prod-hpo-YYmmdd-HHMMSS`` is 33 characters: hyphens let it pass the
    pattern, SageMaker's 32-character limit refuses it after the upload."""
    bucket, role = base_stack(sess)
    with pytest.raises(TuningError, match="--job-name"):
        tune(prepared, "--ranges", "wd", "--max-jobs", "3", "--max-parallel-jobs", "1",
             "--project", "my-team-ml-prod", "--bucket", bucket, "--role", role)  # fmt: skip
    assert objects(sess, bucket) == [] and tuning_jobs(sess) == []


@pytest.mark.parametrize("name", ["ll-e2e-mine\n", "-ll-e2e", "x" * 33])
def test_tune_aws_refuses_a_job_name_sagemaker_refuses_before_the_upload(sess, prepared, name):
    """botocore's HyperParameterTuningJobName: 1-32 of [a-zA-Z0-9](-*[a-zA-Z0-9])*, which a
    trailing line break does not match (Python's "$" alone would let it through)."""
    bucket, _ = base_stack(sess)
    with pytest.raises(TuningError, match="(?s)--job-name .*SageMaker takes 1-32 letters"):
        tune(prepared, "--ranges", "wd", "--max-jobs", "2", "--max-parallel-jobs", "1",
             f"--job-name={name}")  # fmt: skip
    assert objects(sess, bucket) == [] and tuning_jobs(sess) == []


def test_tune_aws_a_taken_job_name_is_not_blamed_on_the_ranges(sess, prepared):
    """``(?i)hyperparameter`` matches the operation's name in every ClientError's text."""
    base_stack(sess)
    flags = ["--ranges", "wd", "--max-jobs", "2", "--max-parallel-jobs", "1"]
    tune(prepared, *flags, "--job-name", "ll-e2e-mine", "--no-wait")
    with pytest.raises(UserError) as refused:
        tune(prepared, *flags, "--job-name", "ll-e2e-mine", "--no-wait")
    message = str(refused.value)
    assert "ResourceInUse" in message and "the channels were uploaded; no job started" in message
    assert "check --ranges" not in message and "pass another --job-name" in message


# ----------------------------------------------------------------------------- the outcome


def aws_config(data_dir, tmp_path) -> AwsTrainConfig:
    record = tmp_path / "latest.json"
    return AwsTrainConfig(
        data_dir, region="us-east-1", poll_s=0, record=record, show_progress=False
    )


def test_tune_aws_records_the_best_jobs_artifact_with_its_featurizer(sess, prepared, tmp_path):
    bucket, _ = base_stack(sess)
    spec = spec_for(prepared, ["learning_rate", "use_bias"], max_jobs=4, max_parallel_jobs=2)
    lines = []
    record = tune_aws(spec, aws_config(prepared, tmp_path), echo=lines.append)
    [job] = tuning_jobs(sess)
    best = sess.client("sagemaker").describe_training_job(TrainingJobName=BEST)
    assert record.training_job_name == BEST
    assert record.tuning_job_name == job["HyperParameterTuningJobName"]
    assert record.model_data_url == best["ModelArtifacts"]["S3ModelArtifacts"]
    assert record.hyperparameters == {"learning_rate": "0.0123", "use_bias": "false"}
    assert record.predictor_type == "binary_classifier" and record.bucket == bucket
    assert record.featurizer_data_url.startswith(f"s3://{bucket}/models/featurizer/sha256/")
    assert record.featurizer_data_url.removeprefix(f"s3://{bucket}/") in objects(sess, bucket)
    assert ModelRecord.load(tmp_path / "latest.json") == record
    assert any(line.startswith(f"best training job {BEST}: ") for line in lines)


FULL = (
    "ResourceLimitExceeded: The account-level service limit 'ml.m5.large for training job "
    "usage' is 4 Instances, with current utilization of 4 Instances and a request delta of 1 "
    "Instances."
)


def test_tune_aws_failure_names_the_reason_and_the_quota_fix(sess, prepared, tmp_path, monkeypatch):
    base_stack(sess)
    create = SageMakerModelBackend.create_hyper_parameter_tuning_job

    def create_then_fail(self, **request):
        arn = create(self, **request)
        job = self.hyper_parameter_tuning_jobs[request["hyper_parameter_tuning_job_name"]]
        job.hyper_parameter_tuning_job_status, job.failure_reason = "Failed", FULL
        job.best_training_job = None
        return arn

    monkeypatch.setattr(
        SageMakerModelBackend, "create_hyper_parameter_tuning_job", create_then_fail
    )
    spec = spec_for(prepared, ["wd"], max_jobs=4, max_parallel_jobs=2)
    with pytest.raises(JobFailedError) as failed:
        tune_aws(spec, aws_config(prepared, tmp_path), echo=lambda line: None)
    message = str(failed.value)
    assert f"Failed: {FULL}" in message
    assert "lower --max-parallel-jobs, or ask for an increase in Service Quotas" in message
    assert TUNING_RAN in message and "nothing was uploaded" not in message
    assert not (tmp_path / "latest.json").exists()


ARN = "arn:aws:sagemaker:us-east-1:123456789012:"
CONFIG = {"Strategy": "Bayesian", "ResourceLimits": {"MaxParallelTrainingJobs": 1}}


def described(status: str, counts: dict, best: tuple | None = None) -> dict:
    """A DescribeHyperParameterTuningJob answer (the Stubber checks it against botocore)."""
    name = "ll-e2e-hpo-261204-120000"
    out = {
        "HyperParameterTuningJobName": name,
        "HyperParameterTuningJobArn": f"{ARN}hyper-parameter-tuning-job/{name}",
        "HyperParameterTuningJobConfig": CONFIG,
        "HyperParameterTuningJobStatus": status,
        "CreationTime": 0,
        "TrainingJobStatusCounters": counts,
        "ObjectiveStatusCounters": {},
    }
    if best:
        metric = {"Type": "Minimize", "MetricName": "validation:objective_loss", "Value": best[1]}
        out["BestTrainingJob"] = {
            "TrainingJobName": best[0],
            "TrainingJobArn": f"{ARN}training-job/{best[0]}",
            "CreationTime": 0,
            "TrainingJobStatus": "Completed",
            "TunedHyperParameters": {"wd": "0.01"},
            "FinalHyperParameterTuningJobObjectiveMetric": metric,
        }
    return out


def test_tuning_progress_shows_the_jobs_counts_and_the_best_so_far(prepared):
    spec = spec_for(prepared, ["wd"], max_jobs=20, max_parallel_jobs=3)
    first = ("ll-e2e-hpo-261204-120000-002-1a2b3c4d", 0.41234567)
    best = ("ll-e2e-hpo-261204-120000-007-0f0e0d0c", 0.3456789)
    answers = [
        described("InProgress", {"InProgress": 3}),
        described("InProgress", {"InProgress": 3}),  # unchanged: not shown again
        described("InProgress", {"Completed": 2, "InProgress": 3, "RetryableError": 1}, first),
        described(
            "Completed",
            {"Completed": 15, "RetryableError": 1, "NonRetryableError": 2, "Stopped": 2},
            best,
        ),
    ]
    sm = boto3.client(
        "sagemaker", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    lines = []
    with Stubber(sm) as stub:
        for answer in answers:
            stub.add_response("describe_hyper_parameter_tuning_job", answer)
        final = wait_for_tuning(StubbedSession(sm), answers[0]["HyperParameterTuningJobName"],
                                0, lines.append, spec)  # fmt: skip
    assert final["HyperParameterTuningJobStatus"] == "Completed"
    progress = [line.strip() for line in lines if line.startswith("  jobs: ")]
    assert progress == [
        "jobs: 0 completed, 3 running, 0 failed, 0 stopped (of 20)",
        "jobs: 2 completed, 3 running, 1 failed, 0 stopped (of 20); best so far "
        f"{first[0]} validation:objective_loss=0.412346",
        "jobs: 15 completed, 0 running, 3 failed, 2 stopped (of 20); best so far "
        f"{best[0]} validation:objective_loss=0.345679",
    ]


# ----------------------------------------------------------------------------- teardown

OURS = {
    "ll-e2e-hpo-261204-120000": {"project": "ll-e2e"},
    "ll-e2e-hpo-261204-140000": {"team": "x"},  # our exact name, no other project's tag
}
THEIRS = {
    "ll-e2e-prod-hpo-261204-120000": {"project": "ll-e2e-prod"},
    "ll-e2e-hpo-261204-130000": {"project": "ll-e2ex"},  # our pattern, their tag
    "ll-e2e-hpo-261204-1200001": {"team": "x"},  # not our pattern, no project tag
    "ll-e2ex-hpo-261204-120000": {"team": "x"},
}
DONE = "ll-e2e-hpo-261203-120000"  # ours, Completed: nothing to stop


def plant_tuning_jobs(sess) -> None:
    """Every job InProgress but DONE."""
    sm = sess.client("sagemaker")
    jobs = {**OURS, **THEIRS, DONE: {"project": "ll-e2e"}}
    for name, tags in jobs.items():
        sm.create_hyper_parameter_tuning_job(
            HyperParameterTuningJobName=name,
            HyperParameterTuningJobConfig=CONFIG,
            TrainingJobDefinition=dict(
                AlgorithmSpecification={"TrainingInputMode": "File"},
                RoleArn="arn:aws:iam::123456789012:role/x",
                OutputDataConfig={"S3OutputPath": "s3://b/models/"},
                StoppingCondition={"MaxRuntimeInSeconds": 60},
            ),
            Tags=[{"Key": k, "Value": v} for k, v in tags.items()],  # untagged: ListTags 500s
        )
        job = backend().hyper_parameter_tuning_jobs[name]
        job.hyper_parameter_tuning_job_status = "Completed" if name == DONE else "InProgress"


@pytest.fixture
def stop_calls(monkeypatch) -> list[str]:
    """StopHyperParameterTuningJob for moto: the job goes Stopping, then Stopped when looked
    at again (tests/aws_async.py); each call recorded."""
    monkeypatch.setattr(audit, "JOB_POLL_S", 0)
    return AsyncSageMaker(monkeypatch).stopped


@pytest.mark.parametrize("path", ["destroy-all", "audit --delete"])
def test_teardown_stops_the_projects_tuning_jobs_only(sess, monkeypatch, stop_calls, path):
    plant_tuning_jobs(sess)
    planted = plant_look_alikes(sess)  # another team's other resources, as test_aws plants them
    found = audit.find_leftovers(sess, "ll-e2e", echo=lambda line: None)
    assert sorted((i.kind, i.name, i.detail) for i in found) == [
        ("tuning-job", name, "InProgress") for name in sorted(OURS)
    ]
    if path == "destroy-all":
        cdk_calls = []
        monkeypatch.setattr(deploy, "cdk", lambda args, echo: cdk_calls.append(args))
        lines = []
        assert deploy.destroy_all(region="us-east-1", echo=lines.append) == []
        assert [args[:3] for args in cdk_calls] == [["destroy", "--all", "--force"]]
        assert {f"    stopped tuning job {name}" for name in OURS} <= set(lines)
    else:
        args = build_parser().parse_args(["audit", "--region", "us-east-1", "--delete"])
        assert args.func(args) == 0
    assert sorted(stop_calls) == sorted(OURS)
    assert_look_alikes_survive(planted, still_there(sess))
    jobs = backend().hyper_parameter_tuning_jobs
    assert {name: job.hyper_parameter_tuning_job_status for name, job in jobs.items()} == {
        **dict.fromkeys(OURS, "Stopped"),  # stopped, and waited for
        **dict.fromkeys(THEIRS, "InProgress"),
        DONE: "Completed",
    }
