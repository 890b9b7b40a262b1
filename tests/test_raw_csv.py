"""The raw CSV reader: polars' parse gives exactly the chunks pandas' ``read_csv`` gives."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from training.data import raw_csv
from training.data.raw_csv import Numbers, Reread, Text
from training.errors import ValidationError

# name -> (CSV text, the engine that must read it: the fast one wherever it can)
CORPUS = {
    "numbers, text, gaps": (
        "x,n,colour,y\n1.5,3,red,a\n,4,,b\n-2e-3,5,blue,a\n0.1,6,red,b\n7,7,green,a\n",
        "polars",
    ),
    "pandas' missing spellings": (
        "x,t,y\n1,NA,a\nNaN,n/a,b\n#N/A,None,a\nnull,<NA>,b\n-NaN,-1.#IND,a\n5,ok,b\n",
        "polars",
    ),
    "spaces after commas, around numbers and text": (
        "x, t,y\n 1.5, red ,a\n2 ,  blue,b\n\t3,green\t,a\n",
        "polars",
    ),
    "True/False spellings, with gaps and with other text": (
        "b,c,d,y\nTrue,TRUE,true,a\nfalse,,False,b\nFALSE,True,yes,a\n",
        "polars",
    ),
    "integers, integers with gaps, signs, zeros": (
        "i,j,k,l,y\n1,1,+5,007,a\n2,,-0,1.0,b\n3,3,6,8,a\n",
        "polars",
    ),
    "infinities and NaN words": (
        "x,w,y\ninf,NAN,a\n-Infinity,Nan,b\n1e500,nan,a\n2,3,b\n",
        "polars",
    ),
    "quoting: commas, numbers, newlines, doubled quotes": (
        'x,t,y\n"1.5","a, b",a\n2,"two\nlines",b\n3,"say ""hi""",a\n',
        "polars",
    ),
    "CRLF line ends": ("x,t,y\r\n1,a,a\r\n2,b,b\r\n", "polars"),
    "unicode text and a BOM": ("\ufeffx,t,y\n1,café,a\n2,日本,b\n3,café,a\n", "polars"),
    "header: spaces and an empty name": (" x, ,y\n1,2,a\n3,4,b\n", "polars"),
    "short rows": ("x,t,y\n1,a,a\n2\n3,c,b\n", "polars"),
    "numbers first, text later (types per chunk)": (
        "x,t,y\n1,2,a\n2,3,b\n3,4,a\n4,oops,b\n5,x,a\noops,6,b\n",
        "polars",
    ),
    "many digits": (
        "x,y\n0.1000000000000000055511151231257827,a\n3.14159265358979323846264338,b\n"
        "123456789012345678,a\n",
        "polars",
    ),
    "lone CR line ends": ("x,t,y\r1,a,a\r2,b,b\r", "pandas"),
    "blank and whitespace-only lines": ("x,t,y\n1,a,a\n\n2,b,b\n   \n3,c,a\n", "pandas"),
    "a row of empty cells": ("x,t,y\n1,a,a\n,,\n3,c,b\n", "pandas"),
    "a space before a quote": ('x,t,y\n1, "a, b",a\n2,c,b\n', "pandas"),
}


def chunks(path, chunk_rows, engine=raw_csv.ENGINES[0], exact=("y",)):
    """Every chunk, and the engine that read them (restarting as ``prepare`` does)."""
    while True:
        try:
            return list(raw_csv.read_chunks(path, chunk_rows, engine, exact)), engine
        except Reread as reread:
            engine = reread.engine


def same_column(a, b, exact=True) -> bool:
    """Equal; outside ``exact`` columns, float64 may stand for pandas' int64 (read_chunks)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, Numbers):
        if not exact and a.values.dtype == np.float64 and b.values.dtype == np.int64:
            return np.array_equal(a.values, b.values.astype(np.float64))
        return a.values.dtype == b.values.dtype and a.values.tobytes() == b.values.tobytes()
    return a.codes.tolist() == b.codes.tolist() and [(type(v), v) for v in a.values.tolist()] == [
        (type(v), v) for v in b.values.tolist()
    ]


def assert_same_chunks(got, expected, exact=("y",)):
    """Chunk for chunk, the same rows, columns and values (``exact``: dtypes too)."""
    assert [c.first_row for c in got] == [c.first_row for c in expected]
    for mine, theirs in zip(got, expected, strict=True):
        assert list(mine.columns) == list(theirs.columns)
        for col in mine.columns:
            same = same_column(mine.columns[col], theirs.columns[col], exact=col in exact)
            assert same, (col, mine.first_row)


@pytest.mark.parametrize("name", CORPUS)
@pytest.mark.parametrize("chunk_rows", [2, 1000])
def test_every_engine_reads_the_corpus_as_pandas_does(tmp_path, name, chunk_rows):
    text, fastest = CORPUS[name]
    path = tmp_path / "data.csv"
    path.write_bytes(text.encode())
    expected = list(raw_csv.read_chunks(path, chunk_rows, "pandas"))
    got, engine = chunks(path, chunk_rows)
    assert engine == fastest
    assert_same_chunks(got, expected)
    # and as one frame, what pd.read_csv gives
    frame = raw_csv.to_frame(got)
    pandas_frame = pd.read_csv(path, skipinitialspace=True)
    assert list(frame.columns) == list(pandas_frame.columns)
    if chunk_rows == 1000:
        for col in frame.columns:
            assert frame[col].dtype.kind == pandas_frame[col].dtype.kind or (
                frame[col].dtype == object and pandas_frame[col].dtype.kind in "OT"
            ), col


def test_the_text_engine_agrees_on_every_file_it_reads(tmp_path):
    for text, _ in CORPUS.values():
        path = tmp_path / "data.csv"
        path.write_bytes(text.encode())
        got, engine = chunks(path, 2, "polars-text")
        if engine == "pandas":
            continue
        expected = list(raw_csv.read_chunks(path, 2, "pandas"))
        assert_same_chunks(got, expected, exact=list(got[0].columns) if got else [])


def test_chunks_are_exact_and_numbered(tmp_path):
    path = tmp_path / "big.csv"
    rng = np.random.default_rng(0)
    pd.DataFrame({"x": rng.standard_normal(2500), "y": rng.integers(0, 3, 2500)}).to_csv(
        path, index=False
    )
    got, engine = chunks(path, 1000)
    assert engine == "polars"
    assert [(c.index, c.first_row, c.rows) for c in got] == [
        (0, 0, 1000),
        (1, 1000, 1000),
        (2, 2000, 500),
    ]


def test_a_ragged_row_is_named_by_line(tmp_path):
    path = tmp_path / "ragged.csv"
    path.write_text("x,t,y\n1,a,a\n2,b,b,extra\n")
    with pytest.raises(ValidationError, match=r"line 3.*3 fields but the header has 3|row 3"):
        chunks(path, 10)


def test_text_that_is_not_utf8_is_named(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes("x,t,y\n1,café,a\n".encode("latin-1"))
    with pytest.raises(ValidationError) as err:
        chunks(path, 10)
    assert f"{path}, row 2, byte offset 11: not UTF-8 text (byte 0xe9)" in str(err.value)
    assert "fix: save the file as UTF-8" in str(err.value)


def test_text_that_is_not_utf8_far_into_the_file_is_named_by_row_by_validate_and_prepare(
    tmp_path,
):
    """A latin-1 byte on row 40 003 (past the first 1 MB read, with a UTF-8 'é' cut in two by
    that read's end): validate and prepare named only the file and "byte 0xe9 in position 0",
    a position in some buffer; both name the row and the byte offset."""
    import subprocess
    import sys

    from training.data import raw_checks

    head = b"y,t,x\n"
    filler = b"a,b,1\n" * 40_000
    cut = raw_csv._UTF8_BLOCK - 1 - len(head) - len(filler) - len(b"a,")
    rows = head + filler + b"a," + b"b" * cut + "é".encode() + b",1\n"
    assert rows[raw_csv._UTF8_BLOCK - 1 : raw_csv._UTF8_BLOCK + 1] == "é".encode()  # straddles
    path = tmp_path / "late.csv"
    path.write_bytes(rows + b"b,caf\xe9,2\n" + b"a,b,3\n" * 10)
    where = f"{path}, row 40003, byte offset {len(rows) + 5}: not UTF-8 text (byte 0xe9)"
    with pytest.raises(ValidationError) as err:
        raw_checks.validate_raw_csv(path, "y", "binary_classifier", sample_rows=40_010)
    assert where in str(err.value)
    res = subprocess.run(
        [sys.executable, "-m", "training", "prepare", "--quiet", "--data", str(path), "--label",
         "y", "--predictor-type", "binary_classifier", "--out", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=120, cwd=Path(__file__).parents[1],
    )  # fmt: skip
    assert res.returncode == 2 and where in res.stderr and "Traceback" not in res.stderr


def test_the_missing_spellings_are_pandas_own():
    from pandas._libs.parsers import STR_NA_VALUES

    assert set(raw_csv.NA_VALUES) == set(STR_NA_VALUES)


def test_to_frame_labels_rows_and_keeps_text_cells(tmp_path):
    text = Text(np.array([0, -1, 1], np.int32), np.array(["a", "b"], object))
    chunk = raw_csv.RawChunk(0, 10, {"t": text, "x": Numbers(np.array([1.0, 2.0, 3.0]))})
    frame = raw_csv.to_frame([chunk])
    assert list(frame.index) == [10, 11, 12]
    assert frame["t"].tolist()[0] == "a" and pd.isna(frame["t"].tolist()[1])


@pytest.mark.parametrize("late", ["NA", "oops", " 7", "NAN", "1e3"])
def test_a_late_cell_the_first_rows_did_not_foresee(tmp_path, late):
    """polars types columns from the first 10 000 rows; a different cell after them makes it
    read the file again, as text, and still agree with pandas chunk by chunk."""
    rng = np.random.default_rng(1)
    cells = [f"{v:.3f}" for v in rng.standard_normal(12_000)]
    cells[11_000] = late
    ints = [str(i) for i in range(12_000)]
    ints[11_500] = late
    path = tmp_path / "late.csv"
    rows = (f"{a},{b},{'ab'[i % 2]}" for i, (a, b) in enumerate(zip(cells, ints)))
    path.write_text("x,i,y\n" + "\n".join(rows) + "\n")
    got, engine = chunks(path, 5000)
    assert engine == ("polars" if late == " 7" else "polars-text")  # " 7": a number to both
    expected = list(raw_csv.read_chunks(path, 5000, "pandas"))
    assert_same_chunks(got, expected)


def test_blocks_end_at_record_boundaries_even_inside_quotes(tmp_path, monkeypatch):
    """polars parses the file in blocks cut at newlines outside quotes: with 64-byte blocks
    every quoted newline and doubled quote falls on some block edge, and the chunks are
    still pandas' own."""
    rng = np.random.default_rng(4)
    rows = []
    for i in range(300):
        text = rng.choice(["plain", '"two\nlines"', '"a, b"', '"say ""hi"""', ""])
        rows.append(f"{i},{rng.standard_normal():.4f},{text},{'ab'[i % 2]}")
    path = tmp_path / "quoted.csv"
    path.write_bytes(("i,x,t,y\n" + "\n".join(rows) + "\n").encode())
    blocks = list(raw_csv._record_blocks(path, 64))
    assert b"".join(blocks) == path.read_bytes() and len(blocks) > 50
    assert all(block.count(b'"') % 2 == 0 and block.endswith(b"\n") for block in blocks)
    monkeypatch.setattr(raw_csv, "BLOCK_BYTES", 64)
    got, engine = chunks(path, 50)
    assert engine == "polars"
    expected = list(raw_csv.read_chunks(path, 50, "pandas"))
    assert_same_chunks(got, expected)


@pytest.mark.parametrize("name", CORPUS)
def test_the_corpus_across_tiny_blocks(tmp_path, monkeypatch, name):
    text, fastest = CORPUS[name]
    path = tmp_path / "data.csv"
    path.write_bytes(text.encode())
    monkeypatch.setattr(raw_csv, "BLOCK_BYTES", 8)
    got, engine = chunks(path, 2)
    assert engine == fastest
    expected = list(raw_csv.read_chunks(path, 2, "pandas"))
    assert_same_chunks(got, expected)
