"""Files the user gives and files the project writes.

Whether a path the user gave can be read as a file is said before opening it, so a FIFO does
not block, a folder is not "permission denied" and a symlink loop is not "file not found":
every reader of a user's file asks :func:`file_problem`. A user's text file is read line by
line with a cap on a line's length (:func:`lines`, :func:`line_blocks`), so a file without
line breaks is refused early instead of read whole. An artifact is written whole or not at
all (:func:`write_whole`). A command that writes a folder for a while holds a
:class:`FileLock` (a second run is told who holds it), stages into a folder it can later prove
is its own (:func:`make_owned_folder`: exact name and owner file), and clears what a killed run
left (:func:`stale_folders`, :func:`remove_owned`), never a look-alike.
"""

from __future__ import annotations

import datetime as dt
import errno
import fcntl
import os
import re
import shutil
import socket
import stat
import tempfile
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
    if len(pending) > max_bytes:  # a last line without \n: up to block_bytes long here
        raise ValidationError([too_long(path, first, max_bytes, fix, limit, unit)])
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

# --------------------------------------------------------------------------- locks


class Locked(Exception):  # noqa: N818 (a state, reported by the caller in its own words)
    """Another process holds the lock at ``path``; ``holder`` says which (pid, host, since)."""

    def __init__(self, path: Path, holder: str):
        super().__init__(f"{path} is held by {holder}")
        self.path, self.holder = path, holder


class FileLock:
    """An exclusive, non-blocking ``flock`` on ``path``, recording who holds it.

    The file is removed on release, while still held: a process that opened it meanwhile
    finds, once it has the lock, that its file is no longer the one at ``path`` and opens
    again, so two processes never each hold a lock on a different file of the same name. A
    killed holder leaves the file, unlocked (the kernel drops the lock with the process); the
    next holder takes it over and removes it in turn.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self._handle = None

    def acquire(self) -> FileLock:

        while True:
            # never through a link: a planted one would have us truncate what it points to
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
            handle = os.fdopen(fd, "r+")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.seek(0)
                holder = handle.read().strip() or "another process"
                handle.close()
                raise Locked(self.path, holder) from None
            try:
                same = os.stat(self.path).st_ino == os.fstat(handle.fileno()).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            handle.close()  # the previous holder removed it as we opened it: open anew
        since = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} on {socket.gethostname()} since {since}\n")
        handle.flush()
        self._handle = handle
        return self

    def release(self) -> None:
        if self._handle is not None:
            self.path.unlink(missing_ok=True)
            self._handle.close()
            self._handle = None

    def __enter__(self) -> FileLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def lock_holder(path: Path) -> str | None:
    """Who holds the :class:`FileLock` at ``path`` now (what it recorded), or None: no lock
    file, or one a killed holder left. Never through a link."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    with os.fdopen(fd) as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)  # dropped when closed
        except BlockingIOError:
            return handle.read(4096).strip() or "another process"
        return None


# --------------------------------------------------------------------------- owned folders

OWNER_FILE = ".owner"  # in a folder a command writes whole: which command it was


def make_owned_folder(parent: Path, prefix: str, owner: str) -> Path:
    """A new folder ``parent/<prefix><8 random characters>`` (``tempfile.mkdtemp``) holding
    :data:`OWNER_FILE` with ``owner``: the proof, with the exact name, that a later run may
    remove it (:func:`stale_folders`)."""
    folder = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    (folder / OWNER_FILE).write_text(owner + "\n")
    return folder


def is_owned(folder: Path, owner: str) -> bool:
    """``folder`` is a real folder (not a link) whose :data:`OWNER_FILE` names ``owner``."""
    mark = Path(folder) / OWNER_FILE
    try:
        if Path(folder).is_symlink() or not Path(folder).is_dir() or mark.is_symlink():
            return False
        return mark.is_file() and mark.read_text() == owner + "\n"
    except (OSError, UnicodeDecodeError):
        return False


def stale_folders(parent: Path, prefix: str, owner: str) -> list[Path]:
    """Folders :func:`make_owned_folder` made in ``parent`` with this ``prefix`` and
    ``owner``: the exact name (prefix and mkdtemp's 8 characters) and the owner file, or,
    killed before that file was written, empty. Anything else is someone else's."""
    name = re.compile(re.escape(prefix) + r"[a-z0-9_]{8}")
    found = []
    for path in Path(parent).iterdir():
        if not name.fullmatch(path.name) or path.is_symlink() or not path.is_dir():
            continue
        if is_owned(path, owner) or not any(path.iterdir()):
            found.append(path)
    return sorted(found)


def remove_owned(folder: Path) -> None:
    """Remove an owned folder with its owner file last, so a removal killed halfway leaves a
    folder that is still provably ours (and is finished on the next run)."""
    folder = Path(folder)
    remove_named(folder, [p.name for p in folder.iterdir() if p.name != OWNER_FILE])
    (folder / OWNER_FILE).unlink(missing_ok=True)
    folder.rmdir()
