"""The endpoint stack for a model with preprocessing: a serial inference pipeline (scikit-learn
featurizer -> Linear Learner -> class decoder), synthesized for real: in-process with
aws_cdk.assertions and cdk-nag, and through the pinned CDK CLI offline, then cfn-lint."""

import functools
import hashlib
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template
from cdk_nag import AwsSolutionsChecks
from test_stacks import checkov_skips, clean_env

from stacks.app_builder import build_app
from stacks.images import linear_learner_image, sklearn_image
from stacks.settings import Settings, SettingsError
from training.aws import featurizer_artifact
from training.aws.featurizer_artifact import DECODE, FEATURIZE, environment
from training.aws.model_record import ModelRecord
from training.aws.naming import Output

ROOT = Path(__file__).parents[1]
MODEL = "s3://team-models/penguins/model.tar.gz"
FEATURIZER = "s3://team-models/penguins/featurizer.tar.gz"
# the accounts of sagemaker-core's tables (never hard-coded in the app: read from them)
SKLEARN_ACCOUNTS = {"us-east-1": "683313688378", "eu-west-1": "141502667606"}
LL_ACCOUNTS = {"us-east-1": "382416733822", "eu-west-1": "438346466558"}
PULL = "ecr:BatchGetImage"


@functools.cache
def synth(**context):
    app = cdk.App(context={"model_record": "/nonexistent/latest.json", **context})
    stacks = build_app(app)
    return app, {name: Template.from_stack(stack).to_json() for name, stack in stacks.items()}


def pipeline(**context):
    return synth(model_data_url=MODEL, featurizer_data_url=FEATURIZER, **context)[1]


def the_model(template: dict) -> dict:
    (model,) = [r for r in template["Resources"].values() if r["Type"] == "AWS::SageMaker::Model"]
    return model["Properties"]


def statements(template: dict) -> list[dict]:
    return [
        s
        for r in template["Resources"].values()
        if r["Type"] == "AWS::IAM::Policy"
        for s in r["Properties"]["PolicyDocument"]["Statement"]
    ]


def arns(statement: dict) -> list[str]:
    """A statement's resources as text (CloudFormation's Join of the partition and the rest)."""
    found = (
        statement["Resource"]
        if isinstance(statement["Resource"], list)
        else [statement["Resource"]]
    )
    return [json.dumps(r) for r in found]


def pulled_repositories(*templates: dict) -> set[str]:
    out = set()
    for template in templates:
        for s in statements(template):
            if PULL in s["Action"]:
                for arn in arns(s):
                    out.add(arn.split(":ecr:", 1)[1].split('"', 1)[0])
    return out


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A real model with its preprocessing: prepare + train --target local on the penguins."""
    out = tmp_path_factory.mktemp("penguins")
    for cmd in (
        ["prepare", "--data", str(ROOT / "training" / "datasets" / "penguins.csv")]
        + ["--label", "sex"]
        + ["--predictor-type", "binary_classifier", "--drop-unlabeled", "--out", str(out / "data")],
        ["train", "--data-dir", str(out / "data"), "--out", str(out / "model")]
        + ["--hyperparameters", "epochs=2"],
    ):
        res = subprocess.run(
            [sys.executable, "-m", "training", "-q", *cmd],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert res.returncode == 0, res.stdout + res.stderr
    assert (out / "model" / "preprocessing.json").is_file()
    return out / "model" / "model.tar.gz"


# ----------------------------------------------------------------------------- the pipeline


@pytest.mark.parametrize("region", sorted(SKLEARN_ACCOUNTS))
def test_pipeline_stack_is_a_serial_network_isolated_model_of_three_containers(region):
    t = pipeline(region=region)["endpoint"]
    model = the_model(t)
    assert "PrimaryContainer" not in model and "ModelName" not in model
    assert model["InferenceExecutionConfig"] == {"Mode": "Serial"}
    assert model["EnableNetworkIsolation"] is True
    featurize, linear_learner, decode = model["Containers"]
    sklearn = sklearn_image(region)
    assert sklearn == (
        f"{SKLEARN_ACCOUNTS[region]}.dkr.ecr.{region}.amazonaws.com/"
        "sagemaker-scikit-learn:1.2-1-cpu-py3"
    )
    assert featurize == {
        "ContainerHostname": "featurize",
        "Image": sklearn,
        "ModelDataUrl": FEATURIZER,
        "Environment": environment(FEATURIZE),
    }
    assert linear_learner == {
        "ContainerHostname": "linear-learner",
        "Image": linear_learner_image(region),
        "ModelDataUrl": MODEL,
    }
    assert linear_learner_image(region).startswith(f"{LL_ACCOUNTS[region]}.dkr.ecr.{region}.")
    assert decode == {
        "ContainerHostname": "decode",
        "Image": sklearn,
        "ModelDataUrl": FEATURIZER,
        "Environment": environment(DECODE),
    }
    assert environment(FEATURIZE)["SAGEMAKER_SUBMIT_DIRECTORY"] == "/opt/ml/model/code"
    outputs = t["Outputs"]
    assert outputs[Output.FEATURIZER_DATA_URL]["Value"] == FEATURIZER
    assert outputs[Output.MODEL_DATA_URL]["Value"] == MODEL


@pytest.mark.parametrize("region", sorted(SKLEARN_ACCOUNTS))
def test_pipeline_stack_pulls_exactly_its_two_repositories_and_reads_exactly_its_artifacts(
    region,
):
    templates = pipeline(region=region)
    assert pulled_repositories(templates["base"], templates["endpoint"]) == {
        f"{region}:{SKLEARN_ACCOUNTS[region]}:repository/sagemaker-scikit-learn",
        f"{region}:{LL_ACCOUNTS[region]}:repository/linear-learner",
    }
    (read,) = [s for s in statements(templates["endpoint"]) if s["Action"] == "s3:GetObject"]
    assert [a.split(":s3:::", 1)[1].split('"', 1)[0] for a in arns(read)] == [
        "team-models/penguins/model.tar.gz",
        "team-models/penguins/featurizer.tar.gz",
    ]
    # the role may read them before SageMaker is asked to create the Model
    (model,) = [
        r
        for r in templates["endpoint"]["Resources"].values()
        if r["Type"] == "AWS::SageMaker::Model"
    ]
    assert [d for d in model["DependsOn"] if d.startswith("ModelAccess")]


def test_a_regressor_pipeline_has_no_decoder_and_an_unknown_predictor_keeps_it():
    regressor = the_model(pipeline(predictor_type="regressor")["endpoint"])["Containers"]
    assert [c["ContainerHostname"] for c in regressor] == ["featurize", "linear-learner"]
    for predictor in ({}, {"predictor_type": "multiclass_classifier"}):
        containers = the_model(pipeline(**predictor)["endpoint"])["Containers"]
        assert [c["ContainerHostname"] for c in containers] == [
            "featurize",
            "linear-learner",
            "decode",
        ]


def test_a_model_without_preprocessing_is_served_as_before():
    """No featurizer: one PrimaryContainer, no FeaturizerDataUrl output, no scikit-learn pull
    in the endpoint stack (test_stacks.py holds the rest of that template)."""
    _, templates = synth(model_data_url=MODEL)
    model = the_model(templates["endpoint"])
    assert "Containers" not in model and "InferenceExecutionConfig" not in model
    assert model["PrimaryContainer"] == {
        "Image": linear_learner_image("us-east-1"),
        "ModelDataUrl": MODEL,
        "Mode": "SingleModel",
    }
    assert Output.FEATURIZER_DATA_URL not in templates["endpoint"]["Outputs"]
    assert not pulled_repositories(templates["endpoint"])


def test_the_pipeline_keeps_data_capture_of_the_raw_rows():
    t = pipeline(data_capture_percent=10)["endpoint"]
    (config,) = [
        r["Properties"]
        for r in t["Resources"].values()
        if r["Type"] == "AWS::SageMaker::EndpointConfig"
    ]
    capture = config["DataCaptureConfig"]
    assert capture["InitialSamplingPercentage"] == 10
    assert capture["CaptureContentTypeHeader"] == {
        "CsvContentTypes": ["text/csv"],
        "JsonContentTypes": ["application/json", "application/jsonlines"],
    }


def test_a_serverless_pipeline_is_refused_at_synth_with_both_settings_and_the_fix(tmp_path):
    with pytest.raises(SettingsError) as refused:
        pipeline(endpoint_mode="serverless")
    message = str(refused.value)
    for piece in (
        "endpoint_mode=serverless",
        "context model_data_url",
        "inference pipelines",
        "network isolation",
        "-c endpoint_mode=realtime",
    ):
        assert piece in message, piece
    # the same from the model record
    record = tmp_path / "latest.json"
    ModelRecord(MODEL, region="us-east-1", featurizer_data_url=FEATURIZER).write(record)
    settings = Settings.from_context(
        {"model_record": str(record), "endpoint_mode": "serverless"}.get
    )
    with pytest.raises(SettingsError, match=f"cannot serve the model of {record}"):
        settings.model_artifact()
    # without preprocessing, serverless serves the model alone as before
    assert synth(model_data_url=MODEL, endpoint_mode="serverless")[1]["endpoint"]


def test_the_model_record_names_the_featurizer_and_the_predictor_type(tmp_path):
    record = tmp_path / "latest.json"
    ModelRecord(
        MODEL, region="eu-west-1", featurizer_data_url=FEATURIZER, predictor_type="regressor"
    ).write(record)
    assert ModelRecord.load(record).featurizer_data_url == FEATURIZER
    served = Settings.from_context(
        {"model_record": str(record), "region": "eu-west-1"}.get
    ).model_artifact()
    assert (served.model_data_url, served.featurizer_data_url) == (MODEL, FEATURIZER)
    assert served.predictor_type == "regressor" and served.raw_rows
    containers = the_model(synth(model_record=str(record), region="eu-west-1")[1]["endpoint"])
    assert [c["ContainerHostname"] for c in containers["Containers"]] == [
        "featurize",
        "linear-learner",
    ]


@pytest.mark.parametrize(
    "context, message",
    [
        ({"featurizer_data_url": FEATURIZER}, "featurizer_data_url goes with model_data_url"),
        (
            {"model_data_url": MODEL, "featurizer_data_url": "team-models/f.tar.gz"},
            "featurizer_data_url='team-models/f.tar.gz' must be an s3://bucket/key URL",
        ),
        (
            {"model_data_url": MODEL, "featurizer_data_url": FEATURIZER, "predictor_type": "x"},
            "predictor_type='x' must be one of binary_classifier, multiclass_classifier",
        ),
        (
            {"model_data_url": MODEL, "predictor_type": "regressor"},
            "predictor_type only decides whether a pipeline given by featurizer_data_url",
        ),
        (
            {"model_data_url": MODEL, "model_path": "m.tar.gz"},
            "model_path and model_data_url both name the model to serve",
        ),
        ({"preprocessing_path": "p.json"}, "preprocessing_path goes with model_path"),
    ],
)
def test_model_source_keys_that_contradict_each_other_fail_synth(context, message):
    with pytest.raises(SettingsError, match=message):
        Settings.from_context(context.get)


def test_cdk_nag_passes_on_the_pipeline(trained):
    for context in (
        {"model_data_url": MODEL, "featurizer_data_url": FEATURIZER},
        {"model_path": str(trained), "data_capture_percent": 5},
        {
            "model_data_url": MODEL,
            "featurizer_data_url": FEATURIZER,
            "predictor_type": "regressor",
            "region": "eu-west-1",
            "data_capture_percent": 5,
        },
    ):
        app = synth(**context)[0]
        report = AwsSolutionsChecks().validate_scope(app)
        assert report.success, [v.rule_name for v in report.violations]


# ----------------------------------------------------------------------------- local files


def assets_of(app: cdk.App) -> dict[str, dict]:
    """The endpoint stack's file assets (the asset manifest CDK writes beside the template),
    by asset hash: the staged file and where `cdk deploy` uploads it."""
    assembly = app.synth()
    stack = assembly.get_stack_by_name("LlE2eEndpoint")
    manifest = json.loads(
        (Path(assembly.directory) / f"{stack.stack_name}.assets.json").read_text()
    )
    return {
        h: {"file": Path(assembly.directory) / a["source"]["path"], **a["destinations"]}
        for h, a in manifest["files"].items()
        if a["source"].get("packaging", "file") == "file" and "template" not in a["source"]["path"]
    }


def test_a_local_model_and_its_preprocessing_are_synthesized_as_assets(trained, tmp_path):
    """-c model_path (what `python -m training run` synthesizes): model.tar.gz and a
    featurizer.tar.gz built at synth from the preprocessing.json beside it, both uploaded by
    `cdk deploy` as assets; nothing read from AWS."""
    app = cdk.App(context={"model_record": "/nonexistent/latest.json", "model_path": str(trained)})
    stacks = build_app(app)
    t = Template.from_stack(stacks["endpoint"]).to_json()
    assets = assets_of(app)
    preprocessing = trained.parent / "preprocessing.json"
    featurizer_bytes = featurizer_artifact.to_bytes(preprocessing)
    staged = {a["file"].read_bytes(): h for h, a in assets.items()}
    assert set(staged) == {trained.read_bytes(), featurizer_bytes}
    model_hash, featurizer_hash = staged[trained.read_bytes()], staged[featurizer_bytes]
    containers = the_model(t)["Containers"]
    urls = [json.dumps(c["ModelDataUrl"]) for c in containers]
    assert [u.count(featurizer_hash) for u in urls] == [1, 0, 1]
    assert [u.count(model_hash) for u in urls] == [0, 1, 0]
    assert all("cdk-hnb659fds-assets-${AWS::AccountId}-us-east-1" in u for u in urls)
    assert [c["ContainerHostname"] for c in containers] == ["featurize", "linear-learner", "decode"]
    # the role reads exactly the two asset objects
    (read,) = [s for s in statements(t) if s["Action"] == "s3:GetObject"]
    objects = [a.rsplit("/", 1)[1] for a in arns(read)]
    assert sorted(o.split(".", 1)[0] for o in objects) == sorted([model_hash, featurizer_hash])
    # the same files give the same assets: a rerun does not change the stack
    again = cdk.App(
        context={"model_record": "/nonexistent/latest.json", "model_path": str(trained)}
    )
    build_app(again)
    assert set(assets_of(again)) == set(assets)


def test_a_local_model_without_preprocessing_is_one_container_on_its_asset(trained, tmp_path):
    alone = tmp_path / "model.tar.gz"
    shutil.copyfile(trained, alone)
    app, templates = synth(model_path=str(alone))
    model = the_model(templates["endpoint"])
    assert "Containers" not in model
    url = json.dumps(model["PrimaryContainer"]["ModelDataUrl"])
    (asset,) = assets_of(app)
    assert asset in url and Output.FEATURIZER_DATA_URL not in templates["endpoint"]["Outputs"]


def test_a_local_model_is_checked_at_synth(trained, tmp_path):
    with pytest.raises(SettingsError, match="no such file"):
        Settings.from_context({"model_path": str(tmp_path / "none.tar.gz")}.get).model_artifact()
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"not a model")
    with pytest.raises(SettingsError, match="model_path="):
        Settings.from_context({"model_path": str(junk)}.get).model_artifact()
    # preprocessing fitted for other data: its width is not the model's
    other = json.loads((trained.parent / "preprocessing.json").read_text())
    other["columns"] = [c for c in other["columns"] if c["name"] != "bill_length_mm"]
    other.pop("features", None)
    wrong = tmp_path / "other.json"
    wrong.write_text(json.dumps(other))
    with pytest.raises(SettingsError, match="the preprocessing makes 10 features"):
        Settings.from_context(
            {"model_path": str(trained), "preprocessing_path": str(wrong)}.get
        ).model_artifact()
    served = Settings.from_context({"model_path": str(trained)}.get).model_artifact()
    assert served.preprocessing_path == trained.parent / "preprocessing.json"
    assert served.predictor_type == "binary_classifier" and served.model_data_url is None


# ----------------------------------------------------------------------------- the CLI


@pytest.fixture(scope="module")
def cli_synth(trained, tmp_path_factory):
    """`npx cdk synth` through the pinned CLI, offline and without credentials (a dead proxy:
    any AWS call would fail): the local model as run.py synthesizes it, and a model in S3 by
    URL in another region, a regressor."""
    out = tmp_path_factory.mktemp("cdk.out")
    seconds = {}
    for variant, ctx in (
        ("assets", [f"model_path={trained}"]),
        (
            "urls",
            [
                f"model_data_url={MODEL}",
                f"featurizer_data_url={FEATURIZER}",
                "predictor_type=regressor",
                "region=eu-west-1",
            ],
        ),
    ):
        started = time.perf_counter()
        res = subprocess.run(
            ["npx", "--no-install", "cdk", "synth", "--no-notices", "-q", "-o", str(out / variant)]
            + ["-c", "model_record=/nonexistent/latest.json"]
            + [a for c in ctx for a in ("-c", c)],
            cwd=ROOT,
            env=clean_env(),
            capture_output=True,
            text=True,
            timeout=300,
        )
        seconds[variant] = time.perf_counter() - started
        assert res.returncode == 0, res.stderr[-3000:]
    print(f"cdk synth seconds: {seconds}")
    return out


def test_cli_synth_of_a_local_model_writes_the_pipeline_and_both_assets(cli_synth, trained):
    folder = cli_synth / "assets"
    template = json.loads((folder / "LlE2eEndpoint.template.json").read_text())
    assert [c["ContainerHostname"] for c in the_model(template)["Containers"]] == [
        "featurize",
        "linear-learner",
        "decode",
    ]
    manifest = json.loads((folder / "LlE2eEndpoint.assets.json").read_text())
    staged = {
        (folder / a["source"]["path"]).read_bytes()
        for a in manifest["files"].values()
        if not a["source"]["path"].endswith(".template.json")
    }
    featurizer = featurizer_artifact.to_bytes(trained.parent / "preprocessing.json")
    assert staged == {trained.read_bytes(), featurizer}
    digest = hashlib.sha256(featurizer).hexdigest()
    assert (folder / ".featurizer" / digest / "featurizer.tar.gz").read_bytes() == featurizer


def test_cli_synth_by_url_in_another_region(cli_synth):
    template = json.loads((cli_synth / "urls" / "LlE2eEndpoint.template.json").read_text())
    containers = the_model(template)["Containers"]
    assert [c["Image"] for c in containers] == [
        sklearn_image("eu-west-1"),
        linear_learner_image("eu-west-1"),
    ]


def test_cfn_lint_and_checkov_pass_on_the_pipeline_templates(cli_synth):
    templates = sorted(str(p) for p in cli_synth.glob("*/*.template.json"))
    assert len(templates) == 4
    cfn_lint = Path(sys.executable).parent / "cfn-lint"
    res = subprocess.run(
        [str(cfn_lint), *templates], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert res.returncode == 0, res.stdout + res.stderr
    checkov = ROOT / ".venv-checkov" / "bin" / "checkov"
    assert checkov_skips()
    res = subprocess.run(
        [str(checkov), "--config-file", ".checkov.yaml", "-d", str(cli_synth), "-o", "json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    reports = json.loads(res.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    failed = [
        (c["check_id"], c["resource"], c["file_path"])
        for r in reports
        for c in r["results"]["failed_checks"]
    ]
    assert failed == [] and res.returncode == 0, failed or res.stderr[-2000:]


def test_the_moto_rehearsal_adds_only_an_empty_primary_container_to_the_pipeline():
    """moto's CloudFormation reads PrimaryContainer unconditionally: tests/rehearsal_app.py
    gives the pipeline Model an empty one for moto alone, and changes nothing else."""
    from rehearsal_app import for_moto

    template = pipeline()["endpoint"]
    rewritten = json.loads(json.dumps(template))
    assert for_moto(rewritten) == []
    model = next(
        k for k, r in template["Resources"].items() if r["Type"] == "AWS::SageMaker::Model"
    )
    assert rewritten["Resources"][model]["Properties"] == {
        **template["Resources"][model]["Properties"],
        "PrimaryContainer": {},
    }
    for key, resource in rewritten["Resources"].items():
        if key != model:
            assert resource == template["Resources"][key], key


def test_image_lookups_are_remembered_by_the_sdk_table_and_the_arguments(tmp_path, monkeypatch):
    """sagemaker-core takes seconds to import and every synth needs two lookups: the answer
    is kept under the installed table's bytes, the SDK version and the arguments."""
    from sagemaker.core import image_uris

    from training.aws import images

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    args = {"framework": "sklearn", "region": "eu-west-1", "version": "1.2-1"}
    assert images._retrieve(**args) == image_uris.retrieve(**args)
    kept = images._cache_file(args)
    assert kept.parent == tmp_path / "ll-e2e" / "image-uris" and kept.is_file()
    kept.write_text("remembered")  # the next lookup reads it, sagemaker-core not asked
    assert images._retrieve(**args) == "remembered"
    assert images._cache_file({**args, "region": "us-east-1"}) != kept
    with pytest.raises(ValueError, match="Unsupported region"):
        images._retrieve(**{**args, "region": "xx-west-9"})
    assert len(list(kept.parent.iterdir())) == 1  # a failed lookup is not remembered
