"""Progress where a person reads it: plain lines in logs and pipes, bars only on a terminal."""

import io

from training import progress as pg


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_lines_report_at_most_every_interval_and_once_at_the_end():
    out, clock = io.StringIO(), Clock()
    bar = pg.Lines(1000, "write recordio", "rows", out, clock=clock)
    for _ in range(9):
        clock.now += 1
        bar.update(100)
    assert out.getvalue() == ""  # 9 s: nothing yet
    clock.now += 1.5
    bar.update(50)
    assert out.getvalue() == "write recordio: 950/1,000 rows (95%), 10.5s\n"
    bar.update(50)
    bar.set_postfix_str("validation loss 0.25")
    bar.close()
    bar.close()  # a second close (a finally after an explicit one) adds nothing
    assert out.getvalue().splitlines()[1:] == [
        "write recordio: 1,000/1,000 rows (100%), validation loss 0.25, 10.5s"
    ]


def test_bytes_read_in_megabytes_and_an_unknown_total_is_a_count():
    out = io.StringIO()
    upload = pg.Lines(40_000_000, "upload", "B", out, clock=Clock())
    upload.update(12_000_000)
    upload.close()
    read = pg.Lines(None, "read", "rows", out, clock=Clock())
    read.update(344)
    read.close()
    assert out.getvalue().splitlines() == [
        "upload: 12.0/40.0 MB (30%), 0.0s",
        "read: 344 rows, 0.0s",
    ]


def test_progress_is_lines_off_a_terminal_and_silent_when_disabled(capsys):
    bar = pg.progress(3_000_000, "transform", unit="B")
    assert isinstance(bar, pg.Lines)  # pytest's captured stderr is not a terminal
    bar.update(3_000_000)
    bar.close()
    silent = pg.progress(3, "transform", enabled=False)
    silent.update(3)
    silent.close()
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("transform: 3.0/3.0 MB (100%), ")
