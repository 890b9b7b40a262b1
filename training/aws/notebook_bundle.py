"""What the notebook instance gets: the notebooks, the ``training`` package they import, and the
bundled dataset, laid out as the instance's OnStart sync puts them in one folder.

Dependency-free on purpose: the CDK app stages this bundle into a ``BucketDeployment`` (so the
bucket holds it before the notebook instance first starts), and ``deploy-all`` uploads what
changed since, from the same list.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PREFIX = "notebooks/"  # where the bundle lives in the project bucket


def files() -> list[tuple[Path, str]]:
    """(file, path under the notebook folder) for every file of the bundle."""
    out = [(p, p.name) for p in sorted((ROOT / "notebooks").glob("*.ipynb"))]
    out += [
        (p, p.relative_to(ROOT).as_posix())
        for p in sorted((ROOT / "training").rglob("*.py"))
        if "__pycache__" not in p.parts
    ]
    out += [(ROOT / "data" / name, f"data/{name}") for name in ("penguins.csv", "README.md")]
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
