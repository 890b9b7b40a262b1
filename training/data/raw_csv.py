"""Reading the user's raw CSV: exact chunks of typed columns, parsed by polars, as pandas reads it.

pandas' ``read_csv(chunksize=…, skipinitialspace=True)`` defines what ``prepare`` has always
made of a cell: which strings are missing, which columns are numbers (int64 without gaps,
float64 with them), which are True/False, and that each chunk's types are inferred on their
own. polars parses the same bytes several times faster. :func:`read_chunks` parses with polars,
in blocks of whole records (memory stays bounded), and applies pandas' rules to each distinct
cell: numeric columns typed by polars from the first rows; a later cell that breaks that
typing, or a NaN word, raises :class:`Reread` and the file is read again as text; a file whose
*layout* polars reads differently (blank or whitespace-only lines, lone CR line ends,
malformed quoting, ragged rows, other encodings) is read by pandas itself. All engines yield
the same chunks: ``tests/test_raw_csv.py`` compares them on a corpus of awkward files.
"""

from __future__ import annotations

import csv
import itertools
import logging
import re
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np

from training.errors import Problem, ValidationError
from training.files import too_long
from training.limits import MAX_ROW_BYTES, column_limits

log = logging.getLogger("training")
T = TypeVar("T")

# pandas' default ``na_values`` (pandas._libs.parsers.STR_NA_VALUES; a test keeps them equal)
NA_VALUES = (
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND",
    "1.#QNAN", "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null",
)  # fmt: skip
# the spellings pandas' C parser reads as booleans
TRUE_VALUES = ("True", "TRUE", "true")
FALSE_VALUES = ("False", "FALSE", "false")
_SPACE = " \t"  # what skipinitialspace skips after a delimiter


@dataclass(frozen=True)
class Numbers:
    """A chunk's column that pandas reads as numbers: int64 without gaps, else float64."""

    values: np.ndarray

    def __len__(self) -> int:
        return len(self.values)

    @property
    def missing(self) -> np.ndarray:
        return np.isnan(self.values) if self.values.dtype.kind == "f" else np.zeros(len(self), bool)

    def take(self, rows) -> Numbers:
        return Numbers(self.values[rows])


@dataclass(frozen=True)
class Text:
    """A chunk's column of text (or of True/False): ``codes`` index ``values``, -1 = missing."""

    codes: np.ndarray  # int32
    values: np.ndarray  # object: distinct str (or bool) values

    def __len__(self) -> int:
        return len(self.codes)

    @property
    def missing(self) -> np.ndarray:
        return self.codes < 0

    def take(self, rows) -> Text:
        return Text(self.codes[rows], self.values)

    def cells(self) -> np.ndarray:
        """Object array of the values, NaN where missing (what pandas holds)."""
        out = np.empty(len(self.values) + 1, object)
        out[:-1], out[-1] = self.values, np.nan
        return out[self.codes]


Column = Numbers | Text


@dataclass(frozen=True)
class RawChunk:
    """``rows`` consecutive data records starting at data row ``first_row`` (0-based)."""

    index: int
    first_row: int
    columns: dict[str, Column]

    @property
    def rows(self) -> int:
        return len(next(iter(self.columns.values()))) if self.columns else 0

    def take(self, rows: np.ndarray) -> RawChunk:
        return RawChunk(
            self.index, self.first_row, {k: c.take(rows) for k, c in self.columns.items()}
        )


def header(path: Path) -> list[str]:
    """Column names as pandas gives them: BOM dropped, leading spaces skipped, and an empty
    name at position i called ``Unnamed: i``."""
    return [name or f"Unnamed: {i}" for i, name in enumerate(header_cells(path))]


def header_cells(path: Path, max_row: int = MAX_ROW_BYTES) -> list[str]:
    """The raw CSV's first record as pandas' ``skipinitialspace`` reads it: BOM dropped,
    spaces after commas skipped, quotes removed (raises UnicodeDecodeError, csv.Error). One
    longer than ``max_row`` characters is refused once that much is read (ValidationError):
    a file without line breaks was read whole here (a 384 MB one: MemoryError at 512 MiB)."""
    text = ""
    with open(path, encoding="utf-8-sig", newline="") as fh:
        while line := fh.readline(max_row + 1 - len(text)):
            text += line
            if len(text) > max_row:
                fix = "check that it is a CSV file whose header row ends in a line break"
                raise ValidationError([too_long(path, 1, max_row, fix, "the row limit")])
            if text.count('"') % 2 == 0:  # else a quoted name goes on to the next line
                break
    Widths(path).feed(text.encode())  # before csv makes a string of each field
    return next(csv.reader(text.splitlines(keepends=True), skipinitialspace=True), [])


class Widths:
    """Fields per record of a file fed in order, refusing the first record with more than
    MAX_RAW_COLUMNS (ValidationError naming its row) before a parser makes a cell of each
    (pandas' tokenizer took 2 GB for a ragged row of 4M fields). Fields are commas outside
    quotes plus one; records end at a line break outside quotes (``\\n``, ``\\r\\n`` or a
    lone ``\\r``: a lone CR only shortens a record). Linear in the bytes, in windows of
    ``WINDOW`` bytes so its arrays stay small; a block without quotes whose lines are all
    shorter than the limit in bytes, or that holds fewer commas than the limit, is only
    counted (measured: 0.8 ms a MB; 3.6 with quotes, which are scanned field by field)."""

    WINDOW = 1 << 20

    def __init__(self, path: Path):
        self.path, self.most = path, column_limits()[0]
        self.quoted = 0  # quote parity so far (1: inside a quoted cell)
        self.commas = 0  # commas of the record not yet ended
        self.record = 1  # the number of that record (the header is 1)
        self.cr = False  # the bytes so far end in a CR (a LF next is not another end)
        self.tail = 0  # bytes since the last LF

    def feed(self, data: bytes) -> None:
        if not data:
            return
        lines = self._short_lines(data)
        quotes = self.quoted or b'"' in data  # records then end at line breaks outside them
        if quotes or (lines < 0 and data.count(b",") + self.commas >= self.most):
            view = memoryview(data)  # a record may be too wide: count its fields
            for at in range(0, len(data), self.WINDOW):
                self._scan(np.frombuffer(view[at : at + self.WINDOW], np.uint8))
        else:  # no record can be too wide: only keep count
            if lines < 0:
                lines = data.count(b"\n")
            if b"\r" in data or self.cr:  # a lone CR ends a record too; a CRLF is one end
                lines += data.count(b"\r") - data.count(b"\r\n") - (self.cr and data[:1] == b"\n")
            tail = max(data.rfind(b"\n"), data.rfind(b"\r"))
            self.commas = data.count(b",", tail + 1) + (self.commas if tail < 0 else 0)
            self.record += lines
            self.cr = data.endswith(b"\r")
        last = data.rfind(b"\n")
        self.tail = len(data) - 1 - last if last >= 0 else self.tail + len(data)

    def _short_lines(self, data: bytes) -> int:
        """The LFs in ``data`` when no line (the bytes between LFs, from the last one fed)
        reaches the limit in bytes in a file without quotes so far, so that no record can
        hold that many commas; else -1. Two fast passes, for most files' blocks (counting
        the commas was ~3x slower)."""
        if self.quoted or b'"' in data:
            return -1
        ends = np.flatnonzero(np.frombuffer(data, np.uint8) == 0x0A)
        if not len(ends):
            return 0 if self.tail + len(data) < self.most else -1
        gaps = np.diff(ends)
        short = (
            ends[0] + self.tail < self.most
            and (not len(gaps) or gaps.max() <= self.most)
            and len(data) - ends[-1] <= self.most
        )
        return len(ends) if short else -1

    def _scan(self, codes: np.ndarray) -> None:
        quotes = np.cumsum(codes == 0x22, dtype=np.int32) + self.quoted
        inside = (quotes & 1) == 1
        cr, lf = codes == 0x0D, codes == 0x0A
        lf[0] &= not self.cr
        lf[1:] &= ~cr[:-1]  # the LF of a CRLF: its CR ended the record
        ends = np.flatnonzero((cr | lf) & ~inside)
        before = np.cumsum((codes == 0x2C) & ~inside, dtype=np.int32)
        at = before[ends]
        fields = np.diff(at, prepend=0) + 1
        if len(fields):
            fields[0] += self.commas
        wide = np.flatnonzero(fields > self.most)
        if wide.size:
            self._refuse(self.record + int(wide[0]), int(fields[wide[0]]))
        self.commas = int(before[-1]) - (int(at[-1]) if len(at) else -self.commas)
        if self.commas + 1 > self.most:  # the record goes on: refused before it is all read
            self._refuse(self.record + len(ends), self.commas + 1, "at least ")
        self.record += len(ends)
        self.quoted = int(quotes[-1]) & 1
        self.cr = bool(cr[-1] and not inside[-1])

    def _refuse(self, record: int, fields: int, bound: str = ""):
        raise ValidationError([too_wide(self.path, record, fields, bound)])


def too_wide(path, row: int, fields: int, bound: str = "") -> Problem:
    """A record with more columns than ``prepare`` takes (MAX_RAW_COLUMNS), said before
    any per-column work."""
    limit = column_limits()[0]
    return Problem(
        str(path),
        f"has {bound}{fields:,} {'columns' if row == 1 else 'fields'}, over the limit of "
        f"{limit:,} "
        "columns for a CSV with a header "
        "(training.limits.MAX_RAW_COLUMNS)",
        f"keep at most {limit:,} columns (select the ones you need before prepare; --drop "
        "applies after reading), or write wide sparse data (hashed text, one-hot ids) as "
        "RecordIO-protobuf channels yourself (write_spmatrix_to_sparse_tensor)",
        row=row,
    )


@contextmanager
def raw_csv_errors(name: str):
    """pandas' errors reading the user's raw CSV, as problems naming the file and the fix
    (here and in ``prepare``'s pandas reader)."""
    import pandas as pd

    try:
        yield
    except pd.errors.ParserError as err:
        raise ValidationError([ragged_row_problem(name, err)]) from None
    except (UnicodeDecodeError, pd.errors.EmptyDataError) as err:
        raise ValidationError([unreadable_csv(name, err)]) from None


def unreadable_csv(name: str, err: Exception) -> Problem:
    fix = "pass a UTF-8, comma-separated text file with a header row"
    if isinstance(err, UnicodeDecodeError):  # its position is in a buffer, not the file
        found = first_non_utf8(Path(name))
        if found is not None:
            row, offset, byte = found
            return Problem(
                name,
                f"not UTF-8 text (byte 0x{byte:02x})",
                "save the file as UTF-8 (e.g. iconv -f latin1 -t utf-8)",
                row=row,
                offset=offset,
            )
    return Problem(name, f"cannot read as CSV: {err}", fix)


_UTF8_BLOCK = 1 << 20  # bytes decoded at a time looking for the first that is not UTF-8


def first_non_utf8(path: Path) -> tuple[int, int, int] | None:
    """(line, byte offset, byte) of the first byte of ``path`` that is not UTF-8, read a
    block at a time; None when it is all UTF-8 (or cannot be read)."""
    line, offset, carry = 1, 0, b""
    try:
        with open(path, "rb") as fh:
            while block := fh.read(_UTF8_BLOCK):
                data, good = carry + block, None
                try:
                    data.decode("utf-8")
                    good, carry = len(data), b""
                except UnicodeDecodeError as err:
                    if err.end == len(data) and len(data) - err.start < 4:  # cut by the block
                        good, carry = err.start, data[err.start :]
                    else:
                        bad = err.start
                        return line + data.count(b"\n", 0, bad), offset + bad, data[bad]
                line += data.count(b"\n", 0, good)
                offset += good
    except OSError:
        return None
    return (line, offset, carry[0]) if carry else None


def ragged_row_problem(name: str, err: Exception) -> Problem:
    """Turn pandas' 'Expected N fields in line M, saw K' into our message."""
    text = str(err)
    match = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", text)
    if match:
        want, line, saw = map(int, match.groups())
        return Problem(
            name,
            f"has {saw} fields but the header has {want}",
            "fix the row (a stray comma? quote fields that contain commas)",
            row=line,
        )
    return Problem(name, f"cannot parse as CSV: {text.strip()}", "fix the malformed row")


ENGINES = ("polars", "polars-text", "pandas")  # fastest first; each reads more files right


class Reread(Exception):  # noqa: N818 (a signal to the caller, not a failure)
    """This engine would not read the file as pandas does: start again with ``engine``."""

    def __init__(self, engine: str, why: str):
        super().__init__(f"read again with {engine}: {why}")
        self.engine = engine


def with_engines(path: Path, attempt: Callable[[str], T]) -> T:
    """``attempt(engine)`` with the fastest engine that reads ``path`` as pandas does: a
    :class:`Reread` starts it again, from the first row, with the engine named (``attempt``
    reads the file through :func:`read_chunks` with the engine it is given)."""
    engine = ENGINES[0]
    while True:
        try:
            return attempt(engine)
        except Reread as reread:
            log.debug("%s: %s", path, reread)
            engine = reread.engine


def read_chunks(
    path: Path, chunk_rows: int, engine: str = ENGINES[0], exact: tuple[str, ...] = ()
) -> Iterator[RawChunk]:
    """The data rows of ``path`` in chunks of exactly ``chunk_rows`` (the last may be short).

    ``polars`` parses numeric columns as numbers; ``polars-text`` parses every cell as text
    and applies pandas' rules itself; ``pandas`` is pandas. The first two raise
    :class:`Reread` (possibly after some chunks) when the file needs a later engine.

    One difference is allowed: where pandas reads a chunk of a decimal column whose cells
    all happen to be whole numbers ("7") as int64, ``polars`` gives float64 (the same
    values; features become float64 anyway). Columns named in ``exact`` (the label, whose
    values become class names) get pandas' int64 / float64 exactly.
    """
    if engine == "pandas":
        yield from _pandas_chunks(Path(path), chunk_rows)
    elif engine in ENGINES:
        yield from _polars_chunks(Path(path), chunk_rows, engine == "polars", exact)
    else:
        raise ValueError(f"unknown CSV engine '{engine}': one of {', '.join(ENGINES)}")


# --------------------------------------------------------------------------- polars


BLOCK_BYTES = 4 << 20  # polars parses blocks of whole records this large (memory grows with it)


def _polars_chunks(path: Path, chunk_rows: int, typed: bool, exact) -> Iterator[RawChunk]:
    import polars as pl

    try:
        names = header(path)
    except (UnicodeDecodeError, csv.Error) as err:
        raise Reread("pandas", str(err)) from None
    if not names:
        raise Reread("pandas", "no header")
    blocks = _record_blocks(path, BLOCK_BYTES)
    first = next(blocks, b"")
    cut = _boundary(first, last=False)
    head, first = (first, b"") if cut < 0 else (first[:cut], first[cut:])
    options = dict(has_header=False, new_columns=names, raise_if_empty=False, encoding="utf8")
    first_row, buffered = 0, []
    try:
        seen = pl.read_csv(head, n_rows=0, infer_schema=False, raise_if_empty=False).width
        if seen != len(names):  # e.g. lone CR line ends: polars sees one long header
            raise Reread("pandas", f"polars sees {seen} columns, pandas {len(names)}")
        schema = {name: pl.String for name in names}
        if typed and first:
            # polars infers the numeric columns from the first rows; anything else is read
            # as text and given pandas' meaning here (True/False spellings differ, too)
            inferred = pl.read_csv(first, infer_schema_length=10_000, n_rows=10_000, **options)
            for name, dtype in inferred.schema.items():
                if dtype in (pl.Float64, pl.Int64) and name not in exact:
                    schema[name] = dtype
        for frame in _parsed(itertools.chain([first], blocks), schema, options):
            buffered.append(frame)
            while sum(len(b) for b in buffered) >= chunk_rows:
                frame = pl.concat(buffered, rechunk=True) if len(buffered) > 1 else buffered[0]
                rows, rest = frame.slice(0, chunk_rows), frame.slice(chunk_rows)
                buffered = [rest] if len(rest) else []
                yield _from_polars(rows, first_row // chunk_rows, first_row, typed)
                first_row += chunk_rows
        if buffered:
            frame = pl.concat(buffered, rechunk=True)
            if len(frame):
                yield _from_polars(frame, first_row // chunk_rows, first_row, typed)
    except pl.exceptions.PolarsError as err:
        # a cell that is not a number in a column the first rows showed numeric: read as
        # text; anything else (ragged rows, quoting, encoding) is for pandas
        parse = typed and "could not parse" in str(err)
        raise Reread("polars-text" if parse else "pandas", str(err).splitlines()[0]) from None


def _parsed(blocks, schema: dict, options: dict):
    """Each block parsed by polars, the next one parsing (GIL released) while the caller
    works on this one."""
    import polars as pl

    def parse(block: bytes):
        return pl.read_csv(block, schema=schema, **options)

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="csv") as pool:
        ahead = None
        for block in blocks:
            if not block:
                continue
            if ahead is not None:
                yield ahead.result()
            ahead = pool.submit(parse, block)
        if ahead is not None:
            yield ahead.result()


def _record_blocks(path: Path, size: int, max_row: int = MAX_ROW_BYTES) -> Iterator[bytes]:
    """The file's bytes in blocks of about ``size`` that each end at a record boundary:
    a newline outside quotes (an even number of quote characters before it), so each
    block parses on its own and memory stays bounded whatever the file size. A record
    longer than ``max_row`` (a file without line breaks, or a quote never closed) is refused
    once that much of it is read: it was read whole into one block (a 200 MB row of commas
    took polars past 24 GB)."""
    pending, line = b"", 1
    widths = Widths(path)
    with open(path, "rb") as fh:
        while data := fh.read(size):
            pending += data
            cut = _boundary(pending, last=True)
            if cut > 0:
                block = pending[:cut]
                widths.feed(block)
                yield block
                line += pending.count(b"\n", 0, cut)
                pending = pending[cut:]
            if len(pending) > max_row:
                fix = "end each row with a line break, and close every quote you open"
                raise ValidationError([too_long(path, line, max_row, fix, "the row limit")])
    if pending:
        widths.feed(pending)
        yield pending


def check_widths(path: Path, rows: int) -> None:
    """The header and the first ``rows`` records checked for MAX_RAW_COLUMNS (and
    MAX_ROW_BYTES) before a reader that is not this module's, pandas', parses them."""
    seen = 0
    for block in _record_blocks(path, BLOCK_BYTES):
        seen += block.count(b"\n")
        if seen > rows:
            return


def _boundary(data: bytes, last: bool) -> int:
    """Index just after the last (or first) newline outside quotes, or -1; in linear time
    (it counted the quotes before each newline in turn: a 4 MB file with one quote never
    closed took hours)."""
    nl = data.rfind(b"\n") if last else data.find(b"\n")
    if nl < 0 or data.count(b'"', 0, nl) % 2 == 0:  # most files: the first candidate
        return nl + 1 if nl >= 0 else -1
    codes = np.frombuffer(data, np.uint8)
    newlines = np.flatnonzero(codes == 0x0A)
    quotes = np.flatnonzero(codes == 0x22)
    outside = newlines[np.searchsorted(quotes, newlines) % 2 == 0]
    if not outside.size:
        return -1
    return int(outside[-1] if last else outside[0]) + 1


def _from_polars(frame, index: int, first_row: int, typed: bool) -> RawChunk:
    """One polars chunk -> typed columns with pandas' meaning."""
    import polars as pl

    columns, text = {}, []
    for s in frame.iter_columns():
        if s.dtype == pl.String:
            text.append(s.name)
        elif s.dtype == pl.Int64 and not s.null_count():
            columns[s.name] = Numbers(s.to_numpy())
        else:
            values = s.cast(pl.Float64).to_numpy()
            if s.dtype == pl.Float64 and np.count_nonzero(np.isnan(values)) > s.null_count():
                # NaN read from "nan" (missing to pandas too) or from "NAN" (text to pandas)
                raise Reread("polars-text", f"NaN in column '{s.name}'")
            columns[s.name] = Numbers(values)
    if text:
        columns.update(_polars_text(frame.select(text), numbers_first=not typed))
    empty = np.ones(len(frame), bool)
    for column in columns.values():
        empty &= column.missing
        if not empty.any():
            break
    else:
        # a row with every cell missing: a blank line (pandas skips it) or ",,," (pandas
        # keeps it); polars cannot tell them apart
        raise Reread("pandas", "a row with no values")
    return RawChunk(index, first_row, {name: columns[name] for name in frame.columns})


PROBE_ROWS = 10_000
_STR_OVERHEAD = 57  # a Python str object (49 bytes when empty) and the pointer to it


def distinct_text_bytes(path: Path, rows: int = PROBE_ROWS) -> float:
    """Memory a data row brings in distinct text, estimated on the first ``rows`` rows: per
    text column, the share of cells that differ from one another times their UTF-8 length
    plus a Python string's overhead (a chunk keeps each distinct value once, so repeated
    categories cost next to nothing, free text its full length; columns of numbers, missing
    values aside, cost nothing). 0 when polars cannot read those rows (the readers say why)."""
    import polars as pl

    try:  # the first block's whole records only: polars given the path maps the whole file
        with open(path, "rb") as fh:
            head = fh.read(BLOCK_BYTES)
        cut = _boundary(head, last=True)
        if cut <= 0 and len(head) == BLOCK_BYTES:  # no whole record in it (lone CRs, no
            return 0.0  # line breaks): polars read it as one row of 2M fields (109 s, 1.6 GB)
        frame = pl.read_csv(
            head[:cut] if cut > 0 else head,
            n_rows=rows,
            infer_schema=False,
            null_values=list(NA_VALUES),
            encoding="utf8",
        )
    except (pl.exceptions.PolarsError, UnicodeDecodeError, OSError):
        return 0.0
    if not frame.height:
        return 0.0
    # one query over every column (it was one per column: 300 000 columns took minutes)
    stats = frame.select(
        pl.all().count().name.suffix("\0present"),
        pl.all()
        .str.strip_chars(_SPACE)
        .cast(pl.Float64, strict=False)
        .count()
        .name.suffix("\0numbers"),
        pl.all().drop_nulls().n_unique().name.suffix("\0distinct"),
        pl.all().str.len_bytes().mean().fill_null(0).name.suffix("\0bytes"),
    ).row(0)
    present, numbers, distinct, length = (
        np.array(stats[i * frame.width : (i + 1) * frame.width], np.float64) for i in range(4)
    )
    text = (present > 0) & (numbers < present)  # columns of numbers cost nothing
    share = distinct[text] / frame.height
    return float(np.sum(share * (length[text] + _STR_OVERHEAD)))


def _integers(cells, values: np.ndarray) -> np.ndarray:
    """int64 where pandas would read int64: every cell integer text ("7", not "7.0")."""
    import polars as pl

    ints = cells.str.strip_chars(_SPACE).cast(pl.Int64, strict=False)
    return ints.to_numpy() if ints.null_count() == 0 else values


def _polars_text(frame, numbers_first: bool) -> dict[str, Column]:
    """Columns read as text: pandas' missing values, numbers with spaces around them,
    True/False, or text (and, with ``numbers_first``, plain numbers). The rules run once per
    distinct cell, in a few whole-frame queries, not once per row or per column."""
    import polars as pl

    columns, pending = {}, list(frame.columns)
    if numbers_first:
        floats = frame.select(pl.all().cast(pl.Float64, strict=False))
        nulls, cast_nulls = frame.null_count().row(0), floats.null_count().row(0)
        nans = floats.select(pl.all().is_nan().sum()).row(0)
        pending = []
        for j, s in enumerate(frame.iter_columns()):
            if cast_nulls[j] == nulls[j] and not nans[j]:  # every cell empty or a plain number
                values = floats.to_series(j).to_numpy()
                if not nulls[j] and _whole(values):
                    values = _integers(s, values)
                columns[s.name] = Numbers(values)
            else:
                pending.append(s.name)
    if not pending:
        return columns
    lists = frame.select(pl.col(pending).drop_nulls().unique().implode())
    distinct = [lists.to_series(j)[0] for j in range(len(pending))]
    rows = frame.select(
        pl.col(name).cast(pl.Enum(d)).to_physical().fill_null(-1).cast(pl.Int64)
        for name, d in zip(pending, distinct)
    )
    cells = pl.DataFrame({"cell": pl.concat(distinct)}).select(
        text=pl.col("cell").str.strip_chars_start(_SPACE),
        na=pl.col("cell").str.strip_chars_start(_SPACE).is_in(NA_VALUES),
        number=pl.col("cell").str.strip_chars(_SPACE).cast(pl.Float64, strict=False),
    )
    at = 0
    for j, name in enumerate(pending):
        part = cells.slice(at, len(distinct[j]))
        at += len(distinct[j])
        columns[name] = _text_rules(part, rows.to_series(j).to_numpy())
    return columns


def _whole(values: np.ndarray) -> bool:
    return bool(np.all(np.isfinite(values) & (values == np.round(values))))


def _text_rules(cells, rows: np.ndarray) -> Column:
    """pandas' type for one chunk of one column, from its distinct cells (``text``: leading
    spaces skipped; ``na``: a missing-value spelling; ``number``: the parse) and, per row,
    the index of its cell (-1: empty)."""

    na = np.append(cells.get_column("na").to_numpy(), True)  # [-1]: an empty cell
    missing = na[rows]
    numbers = cells.get_column("number").to_numpy()
    text = cells.get_column("text")
    if not np.isnan(numbers[~na[:-1]]).any():  # every present cell a number (not "NAN")
        if not missing.any() and _whole(numbers):  # no missing-value spelling among them
            return Numbers(_integers(text, numbers)[rows])
        return Numbers(np.append(np.where(na[:-1], np.nan, numbers), np.nan)[rows])
    kept = np.flatnonzero(~na[:-1])
    present = text.gather(kept)
    # sorted and deduplicated by polars (UTF-8 byte order is code-point order, Python's);
    # numpy's sort of Python strings was most of the time on text-heavy files
    values = present.unique().sort()
    to_value = np.full(len(na), -1, np.int32)
    to_value[kept] = values.search_sorted(present).to_numpy()
    return _text(to_value[rows], values)


def _text(codes: np.ndarray, values) -> Text:
    """A Text column from per-row codes into ``values`` (distinct, sorted; a polars Series)."""
    if values.str.contains("\r", literal=True).any():
        # pandas ends a line at a lone CR (polars keeps it in the cell)
        raise Reread("pandas", "a carriage return inside a cell")
    if len(values) and values.is_in(TRUE_VALUES + FALSE_VALUES).all():
        truth = values.is_in(TRUE_VALUES).to_numpy()
        used = np.unique(truth)  # False, True, or both
        remap = np.searchsorted(used, truth).astype(np.int32)
        codes = np.where(codes < 0, -1, remap[np.maximum(codes, 0)]).astype(np.int32)
        return Text(codes, np.array(used.tolist(), object))
    return Text(codes, np.array(values.to_list(), object))


# --------------------------------------------------------------------------- pandas


def _pandas_chunks(path: Path, chunk_rows: int) -> Iterator[RawChunk]:
    import pandas as pd

    _check_all_widths(path)
    with raw_csv_errors(str(path)):
        reader = pd.read_csv(path, chunksize=chunk_rows, skipinitialspace=True)
        first_row = 0
        for i, frame in enumerate(reader):
            columns = {str(c): _pandas_column(frame[c]) for c in frame.columns}
            yield RawChunk(i, first_row, columns)
            first_row += len(frame)


def _check_all_widths(path: Path) -> None:
    """Every record checked for MAX_RAW_COLUMNS before pandas parses the file (:class:`Widths`,
    which ends records at a lone CR too, as pandas does)."""
    widths = Widths(path)
    with open(path, "rb") as fh:
        while data := fh.read(BLOCK_BYTES):
            widths.feed(data)


def _pandas_column(series) -> Column:
    import pandas as pd

    if pd.api.types.is_bool_dtype(series) or not pd.api.types.is_numeric_dtype(series):
        cells = series.to_numpy(dtype=object, na_value=np.nan)
        codes, values = pd.factorize(cells, use_na_sentinel=True)
        order = np.array(sorted(range(len(values)), key=lambda i: _order_key(values[i])), int)
        rank = np.empty(len(order), np.int32)
        rank[order] = np.arange(len(order))
        codes = np.where(codes < 0, -1, rank[np.maximum(codes, 0)]).astype(np.int32)
        return Text(codes, np.asarray(values, object)[order])
    dtype = np.int64 if series.dtype.kind == "i" else np.float64
    return Numbers(series.to_numpy(dtype=dtype, na_value=np.nan))


def _order_key(value):
    """Text in code-point order (as polars sorts it), other values after it, by type."""
    if isinstance(value, str):
        return (0, value, "")
    return (1, type(value).__name__, str(value))


# --------------------------------------------------------------------------- pandas frames


def to_frame(chunks: list[RawChunk], index=None):
    """The chunks as one DataFrame with the dtypes ``pd.concat`` of pandas' chunks gives;
    ``index`` labels the rows (default: their data row numbers, for consecutive chunks)."""
    import pandas as pd

    data = {}
    for name in chunks[0].columns:
        parts = [c.columns[name] for c in chunks]
        if all(isinstance(p, Numbers) for p in parts):
            values = [p.values for p in parts]
            data[name] = np.concatenate(values) if values else np.zeros(0)
        elif all(isinstance(p, Text) and _all_bool(p) for p in parts):
            data[name] = np.concatenate([p.values[p.codes].astype(bool) for p in parts])
        else:
            data[name] = np.concatenate(
                [p.cells() if isinstance(p, Text) else p.values.astype(object) for p in parts]
            )
    if index is None:
        first = chunks[0].first_row
        index = pd.RangeIndex(first, first + sum(c.rows for c in chunks))
    return pd.DataFrame(data, index=index)


def _all_bool(part: Text) -> bool:
    return not part.missing.any() and all(isinstance(v, bool) for v in part.values)


# --------------------------------------------------------------------------- writing rows back


class RawRowsWriter:
    """Appends chunks' rows to a CSV with the source's header, cells written so that reading
    them back (here, or by an endpoint's raw-row parser) gives the same values: numbers in
    their shortest exact form, text quoted where needed, missing cells empty."""

    def __init__(self, path: Path):
        self.path = path
        self._fh = open(path, "wb")  # noqa: SIM115 (closed by close())
        self._header = True

    def write(self, chunk: RawChunk) -> None:
        import polars as pl

        series = []
        for name, column in chunk.columns.items():
            if isinstance(column, Numbers):
                s = pl.Series(name, column.values)
                if column.values.dtype.kind == "f":
                    s = s.fill_nan(None)
            else:
                cells = np.empty(len(column.values) + 1, object)
                cells[:-1] = [str(v) for v in column.values]  # True/False as pandas spells them
                cells[-1] = None
                s = pl.Series(name, cells[column.codes], dtype=pl.String)
            series.append(s)
        pl.DataFrame(series).write_csv(self._fh, include_header=self._header)
        self._header = False

    def close(self) -> None:
        self._fh.close()
