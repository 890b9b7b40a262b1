"""Run ``python -m training`` in a subprocess under an address-space cap (RLIMIT_AS), so a test
that a command stays bounded on a huge input fails (MemoryError, an exit other than the one
expected) instead of taking the machine."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[1]
# The CLI's own address space is ~120-330 MB (interpreter, numpy, pandas, polars, one thread
# each); reading one of the inputs below whole (HUGE_BYTES) does not fit beside it.
CAP_BYTES = 512 << 20
HUGE_BYTES = 384 << 20
ONE_THREAD = {
    name: "1"
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "POLARS_MAX_THREADS")
}


def sparse_file(path: Path, size: int = HUGE_BYTES) -> Path:
    """A file of ``size`` NUL bytes and no line break, made in no time and no disk space."""
    with open(path, "wb") as fh:
        fh.truncate(size)
    return path


def run_capped(
    *args, cap: int = CAP_BYTES, timeout: float = 120, entry: tuple[str, ...] = ("-m", "training")
) -> subprocess.CompletedProcess:
    """``python <entry> <args>`` (the CLI; ``("-c", code)`` for a function a notebook calls)."""

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))

    return subprocess.run(
        [sys.executable, *entry, *map(str, args)],
        cwd=ROOT,
        env={**os.environ, **ONE_THREAD},
        preexec_fn=limit,  # the child sets its own limit, before it starts
        capture_output=True,
        text=True,
        timeout=timeout,
    )
