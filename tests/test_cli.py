"""The command line as a user runs it: exit codes, messages, and never a traceback."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
BAD = ROOT / "tests" / "fixtures" / "bad"


def cli(*args, cwd=ROOT):
    return subprocess.run(
        [sys.executable, "-m", "training", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_validate_good_channels_exit_zero():
    res = cli(
        "validate",
        BAD / "good.csv",
        BAD / "good.rec",
        "--predictor-type",
        "binary_classifier",
        "--feature-dim",
        "3",
    )
    assert res.returncode == 0, res.stderr
    assert "2 file(s) pass" in res.stdout
    assert "application/x-recordio-protobuf" in res.stdout


@pytest.mark.parametrize("name", ["header.csv", "float64.rec", "truncated.rec", "missing.csv"])
def test_validate_bad_input_exit_two_without_traceback(name):
    res = cli("validate", BAD / name, "--predictor-type", "binary_classifier")
    assert res.returncode == 2
    assert "Traceback" not in res.stderr
    assert "error:" in res.stderr and name in res.stderr


def test_validate_checks_content_type():
    res = cli(
        "validate", BAD / "good.csv", "--predictor-type", "regressor", "--content-type", "csv"
    )
    assert res.returncode == 2 and "use exactly 'text/csv'" in res.stderr


def test_prepare_then_validate_round_trip(tmp_path):
    out = tmp_path / "prep"
    res = cli(
        "prepare",
        "--data",
        ROOT / "data" / "penguins.csv",
        "--label",
        "island",
        "--predictor-type",
        "multiclass_classifier",
        "--out",
        out,
        "--format",
        "csv",
    )
    assert res.returncode == 0, res.stderr
    assert "feature_dim" in res.stdout
    manifest = json.loads((out / "manifest.json").read_text())
    res = cli(
        "validate",
        out / "train",
        out / "validation",
        out / "test",
        "--predictor-type",
        "multiclass_classifier",
        "--num-classes",
        "3",
        "--feature-dim",
        manifest["feature_dim"],
    )
    assert res.returncode == 0, res.stderr


def test_prepare_with_a_wrong_label_name(tmp_path):
    res = cli(
        "prepare",
        "--data",
        ROOT / "data" / "penguins.csv",
        "--label",
        "Species",
        "--predictor-type",
        "multiclass_classifier",
        "--out",
        tmp_path / "o",
    )
    assert res.returncode == 2
    assert "did you mean 'species'" in res.stderr and "Traceback" not in res.stderr
