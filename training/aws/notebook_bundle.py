"""What the notebook instance gets: the project's notebooks, the ``training`` package they
import (its bundled dataset included) and ``requirements.txt`` (the package's dependencies,
which the instance's OnStart script installs into the notebook's kernel), laid out as the
instance's OnStart script puts them in one folder.

Dependency-free on purpose: the CDK app stages this bundle into a ``BucketDeployment`` (so the
bucket holds it before the notebook instance first starts), and ``deploy-all`` uploads what
changed since, from the same list.
"""

from __future__ import annotations

import atexit
import functools
import shutil
import sys
import tempfile
from pathlib import Path

from training import project

PACKAGE = Path(__file__).resolve().parents[1]  # the package bundles itself: code and datasets
PREFIX = "notebooks/"  # where the bundle lives in the project bucket
PACKAGE_FILES = ("*.py", "datasets/*.csv", "datasets/*.md")
REQUIREMENTS = "requirements.txt"  # the package's dependencies, from pyproject.toml


def dependencies() -> list[str]:
    """The training package's requirements, as pyproject.toml's ``[project] dependencies``
    states them (one home: the bundle never lists its own)."""
    text = (project.root("the notebook bundle") / "pyproject.toml").read_text()
    if sys.version_info >= (3, 11):
        import tomllib

        return list(tomllib.loads(text)["project"]["dependencies"])
    from importlib.metadata import requires  # Python 3.10: the installed package's metadata

    return [r for r in requires("sagemaker-linear-learner-e2e") or [] if "extra ==" not in r]


@functools.cache
def requirements_file() -> Path:
    """``requirements.txt`` written once per process (removed when it ends)."""
    folder = Path(tempfile.mkdtemp(prefix="ll-notebook-requirements-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    path = folder / REQUIREMENTS
    header = "# the training package's dependencies (pyproject.toml), for the notebook's kernel\n"
    path.write_text(header + "".join(f"{r}\n" for r in dependencies()))
    return path


def files() -> list[tuple[Path, str]]:
    """(file, path under the notebook folder) for every file of the bundle: the notebooks
    of the project it is built in, ``requirements.txt``, then the package as ``training/…``."""
    notebooks = project.root("the notebook bundle") / "notebooks"
    out = [(p, p.name) for p in sorted(notebooks.glob("*.ipynb"))]
    out.append((requirements_file(), REQUIREMENTS))
    package = sorted({p for pattern in PACKAGE_FILES for p in PACKAGE.rglob(pattern)})
    out += [
        (p, f"training/{p.relative_to(PACKAGE).as_posix()}")
        for p in package
        if "__pycache__" not in p.parts
    ]
    return out


def stage() -> Path:
    """The bundle copied into a fresh folder in its final layout (what CDK zips as an asset;
    removed when the process ends)."""
    folder = Path(tempfile.mkdtemp(prefix="ll-notebook-bundle-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)  # CDK copies it when staged
    for path, key in files():
        target = folder / key
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
    return folder
