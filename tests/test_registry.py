"""The model registry, locally: register -> PendingManualApproval -> approve -> serve; reject
blocks; every refusal says why before anything changes."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from training.checksums import file_sha256
from training.cli import main
from training.core.registry import APPROVED, PENDING, REJECTED
from training.errors import ArtifactError, RegistryError
from training.files import make_owned_folder
from training.local.registry import STAGING_PREFIX, LocalRegistry
from training.local.trainer import train_local

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Two real models of the bundled data (prepared once), as train writes them."""
    from training.data.prepare import PrepareConfig, prepare
    from training.datasets import PENGUINS

    root = tmp_path_factory.mktemp("trained")
    prepare(
        PrepareConfig(
            PENGUINS, "sex", "binary_classifier", root / "data", drop_unlabeled=True,
            show_progress=False,
        )
    )  # fmt: skip
    for name, seed in (("a", 0), ("b", 1)):
        train_local(root / "data", root / name, seed=seed, show_progress=False, echo=lambda _: 0)
    return root


def test_register_records_the_model_its_hash_metrics_and_data(trained, tmp_path):
    registry = LocalRegistry(tmp_path, "ll-e2e-models")
    version = registry.register(
        trained / "a" / "model.tar.gz", trained / "a" / "preprocessing.json"
    )
    assert (version.version, version.status, version.group) == (1, PENDING, "ll-e2e-models")
    assert version.model_sha256 == file_sha256(trained / "a" / "model.tar.gz")
    assert version.data_manifest_sha256 == file_sha256(trained / "data" / "manifest.json")
    record = json.loads((trained / "a" / "metrics.json").read_text())
    assert version.metrics == record["metrics"] and version.hyperparameters["num_models"] == "32"
    assert Path(version.model).read_bytes() == (trained / "a" / "model.tar.gz").read_bytes()
    assert Path(version.preprocessing).name == "preprocessing.json"
    assert registry.register(trained / "b" / "model.tar.gz").version == 2


def test_approve_then_serve_the_approved_version_over_http(trained, tmp_path, capsys):
    reg = ["--registry", str(tmp_path)]
    for name in ("a", "b"):
        assert main(["register", "--model", str(trained / name / "model.tar.gz"), *reg]) == 0
    assert "approve it with `python -m training approve --version 2`" in capsys.readouterr().out
    assert main(["registry", *reg]) == 0
    listing = capsys.readouterr().out
    assert listing.count(PENDING) == 2 and "test:roc_auc_score" in listing
    assert main(["approve", "--version", "1", "--reason", "first", *reg]) == 0
    assert capsys.readouterr().out == "ll-e2e-models version 1: Approved\n"
    assert main(["registry", "--json", *reg]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [v["status"] for v in listed] == [APPROVED, PENDING]
    assert listed[0]["approval_description"] == "first" and listed[0]["modified_by"]

    from ports import free_port

    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "training", "serve", "--approved", *reg, "--port", str(port)],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        first = server.stdout.readline()
        assert "version 1 (Approved)" in first
        answer = _invoke(port, b"Adelie,Torgersen,39.1,18.7,181,3750,2007")
        assert answer["predictions"][0]["predicted_class"] in ("female", "male")
    finally:
        server.terminate()
        server.wait(10)


def _invoke(port: int, body: bytes) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/invocations", body, {"Content-Type": "text/csv"}
    )
    for _ in range(100):  # until it listens
        try:
            with urllib.request.urlopen(request, timeout=5) as answer:
                return json.loads(answer.read())
        except OSError:
            time.sleep(0.1)
    raise AssertionError("the server never answered")


def test_reject_blocks_and_a_rejected_version_is_not_approved_again(trained, tmp_path):
    registry = LocalRegistry(tmp_path, "ll-e2e-models")
    registry.register(trained / "a" / "model.tar.gz")
    rejected = registry.set_status(1, REJECTED, "leaks the label")
    assert (rejected.status, rejected.approval_description) == (REJECTED, "leaks the label")
    with pytest.raises(RegistryError, match="was Rejected \\(leaks the label\\): a rejected"):
        registry.set_status(1, APPROVED)
    with pytest.raises(RegistryError, match="no version 3 in the registry \\(versions: 1\\)"):
        registry.set_status(3, APPROVED)
    assert main(["serve", "--approved", "--registry", str(tmp_path)]) == 2  # nothing approved


def test_a_reason_longer_than_sagemaker_keeps_changes_nothing(trained, tmp_path, capsys):
    """The same limit as SageMaker's ApprovalDescription (1024), so both registries agree."""
    reg = ["--registry", str(tmp_path)]
    assert main(["-q", "register", "--model", str(trained / "a" / "model.tar.gz"), *reg]) == 0
    assert main(["approve", "--version", "1", "--reason", "y" * 1025, *reg]) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert "--reason: 1025 characters" in line and "at most 1024" in line
    assert LocalRegistry(tmp_path, "ll-e2e-models").versions()[0].status == PENDING
    assert main(["approve", "--version", "1", "--reason", "y" * 1024, *reg]) == 0
    assert LocalRegistry(tmp_path, "ll-e2e-models").versions()[0].approval_description == "y" * 1024


def test_an_approved_version_can_be_withdrawn_and_a_pending_one_is_not_served(trained, tmp_path):
    from training.core.registry import check_deployable, latest_approved

    registry = LocalRegistry(tmp_path, "ll-e2e-models")
    registry.register(trained / "a" / "model.tar.gz")
    registry.register(trained / "b" / "model.tar.gz")
    with pytest.raises(RegistryError, match="pending: 1, 2 \\(approve --version N\\)"):
        latest_approved(registry.versions())
    with pytest.raises(RegistryError, match="is PendingManualApproval, not Approved"):
        check_deployable(registry.versions()[0])
    registry.set_status(1, APPROVED)
    registry.set_status(2, APPROVED)
    assert latest_approved(registry.versions()).version == 2
    registry.set_status(2, REJECTED, "withdrawn")
    assert latest_approved(registry.versions()).version == 1


def test_a_file_that_is_not_a_model_registers_nothing(tmp_path):
    registry = LocalRegistry(tmp_path / "r", "ll-e2e-models")
    with pytest.raises(ArtifactError, match="not a Linear Learner model"):
        registry.register(ROOT / "README.md")
    assert registry.versions() == []


def test_concurrent_registrations_take_distinct_numbers(trained, tmp_path):
    registry = LocalRegistry(tmp_path, "ll-e2e-models")
    with ThreadPoolExecutor(4) as pool:
        numbers = list(
            pool.map(lambda _: registry.register(trained / "a" / "model.tar.gz").version, range(8))
        )
    assert sorted(numbers) == list(range(1, 9))
    assert [v.version for v in registry.versions()] == list(range(1, 9))
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".") and p.is_dir()]


def test_preprocessing_that_does_not_fit_the_model_registers_nothing(trained, tmp_path):
    from training.data.prepare import PrepareConfig, prepare
    from training.datasets import PENGUINS

    narrower = tmp_path / "data"
    prepare(
        PrepareConfig(
            PENGUINS, "sex", "binary_classifier", narrower, drop=("island",),
            drop_unlabeled=True, show_progress=False,
        )
    )  # fmt: skip
    registry = LocalRegistry(tmp_path / "r", "ll-e2e-models")
    with pytest.raises(RegistryError, match="makes 8 features, the model takes 11"):
        registry.register(trained / "a" / "model.tar.gz", narrower / "preprocessing.json")
    assert registry.versions() == []


def test_a_swapped_model_is_not_served_as_the_approved_one(trained, tmp_path, capsys):
    registry = LocalRegistry(tmp_path, "ll-e2e-models")
    registry.register(trained / "a" / "model.tar.gz", trained / "a" / "preprocessing.json")
    registry.set_status(1, APPROVED, "reviewed")
    (tmp_path / "1" / "model.tar.gz").write_bytes((trained / "b" / "model.tar.gz").read_bytes())
    assert main(["serve", "--approved", "--registry", str(tmp_path)]) == 2
    assert "is missing or is not the model registered" in capsys.readouterr().err


def test_stray_entries_and_a_killed_registration_do_not_break_the_registry(trained, tmp_path):
    (tmp_path / "12abc").mkdir(parents=True)  # not a version number: ignored
    (tmp_path / "1").write_text("a stray file")  # a taken number
    registry = LocalRegistry(tmp_path, "ll-e2e-models")
    # what a registration killed mid-copy leaves: its staging folder, owner file and a copy
    killed = make_owned_folder(tmp_path, STAGING_PREFIX, "registry staging of ll-e2e-models")
    (killed / "model.tar.gz").write_bytes(b"half a model")
    # look-alikes that are not this registry's staging: all survive
    other_group = make_owned_folder(tmp_path, STAGING_PREFIX, "registry staging of other")
    unowned = tmp_path / ".staging-abcdefgh"
    unowned.mkdir()
    (unowned / "notes.txt").write_text("a user's")
    longer = tmp_path / ".staging-abcdefgh-mine"
    longer.mkdir()
    assert registry.register(trained / "a" / "model.tar.gz").version == 2
    assert not killed.exists()
    assert other_group.is_dir() and (unowned / "notes.txt").is_file() and longer.is_dir()
    assert not (tmp_path / "2" / ".owner").exists()  # a version carries no staging mark
    assert [v.version for v in registry.versions()] == [2]
    rejected = registry.set_status(2, APPROVED, "first\nlook")
    assert rejected.approval_description == "first look"  # one line in the table
    assert registry.set_status(2, REJECTED).approval_description is None  # not "first look"
    (tmp_path / "3").mkdir()
    (tmp_path / "3" / "version.json").write_text('["not", "a", "record"]')
    with pytest.raises(RegistryError, match="3/version.json is not a registry record"):
        registry.versions()


def test_a_decision_on_a_registry_that_does_not_exist_creates_nothing(tmp_path, capsys):
    missing = tmp_path / "no-such-registry"
    assert main(["approve", "--version", "1", "--registry", str(missing)]) == 2
    assert f"no registry at {missing}: register a model first" in capsys.readouterr().err
    assert not missing.exists()


def test_a_failed_registration_leaves_no_staging(trained, tmp_path, monkeypatch):
    registry = LocalRegistry(tmp_path, "ll-e2e-models")

    def disk_full(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("training.local.registry._write_json", disk_full)
    with pytest.raises(OSError, match="No space left"):
        registry.register(trained / "a" / "model.tar.gz")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".lock"]


def test_registering_the_same_model_again_says_which_version_it_is(trained, tmp_path, capsys):
    model = str(trained / "a" / "model.tar.gz")
    assert main(["register", "--model", model, "--registry", str(tmp_path)]) == 0
    assert "already version" not in capsys.readouterr().out
    assert main(["register", "--model", model, "--registry", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "registered ll-e2e-models version 2" in out
    assert f"same model (sha256 {file_sha256(Path(model))[:12]}…) is already version 1" in out


def test_listed_metrics_are_ones_a_sagemaker_job_reports_too():
    """`registry` lists two metrics a version has whether the local trainer or SageMaker made
    it: each is in the Linear Learner metric table (tuning.OBJECTIVES) for its predictor type
    (test:rmse was listed for regressors, which a SageMaker job does not report)."""
    from training.core.registry import LISTED_METRICS
    from training.core.tuning import OBJECTIVES

    for predictor_type, names in LISTED_METRICS.items():
        for name in names:
            assert predictor_type in OBJECTIVES.get(name, ("", ()))[1], (predictor_type, name)
