"""The package as a user installs it: a wheel built from a fresh copy of the sources, with
the `linear-learner` command, run from a folder that is not the project."""

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    """`pip wheel .` of what a clone holds (copied: the build writes beside its sources)."""
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(
        ROOT / "training", src / "training", ignore=shutil.ignore_patterns("__pycache__")
    )
    out = tmp_path_factory.mktemp("dist")
    res = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", out, src],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    (built,) = out.glob("*.whl")
    return built


def test_the_wheel_holds_the_package_its_data_and_the_command(wheel):
    with zipfile.ZipFile(wheel) as whl:
        names = set(whl.namelist())
        info = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        entry_points = whl.read(info).decode()
        metadata = whl.read(info.replace("entry_points.txt", "METADATA")).decode()
    for needed in (
        "training/cli.py",
        "training/core/artifact.py",
        "training/aws/featurizer_code/featurize.py",  # what featurizer.tar.gz is built from
        "training/datasets/penguins.csv",  # the main job's bundled data
        "training/datasets/README.md",  # and its provenance
    ):
        assert needed in names, needed
    assert not any(n.startswith(("tests/", "stacks/", "benchmarks/")) for n in names)
    assert "linear-learner = training.cli:main" in entry_points
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    required = [line.removeprefix("Requires-Dist: ") for line in metadata.splitlines()
                if line.startswith("Requires-Dist: ")]  # fmt: skip
    from packaging.requirements import Requirement

    assert [str(Requirement(r)) for r in required] == [str(Requirement(d)) for d in declared]


def test_the_command_runs_the_main_job_from_any_folder(wheel, tmp_path):
    """Installed elsewhere and run outside the project: the bundled data is found in the
    package; the CDK synth, which needs the project, says why it is skipped."""
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--target", target,
         wheel],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    elsewhere = tmp_path / "somewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "LL_E2E_PROJECT"}
    env["PYTHONPATH"] = str(target)  # the installed copy first, not the repository's
    command = [str(target / "bin" / "linear-learner")]
    res = subprocess.run(
        [*command, "-q", "run", "--out", "out"],
        cwd=elsewhere, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    assert "dataset: the bundled penguins.csv" in res.stdout
    assert "skipped: not inside the project (no cdk.json here or above)" in res.stdout
    assert (elsewhere / "out" / "report.html").exists()
    where = subprocess.run(
        [sys.executable, "-c", "import training; print(training.__file__)"],
        cwd=elsewhere, env=env, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert where.startswith(str(target))
    # a command that needs the project says so, before it reads or sends anything
    res = subprocess.run(
        [*command, "deploy", "--model", "out/model/model.tar.gz", "--region", "us-east-1"],
        cwd=elsewhere, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "not inside the project (no cdk.json here or above)" in res.stderr
    assert "set LL_E2E_PROJECT=/path/to/project" in res.stderr
