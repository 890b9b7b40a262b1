"""The command line as a user runs it: exit codes, messages, and never a traceback."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from training.data.manifest import Manifest

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
        ROOT / "training" / "datasets" / "penguins.csv",
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
    manifest = Manifest.load(out / "manifest.json")
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
        manifest.feature_dim,
    )
    assert res.returncode == 0, res.stderr


@pytest.mark.parametrize("where", ["before", "after", "absent"])
def test_quiet_goes_before_or_after_the_command(tmp_path, where):
    """``scripts/run.sh -q`` passes -q after ``run``: both places silence progress."""
    penguins = ROOT / "training" / "datasets" / "penguins.csv"
    args = ["prepare", "--data", penguins, "--label", "island"]
    args += ["--predictor-type", "multiclass_classifier", "--out", tmp_path / "prep"]
    args = {"before": ["-q", *args], "after": [*args, "-q"], "absent": args}[where]
    res = cli(*args)
    assert res.returncode == 0, res.stderr
    progress = "write recordio: 344/344 rows (100%)"
    assert (progress in res.stderr) == (where == "absent"), res.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["prepare", "--data", "s3://bucket/train.csv", "--label", "y"],
        ["run", "--data", "s3://bucket/train.csv", "--label", "y"],
        ["validate", "s3://bucket/train/", "--predictor-type", "regressor"],
        ["train", "--data-dir", "s3://bucket/prepared/", "--out", "m"],
    ],
)
def test_an_s3_url_where_a_local_path_is_read_says_so(args):
    """Not 's3:/bucket/train.csv: file not found' (a Path folds the double slash)."""
    res = cli(*args, "--predictor-type", "regressor", "--out", "o")
    assert res.returncode == 2 and "Traceback" not in res.stderr
    url = next(a for a in args if a.startswith("s3://"))
    assert f"'{url}': local files only here; copy it first (aws s3 cp {url} .)" in res.stderr


def test_prepare_with_a_wrong_label_name(tmp_path):
    res = cli(
        "prepare",
        "--data",
        ROOT / "training" / "datasets" / "penguins.csv",
        "--label",
        "Species",
        "--predictor-type",
        "multiclass_classifier",
        "--out",
        tmp_path / "o",
    )
    assert res.returncode == 2
    assert "did you mean 'species'" in res.stderr and "Traceback" not in res.stderr


def _hostile_paths(tmp_path) -> dict:
    """Paths that are not readable data files, each a different way."""
    os.mkfifo(tmp_path / "pipe.csv")
    (tmp_path / "loop1").symlink_to(tmp_path / "loop2")
    (tmp_path / "loop2").symlink_to(tmp_path / "loop1")
    (tmp_path / "dangling.csv").symlink_to(tmp_path / "nowhere.csv")
    (tmp_path / "folder.csv").mkdir()
    return {
        "pipe.csv": "is a FIFO (named pipe)",
        "loop1": "is a symlink loop",
        "dangling.csv": "is a symlink to",
        "folder.csv": "is a folder, not a CSV file",
    }


def test_prepare_names_what_is_wrong_with_a_data_path(tmp_path):
    for name, message in _hostile_paths(tmp_path).items():
        res = cli(
            "prepare",
            "--data",
            tmp_path / name,
            "--label",
            "y",
            "--out",
            tmp_path / "out",
            "--predictor-type",
            "regressor",
        )
        assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
        assert f"{tmp_path / name}: {message}" in res.stderr
        assert not (tmp_path / "out").exists()


def test_validate_names_unreadable_channel_files_without_hanging(tmp_path):
    paths = _hostile_paths(tmp_path)
    del paths["folder.csv"]  # a folder is a channel: its files are read
    res = cli("validate", *(tmp_path / n for n in paths), "--predictor-type", "regressor")
    assert res.returncode == 2 and "Traceback" not in res.stderr
    for name, message in paths.items():
        assert f"{tmp_path / name}: {message}" in res.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["--out", "{file}"], "--out is an existing file"),
        (["--out", "{file}/sub"], "cannot create a folder beside --out"),
        (["--chunk-rows", "0"], "argument --chunk-rows: 0 is below 1"),
        (["--shard-mb", "-1"], "argument --shard-mb: -1 must be a positive number"),
        (["--seed", "-1"], "argument --seed: -1 is below 0"),
        (["--fit-sample-rows", "x"], "argument --fit-sample-rows: 'x' is not a whole number"),
    ],
)
def test_prepare_refuses_bad_flags_with_the_flag_named(tmp_path, args, message):
    (tmp_path / "file").write_text("not a folder")
    args = [a.replace("{file}", str(tmp_path / "file")) for a in args]
    if "--out" not in args:
        args += ["--out", str(tmp_path / "out")]
    res = cli(
        "prepare",
        "--data",
        ROOT / "training" / "datasets" / "penguins.csv",
        "--label",
        "species",
        "--predictor-type",
        "multiclass_classifier",
        *args,
    )
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert message in res.stderr


def test_validate_feature_dim_must_be_positive():
    res = cli("validate", BAD / "good.csv", "--predictor-type", "regressor", "--feature-dim", "-5")
    assert res.returncode == 2 and "argument --feature-dim: -5 is below 1" in res.stderr


@pytest.mark.parametrize(
    "content, message",
    [
        (b"\xef\xbb\xbf1,2,3\n0,1,2\n", "starts with a UTF-8 byte-order mark"),
        (b'"1","2","3"\n"0","1","2"\n', "values are quoted"),
        (b"1,2\x00,3\n0,1,2\n", "holds NUL bytes"),
        (b"label,a,b\n0,1,2\n", "header row present"),
    ],
)
def test_a_bad_first_line_is_reported_by_its_cause(tmp_path, content, message):
    path = tmp_path / "channel.csv"
    path.write_bytes(content)
    res = cli("validate", path, "--predictor-type", "binary_classifier")
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert f"{path}, row 1: {message}" in res.stderr
    if "header" not in message:
        assert "header row present" not in res.stderr


# (subcommand, the config object it fills, flag dest -> config field where they differ)
CONFIGS = [
    ("prepare", "training.data.prepare:PrepareConfig", {"format": "fmt", "split": "fractions"}),
    ("train", "training.aws.job:AwsTrainConfig", {"max_runtime": "max_runtime_s"}),
    ("transform", "training.batch_transform:TransformConfig", {}),
    ("transform", "training.aws.batch_transform:AwsTransform", {}),
    ("run", "training.run:RunConfig", {}),
]
# defaults that differ on purpose, and why
EXEMPT = {
    ("run", "drop_unlabeled"): "the bundled dataset's unlabeled rows are dropped; a CSV of the "
    "user's own must opt in with --drop-unlabeled",
}


@pytest.mark.parametrize("command, config, renamed", CONFIGS)
def test_each_flag_default_is_its_config_default(command, config, renamed):
    """A default lives in the config object; the flag that sets it must say the same."""
    import dataclasses
    import importlib

    from training.cli import build_parser

    module, name = config.split(":")
    cls = getattr(importlib.import_module(module), name)
    defaults = {
        f.name: f.default for f in dataclasses.fields(cls) if f.default is not dataclasses.MISSING
    }
    sub = next(
        a
        for a in build_parser()._actions
        if isinstance(a, __import__("argparse")._SubParsersAction)
    ).choices[command]
    checked = 0
    for action in sub._actions:
        field = renamed.get(action.dest, action.dest)
        if (command, action.dest) in EXEMPT:
            continue
        if field in defaults and action.default is not None and action.option_strings:
            value = tuple(action.default) if isinstance(action.default, list) else action.default
            assert value == defaults[field], (command, action.dest, value, defaults[field])
            checked += 1
    assert checked, f"no flag of '{command}' maps to a default of {name}"


def test_predict_names_what_is_wrong_with_its_input(tmp_path):
    paths = _hostile_paths(tmp_path)
    paths["folder.csv"] = "is a folder, not a file"
    for name, message in paths.items():
        res = cli("predict", "--input", tmp_path / name, "--port", "9")
        assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
        assert f"{tmp_path / name}: {message}" in res.stderr


def test_inspect_into_a_closed_pipe_ends_quietly(tmp_path):
    """``inspect --json | head -1``: the reader goes away; no BrokenPipeError traceback."""
    import numpy as np

    from training.core import artifact
    from training.core.model import LinearModel

    path = artifact.save(
        LinearModel("regressor", "squared_loss", np.ones(3000, np.float32), np.float32(0)),
        tmp_path / "model.tar.gz",
    )
    command = f"{sys.executable} -m training inspect --json --top 3000 {path} | head -1"
    res = subprocess.run(
        ["bash", "-o", "pipefail", "-c", command], cwd=ROOT, capture_output=True, text=True
    )
    assert res.stdout.strip() == "{"
    assert "Traceback" not in res.stderr and "BrokenPipe" not in res.stderr, res.stderr


def test_help_lists_commands_in_workflow_order_and_every_flag_says_what_it_does():
    import argparse

    from training.cli import build_parser
    from training.core.hyperparameters import TABLE

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert list(sub.choices) == [
        "run", "prepare", "validate", "train", "tune", "register", "approve", "reject",
        "registry", "inspect", "serve", "predict", "transform", "deploy", "deploy-all",
        "destroy-all", "audit",
    ]  # fmt: skip
    for name, command in sub.choices.items():
        for action in command._actions:
            assert action.help, (name, action.dest)  # a line for every flag
    train_help = sub.choices["train"].format_help()
    assert "(default: 0)" in train_help  # --seed: defaults are shown
    for hyperparameter in TABLE:  # where the names are listed: in train --help itself
        assert f"\n  {hyperparameter} " in train_help, hyperparameter
