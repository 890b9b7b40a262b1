"""Very wide CSVs: the column limits (training.limits.MAX_RAW_COLUMNS, MAX_CSV_FEATURES) are
enforced from the header (or a channel's first rows) and from each record's field count,
before any per-column work, through the commands a user runs; a file at the limit is
processed; a row of millions of fields stays bounded under an address-space cap.

Issue 29: a raw CSV of 300 000 columns made ``prepare`` hang for minutes, and a 4 MB row of
2M fields took over 1 GB (a ragged one of 4M fields, 2 GB in pandas' tokenizer)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from training.data import raw_checks
from training.errors import ValidationError
from training.limits import MAX_COLUMNS_TEST_ENV, MAX_CSV_FEATURES, MAX_RAW_COLUMNS

ROOT = Path(__file__).parents[1]
GIB = 1 << 30


def cli(*args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "training", *map(str, args)],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )


def prepare(data: Path, out: Path, *more, env=None):
    return cli(
        "prepare", "--data", data, "--label", "y", "--predictor-type", "binary_classifier",
        "--out", out, "--quiet", *more, env=env,
    )  # fmt: skip


def raw_csv(path: Path, columns: int, rows: int = 40, seed: int = 0) -> Path:
    """A raw CSV with a header: the label ``y`` and ``columns - 1`` numeric features."""
    rng = np.random.default_rng(seed)
    lines = ["y," + ",".join(f"x{i}" for i in range(columns - 1))]
    for r in range(rows):
        lines.append(f"{r % 2}," + ",".join(map(str, rng.integers(0, 9, columns - 1))))
    path.write_text("\n".join(lines) + "\n")
    return path


def channel_csv(path: Path, features: int, rows: int = 20, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    lines = [f"{r % 2}," + ",".join(map(str, rng.integers(0, 9, features))) for r in range(rows)]
    path.write_text("\n".join(lines) + "\n")
    return path


def one_line_error(res, *parts: str) -> str:
    assert res.returncode == 2, (res.stdout, res.stderr)
    assert "Traceback" not in res.stderr
    for part in parts:
        assert part in res.stderr, res.stderr
    return res.stderr


# --------------------------------------------------------------------------- raw CSV (prepare)


def test_a_header_one_column_over_the_limit_is_refused_before_any_column_is_read(tmp_path):
    path = tmp_path / "wide.csv"
    path.write_text("y," + ",".join(f"x{i}" for i in range(MAX_RAW_COLUMNS)) + "\n1," * 3)
    res = prepare(path, tmp_path / "out")
    one_line_error(
        res,
        f"{path}, row 1: has {MAX_RAW_COLUMNS + 1:,} columns, over the limit of "
        f"{MAX_RAW_COLUMNS:,} columns",
        "MAX_RAW_COLUMNS",
        "fix: keep at most",
        "RecordIO",
    )
    assert not (tmp_path / "out").exists()  # nothing written
    # validate_raw_csv (the notebook's check) says the same
    with pytest.raises(ValidationError, match=f"has {MAX_RAW_COLUMNS + 1:,} columns"):
        raw_checks.validate_raw_csv(path, "y", "binary_classifier")


def test_a_raw_csv_at_the_limit_is_prepared_and_one_more_column_is_not(tmp_path):
    """The real code path with a lower limit (tests only), so the file stays small."""
    env = {MAX_COLUMNS_TEST_ENV: "60,1000"}
    res = prepare(raw_csv(tmp_path / "at.csv", 60), tmp_path / "out", env=env)
    assert res.returncode == 0, res.stderr
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["hyperparameters"]["feature_dim"] == 59
    res = prepare(raw_csv(tmp_path / "over.csv", 61), tmp_path / "out2", env=env)
    one_line_error(res, "over.csv, row 1: has 61 columns, over the limit of 60 columns")


def test_a_data_row_with_too_many_fields_is_refused_naming_its_row(tmp_path):
    """Counted outside quotes: a quoted cell holding many commas is one field."""
    env = {MAX_COLUMNS_TEST_ENV: "60,1000"}
    path = raw_csv(tmp_path / "ragged.csv", 3)
    lines = path.read_text().splitlines()
    lines[10] = "1," + ",".join(["0"] * 500)  # file row 11
    lines[5] = '1,"' + "," * 500 + '",2'  # one quoted cell: 3 fields, not refused for width
    path.write_text("\n".join(lines) + "\n")
    one_line_error(
        prepare(path, tmp_path / "out", env=env),
        "ragged.csv, row 11: has 501 fields, over the limit of 60 columns",
    )
    # a file only pandas reads (a blank line) is checked before pandas parses it
    path.write_text("\n".join(lines[:3] + [""] + lines[3:]) + "\n")
    one_line_error(
        prepare(path, tmp_path / "out", env=env),
        "ragged.csv, row 12: has 501 fields, over the limit of 60 columns",
    )
    os.environ[MAX_COLUMNS_TEST_ENV] = "60,1000"  # the notebook's check, in this process
    try:
        with pytest.raises(ValidationError, match="row 12: has 501 fields"):
            raw_checks.validate_raw_csv(path, "y", "binary_classifier")
    finally:
        del os.environ[MAX_COLUMNS_TEST_ENV]


def test_csv_channels_wider_than_the_channel_limit_are_not_written(tmp_path):
    """One-hot encoding makes more features than columns: prepare --format csv refuses
    channels validate would refuse; RecordIO (the default) takes them."""
    env = {MAX_COLUMNS_TEST_ENV: "60,20"}
    rng = np.random.default_rng(3)
    cells = rng.integers(0, 15, (60, 2))
    lines = ["y,a,b"] + [f"{r % 2},c{a},d{b}" for r, (a, b) in enumerate(cells)]
    data = tmp_path / "cats.csv"
    data.write_text("\n".join(lines) + "\n")
    res = prepare(data, tmp_path / "csv", "--format", "csv", env=env)
    one_line_error(res, "cats.csv: encodes to", "features, over the limit of 20 for CSV channels",
                   "--format recordio")  # fmt: skip
    assert not (tmp_path / "csv").exists()
    assert prepare(data, tmp_path / "rec", env=env).returncode == 0


# --------------------------------------------------------------------------- channel CSV (validate)


def test_a_csv_channel_one_feature_over_the_limit_is_refused_by_validate(tmp_path):
    path = channel_csv(tmp_path / "wide.csv", MAX_CSV_FEATURES + 1, rows=2)
    res = cli("validate", path, "--predictor-type", "binary_classifier")
    one_line_error(
        res,
        f"{path}, row 1: rows have {MAX_CSV_FEATURES + 1:,} features, over the limit of "
        f"{MAX_CSV_FEATURES:,} for a CSV channel",
        "fix: write wide data as RecordIO-protobuf",
    )


def test_a_csv_channel_at_the_limit_passes_and_one_over_does_not(tmp_path):
    env = {MAX_COLUMNS_TEST_ENV: "60,80"}
    res = cli("validate", channel_csv(tmp_path / "at.csv", 80), "--predictor-type",
              "binary_classifier", env=env)  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert "feature_dim 80" in res.stdout
    res = cli("validate", channel_csv(tmp_path / "over.csv", 81), "--predictor-type",
              "binary_classifier", env=env)  # fmt: skip
    one_line_error(res, "over.csv, row 1: rows have 81 features, over the limit of 80")


# --------------------------------------------------------------------------- memory


def test_rows_of_millions_of_fields_are_refused_in_bounded_memory(tmp_path):
    """Under the row limit (16 MiB) a row can hold ~7M fields: once 1 GB a 2M-field row (and
    4M fields took 2 GB in pandas; 1M features, 2.5 GB in validate); refused here under a
    1 GiB address-space cap (prepare's own, with polars and pandas loaded, is ~600 MB)."""
    from memory_cap import run_capped

    fields = ",".join(["0"] * (7 << 20))  # 14 MiB, 7.3M fields
    header = tmp_path / "header.csv"
    header.write_text(fields + "\n1\n")
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("y,a\n" + "1,2\n" * 30 + fields + "\n0,1\n")
    channel = tmp_path / "channel.csv"
    channel.write_text("1," + fields + "\n")
    for path, row in ((header, 1), (ragged, 32)):
        args = ("--label", "y", "--predictor-type", "binary_classifier", "--quiet")
        res = run_capped("prepare", "--data", path, "--out", tmp_path / "out", *args, cap=GIB)
        one_line_error(res, f"{path}, row {row}: has at least ", "over the limit of 10,000")
    res = run_capped("validate", channel, "--predictor-type", "binary_classifier", cap=GIB)
    one_line_error(res, f"{channel}, row 1: rows have {7 << 20:,} features")


def test_fields_are_counted_as_the_csv_module_reads_them_whatever_the_blocks(monkeypatch):
    """Quoted commas and line breaks, CRLF and lone CR line ends, records split across the
    blocks fed and across the counter's windows: the first record over the limit is the one
    the csv module reads as too wide, by its number."""
    import csv
    import io

    from training.data import raw_csv

    monkeypatch.setenv(MAX_COLUMNS_TEST_ENV, "12,1000")
    monkeypatch.setattr(raw_csv.Widths, "WINDOW", 7)
    rng = np.random.default_rng(5)
    cells = ["1", "", "ab", '"x,y"', '"a\nb"', '"q""r,"', '"\r\n,"']
    for trial in range(200):
        ends = ["\n", "\r\n", "\r"][trial % 3]
        records = [
            ",".join(rng.choice(cells, rng.integers(1, 16 if trial % 4 else 12)))
            for _ in range(rng.integers(1, 8))
        ]
        text = ends.join(records) + ends * int(rng.integers(0, 2))
        expect = next(
            (i for i, row in enumerate(csv.reader(io.StringIO(text, newline="")), 1)
             if len(row) > 12),
            None,
        )  # fmt: skip
        data, widths = text.encode(), raw_csv.Widths(Path("f.csv"))
        cuts = np.sort(rng.integers(0, len(data) + 1, 3))
        try:
            for a, b in zip([0, *cuts], [*cuts, len(data)]):
                widths.feed(data[a:b])
            got = None
        except ValidationError as err:
            got = err.problems[0].row
        assert got == expect, (text, got, expect)
