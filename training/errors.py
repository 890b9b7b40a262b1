"""Every error a user can fix, and what had already happened when it was raised.

:class:`UserError` is the base: the command line prints one (``error: …``) and exits 2 instead
of showing a traceback. Each raise site states its ``outcome`` honestly: preflight checks say
nothing was uploaded or started, a failed AWS step says what it left behind, and a check that
knows nothing of the sort says nothing. The subclasses name what was wrong: data
(:class:`ValidationError`, with every :class:`Problem` found), hyperparameters, a model file,
the model record; the AWS steps that fail after taking effect are ValidationErrors whose
outcome says so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# What had happened when the error was raised, for the raise sites that know.
NOTHING_STARTED = "nothing was uploaded or started."
JOB_RAN = (
    "the channels were uploaded and the job ran (and billed) until it failed; rerunning "
    "uploads only changed files."
)
TRANSFORM_RAN = "the input was uploaded and the job ran (and billed) until it failed."
DEPLOY_STOPPED = (
    "the deploy stopped at this step; the steps printed above it took effect "
    "(bash scripts/destroy-all.sh removes everything)."
)


class UserError(ValueError):
    """A mistake the user can fix; ``outcome`` says what had happened (None: nothing to say)."""

    outcome: str | None = None

    def __init__(self, message: str, outcome: str | None = None):
        if outcome is not None:
            self.outcome = outcome
        self.message = message
        super().__init__(self.report())

    def report(self) -> str:
        return self.message + (f"\n({self.outcome})" if self.outcome else "")

    def after(self, outcome: str) -> UserError:
        """The same error, raised where ``outcome`` is known (e.g. an AWS preflight)."""
        return type(self)(self.message, outcome)


@dataclass
class Problem:
    """One thing wrong with the data, where it is, and what to do about it."""

    file: str
    message: str
    fix: str
    row: int | None = None  # 1-based line / record number
    column: int | None = None  # 1-based
    offset: int | None = None  # byte offset (RecordIO)
    unit: str = "row"  # "row" (CSV line) or "record" (RecordIO)

    def __str__(self) -> str:
        where = [self.file]
        if self.row is not None:
            where.append(f"{self.unit} {self.row}")
        if self.column is not None:
            where.append(f"column {self.column}")
        if self.offset is not None:
            where.append(f"byte offset {self.offset}")
        return f"{', '.join(where)}: {self.message}\n    fix: {self.fix}"


class ValidationError(UserError):
    """Input that would fail (or silently mistrain) on SageMaker; lists every problem found."""

    def __init__(self, problems: list[Problem], outcome: str | None = None):
        self.problems = problems
        if outcome is not None:
            self.outcome = outcome
        super().__init__("", outcome)

    def report(self) -> str:
        n = len(self.problems)
        head = f"{n} problem{'s' if n != 1 else ''} found" + (
            f"; {self.outcome}" if self.outcome else ":"
        )
        return head + "\n" + "\n".join(f"- {p}" for p in self.problems)

    def after(self, outcome: str) -> ValidationError:
        return type(self)(self.problems, outcome)


class HyperparameterError(UserError):
    """One or more hyperparameters are invalid; the message lists each with its fix."""


class TuningError(UserError):
    """A tuning definition (ranges, objective, strategy, limits) that would fail or mislead;
    raised before any data is read or any job started, naming the flag and the fix."""

    outcome = NOTHING_STARTED


class RegistryError(UserError):
    """A registry request that cannot be honoured: no such version, a status that does not
    allow it (approving a rejected version, deploying a pending one)."""


class ArtifactError(UserError):
    """The file is not a Linear Learner model artifact (or it is damaged); says what it is."""


class EndpointStartError(UserError):
    """The local endpoint could not start (its worker threads, under the process's limits)."""


class ModelRecordError(UserError):
    """A file that is not a model record (``models/latest.json``)."""


class JobFailedError(ValidationError):
    """The training job ran and failed: unlike a preflight error, the upload and job happened."""

    outcome = JOB_RAN


class TransformFailedError(ValidationError):
    """The batch transform job ran and failed: the input was uploaded and instances billed."""

    outcome = TRANSFORM_RAN


class TeardownError(UserError):
    """A teardown step that would be unsafe to take: the project's stacks still own what it
    would delete, or a job has not stopped writing to the bucket it would empty. Raised before
    the step; ``outcome`` says what had already been done."""


class DeployStepError(ValidationError):
    """A deploy step failed after the steps before it took effect."""

    outcome = DEPLOY_STOPPED


def known_fix(reason: str | None, known: list[tuple[str, str]], otherwise: str) -> str:
    """The fix for the first known pattern found in a SageMaker job's failure reason."""
    fixes = [fix for pattern, fix in known if re.search(pattern, reason or "")]
    return fixes[0] if fixes else otherwise
