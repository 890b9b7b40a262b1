"""prepare's --out against kills and a second prepare: real subprocesses, killed (SIGKILL) or
paused (SIGSTOP) at prepare's own checkpoints, then a next run that finds everything whole."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from training.data.prepare import SIGNAL_AT_ENV, Beside
from training.files import OWNER_FILE

ROOT = Path(__file__).parents[1]


def _data(tmp_path: Path, name: str = "data.csv", bad: bool = False) -> Path:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.standard_normal(200).round(3), "y": rng.integers(0, 2, 200)})
    if bad:
        frame["x"] = frame["x"].astype(object)
        frame.loc[150, "x"] = "oops"
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


def _start(data: Path, out: Path, signal_at: str | None = None, seed: int = 0):
    env = {k: v for k, v in os.environ.items() if k != SIGNAL_AT_ENV}
    if signal_at:
        env[SIGNAL_AT_ENV] = signal_at
    args = [
        sys.executable, "-m", "training", "prepare", "--quiet", "--data", str(data),
        "--label", "y", "--predictor-type", "binary_classifier", "--out", str(out),
        "--format", "csv", "--seed", str(seed),
    ]  # fmt: skip
    return subprocess.Popen(
        args,
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _run(data: Path, out: Path, signal_at: str | None = None, seed: int = 0):
    proc = _start(data, out, signal_at, seed)
    stdout, stderr = proc.communicate(timeout=120)
    return proc.returncode, stdout, stderr


def _tree(folder: Path) -> dict:
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def _seed(out: Path) -> int:
    import json

    return json.loads((out / "manifest.json").read_text())["seed"]


def _plant_look_alikes(tmp_path: Path) -> dict:
    """Folders beside --out that resemble prepare's staging but are not this --out's:
    wrong length, capitals, no owner file, another owner, another --out's (by name, and by
    owner file), no leading dot, a link to an owned folder. Returns their contents, to find
    again untouched."""
    ours = Beside(tmp_path / "out").owner + "\n"
    planted = {
        ".out.prepare-abcdefgh": {"notes.txt": "mine, no owner file"},
        ".out.prepare-zzzzzzzz": {OWNER_FILE: "someone else\n", "data.bin": "theirs"},
        ".out.prepare-abc": {},
        ".out.prepare-ABCDEFGH": {},
        ".out.prepare-abcdefghi": {},
        ".out2.prepare-abcdefgh": {OWNER_FILE: ours},
        # prepared as an --out of its own, under a name of our staging's shape
        ".out.prepare-12345678": {OWNER_FILE: Beside(tmp_path / "other").owner + "\n"},
        "out.prepare-abcdefgh": {},
        "elsewhere": {OWNER_FILE: ours, "keep.txt": "kept"},
    }
    for name, files in planted.items():
        (tmp_path / name).mkdir()
        for file, text in files.items():
            (tmp_path / name / file).write_text(text)
    (tmp_path / ".out.prepare-linktoit").symlink_to(tmp_path / "elsewhere")
    return {name: _tree(tmp_path / name) for name in planted}


def test_killed_runs_leave_staging_that_the_next_run_clears_and_look_alikes_survive(tmp_path):
    data, out = _data(tmp_path), tmp_path / "out"
    planted = _plant_look_alikes(tmp_path)
    for _ in range(2):  # killed with everything written, just before the swap
        code, _, _ = _run(data, out, "staged:KILL")
        assert code == -signal.SIGKILL
    ours = [
        p for p in tmp_path.glob(".out.prepare-*") if p.name not in planted and not p.is_symlink()
    ]
    # the second run cleared the first's staging; its own, killed, is left to the next run
    assert len(ours) == 1 and (ours[0] / "manifest.json").exists()
    assert (ours[0] / OWNER_FILE).read_text() == Beside(out).owner + "\n"
    assert not out.exists()
    code, _, stderr = _run(data, out)
    assert code == 0, stderr
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == sorted([*planted, ".out.prepare-linktoit", "data.csv", "out"])
    for name, files in planted.items():
        assert _tree(tmp_path / name) == files, name
    assert (tmp_path / ".out.prepare-linktoit").is_symlink()


def test_a_kill_between_or_after_the_swaps_renames_is_recovered_by_the_next_run(tmp_path):
    data, out = _data(tmp_path), tmp_path / "out"
    assert _run(data, out)[0] == 0
    before = _tree(out)
    code, _, _ = _run(data, out, "out-moved:KILL", seed=1)
    assert code == -signal.SIGKILL and not out.exists()  # between the two renames
    out.mkdir()  # the user, seeing --out gone, makes an empty one: it is not ours to keep
    # the next run restores the old output first; this one then fails on its data
    bad = _data(tmp_path, "bad.csv", bad=True)
    code, _, stderr = _run(bad, out)
    assert code == 2 and "'x' holds 'oops'" in stderr and "Traceback" not in stderr
    assert _tree(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.csv", "data.csv", "out"]
    # killed after the new output took --out's name, before the old one was removed
    code, _, _ = _run(data, out, "swapped:KILL", seed=1)
    assert code == -signal.SIGKILL and _seed(out) == 1
    assert (tmp_path / ".out.prepare.previous").is_dir()
    code, _, stderr = _run(data, out, seed=2)
    assert code == 0, stderr
    assert _seed(out) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.csv", "data.csv", "out"]


def _stopped(pid: int) -> bool:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat[stat.rindex(")") + 2] == "T"


def _wait_stopped(proc) -> None:
    """Until ``proc`` has stopped itself (SIGSTOP at its checkpoint), at most a minute."""
    deadline = time.monotonic() + 60
    while not _stopped(proc.pid):
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.05)


def test_a_second_prepare_into_the_same_out_is_told_who_holds_it(tmp_path):
    data, out = _data(tmp_path), tmp_path / "out"
    first = _start(data, out, "locked:STOP")  # paused holding the lock
    try:
        _wait_stopped(first)
        code, _, stderr = _run(data, out, seed=1)
        assert code == 2 and "Traceback" not in stderr
        assert stderr.strip().splitlines() == [
            f"error: --out {out} is locked by another prepare (pid {first.pid} on "
            f"{os.uname().nodename} since {stderr.split(' since ')[1].split(')')[0]}): wait for "
            "it to finish, or pass another --out."
        ]
    finally:
        os.kill(first.pid, signal.SIGCONT)
    _, stderr = first.communicate(timeout=120)
    assert first.returncode == 0, stderr
    assert _seed(out) == 0  # the holder's output; the refused run wrote nothing
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.csv", "out"]


def test_a_link_planted_as_the_lock_is_never_followed(tmp_path):
    data, out = _data(tmp_path), tmp_path / "out"
    precious = tmp_path / "precious.txt"
    precious.write_text("keep me")
    (tmp_path / ".out.prepare.lock").symlink_to(precious)
    code, _, stderr = _run(data, out)
    assert code == 2 and "Traceback" not in stderr
    assert f"cannot take the lock {tmp_path / '.out.prepare.lock'}" in stderr
    assert "remove it if it is a link or a folder" in stderr
    assert precious.read_text() == "keep me" and not out.exists()


def test_a_prepare_into_a_folder_inside_another_prepares_out_is_refused(tmp_path):
    """--out out/inner while a prepare into out is under way: the inner run said it was done,
    then the outer one's swap replaced out as a whole and its output vanished. Refused now,
    naming the holder; and inside a finished output, which the next prepare into it replaces."""
    data, out = _data(tmp_path), tmp_path / "out"
    inner = out / "inner"
    outer = _start(data, out, "staged:STOP")  # paused holding the lock, its output staged
    try:
        _wait_stopped(outer)
        code, _, stderr = _run(data, inner, seed=1)
        assert code == 2 and "Traceback" not in stderr
        assert (
            f"- {inner}: --out is inside {out}, which another prepare is writing (pid "
            f"{outer.pid} on {os.uname().nodename} since "
        ) in stderr
        assert f"a prepare into {out} replaces it as a whole, and this output with it" in stderr
        assert f"fix: pass an --out outside {out}\n" in stderr
    finally:
        os.kill(outer.pid, signal.SIGCONT)
    _, stderr = outer.communicate(timeout=120)
    assert outer.returncode == 0, stderr
    assert _seed(out) == 0 and not inner.exists()
    code, _, stderr = _run(data, inner, seed=1)  # inside the finished output
    assert code == 2 and f"- {inner}: --out is inside {out}, a prepare output: " in stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.csv", "out"]
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == [OWNER_FILE]


def test_an_out_that_is_a_link_is_refused_and_nothing_is_moved(tmp_path):
    """--out a link to a folder: the swap moved the link aside, emptied the folder through it,
    failed on 'Not a directory' and left the link in the way of every later run."""
    data, real, link = _data(tmp_path), tmp_path / "real", tmp_path / "link"
    real.mkdir()  # empty: prepare's to fill, were it --out itself
    link.symlink_to(real)
    code, _, stderr = _run(data, link)
    assert code == 2 and "Traceback" not in stderr
    assert f"- {link}: --out is a link (to {real}); prepare replaces its --out folder" in stderr
    assert "fix: pass the folder itself (or a new path) for --out" in stderr
    assert link.is_symlink() and os.readlink(link) == str(real) and not any(real.iterdir())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.csv", "link", "real"]
