"""Progress for long work (conversions, uploads, downloads, epochs), on stderr.

A bar on a terminal; plain lines when stderr is a log or a pipe, where a bar's carriage
returns leave one unreadable line. A training job's polling reports through timed status lines
instead (``aws.job.wait_for_job``).
"""

from __future__ import annotations

import sys
import time

LINE_EVERY_S = 10.0  # a plain progress line at most this often, and one when the work ends


class _Silent:
    def update(self, n: int = 1) -> None:
        pass

    def set_postfix_str(self, text: str) -> None:
        pass

    def close(self) -> None:
        pass


class Lines:
    """Progress as plain lines: ``write recordio: 333/333 rows (100%), 0.1s``, one every
    ``LINE_EVERY_S`` while the work goes on and one when it is closed."""

    def __init__(self, total, desc: str, unit: str, stream, clock=time.monotonic):
        self.total, self.desc, self.unit, self.stream, self.clock = total, desc, unit, stream, clock
        self.n, self.postfix = 0, ""
        self.started = self.last = clock()
        self.closed = False

    def update(self, n: int = 1) -> None:
        self.n += n
        now = self.clock()
        if now - self.last >= LINE_EVERY_S:
            self.last = now
            self._line(now)

    def set_postfix_str(self, text: str) -> None:
        self.postfix = text

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._line(self.clock())

    def _line(self, now: float) -> None:
        done = _amount(self.n, self.unit)
        if self.total:
            done = f"{_amount(self.n, self.unit, self.total)}/{_amount(self.total, self.unit)}"
            done += f" ({100 * self.n / self.total:.0f}%)"
        extra = f", {self.postfix}" if self.postfix else ""
        print(f"{self.desc}: {done}{extra}, {now - self.started:.1f}s", file=self.stream)


def _amount(n: float, unit: str, scale_of: float | None = None) -> str:
    """Bytes in MB (scaled as the total is, so ``12.0/40.0 MB`` reads as one unit); anything
    else counted, with its unit after the total."""
    if unit == "B":
        text = f"{n / 1e6:.1f}"
        return text if scale_of is not None else f"{text} MB"
    count = f"{n:,.0f}" if float(n).is_integer() else f"{n:,.1f}"
    return count if scale_of is not None else f"{count} {unit}"


def progress(total: int | None, desc: str, unit: str = "it", enabled: bool = True):
    """A tqdm bar on a terminal, plain lines elsewhere, or nothing (disabled: tests, --quiet)."""
    if not enabled:
        return _Silent()
    if not sys.stderr.isatty():
        return Lines(total, desc, unit, sys.stderr)
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
