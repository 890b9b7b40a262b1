"""Files the user gives and files the project writes.

Whether a path the user gave can be read as a file is said before opening it, so a FIFO does
not block, a folder is not "permission denied" and a symlink loop is not "file not found":
every reader of a user's file asks :func:`file_problem`. A user's text file is read line by
line with a cap on a line's length (:func:`lines`, :func:`line_blocks`), so a file without
line breaks is refused early instead of read whole. An artifact is written whole or not at
all (:func:`write_whole`).
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
from pathlib import Path

from training.errors import Problem, ValidationError


def file_problem(path: Path, what: str = "file", fix: str = "check the path") -> Problem | None:
    """Why ``path`` cannot be read as a ``what``, or None."""
    name = str(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        if os.path.islink(path):
            target = os.readlink(path)
            return Problem(name, f"is a symlink to {target}, which does not exist", fix)
        return Problem(name, f"{what} not found", fix)
    except OSError as err:
        if err.errno == errno.ELOOP:
            return Problem(name, "is a symlink loop (links that point at each other)", fix)
        return Problem(name, f"cannot be read: {err.strerror}", fix)
    if stat.S_ISDIR(st.st_mode):
        return Problem(name, f"is a folder, not a {what}", "pass the file itself")
    if not stat.S_ISREG(st.st_mode):
        kind = "a FIFO (named pipe)" if stat.S_ISFIFO(st.st_mode) else "not a regular file"
        return Problem(
            name, f"is {kind}; it would be read without end or not at all", "pass a regular file"
        )
    try:
        with open(path, "rb"):
            pass
    except OSError as err:
        return Problem(name, f"cannot be read: {err.strerror}", "fix its permissions")
    return None


def remove_named(folder: Path, names) -> None:
    """Remove these entries of ``folder`` (files, folders, links; a link itself, never what it
    points to) and nothing else: what a command re-run into the same folder replaces."""
    for name in names:
        path = Path(folder) / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()


def write_whole(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` whole or not at all: a temporary file renamed into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except BaseException:  # interrupted or failed: no temporary file left behind
        tmp.unlink(missing_ok=True)
        raise
    return path


def lines(path: Path, max_bytes: int, fix: str, limit: str = "the limit", unit: str = "row"):
    """(line number, bytes) of a text file, each with its ``\\n`` (a last line without one
    gets it): split at ``\\n`` only, streamed; a line longer than ``max_bytes`` with its
    ``\\n`` is refused (ValidationError naming the file and line) after reading at most that
    much of it, so a file without line breaks costs ``max_bytes`` of memory, not its size."""
    with open(path, "rb") as fh:
        number = 0
        while line := fh.readline(max_bytes + 1):
            number += 1
            line = line if line.endswith(b"\n") else line + b"\n"
            if len(line) > max_bytes:
                raise ValidationError([too_long(path, number, max_bytes, fix, limit, unit)])
            yield number, line


def line_blocks(
    path: Path, block_bytes: int, max_bytes: int, fix: str, limit: str = "the limit", unit="row"
):
    """(first line number, lines without ``\\n``) in blocks of about ``block_bytes``: lines
    split at ``\\n`` only, and one longer than ``max_bytes`` refused as :func:`lines` does;
    memory holds a block and at most one line."""
    first, pending = 1, b""
    with open(path, "rb") as fh:
        while data := fh.read(block_bytes):
            pending += data
            cut = pending.rfind(b"\n") + 1
            if not cut:
                if len(pending) > max_bytes:
                    raise ValidationError([too_long(path, first, max_bytes, fix, limit, unit)])
                continue
            block = pending[: cut - 1].split(b"\n")
            pending = pending[cut:]
            if max(map(len, block)) > max_bytes:
                long = next(i for i, line in enumerate(block) if len(line) > max_bytes)
                raise ValidationError([too_long(path, first + long, max_bytes, fix, limit, unit)])
            yield first, block
            first += len(block)
    if pending:
        yield first, [pending]


def too_long(
    path, number: int, max_bytes: int, fix: str, limit: str = "the limit", unit: str = "row"
) -> Problem:
    """A line over ``limit`` (``max_bytes``), said before it is read whole."""
    return Problem(
        str(path),
        f"a line over {limit} ({max_bytes:,} bytes; a file without line breaks?), "
        "refused before it is read whole",
        fix,
        row=number,
        unit=unit,
    )
