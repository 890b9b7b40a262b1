"""What the notebook instance gets: the project's notebooks and the ``training`` package they
import (its bundled dataset included), laid out as the instance's OnStart sync puts them in one
folder.

Dependency-free on purpose: the CDK app stages this bundle into a ``BucketDeployment`` (so the
bucket holds it before the notebook instance first starts), and ``deploy-all`` uploads what
changed since, from the same list.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

from training import project

PACKAGE = Path(__file__).resolve().parents[1]  # the package bundles itself: code and datasets
PREFIX = "notebooks/"  # where the bundle lives in the project bucket
PACKAGE_FILES = ("*.py", "datasets/*.csv", "datasets/*.md")


def files() -> list[tuple[Path, str]]:
    """(file, path under the notebook folder) for every file of the bundle: the notebooks
    of the project it is built in, then the package as ``training/…``."""
    notebooks = project.root("the notebook bundle") / "notebooks"
    out = [(p, p.name) for p in sorted(notebooks.glob("*.ipynb"))]
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
