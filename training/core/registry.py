"""The model registry's contract: versions of a model group, their approval status, and what
each status allows. One home for the local registry (:mod:`training.local.registry`) and
SageMaker Model Registry (:mod:`training.aws.registry`), which keep the same records.

A version starts ``PendingManualApproval`` (SageMaker's ``ModelApprovalStatus``). ``approve``
takes a pending version to ``Approved``; ``reject`` takes a pending or approved one to
``Rejected`` (withdrawing an approval). A rejected version stays rejected here: SageMaker would
let it be approved again, but a model someone rejected for a reason comes back as a new version
(register it again), so the history says what happened. Only an ``Approved`` version is served
by ``deploy --approved`` / ``serve --approved``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

from training.core.losses import BINARY, MULTICLASS, REGRESSOR
from training.errors import RegistryError

PENDING, APPROVED, REJECTED = "PendingManualApproval", "Approved", "Rejected"
STATUSES = (PENDING, APPROVED, REJECTED)
# UpdateModelPackage's ApprovalDescription holds at most 1024 characters of pattern ``.*``
# (botocore's SageMaker model, shape ApprovalDescription: max 1024; ``.`` matches no line
# break, so a reason is sent as one line). botocore checks neither before sending and moto
# stores anything, so a longer --reason would reach SageMaker only to be refused; both
# registries refuse it first, so they keep the same records.
MAX_APPROVAL_DESCRIPTION = 1024
# what `registry` lists of each version's metrics, by predictor type: names a SageMaker job
# reports as well as the local trainer (DG "Tune a linear learner model", its metric table:
# test:mse, not test:rmse, which only the local record had; training.core.tuning.OBJECTIVES)
LISTED_METRICS = {
    BINARY: ("test:binary_classification_accuracy", "test:roc_auc_score"),
    MULTICLASS: ("test:multiclass_accuracy", "test:macro_f_beta"),
    REGRESSOR: ("test:mse", "test:absolute_loss"),
}


@dataclass(frozen=True)
class ModelVersion:
    """One registered version: the model, what it was trained on and scored, its status."""

    group: str
    version: int
    status: str
    model: str  # where model.tar.gz is: a path (local) or s3:// URL (AWS)
    model_sha256: str
    predictor_type: str
    feature_dim: int
    created: str  # ISO 8601, UTC
    created_by: str | None = None
    preprocessing: str | None = None  # its preprocessing.json / featurizer.tar.gz, if any
    data_manifest_sha256: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    hyperparameters: dict[str, str] = field(default_factory=dict)
    modified: str | None = None
    modified_by: str | None = None
    approval_description: str | None = None
    arn: str | None = None  # SageMaker's model package ARN

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, doc: dict) -> ModelVersion:
        """A stored record, its shape checked (ValueError says what is wrong)."""
        if not isinstance(doc, dict):
            raise ValueError("not a JSON object")
        known = {f.name for f in fields(cls)}
        version = cls(**{k: v for k, v in doc.items() if k in known})
        if not isinstance(version.version, int) or isinstance(version.version, bool):
            raise ValueError(f"version {version.version!r} is not a number")
        if version.status not in STATUSES:
            raise ValueError(f"status {version.status!r} is not one of {', '.join(STATUSES)}")
        if not isinstance(version.metrics, dict) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool)
            for v in version.metrics.values()
        ):
            raise ValueError("metrics are not numbers by name")
        return version

    def listed_metrics(self) -> dict[str, float]:
        names = LISTED_METRICS.get(self.predictor_type, ())
        return {n: self.metrics[n] for n in names if n in self.metrics}


def check_preprocessing(model, preprocessing) -> None:
    """The preprocessing registered with ``model`` must load and make the features it takes:
    a mismatch is refused before a version exists, not found when it is served."""
    from training.core.featurizer import Featurizer, PreprocessingError
    from training.core.inference import InferencePipeline, PipelineMismatchError

    try:
        InferencePipeline(model, Featurizer.load(preprocessing))
    except (PreprocessingError, PipelineMismatchError) as err:
        raise RegistryError(
            f"{preprocessing}: {err}; nothing was registered (pass the preprocessing.json "
            "the model was trained behind, or none)"
        ) from None


def check_transition(version: ModelVersion, to: str) -> None:
    """Whether ``version`` may go to status ``to`` (APPROVED or REJECTED); says why not."""
    where = f"{version.group} version {version.version}"
    if to == APPROVED:
        if version.status == APPROVED:
            raise RegistryError(f"{where} is already Approved.")
        if version.status == REJECTED:
            reason = f" ({version.approval_description})" if version.approval_description else ""
            raise RegistryError(
                f"{where} was Rejected{reason}: a rejected version is not approved again; "
                "register the model again for a new version."
            )
    elif to == REJECTED:
        if version.status == REJECTED:
            raise RegistryError(f"{where} is already Rejected.")
    else:
        raise RegistryError(f"unknown approval status {to!r}: use {APPROVED} or {REJECTED}.")


def approval_description(reason: str | None) -> str | None:
    """A decision's ``--reason`` as both registries keep it: one line (its whitespace runs made
    one space), at most :data:`MAX_APPROVAL_DESCRIPTION` characters; None when there is none."""
    text = " ".join((reason or "").split())
    if len(text) > MAX_APPROVAL_DESCRIPTION:
        raise RegistryError(
            f"--reason: {len(text)} characters; a version's approval description holds at most "
            f"{MAX_APPROVAL_DESCRIPTION} (SageMaker's ApprovalDescription): shorten it. "
            "Nothing was changed."
        )
    return text or None


def check_deployable(version: ModelVersion) -> None:
    """Only an Approved version is deployed or served from the registry."""
    if version.status != APPROVED:
        raise RegistryError(
            f"{version.group} version {version.version} is {version.status}, not Approved: "
            + (
                f"approve it first (approve --version {version.version})."
                if version.status == PENDING
                else "it is not deployed; approve another version."
            )
        )


def latest_approved(versions: list[ModelVersion]) -> ModelVersion:
    """The highest-numbered Approved version; a clear error when there is none."""
    approved = [v for v in versions if v.status == APPROVED]
    if not approved:
        pending = [v.version for v in versions if v.status == PENDING]
        hint = (
            f"pending: {', '.join(map(str, pending))} (approve --version N)"
            if pending
            else "register a model, then approve it"
        )
        raise RegistryError(f"no Approved version in the registry; {hint}.")
    return max(approved, key=lambda v: v.version)


def find(versions: list[ModelVersion], number: int) -> ModelVersion:
    for v in versions:
        if v.version == number:
            return v
    have = ", ".join(str(v.version) for v in sorted(versions, key=lambda v: v.version)) or "none"
    raise RegistryError(f"no version {number} in the registry (versions: {have}).")
