"""The local model registry: SageMaker Model Registry's records in a folder, so register →
approve → serve runs offline.

``DIR/<N>/`` holds one version: ``version.json`` (a :class:`training.core.registry.ModelVersion`),
the model's ``model.tar.gz``, its ``preprocessing.json`` when it has one, and its training
record ``metrics.json`` when there was one. Numbers start at 1, as SageMaker's versions do. A
version is written to a hidden folder and renamed into place under the registry's lock, so two
registrations never take one number and a reader never sees half a version; a status change
rewrites ``version.json`` the same way (write, then rename).
"""

from __future__ import annotations

import datetime as dt
import fcntl
import getpass
import json
import shutil
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from training.checksums import file_sha256
from training.core import artifact
from training.core.featurizer import PREPROCESSING_FILE
from training.core.registry import (
    PENDING,
    ModelVersion,
    approval_description,
    check_preprocessing,
    check_transition,
    find,
)
from training.errors import RegistryError
from training.files import (
    OWNER_FILE,
    make_owned_folder,
    remove_owned,
    stale_folders,
    write_whole,
)
from training.local.training_record import RECORD_FILE, TrainingRecord

VERSION_FILE = "version.json"
MODEL_FILE = "model.tar.gz"
DEFAULT_DIR = "models/registry"  # in the project folder
LOCK_FILE = ".lock"
STAGING_PREFIX = ".staging-"  # a registration in progress: .staging-<8 characters>


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def who() -> str | None:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name in a bare container
        return None


class LocalRegistry:
    """The versions of one model group kept under ``root``."""

    def __init__(self, root: Path, group: str):
        self.root, self.group = Path(root), group
        # staging folders of this registry's registrations, proven ours by the owner file
        self._owner = f"registry staging of {self.group}"

    def versions(self) -> list[ModelVersion]:
        """Every registered version, oldest first (an empty registry: none)."""
        if self.root.exists() and not self.root.is_dir():
            raise RegistryError(f"--registry {self.root} is a file: pass a folder.")
        out = []
        for folder in sorted(_numbered(self.root), key=lambda p: int(p.name)):
            if not (folder / VERSION_FILE).is_file():
                continue
            try:
                doc = json.loads((folder / VERSION_FILE).read_text())
                version = ModelVersion.from_json(doc)
                if version.version != int(folder.name):
                    raise ValueError(f"it says version {version.version}")
            except (OSError, ValueError, TypeError) as err:
                raise RegistryError(
                    f"{folder / VERSION_FILE} is not a registry record ({err}): move the "
                    "folder out of the registry"
                ) from None
            out.append(
                replace(
                    version,
                    model=str(folder / MODEL_FILE),
                    # recorded with one: kept even if the file went missing, so serving it
                    # fails on the missing file instead of quietly taking encoded vectors
                    preprocessing=str(folder / PREPROCESSING_FILE)
                    if version.preprocessing
                    else None,
                )
            )
        return out

    def verified(self, version: ModelVersion) -> ModelVersion:
        """``version``, its model file checked to be the one registered (by SHA-256)."""
        model = Path(version.model)
        if not model.is_file() or file_sha256(model) != version.model_sha256:
            raise RegistryError(
                f"{version.group} version {version.version}: {model} is missing or is not the "
                f"model registered (sha256 {version.model_sha256[:12]}…); register the model "
                "again"
            )
        return version

    def register(self, model: Path, preprocessing: Path | None = None) -> ModelVersion:
        """A new PendingManualApproval version of ``model`` (checked to be Linear Learner's
        artifact), with the preprocessing and training record found beside it."""
        model = Path(model)
        loaded = artifact.load(model)  # not a Linear Learner artifact: ArtifactError here
        if preprocessing is not None:
            check_preprocessing(loaded, preprocessing)
        record = TrainingRecord.beside(model, file_sha256(model))
        with self._locked():
            # a killed registration's staging: ours by exact name and owner file; under the
            # lock no registration is running, so none is in use
            for stale in stale_folders(self.root, STAGING_PREFIX, self._owner):
                remove_owned(stale)
            # every numbered entry counts as taken, a stray file or folder too
            number = max((int(p.name) for p in _numbered(self.root)), default=0) + 1
            staging = make_owned_folder(self.root, STAGING_PREFIX, self._owner)
            try:
                staging.chmod(0o755)  # mkdtemp's 0700 is for secrets; a version is not one
                shutil.copyfile(model, staging / MODEL_FILE)
                if preprocessing is not None:
                    shutil.copyfile(preprocessing, staging / PREPROCESSING_FILE)
                if record is not None:
                    shutil.copyfile(model.parent / RECORD_FILE, staging / RECORD_FILE)
                version = ModelVersion(
                    group=self.group,
                    version=number,
                    status=PENDING,
                    model=MODEL_FILE,
                    model_sha256=file_sha256(staging / MODEL_FILE),
                    predictor_type=loaded.predictor_type,
                    feature_dim=loaded.feature_dim,
                    created=now(),
                    created_by=who(),
                    preprocessing=PREPROCESSING_FILE if preprocessing is not None else None,
                    data_manifest_sha256=record.data_manifest_sha256 if record else None,
                    metrics=record.metrics.flat() if record else {},
                    hyperparameters=dict(record.hyperparameters) if record else {},
                )
                _write_json(staging / VERSION_FILE, version.to_json())
                staging.rename(self.root / str(number))
                (self.root / str(number) / OWNER_FILE).unlink()  # a version, no longer staging
            except BaseException:
                if staging.exists():
                    remove_owned(staging)
                raise
        return find(self.versions(), number)

    def set_status(self, number: int, status: str, reason: str | None = None) -> ModelVersion:
        """Approve or reject version ``number`` (the rules: :func:`check_transition`)."""
        description = approval_description(reason)
        if not self.root.is_dir():  # a decision creates no registry
            raise RegistryError(
                f"no registry at {self.root}: register a model first (python -m training "
                "register --model …), or pass the --registry folder you registered into"
            )
        with self._locked():
            version = find(self.versions(), number)
            check_transition(version, status)
            changed = replace(
                version,
                status=status,
                modified=now(),
                modified_by=who(),
                # this decision's reason only (one line), never the previous decision's
                approval_description=description,
            )
            folder = self.root / str(number)
            stored = {**changed.to_json(), "model": MODEL_FILE}
            stored["preprocessing"] = PREPROCESSING_FILE if changed.preprocessing else None
            _write_json(folder / VERSION_FILE, stored)
        return find(self.versions(), number)

    @contextmanager
    def _locked(self):
        if self.root.exists() and not self.root.is_dir():
            raise RegistryError(f"--registry {self.root} is a file: pass a folder.")
        self.root.mkdir(parents=True, exist_ok=True)
        with (self.root / LOCK_FILE).open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)  # registrations queue; they are quick
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def _numbered(root: Path) -> list[Path]:
    """The registry's entries named by a version number (digits only)."""
    if not root.is_dir():
        return []
    return [p for p in root.iterdir() if p.name.isascii() and p.name.isdigit()]


def _write_json(path: Path, doc: dict) -> None:
    write_whole(path, json.dumps(doc, indent=2).encode())
