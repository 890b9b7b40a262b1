"""The project a command works in: the folder holding ``cdk.json``, where the CDK app, its
CLI (``node_modules``), the model record (``models/latest.json``) and the notebooks live.

Found from the current folder upward, as git finds ``.git``, or named by ``LL_E2E_PROJECT``;
never from where the package is installed, so the package runs from any folder and a command
that needs the project says so when it is not in one.
"""

from __future__ import annotations

import os
from pathlib import Path

from training.errors import NOTHING_STARTED, Problem, ValidationError

MARKER = "cdk.json"
ENV = "LL_E2E_PROJECT"


def find(start: Path | None = None) -> Path | None:
    """The project folder: ``LL_E2E_PROJECT``, else the nearest folder at or above ``start``
    (the current folder) holding ``cdk.json``; None when there is none."""
    named = os.environ.get(ENV)
    if named:
        return Path(named).resolve()
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / MARKER).is_file():
            return folder
    return None


def root(needed_for: str) -> Path:
    """The project folder, or a :class:`ValidationError` saying what needed it and how to
    point at it."""
    found = find()
    if found is None or not (found / MARKER).is_file():
        where = f"{ENV}={os.environ[ENV]}" if os.environ.get(ENV) else f"{Path.cwd()}"
        raise ValidationError(
            [
                Problem(
                    where,
                    f"not inside the project (no {MARKER} here or above): {needed_for} needs it",
                    f"run the command from the project folder, or set {ENV}=/path/to/project",
                )
            ],
            NOTHING_STARTED,
        )
    return found
