"""Stack options a deploy was given once stay given: the next deploy without ``-c`` passes them
again (checked through a real ``npx cdk synth`` of the context the deploy builds), a change is
printed first, and a mode change is refused unless confirmed, before anything is uploaded.
moto stands in for CloudFormation and SageMaker (the deployed endpoint's config)."""

import json
import os
import subprocess
import tarfile
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from training.aws import deploy_options, naming
from training.aws.deploy import _context
from training.aws.deploy_options import DeployOptions
from training.aws.model_record import ModelRecord
from training.errors import ValidationError
from training.run import CDK_VALIDATION_ENV

ROOT = Path(__file__).resolve().parents[1]
REAL_MODEL = ROOT.parent / "shared" / "fixtures" / "ll-artifacts" / "attrition-binary-teelenzi"
BUCKET = "ll-e2e-bucket-123"


@pytest.fixture
def sess():
    with mock_aws():
        yield boto3.Session(region_name="us-east-1")


def stack(sess, name: str, outputs: dict) -> None:
    template = {
        "Resources": {"T": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {k: {"Value": v} for k, v in outputs.items()},
    }
    sess.client("cloudformation").create_stack(StackName=name, TemplateBody=json.dumps(template))


def endpoint(sess, mode: str, memory_mb: int = 2048) -> None:
    """An endpoint stack whose endpoint config is ``mode``, as SageMaker describes it."""
    sm = sess.client("sagemaker")
    sm.create_model(
        ModelName="m",
        ExecutionRoleArn="arn:aws:iam::123456789012:role/r",
        PrimaryContainer={"Image": "382416733822.dkr.ecr.us-east-1.amazonaws.com/linear-learner:1"},
    )
    variant = {"VariantName": "AllTraffic", "ModelName": "m"}
    if mode == "serverless":
        variant["ServerlessConfig"] = {"MemorySizeInMB": memory_mb, "MaxConcurrency": 5}
    else:
        variant.update(InstanceType="ml.m5.large", InitialInstanceCount=1)
    sm.create_endpoint_config(EndpointConfigName="cfg-1", ProductionVariants=[variant])
    name = naming.endpoint_name("ll-e2e", mode)  # as the endpoint stack names it
    stack(sess, "LlE2eEndpoint", {"EndpointName": name, "EndpointConfigName": "cfg-1"})


def deployed(sess, mode: str | None) -> None:
    """The base stack (a bucket) and, unless ``mode`` is None, an endpoint of that mode."""
    sess.client("s3").create_bucket(Bucket=BUCKET)
    stack(sess, "LlE2eBase", {"BucketName": BUCKET})
    if mode is not None:
        endpoint(sess, mode)


def model_tar(tmp_path) -> Path:
    """A real SageMaker Linear Learner artifact, packed as the job writes it."""
    path = tmp_path / "model.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        tar.add(REAL_MODEL / "model_algo-1", arcname="model_algo-1")
    return path


def run_deploy(tmp_path, capsys, *extra) -> tuple[int, str]:
    from training.cli import main

    args = ["deploy", "--model", str(model_tar(tmp_path)), "--record", str(tmp_path / "r.json")]
    rc = main([*args, *extra])
    captured = capsys.readouterr()
    return rc, captured.out + captured.err


needs_model = pytest.mark.skipif(not REAL_MODEL.exists(), reason="../shared/fixtures not laid out")


@needs_model
def test_a_mode_change_is_refused_before_anything_is_uploaded_or_recorded(sess, tmp_path, capsys):
    deployed(sess, "serverless")
    kept = deploy_options.options_path(tmp_path / "r.json", "ll-e2e")
    DeployOptions.parse(["endpoint_mode=serverless"]).write(kept)
    before = kept.read_bytes()
    rc, out = run_deploy(tmp_path, capsys, "-c", "endpoint_mode=realtime")
    assert rc == 2, out
    assert "this deploy changes endpoint_mode: serverless -> realtime" in out
    assert "changes endpoint ll-e2e-endpoint-serverless from serverless" in out  # the running one
    assert "-c endpoint_mode=realtime" in out and "new name" in out
    assert "--replace-endpoint" in out and "-c endpoint_mode=serverless to keep it" in out
    assert sess.client("s3").list_objects_v2(Bucket=BUCKET)["KeyCount"] == 0
    assert not (tmp_path / "r.json").exists()
    assert kept.read_bytes() == before


@needs_model
def test_a_serverless_endpoint_is_not_made_realtime_by_a_deploy_without_options(
    sess, tmp_path, capsys
):
    """Deployed serverless by hand (npx cdk deploy -c …), nothing kept: cdk.json's default
    (realtime) would replace it; the running endpoint's own config says what it is."""
    deployed(sess, "serverless")
    rc, out = run_deploy(tmp_path, capsys)
    assert rc == 2, out
    assert "endpoint_mode: serverless -> realtime" in out and "--replace-endpoint" in out
    assert sess.client("s3").list_objects_v2(Bucket=BUCKET)["KeyCount"] == 0


@needs_model
@pytest.mark.parametrize(
    ("given", "named"),
    [
        ("endpoint_mode=serverles", "endpoint_mode='serverles' must be one of"),
        ("data_capture_percent=lots", "data_capture_percent='lots' must be an integer"),
        ("model_data_url=s3://b/m.tar.gz", "-c model_data_url: is decided by the deploy"),
        ("endpoint_typo=1", "-c endpoint_typo: is not a stack option"),
        ("endpoint_mode", "-c endpoint_mode: not key=value"),
    ],
)
def test_a_bad_option_is_refused_naming_it_before_anything_happens(
    sess, tmp_path, capsys, given, named
):
    deployed(sess, None)
    rc, out = run_deploy(tmp_path, capsys, "-c", given)
    assert rc == 2 and named in out, out
    assert sess.client("s3").list_objects_v2(Bucket=BUCKET)["KeyCount"] == 0
    assert not deploy_options.options_path(tmp_path / "r.json", "ll-e2e").exists()


def test_a_confirmed_mode_change_goes_ahead_and_says_so(sess, tmp_path):
    deployed(sess, "realtime")
    lines = []
    plan = deploy_options.plan(
        sess,
        "ll-e2e",
        tmp_path / "r.json",
        DeployOptions.parse(["endpoint_mode=serverless"]),
        True,
        lines.append,
    )
    assert [str(c) for c in plan.changes] == ["endpoint_mode: realtime -> serverless"]
    assert "    this deploy changes endpoint_mode: realtime -> serverless" in lines


def test_options_in_cdk_args_count_as_given_and_win():
    got = deploy_options.given(
        ["data_capture_percent=10", "alarms=false"],
        "--app 'python x.py' -c data_capture_percent=30 --context region=eu-west-1",
    )
    assert got.values == (("alarms", "false"), ("data_capture_percent", "30"))


def cdk_synth(context: list[str], out: Path) -> subprocess.CompletedProcess:
    """`npx cdk synth` through the pinned CLI with ``context`` (cdk.json read as the CLI reads
    it), in the project folder, as a user or a deploy runs it; without CDK's own template
    validation, which tests/test_stacks.py runs on every settings variant (5 s a synth)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "CDK_"))}
    quiet = {"HTTPS_PROXY": "http://127.0.0.1:9", "CDK_DISABLE_CLI_TELEMETRY": "1"}
    return subprocess.run(
        ["npx", "--no-install", "cdk", "synth", "--no-notices", "-q", "-o", str(out), *context],
        cwd=ROOT,
        env={**env, **quiet, CDK_VALIDATION_ENV: "false"},
        capture_output=True,
        text=True,
        timeout=300,
    )


def synth_endpoint(context: list[str], out: Path) -> dict:
    """The endpoint stack's template from a real ``cdk synth`` of ``context``."""
    res = cdk_synth(context, out)
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads((out / "LlE2eEndpoint.template.json").read_text())


def serverless_configs(template: dict) -> list:
    """Each endpoint config's variants' ServerlessConfig (None: a real-time variant)."""
    return [
        v.get("ServerlessConfig")
        for r in template["Resources"].values()
        if r["Type"] == "AWS::SageMaker::EndpointConfig"
        for v in r["Properties"]["ProductionVariants"]
    ]


def test_a_bare_cdk_synth_builds_what_the_deploys_kept(tmp_path):
    """`npx cdk deploy` typed by hand after `deploy -c endpoint_mode=serverless`: the app reads
    the kept options (cdk.json's realtime would replace the serverless endpoint); a value given
    with -c still wins for that run, and both are said."""
    record = tmp_path / "latest.json"
    ModelRecord(f"s3://{BUCKET}/models/model.tar.gz", region="us-east-1").write(record)
    kept = deploy_options.options_path(record, "ll-e2e")
    DeployOptions.parse(["endpoint_mode=serverless", "serverless_memory_mb=4096"]).write(kept)
    res = cdk_synth(
        ["-c", f"model_record={record}", "-c", "serverless_memory_mb=3072"], tmp_path / "o"
    )
    assert res.returncode == 0, res.stderr[-3000:]
    template = json.loads((tmp_path / "o" / "LlE2eEndpoint.template.json").read_text())
    assert serverless_configs(template) == [{"MaxConcurrency": 5, "MemorySizeInMB": 3072}]
    notes = [line for line in res.stderr.splitlines() if line.startswith("note: ")]
    assert notes == [
        "note: -c serverless_memory_mb=3072 overrides the kept serverless_memory_mb=4096 for "
        "this run only, unchecked; `python -m training deploy -c serverless_memory_mb=3072` "
        "checks and keeps it",
        f"note: stack options kept by deploy ({kept}): endpoint_mode=serverless (cdk.json: "
        "realtime); change one with `python -m training deploy -c key=value`",
    ]


def test_our_commands_synthesize_their_own_options_whatever_is_kept(sess, tmp_path, monkeypatch):
    """deploy (its context holds every option), destroy-all and run's synth pass
    ``-c kept_options=given``: a kept file, even one this version cannot read, does not change
    or stop them; a bare synth refuses that file, naming it and the key."""
    from training.aws import deploy

    record = tmp_path / "latest.json"
    ModelRecord(f"s3://{BUCKET}/models/model.tar.gz", region="us-east-1").write(record)
    kept = deploy_options.options_path(record, "ll-e2e")
    kept.write_text(json.dumps({"endpoint_mode": "serverless", "endpoint_flavour": "mint"}))
    context = _context("ll-e2e", "us-east-1", record, DeployOptions())
    assert serverless_configs(synth_endpoint(context, tmp_path / "o")) == [None]  # cdk.json's

    res = cdk_synth(["-c", f"model_record={record}"], tmp_path / "bare")
    assert res.returncode == 1
    assert f"{kept}: keeps endpoint_flavour=mint, which is not a stack option" in res.stderr
    assert "Traceback" not in res.stderr
    with pytest.raises(ValidationError, match="keeps endpoint_flavour=mint, which is not"):
        deploy_options.plan(sess, "ll-e2e", record, DeployOptions(), False, print)

    calls = []
    monkeypatch.setattr(deploy, "cdk", lambda args, echo: calls.append(args))
    deploy.destroy_all(region="us-east-1", echo=lambda line: None)
    assert calls[0][:3] == ["destroy", "--all", "--force"]
    assert " ".join(deploy_options.CALLER_GIVES_ARGS) in " ".join(calls[0])


def test_an_option_given_once_is_synthesized_by_the_next_deploy_without_it(sess, tmp_path):
    """First deploy: -c endpoint_mode=serverless -c serverless_memory_mb=4096, kept once its
    cdk deploy succeeded. Second deploy, no -c: the same endpoint, not cdk.json's realtime."""
    deployed(sess, None)
    record = tmp_path / "latest.json"
    ModelRecord(f"s3://{BUCKET}/models/model.tar.gz", region="us-east-1").write(record)
    given = DeployOptions.parse(["endpoint_mode=serverless", "serverless_memory_mb=4096"])
    first = deploy_options.plan(sess, "ll-e2e", record, given, False, print)
    first.keep()  # what deploy_endpoint does once `cdk deploy` returned
    endpoint(sess, "serverless", 4096)  # what that deploy left running
    lines = []
    second = deploy_options.plan(sess, "ll-e2e", record, DeployOptions(), False, lines.append)
    assert second.changes == ()  # nothing changes: no confirmation asked, nothing reverted
    context = _context("ll-e2e", "us-east-1", record, second.options)
    template = synth_endpoint(context, tmp_path / "cdk.out")
    configs = [
        r["Properties"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::SageMaker::EndpointConfig"
    ]
    assert [v["ServerlessConfig"] for v in configs[0]["ProductionVariants"]] == [
        {"MaxConcurrency": 5, "MemorySizeInMB": 4096}
    ]
    assert "-c endpoint_mode=serverless -c serverless_memory_mb=4096" in lines[0]


def test_kept_options_that_are_not_options_are_refused_naming_the_file(tmp_path):
    path = tmp_path / "deploy-options-ll-e2e.json"
    path.write_text("[1, 2]")
    with pytest.raises(ValidationError, match="deploy-options-ll-e2e.json: not deploy options"):
        DeployOptions.load(path)


def test_a_model_with_preprocessing_under_a_kept_serverless_mode_is_refused_before_upload(
    sess, tmp_path, capsys
):
    """Kept serverless + a model that takes raw rows (a serial pipeline, which serverless
    endpoints do not run): the stacks' own refusal, raised before the upload and the record,
    not at synth after both."""
    from training.data.prepare import PrepareConfig, prepare
    from training.local.trainer import train_local

    deployed(sess, None)
    DeployOptions.parse(["endpoint_mode=serverless"]).write(
        deploy_options.options_path(tmp_path / "r.json", "ll-e2e")
    )
    prepare(
        PrepareConfig(
            ROOT / "training" / "datasets" / "penguins.csv",
            "sex",
            "binary_classifier",
            tmp_path / "data",
            drop_unlabeled=True,
            show_progress=False,
        )
    )
    train_local(
        tmp_path / "data", tmp_path / "m", {"epochs": "1"}, show_progress=False, echo=lambda s: 0
    )
    from training.cli import main

    record = tmp_path / "r.json"
    rc = main(["deploy", "--model", str(tmp_path / "m" / "model.tar.gz"), "--record", str(record)])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "endpoint_mode=serverless cannot serve the model" in err and "preprocessing" in err
    assert "use -c endpoint_mode=realtime" in err
    assert sess.client("s3").list_objects_v2(Bucket=BUCKET)["KeyCount"] == 0
    assert not record.exists()


def test_a_kept_value_the_stacks_refuse_stops_a_bare_synth_naming_the_file(tmp_path):
    """A kept endpoint_mode=bogus (hand-edited): the app's error named the key alone, as if
    cdk.json or -c held it; it names the kept file and the command that checks a value."""
    record = tmp_path / "latest.json"
    kept = deploy_options.options_path(record, "ll-e2e")
    kept.write_text('{"endpoint_mode": "bogus"}')
    res = cdk_synth(["-c", f"model_record={record}"], tmp_path / "o")
    assert res.returncode != 0
    assert (
        f"- {kept}: keeps a value the stacks refuse: endpoint_mode='bogus' must be one of "
        "realtime, serverless\n    fix: change it with `python -m training deploy -c "
        "key=value` (which checks it first), or fix it in the file"
    ) in res.stderr
    assert "Traceback" not in res.stderr


def test_a_kept_file_that_is_a_dangling_link_is_refused_not_taken_for_none(tmp_path):
    """A link to a file that is gone read as "no options kept", so a bare deploy quietly
    reverted what it kept: refused, naming it."""
    path = tmp_path / "deploy-options-ll-e2e.json"
    path.symlink_to(tmp_path / "gone.json")
    with pytest.raises(ValidationError, match="deploy-options-ll-e2e.json: not deploy options"):
        DeployOptions.load(path)


def test_a_project_name_too_long_for_a_file_name_gets_the_settings_error_not_a_traceback(
    tmp_path,
):
    """-c project=<300 letters> made the app look for deploy-options-<300 letters>.json, which
    the OS refuses (file name too long): a Python traceback. The project's own rule is said."""
    record = tmp_path / "latest.json"
    res = cdk_synth(["-c", f"model_record={record}", "-c", "project=" + "a" * 300], tmp_path / "o")
    assert res.returncode != 0 and "Traceback" not in res.stderr
    assert f"project='{'a' * 300}': use 3-32 lower-case letters" in res.stderr
