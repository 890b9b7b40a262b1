"""Progress bars for long work (conversions, uploads, downloads, epochs), on stderr.

A training job's polling reports through timed status lines instead (``aws.job.wait_for_job``).
"""

from __future__ import annotations

import sys


class _Silent:
    def update(self, n: int = 1) -> None:
        pass

    def set_postfix_str(self, text: str) -> None:
        pass

    def close(self) -> None:
        pass


def progress(total: int | None, desc: str, unit: str = "it", enabled: bool = True):
    """A tqdm bar (or a silent stand-in when disabled, e.g. in tests or --quiet)."""
    if not enabled:
        return _Silent()
    from tqdm import tqdm

    return tqdm(
        total=total,
        desc=desc,
        unit=unit,
        unit_scale=True,
        file=sys.stderr,
        mininterval=0.5,
        dynamic_ncols=True,
        leave=False,
    )
