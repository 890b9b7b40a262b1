"""The project's one error type for user mistakes: every problem found, where, and the fix.

Raised by validation, preparation, hyperparameter checks and the AWS steps alike; the command
line prints it (``error: …``) and exits 2 instead of showing a traceback. Subclasses raised
after a step took effect change ``outcome`` to say what already happened.
"""

from __future__ import annotations

from dataclasses import dataclass


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


class ValidationError(ValueError):
    """The data would fail (or silently mistrain) on SageMaker; lists every problem found."""

    # what happened before the error; a subclass raised after a step took effect says so
    outcome = "nothing was uploaded or started."

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__(self.report())

    def report(self) -> str:
        n = len(self.problems)
        head = f"{n} problem{'s' if n != 1 else ''} found; {self.outcome}"
        return head + "\n" + "\n".join(f"- {p}" for p in self.problems)


def known_fix(reason: str | None, known: list[tuple[str, str]], otherwise: str) -> str:
    """The fix for the first known pattern found in a SageMaker job's failure reason."""
    import re

    fixes = [fix for pattern, fix in known if re.search(pattern, reason or "")]
    return fixes[0] if fixes else otherwise
