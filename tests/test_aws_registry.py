"""The model registry on SageMaker, against moto: ``register --target aws`` stores the endpoint's
pipeline, the metrics and the hashes (and sends no tags), approve / reject / registry keep the
metadata, the refusals say why; ``package_request`` is what botocore accepts; the base stack
owns the group and the cleanup handler empties it (and only it) before CloudFormation deletes it.

moto implements no DeleteModelPackage and lists nothing (no error) for a group that does not
exist: the tests patch moto's stand-in for AWS (never this project's code) where they need more.
"""

import fnmatch
import hashlib
import json
import re
import sys
import time
import types
from pathlib import Path

import boto3
import botocore.session
import pytest
from botocore.validate import ParamValidator
from moto import mock_aws
from moto.core.exceptions import JsonRESTError
from moto.core.responses import EmptyResult
from moto.sagemaker.exceptions import ValidationError as MotoValidationError
from moto.sagemaker.responses import SageMakerResponse
from test_aws import KEY, ROOT, deploy_base

from stacks import registry_cleanup
from training.aws import featurizer_artifact
from training.aws.featurizer_artifact import DECODE, FEATURIZE, environment
from training.aws.images import linear_learner_image, sklearn_image
from training.aws.naming import Prefix
from training.aws.registry import AwsRegistry, package_request
from training.cli import main
from training.core.registry import (
    APPROVED,
    LISTED_METRICS,
    MAX_APPROVAL_DESCRIPTION,
    PENDING,
    REJECTED,
)
from training.errors import ArtifactError, RegistryError

GROUP = "ll-e2e-models"
RECORDIO = "application/x-recordio-protobuf"
RAW = ["text/csv", "application/json", "application/jsonlines"]
LL_ANSWERS = ["application/json", "application/jsonlines", RECORDIO]
AWS = ["--target", "aws"]
SAGEMAKER = botocore.session.get_session().get_service_model("sagemaker")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Penguins' species (multiclass, behind its preprocessing), prepared and trained once."""
    from training.data.prepare import PrepareConfig, prepare
    from training.local.trainer import train_local

    root = tmp_path_factory.mktemp("aws-registry")
    data = ROOT / "training" / "datasets" / "penguins.csv"
    prepare(PrepareConfig(data, "species", "multiclass_classifier", root / "data",
                          show_progress=False))  # fmt: skip
    train_local(root / "data", root / "model", {"epochs": "3"}, show_progress=False,
                echo=lambda _: 0)  # fmt: skip
    return root


@pytest.fixture
def sess():
    with mock_aws():
        yield boto3.Session(region_name="us-east-1")


@pytest.fixture
def sent(monkeypatch) -> list[dict]:
    """Every CreateModelPackage request as it reached moto (the JSON on the wire)."""
    calls, create = [], SageMakerResponse.create_model_package
    record = lambda self: calls.append(json.loads(self.body)) or create(self)  # noqa: E731
    monkeypatch.setattr(SageMakerResponse, "create_model_package", record)
    return calls


@pytest.fixture
def deleted(monkeypatch) -> list[str]:
    """DeleteModelPackage for moto: the version is gone at once; each call recorded."""
    calls = []

    def delete_model_package(self):
        calls.append(self._get_param("ModelPackageName"))
        names = self.sagemaker_backend.model_package_name_mapping
        arn = names.get(calls[-1], calls[-1])
        if self.sagemaker_backend.model_packages.pop(arn, None) is None:
            raise MotoValidationError(f"Model package {calls[-1]} not found")
        for name in [k for k, v in names.items() if v == arn]:
            del names[name]
        return EmptyResult()

    monkeypatch.setattr(SageMakerResponse, "delete_model_package", delete_model_package,
                        raising=False)  # fmt: skip
    return calls


@pytest.fixture
def group_must_exist(monkeypatch):
    """ListModelPackages refusing a group that does not exist, in the words moto's
    DescribeModelPackageGroup uses (moto's own ListModelPackages answers an empty list)."""
    listing = SageMakerResponse.list_model_packages

    def strict(self):
        group = self._get_param("ModelPackageGroupName")
        if group and group not in self.sagemaker_backend.model_package_groups:
            raise MotoValidationError(
                f"ModelPackageGroup arn:aws:sagemaker:us-east-1:123456789012:"
                f"model-package-group/{group} does not exist."
            )
        return listing(self)

    monkeypatch.setattr(SageMakerResponse, "list_model_packages", strict)


def base_stack(sess) -> str:
    """What the base stack provides: its outputs, and the model package group it owns."""
    bucket, role = deploy_base(sess)
    values = {"BucketName": bucket, "RoleArn": role, "KeyArn": KEY, "ModelPackageGroupName": GROUP}
    outputs = {key: {"Value": value} for key, value in values.items()}
    template = {"Resources": {"T": {"Type": "AWS::SNS::Topic"}}, "Outputs": outputs}
    sess.client("cloudformation").create_stack(
        StackName="LlE2eBase", TemplateBody=json.dumps(template)
    )
    sess.client("sagemaker").create_model_package_group(
        ModelPackageGroupName=GROUP, Tags=[{"Key": "project", "Value": "ll-e2e"}]
    )
    return bucket


def packages(sess, group: str = GROUP) -> list[dict]:
    sm = sess.client("sagemaker")
    listed = sm.list_model_packages(ModelPackageGroupName=group)["ModelPackageSummaryList"]
    return [sm.describe_model_package(ModelPackageName=p["ModelPackageArn"]) for p in listed]


def objects(sess, bucket: str) -> dict[str, bytes]:
    s3 = sess.client("s3")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    return {k: s3.get_object(Bucket=bucket, Key=k)["Body"].read() for k in keys}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ----------------------------------------------------------------------------- register


def test_register_aws_stores_the_pipeline_metrics_and_hashes_and_sends_no_tags(
    sess, trained, sent, capsys
):
    bucket = base_stack(sess)
    model = trained / "model" / "model.tar.gz"
    assert main(["register", *AWS, "--model", str(model)]) == 0
    out = capsys.readouterr().out
    assert "version 1 (PendingManualApproval)" in out and "--version 1 --target aws`" in out
    [request] = sent
    assert "Tags" not in request  # a version takes its group's: SageMaker refuses them
    [d] = packages(sess)
    assert (d["ModelPackageGroupName"], d["ModelPackageVersion"]) == (GROUP, 1)
    assert d["ModelApprovalStatus"] == PENDING
    stored = objects(sess, bucket)
    digest = sha256(model.read_bytes())
    featurizer = featurizer_artifact.to_bytes(trained / "model" / "preprocessing.json")
    model_key, featurizer_key = Prefix.model_key(digest), Prefix.featurizer_key(sha256(featurizer))
    assert digest in model_key and stored[model_key] == model.read_bytes()
    assert stored[featurizer_key] == featurizer
    spec = d["InferenceSpecification"]
    sk, ll = sklearn_image("us-east-1"), linear_learner_image("us-east-1")
    assert ll == "382416733822.dkr.ecr.us-east-1.amazonaws.com/linear-learner:1"
    assert "sagemaker-scikit-learn" in sk
    f, m = f"s3://{bucket}/{featurizer_key}", f"s3://{bucket}/{model_key}"
    assert [
        (c["ContainerHostname"], c["Image"], c["ModelDataUrl"], c.get("Environment"))
        for c in spec["Containers"]
    ] == [("featurize", sk, f, environment(FEATURIZE)), ("linear-learner", ll, m, None),
          ("decode", sk, f, environment(DECODE))]  # fmt: skip
    assert spec["SupportedContentTypes"] == RAW  # raw rows, as the pipeline endpoint takes
    # the class decoder answers last: JSON or JSON lines (never CSV, which nothing answers)
    assert spec["SupportedResponseMIMETypes"] == ["application/json", "application/jsonlines"]
    assert "ml.m5.large" in spec["SupportedRealtimeInferenceInstanceTypes"]
    assert "ml.m5.large" in spec["SupportedTransformInstanceTypes"]
    statistics = d["ModelMetrics"]["ModelQuality"]["Statistics"]
    assert statistics["ContentType"] == "application/json"
    metrics_key = statistics["S3Uri"].removeprefix(f"s3://{bucket}/")
    assert metrics_key == Prefix.metrics_key(sha256(stored[metrics_key]))
    record = json.loads((trained / "model" / "metrics.json").read_text())
    assert json.loads(stored[metrics_key]) == {
        "metrics": record["metrics"],
        "hyperparameters": record["hyperparameters"],  # what the metrics were trained with
    }
    manifest = (trained / "data" / "manifest.json").read_bytes()
    assert d["CustomerMetadataProperties"] == {
        "model_sha256": digest,
        "data_manifest_sha256": sha256(manifest),
        "predictor_type": "multiclass_classifier",
        "feature_dim": str(json.loads(manifest)["feature_dim"]),
        "test:multiclass_accuracy": repr(record["metrics"]["test:multiclass_accuracy"]),
        "test:macro_f_beta": repr(record["metrics"]["test:macro_f_beta"]),
    }


def test_register_aws_a_model_alone_is_linear_learner_on_encoded_vectors(sess, trained, tmp_path):
    bucket = base_stack(sess)
    bare = tmp_path / "model.tar.gz"  # no preprocessing.json, no metrics.json beside it
    bare.write_bytes((trained / "model" / "model.tar.gz").read_bytes())
    assert main(["-q", "register", *AWS, "--model", str(bare)]) == 0
    [d] = packages(sess)
    url = f"s3://{bucket}/{Prefix.model_key(sha256(bare.read_bytes()))}"
    spec = d["InferenceSpecification"]
    assert spec["Containers"] == [{"Image": linear_learner_image("us-east-1"), "ModelDataUrl": url}]
    assert RECORDIO in spec["SupportedContentTypes"]
    # what Linear Learner answers (AWS, "Linear learner response formats"): never CSV
    assert spec["SupportedResponseMIMETypes"] == LL_ANSWERS
    assert "ModelMetrics" not in d
    assert [f"s3://{bucket}/{k}" for k in objects(sess, bucket)] == [url]
    assert set(d["CustomerMetadataProperties"]) == {"model_sha256", "predictor_type", "feature_dim"}
    version = AwsRegistry(sess, "ll-e2e", GROUP).register(trained / "model" / "model.tar.gz")
    assert (version.version, version.model, version.preprocessing) == (2, url, None)


def test_approve_reject_and_list_on_aws_keep_each_versions_metadata(sess, trained, capsys):
    base_stack(sess)
    model = trained / "model" / "model.tar.gz"
    record = json.loads((trained / "model" / "metrics.json").read_text())["metrics"]
    assert main(["-q", "register", *AWS, "--model", str(model)]) == 0
    assert main(["approve", *AWS, "--version", "1"]) == 0
    assert capsys.readouterr().out.endswith(f"{GROUP} version 1: Approved\n")
    assert main(["registry", *AWS, "--json"]) == 0
    [listed] = json.loads(capsys.readouterr().out)
    assert (listed["status"], listed["version"]) == (APPROVED, 1)
    assert listed["model_sha256"] == sha256(model.read_bytes())  # survived UpdateModelPackage
    assert listed["metrics"] == {k: record[k] for k in LISTED_METRICS["multiclass_classifier"]}
    assert (listed["predictor_type"], listed["feature_dim"]) == ("multiclass_classifier", 10)
    assert main(["reject", *AWS, "--version", "1", "--reason", "leaks the label"]) == 0
    [d] = packages(sess)
    assert (d["ModelApprovalStatus"], d["ApprovalDescription"]) == (REJECTED, "leaks the label")
    assert d["CustomerMetadataProperties"]["model_sha256"] == listed["model_sha256"]
    registry = AwsRegistry(sess, "ll-e2e", GROUP)
    with pytest.raises(RegistryError, match=r"was Rejected \(leaks the label\).*register the mod"):
        registry.set_status(1, APPROVED)
    with pytest.raises(RegistryError, match=r"no version 9 in the registry \(versions: 1\)"):
        registry.set_status(9, APPROVED)
    assert [p["ModelApprovalStatus"] for p in packages(sess)] == [REJECTED]


def test_reject_on_aws_sends_the_reason_as_the_local_registry_keeps_it_and_refuses_too_long(
    sess, trained, capsys
):
    """UpdateModelPackage's ApprovalDescription is at most 1024 characters (botocore's model);
    botocore does not check it and moto stores any length, so the CLI must refuse it first."""
    base_stack(sess)
    assert SAGEMAKER.shape_for("ApprovalDescription").metadata["max"] == MAX_APPROVAL_DESCRIPTION
    assert main(["-q", "register", *AWS, "--model", str(trained / "model" / "model.tar.gz")]) == 0
    capsys.readouterr()
    assert main(["reject", *AWS, "--version", "1", "--reason", "x" * 1025]) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert "--reason: 1025 characters" in line and "at most 1024" in line
    assert "ApprovalDescription" in line and "shorten it" in line
    [d] = packages(sess)
    assert d["ModelApprovalStatus"] == PENDING and "ApprovalDescription" not in d
    assert main(["reject", *AWS, "--version", "1", "--reason", "leaks\n  the\tlabel "]) == 0
    [d] = packages(sess)  # one line, as the local registry keeps it
    assert (d["ModelApprovalStatus"], d["ApprovalDescription"]) == (REJECTED, "leaks the label")


def test_register_aws_refuses_a_file_that_is_not_a_model_before_anything_is_sent(sess, sent):
    bucket = base_stack(sess)
    with pytest.raises(ArtifactError, match="not a Linear Learner model"):
        AwsRegistry(sess, "ll-e2e", GROUP).register(ROOT / "README.md")
    assert sent == [] and packages(sess) == [] and objects(sess, bucket) == {}


@pytest.mark.parametrize("listing", ["lists nothing", "refuses the group"])  # AWS: undocumented
def test_registry_aws_without_the_group_says_deploy_the_base_stack(sess, listing, request, capsys):
    if listing == "refuses the group":
        request.getfixturevalue("group_must_exist")
    assert main(["registry", *AWS]) == 2  # no base stack: no group
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("error: ") and GROUP in line and "deploy the base stack" in line


def test_registry_aws_on_an_empty_group_hints_the_aws_register(sess, capsys):
    base_stack(sess)
    assert main(["registry", *AWS]) == 0
    [line] = capsys.readouterr().out.splitlines()
    assert line.startswith("no versions registered yet") and "--target aws" in line


# ----------------------------------------------------------------------------- the request


@pytest.mark.parametrize(
    "featurizer, predictor, hosts",
    [
        (False, "regressor", [None]),
        (True, "regressor", ["featurize", "linear-learner"]),  # no decoder: nothing to name
        (True, "binary_classifier", ["featurize", "linear-learner", "decode"]),
    ],
)
def test_package_request_is_what_sagemaker_accepts(featurizer, predictor, hosts):
    metrics = {f"{c}:{n}": -1e-05 for c in ("test", "validation") for n in ("rmse", "x")}
    metrics |= {m: 0.875 for names in LISTED_METRICS.values() for m in names}
    url = "s3://b/models/featurizer/sha256/f/featurizer.tar.gz" if featurizer else None
    args = (GROUP, "ll-image", "s3://b/models/sha256/a/model.tar.gz", predictor, 12, "a" * 64)
    kwargs = {"featurizer_url": url, "featurizer_image": "sk" if url else None}
    kwargs |= {"metrics": metrics, "metrics_url": "s3://b/m.json", "data_manifest_sha256": "d" * 64}
    request = package_request(*args, **kwargs)
    assert request == package_request(*args, **kwargs)  # pure: no AWS here (dead proxy)
    spec = request["InferenceSpecification"]
    assert [c.get("ContainerHostname") for c in spec["Containers"]] == hosts
    assert (RECORDIO in spec["SupportedContentTypes"]) is (not featurizer)
    decoded = hosts[-1] == "decode"  # the last container answers the client
    assert spec["SupportedResponseMIMETypes"] == (LL_ANSWERS[:2] if decoded else LL_ANSWERS)
    shape = SAGEMAKER.operation_model("CreateModelPackage").input_shape
    report = ParamValidator().validate(request, shape)
    assert not report.has_errors(), report.generate_report()
    assert "Tags" not in request
    meta = request["CustomerMetadataProperties"]
    assert set(meta) == {"model_sha256", "data_manifest_sha256", "predictor_type", "feature_dim",
                         *LISTED_METRICS[predictor]}  # fmt: skip
    assert len(meta) <= SAGEMAKER.shape_for("CustomerMetadataMap").metadata["max"]
    allowed = re.compile(r"[A-Za-z \d_.:/=+\-@]*")  # [\p{L}\p{Z}\p{N}_.:\/=+\-@]*, in ASCII
    for key, value in meta.items():
        assert isinstance(value, str) and 1 <= len(value) <= 256 and 1 <= len(key) <= 128
        assert allowed.fullmatch(key) and allowed.fullmatch(value), (key, value)
    for field, enum in (
        ("SupportedTransformInstanceTypes", "TransformInstanceType"),
        ("SupportedRealtimeInferenceInstanceTypes", "ProductionVariantInstanceType"),
    ):
        assert spec[field] and set(spec[field]) <= set(SAGEMAKER.shape_for(enum).enum), field


# ----------------------------------------------------------------------------- the base stack


def test_base_stack_owns_the_group_and_empties_it_before_deleting_it():
    from test_stacks import base, only, resources

    template = base()
    [(group_id, group)] = resources(template, "AWS::SageMaker::ModelPackageGroup").items()
    assert group["Properties"]["ModelPackageGroupName"] == GROUP
    assert {"Key": "project", "Value": "ll-e2e"} in group["Properties"]["Tags"]
    assert group["DeletionPolicy"] == "Delete"
    cleanup = only(template, "Custom::ModelPackageGroupCleanup")
    assert cleanup["Properties"]["GroupName"] == GROUP and group_id in cleanup["DependsOn"]
    doc = template.to_json()
    function = doc["Resources"][cleanup["Properties"]["ServiceToken"]["Fn::GetAtt"][0]]
    code = function["Properties"]["Code"]["ZipFile"]  # CloudFormation takes at most 4096
    assert code == Path(registry_cleanup.__file__).read_text() and len(code) <= 4096
    role = function["Properties"]["Role"]["Fn::GetAtt"][0]
    [policy] = [k for k, r in resources(template, "AWS::IAM::Policy").items()
                if {"Ref": role} in r["Properties"]["Roles"]]  # fmt: skip
    deletes = [  # every Allow of a sagemaker:Delete*, or of a wildcard that covers one
        (where, action, arn)
        for where, action, arn in allowed(doc)
        if fnmatch.fnmatchcase(action.lower(), "sagemaker:delete*")
        or fnmatch.fnmatchcase("sagemaker:deletemodelpackage", action.lower())
    ]
    arn = "arn:<AWS::Partition>:sagemaker:us-east-1:<AWS::AccountId>:model-package/ll-e2e-models/*"
    assert deletes == [(policy, "sagemaker:DeleteModelPackage", arn)]
    assert doc["Outputs"]["ModelPackageGroupName"]["Value"] == GROUP


def allowed(template: dict):
    """(resource, action, ARN) of every Allow statement of every policy in ``template``."""
    for where, resource in template["Resources"].items():
        props = resource.get("Properties", {})
        docs = [props.get("PolicyDocument")] + [
            p["PolicyDocument"] for p in props.get("Policies", [])
        ]
        for statement in (s for d in docs if d for s in d["Statement"] if s["Effect"] == "Allow"):
            actions = statement["Action"]
            for action in [actions] if isinstance(actions, str) else actions:
                yield where, action, flat(statement["Resource"])


def flat(value) -> str:
    """A statement's resources as cdk-nag writes them (joined ARNs, ``<Ref>``)."""
    if isinstance(value, str | list):
        return value if isinstance(value, str) else " ".join(map(flat, value))
    if "Fn::Join" in value:
        return value["Fn::Join"][0].join(flat(part) for part in value["Fn::Join"][1])
    return f"<{value['Ref']}>" if "Ref" in value else json.dumps(value)


# ----------------------------------------------------------------------------- the cleanup


def plant_versions(sess) -> tuple[list[str], str]:
    """Three versions of ours (each status), one of a look-alike group ``ll-e2e-models-prod``."""
    sm = sess.client("sagemaker")
    spec = {"Containers": [{"Image": "img"}], "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["text/csv"]}  # fmt: skip
    arns = {}
    for group, status in [(GROUP, PENDING), (GROUP, APPROVED), (GROUP, REJECTED),
                          (f"{GROUP}-prod", APPROVED)]:  # fmt: skip
        if group not in arns:
            sm.create_model_package_group(ModelPackageGroupName=group)
        arns.setdefault(group, []).append(sm.create_model_package(
            ModelPackageGroupName=group, ModelApprovalStatus=status, InferenceSpecification=spec
        )["ModelPackageArn"])  # fmt: skip
    return arns[GROUP], arns[f"{GROUP}-prod"][0]


@pytest.mark.parametrize("missing_group", ["lists nothing", "does not exist"])
def test_cleanup_deletes_every_version_of_the_group_and_nothing_else(
    sess, deleted, missing_group, request
):
    if missing_group == "does not exist":
        request.getfixturevalue("group_must_exist")
    ours, theirs = plant_versions(sess)
    sm = sess.client("sagemaker")
    assert registry_cleanup.clean(sm, GROUP, wait_s=5, poll_s=0) == 3
    assert sorted(deleted) == sorted(ours) and packages(sess) == []
    assert [p["ModelPackageArn"] for p in packages(sess, f"{GROUP}-prod")] == [theirs]
    assert registry_cleanup.clean(sm, "ll-e2e-nothing", wait_s=5, poll_s=0) == 0


def test_cleanup_deletes_each_version_once_then_times_out(sess, monkeypatch):
    calls = []
    monkeypatch.setattr(SageMakerResponse, "delete_model_package",  # never goes away
                        lambda self: calls.append(self._get_param("ModelPackageName")) or
                        EmptyResult(), raising=False)  # fmt: skip
    ours, _ = plant_versions(sess)
    with pytest.raises(TimeoutError, match=f"3 versions of {GROUP} still listed after 0.05s"):
        registry_cleanup.clean(sess.client("sagemaker"), GROUP, wait_s=0.05, poll_s=0.01)
    assert sorted(calls) == sorted(ours)


@pytest.fixture
def cfnresponse(monkeypatch) -> list[tuple]:
    """The module CloudFormation gives inline Python functions, recording what is sent."""
    sends = []
    module = types.ModuleType("cfnresponse")
    module.SUCCESS, module.FAILED = "SUCCESS", "FAILED"

    def send(event, context, status, data, physicalResourceId=None, noEcho=False, reason=None):
        sends.append((status, data, physicalResourceId, reason))

    module.send = send
    monkeypatch.setitem(sys.modules, "cfnresponse", module)
    return sends


def event(kind: str) -> dict:
    return {"RequestType": kind, "ResourceProperties": {"ServiceToken": "arn", "GroupName": GROUP}}


@pytest.mark.parametrize("kind, left", [("Create", 3), ("Update", 3), ("Delete", 0)])
def test_cleanup_handler_answers_cloudformation(
    sess, deleted, cfnresponse, kind, left, monkeypatch
):
    sleeps = []  # the handler polls every POLL_S seconds: not slept here
    monkeypatch.setattr(
        registry_cleanup,
        "time",
        types.SimpleNamespace(monotonic=time.monotonic, sleep=sleeps.append),
    )
    plant_versions(sess)
    registry_cleanup.handler(event(kind), None)
    assert cfnresponse == [("SUCCESS", {}, f"{GROUP}-cleanup", None)]
    assert sleeps == ([registry_cleanup.POLL_S] if kind == "Delete" else [])
    assert len(packages(sess)) == left and len(packages(sess, f"{GROUP}-prod")) == 1


def test_cleanup_handler_reports_a_failure_to_cloudformation(sess, cfnresponse, monkeypatch):
    def denied(self):
        raise JsonRESTError("AccessDeniedException", "not authorized: sagemaker:ListModelPackages")

    monkeypatch.setattr(SageMakerResponse, "list_model_packages", denied)
    registry_cleanup.handler(event("Delete"), None)
    [(status, data, physical, reason)] = cfnresponse
    assert (status, data, physical) == ("FAILED", {}, f"{GROUP}-cleanup")
    assert reason.startswith("ClientError: An error occurred (AccessDeniedException)")


# ----------------------------------------------------------------------------- audit


@pytest.fixture
def group_deleted(monkeypatch) -> list[str]:
    """DeleteModelPackageGroup for moto, refusing a group that still has versions (as
    CloudFormation's handler reports AWS doing); each call recorded."""
    calls = []

    def delete_model_package_group(self):
        name = self._get_param("ModelPackageGroupName")
        calls.append(name)
        backend = self.sagemaker_backend
        if any(p.model_package_group_name == name for p in backend.model_packages.values()):
            raise MotoValidationError(f"Model Package Group {name} contains model packages")
        backend.model_package_groups.pop(name)
        return EmptyResult()

    monkeypatch.setattr(SageMakerResponse, "delete_model_package_group",
                        delete_model_package_group, raising=False)  # fmt: skip
    return calls


def test_audit_lists_the_registry_deletes_versions_first_and_spares_look_alikes(
    sess, deleted, group_deleted
):
    from training.aws import audit

    sm = sess.client("sagemaker")
    spec = {"Containers": [{"Image": linear_learner_image("us-east-1"),
                            "ModelDataUrl": "s3://b/m.tar.gz"}]}  # fmt: skip
    tags = {GROUP: "ll-e2e", f"{GROUP}-prod": "ll-e2e-prod", "ll-e2ex-models": "ll-e2ex"}
    for group, project in tags.items():
        sm.create_model_package_group(
            ModelPackageGroupName=group, Tags=[{"Key": "project", "Value": project}]
        )
        for _ in range(2):
            sm.create_model_package(
                ModelPackageGroupName=group, InferenceSpecification=spec,
                ModelApprovalStatus=PENDING,
            )  # fmt: skip
    found = [f for f in audit.find_leftovers(sess, "ll-e2e") if f.kind == "model-package-group"]
    assert [(f.name, f.detail) for f in found] == [(GROUP, "2 versions")]
    audit.delete(sess, found, echo=lambda _: None)
    assert group_deleted == [GROUP] and len(deleted) == 2  # the versions, then the group
    left = {g["ModelPackageGroupName"] for g in sm.list_model_package_groups()[
        "ModelPackageGroupSummaryList"]}  # fmt: skip
    assert left == {f"{GROUP}-prod", "ll-e2ex-models"}
    assert len(packages(sess, f"{GROUP}-prod")) == 2


def test_audit_says_which_versions_have_waited_for_approval_over_a_week(sess, monkeypatch):
    import datetime as dt

    from training.aws import audit

    sm = sess.client("sagemaker")
    sm.create_model_package_group(ModelPackageGroupName=GROUP)
    spec = {"Containers": [{"Image": linear_learner_image("us-east-1"),
                            "ModelDataUrl": "s3://b/m.tar.gz"}]}  # fmt: skip
    for status in (PENDING, PENDING, APPROVED):
        sm.create_model_package(
            ModelPackageGroupName=GROUP, InferenceSpecification=spec, ModelApprovalStatus=status
        )
    assert audit.stale_pending(sess, "ll-e2e") == []  # all just registered
    real_now = dt.datetime.now(dt.timezone.utc)

    class Later(dt.datetime):
        @classmethod
        def now(cls, tz=None):
            return real_now + dt.timedelta(days=8)

    monkeypatch.setattr(dt, "datetime", Later)
    notes = audit.stale_pending(sess, "ll-e2e")
    assert len(notes) == 2 and all("has waited for approval since" in n for n in notes)
    assert "version 1 " in notes[0] and "version 2 " in notes[1]
    assert audit.stale_pending(sess, "ll-e2ex") == []  # no registry there: nothing to say
