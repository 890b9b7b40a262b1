"""``validate`` on a raw CSV (the notebook's ``raw_checks.validate_raw_csv``) and ``prepare``
decide label copies alike: the first rows name the candidates, and both refuse only those that
hold on every row of the file, with the same message. validate refused a column that copied
the label in its first rows and departed from it later, which prepare accepts."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from training.data import raw_checks, raw_csv, sizing
from training.errors import ValidationError

ROOT = Path(__file__).parents[1]
FIRST = 100_000  # the first rows prepare (and validate) check on a narrow file, by default
ROWS = FIRST + 500


def prepare_cli(tmp_path: Path, data: Path, label: str, predictor_type: str):
    """``python -m training prepare …`` as a user runs it."""
    return subprocess.run(
        [
            sys.executable, "-m", "training", "prepare", "--quiet", "--data", str(data),
            "--label", label, "--predictor-type", predictor_type, "--out", str(tmp_path / "out"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip


def validate(path: Path, label: str, predictor_type: str, **kw) -> ValidationError | None:
    """The notebook's check; the error it raises, if any."""
    try:
        raw_checks.validate_raw_csv(path, label, predictor_type, **kw)
    except ValidationError as err:
        return err
    return None


def sex_file(path: Path, depart_at: int | None, rows: int = ROWS) -> Path:
    """Label ``sex`` (M/F), a feature ``x``, and ``is_male``, the label as 1/0 on every row
    but data row ``depart_at`` (0-based), where it is flipped."""
    rng = np.random.default_rng(11)
    sex = rng.choice(["M", "F"], rows)
    frame = pd.DataFrame({"sex": sex, "x": rng.standard_normal(rows).round(3)})
    frame["is_male"] = (sex == "M").astype(int)
    if depart_at is not None:
        frame.loc[depart_at, "is_male"] = 1 - frame.loc[depart_at, "is_male"]
    frame.to_csv(path, index=False)
    return path


def price_file(path: Path, depart_at: int | None) -> Path:
    """A regressor's label ``price`` (a value a row) and ``price_cents``, 100 x price on every
    row but data row ``depart_at``, where it is off the line by 50.00."""
    rng = np.random.default_rng(12)
    x = rng.standard_normal(ROWS).round(3)
    price = (40 + 10 * x + rng.standard_normal(ROWS)).round(9)  # no value repeats by chance
    frame = pd.DataFrame({"x": x, "price": price, "price_cents": (price * 100).round(7)})
    if depart_at is not None:
        frame.loc[depart_at, "price_cents"] += 5000
    frame.to_csv(path, index=False)
    return path


def test_the_first_rows_are_the_default_budget_and_name_the_candidate(tmp_path):
    """What the tests below stand on: on these files, with no hook, both check the first
    100 000 rows, and those rows name the column (so a later departure is met only beyond
    them)."""
    path = sex_file(tmp_path / "later.csv", depart_at=FIRST + 200)
    assert sizing.check_rows(path) == FIRST
    first = pd.read_csv(path, nrows=FIRST)
    copies = raw_checks.check_raw_sample(path, first, "sex", "binary_classifier")
    assert copies.found and list(copies.forward) == ["is_male"]


def test_a_column_that_departs_from_the_label_after_the_first_rows_passes_both(tmp_path):
    path = sex_file(tmp_path / "later.csv", depart_at=FIRST + 200)  # row 100 202
    assert validate(path, "sex", "binary_classifier") is None
    res = prepare_cli(tmp_path, path, "sex", "binary_classifier")
    assert res.returncode == 0, res.stderr
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert "is_male" in manifest["input_columns"]["numeric"]


def test_a_column_that_copies_the_label_on_every_row_is_refused_by_both_alike(tmp_path):
    path = sex_file(tmp_path / "copy.csv", depart_at=None)
    err = validate(path, "sex", "binary_classifier")
    assert err is not None
    assert (
        f"{path}, column 3: column 'is_male' is the label 'sex' under other values "
        f"('M' -> 1, 'F' -> 0) in all {ROWS} labelled rows"
    ) in str(err)
    assert "fix: remove the column, or pass --drop 'is_male'" in str(err)
    res = prepare_cli(tmp_path, path, "sex", "binary_classifier")
    assert res.returncode == 2 and res.stderr == f"error: {err}\n"
    assert validate(path, "sex", "binary_classifier", drop=("is_male",)) is None


def test_a_regression_label_on_a_straight_line_is_decided_over_every_row_by_both(tmp_path):
    later = price_file(tmp_path / "later.csv", depart_at=FIRST + 300)
    assert validate(later, "price", "regressor") is None
    res = prepare_cli(tmp_path, later, "price", "regressor")
    assert res.returncode == 0, res.stderr
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert "price_cents" in manifest["input_columns"]["numeric"]

    path = price_file(tmp_path / "copy.csv", depart_at=None)
    err = validate(path, "price", "regressor")
    assert err is not None
    assert (
        f"{path}, column 3: column 'price_cents' is the label 'price' on a straight line "
        f"('price' = 0.01 x 'price_cents') in all {ROWS} rows holding both"
    ) in str(err)
    assert "fix: remove the column, or pass --drop 'price_cents'" in str(err)
    res = prepare_cli(tmp_path, path, "price", "regressor")
    assert res.returncode == 2 and res.stderr == f"error: {err}\n"


def test_a_ragged_row_met_while_checking_a_candidate_is_named_as_prepare_names_it(tmp_path):
    path = sex_file(tmp_path / "ragged.csv", depart_at=None)
    lines = path.read_text().splitlines(keepends=True)
    lines[FIRST + 300] = lines[FIRST + 300].rstrip("\n") + ",7\n"  # data row 100 300
    path.write_text("".join(lines))
    err = validate(path, "sex", "binary_classifier")
    assert err is not None
    assert (
        f"{path}, row {FIRST + 301}: has 4 fields but the header has 3\n"
        "    fix: fix the row (a stray comma? quote fields that contain commas)"
    ) in str(err)
    res = prepare_cli(tmp_path, path, "sex", "binary_classifier")
    assert res.returncode == 2 and res.stderr == f"error: {err}\n"


def test_validate_reads_on_only_while_a_candidate_is_left(tmp_path, monkeypatch):
    """No candidate in the first rows: no second read (it costs what it did). A candidate:
    the file is read on in prepare's chunks until it departs, or to the end."""
    monkeypatch.setattr(sizing, "CHUNK_ROWS", 100)  # the first rows and chunks: 100 rows
    monkeypatch.setattr(sizing, "MIN_ROWS", 50)
    chunks_read = []

    def counting(*args, **kwargs):  # prepare's real reader, each chunk it yields noted
        for chunk in raw_csv.read_chunks(*args, **kwargs):
            chunks_read.append(chunk.index)
            yield chunk

    monkeypatch.setattr(raw_checks, "read_chunks", counting)
    plain = sex_file(tmp_path / "plain.csv", depart_at=None, rows=400)
    pd.read_csv(plain).drop(columns="is_male").to_csv(plain, index=False)
    assert validate(plain, "sex", "binary_classifier") is None
    assert chunks_read == []

    later = sex_file(tmp_path / "later.csv", depart_at=150, rows=400)
    assert validate(later, "sex", "binary_classifier") is None
    assert chunks_read == [0, 1]  # the departure, in the second chunk, ends the read
    chunks_read.clear()
    assert validate(later, "sex", "binary_classifier", sample_rows=120) is None
    assert chunks_read == [0, 1]

    copy = sex_file(tmp_path / "copy.csv", depart_at=None, rows=400)
    chunks_read.clear()
    err = validate(copy, "sex", "binary_classifier")
    assert err is not None and "'is_male' is the label 'sex'" in str(err)
    assert "in all 400 labelled rows" in str(err)
    assert chunks_read == [0, 1, 2, 3]


@pytest.mark.parametrize("engine", ["polars-text", "pandas"])
def test_a_file_another_engine_reads_is_checked_from_its_first_row_again(
    tmp_path, monkeypatch, engine
):
    """When prepare's reader gives up on an engine part-way, after chunks were checked (a
    cell that is not a number past the rows polars typed the column from; a blank line, which
    only pandas reads right), the check starts again from the first row, with every candidate
    the first rows named, as prepare's pass 1 does: each row counted once."""
    monkeypatch.setattr(sizing, "CHUNK_ROWS", 100)
    monkeypatch.setattr(sizing, "MIN_ROWS", 50)
    engines = []

    def reading(path, chunk_rows, engine="polars", exact=()):
        engines.append(engine)
        return raw_csv.read_chunks(path, chunk_rows, engine, exact)

    monkeypatch.setattr(raw_checks, "read_chunks", reading)
    rows = 10_400 if engine == "polars-text" else 400  # polars types from 10 000 rows
    path = sex_file(tmp_path / "copy.csv", depart_at=None, rows=rows)
    lines = path.read_text().splitlines(keepends=True)
    if engine == "polars-text":
        sex, _, is_male = lines[-50].split(",")
        lines[-50] = f"{sex},n/a,{is_male}"  # missing to pandas, not a number to polars
    else:
        lines.insert(301, "\n")
    path.write_text("".join(lines))
    err = validate(path, "sex", "binary_classifier")
    assert engines == ["polars", engine]
    assert err is not None and f"in all {rows} labelled rows" in str(err)


def test_the_pass_over_every_row_stays_bounded_under_an_address_space_cap(tmp_path, monkeypatch):
    """10M rows (104 MB) whose candidate holds to the last row, read to the end under a
    768 MiB address-space cap; reading the file whole does not fit under it. One malloc arena
    (glibc reserves 64 MB of address space for each thread's: a gigabyte of reservations with
    polars' threads, none of it memory), so that the cap measures what is held. Measured:
    address space 397 MB (100 000 rows) -> 531 MB (10M); peak RSS 129 MB -> 170 MB at 1M
    rows, 205 MB at 4M, 217 MB at 10M, 221 MB at 30M (312 MB); the whole read 1 053 MB."""
    from memory_cap import run_capped

    monkeypatch.setenv("MALLOC_ARENA_MAX", "1")
    first = sex_file(tmp_path / "first.csv", depart_at=None, rows=FIRST)
    header, _, body = first.read_text().partition("\n")
    sex, _, is_male = body.splitlines()[0].split(",")
    path = tmp_path / "long.csv"
    with open(path, "w") as fh:
        fh.write(header + "\n")
        for _ in range(100):
            fh.write(body)
        fh.write(f"{sex},0,{1 - int(is_male)}\n")  # departs at the last row: read to the end
    validate_code = (
        "import sys; from training.data import raw_checks; "
        "raw_checks.validate_raw_csv(sys.argv[1], 'sex', 'binary_classifier'); print('accepted')"
    )
    res = run_capped(path, cap=768 << 20, entry=("-c", validate_code))
    assert res.returncode == 0 and res.stdout == "accepted\n", res.stderr[-2000:]
    whole = "import sys, pandas; pandas.read_csv(sys.argv[1])"
    res = run_capped(path, cap=768 << 20, entry=("-c", whole))
    assert res.returncode == 1 and "MemoryError" in res.stderr, res.stderr[-2000:]


def class_file(path: Path, late: list[str]) -> Path:
    """Label ``kind`` (a, b, c) and ``code`` (1, 2, 3), its copy, on the first rows; past
    them, rows of a class the first rows never saw (``d``) with the codes ``late``."""
    rng = np.random.default_rng(13)
    kind = rng.choice(["a", "b", "c"], ROWS)
    frame = pd.DataFrame({"kind": kind, "x": rng.standard_normal(ROWS).round(3)})
    frame["code"] = pd.Series(kind).map({"a": 1, "b": 2, "c": 3})
    for i, code in enumerate(late):
        frame.loc[FIRST + 100 + 50 * i, ["kind", "code"]] = ["d", int(code)]
    frame.to_csv(path, index=False)
    return path


@pytest.mark.parametrize("late, copy", [(["9", "8"], False), (["9", "9"], True)])
def test_a_class_the_first_rows_never_saw_is_held_to_one_value_by_both(tmp_path, late, copy):
    """A class first met past the first rows must map to one value too: class d with codes
    9 and 8 is no copy (both refused 'code' as one: a class the first rows had not mapped
    was never checked); with 9 on both rows it is, and the message shows d -> 9."""
    path = class_file(tmp_path / "late.csv", late)
    err = validate(path, "kind", "multiclass_classifier")
    res = prepare_cli(tmp_path, path, "kind", "multiclass_classifier")
    if not copy:
        assert err is None and res.returncode == 0, res.stderr
        return
    assert err is not None and "'d' -> 9" in str(err) and f"in all {ROWS} labelled rows" in str(err)
    assert res.returncode == 2 and res.stderr == f"error: {err}\n"


def test_a_regressors_text_label_past_the_first_rows_is_named_by_prepare_not_raised(
    tmp_path, monkeypatch, capsys
):
    """The first 100 rows are checked as a frame; a label 'abc' on row 252 came to prepare in
    a chunk read as text and ended in pandas' "Unable to parse string" traceback after the
    first pass, with part of the output staged. Refused in that pass, by row and value, as
    the first rows' check words it."""
    from training.cli import main

    monkeypatch.setattr(sizing, "CHUNK_ROWS", 100)
    monkeypatch.setattr(sizing, "MIN_ROWS", 50)
    rng = np.random.default_rng(17)
    frame = pd.DataFrame({"x": rng.standard_normal(300).round(3)})
    frame["price"] = (frame["x"] * 3 + rng.standard_normal(300)).round(4).astype(object)
    frame.loc[250, "price"] = "abc"
    path = tmp_path / "prices.csv"
    frame.to_csv(path, index=False)
    argv = ["prepare", "--quiet", "--data", str(path), "--label", "price"]
    argv += ["--predictor-type", "regressor", "--out", str(tmp_path / "out")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"{path}, row 252: label 'price' has value 'abc', not a finite number" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "predictor, labels, odd",
    [
        ("multiclass_classifier", [0, 1, 2], "two"),  # was 7 classes: 0, 1, 2, '0', '1', ...
        ("binary_classifier", [0, 1], "yes"),  # was "label 2 is not 0 or 1", 98 rows of it
    ],
)
def test_a_class_label_that_is_text_in_one_chunk_only_is_named_not_split(
    tmp_path, monkeypatch, capsys, predictor, labels, odd
):
    """pandas reads a chunk's column as text when one of its cells is not a number: a label
    of 0, 1, 2 with one 'two' on row 252 made prepare's classes 0, 1, 2, '0', '1', '2' and
    'two', each class split in two, and wrote the channels. Refused naming that row."""
    from training.cli import main

    monkeypatch.setattr(sizing, "CHUNK_ROWS", 100)
    monkeypatch.setattr(sizing, "MIN_ROWS", 50)
    frame = pd.DataFrame({"x": np.random.default_rng(18).standard_normal(300).round(3)})
    frame["y"] = pd.Series(np.resize(labels, 300), dtype=object)
    frame.loc[250, "y"] = odd
    path = tmp_path / "classes.csv"
    frame.to_csv(path, index=False)
    argv = ["prepare", "--quiet", "--data", str(path), "--label", "y"]
    assert main([*argv, "--predictor-type", predictor, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert f"{path}, row 252: label 'y' is '{odd}' here but a number (0) on row 2: " in err
    assert "fix: fix that label, or spell every class as text" in err
    assert not (tmp_path / "out").exists()
