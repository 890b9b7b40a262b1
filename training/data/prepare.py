"""``prepare``: from a raw CSV to Linear Learner channels and the manifest, the data path's steps
in order: read (:mod:`raw_csv`) -> check (:mod:`raw_checks`) -> labels and split -> fit
(:mod:`fit`) -> encode (:mod:`encode`) -> write (:mod:`channels`, :mod:`manifest`).

The CSV is parsed once, in chunks: pass 1 checks the first rows, counts rows, collects the
label classes, checks the features the first rows showed to be copies of the label on every
row, splits each chunk (:mod:`split`: the fractions held per class across the file), draws a
bounded uniform sample of training rows and spills the parsed chunks to a scratch file; the
``ColumnTransformer`` is fitted on the sample; pass 2 reads the spilled chunks back, encodes
them and appends them to the channel files. Memory stays bounded by the chunk and sample sizes,
whatever the file's length, and those are set by budgets of cells and of distinct text
(:class:`training.data.sizing.Sizes`), whatever its width or text. The split is seeded, so any
rerun puts each row where it went.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import pickle
import signal
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from training.checksums import file_sha256
from training.core.featurizer import PREPROCESSING_FILE, Featurizer
from training.core.losses import MULTICLASS, REGRESSOR
from training.data import raw_checks, raw_csv
from training.data.channels import ChannelWriter
from training.data.encode import FeatureEncoder
from training.data.fit import (
    PREPROCESSOR_FILE,
    MixedCategoriesError,
    column_roles,
    describe,
    fit_transformer,
    save_preprocessor,
)
from training.data.label_copies import LabelCopies
from training.data.labels import LabelEncoding, label_problems
from training.data.manifest import (
    CHANNELS,
    MANIFEST_FILE,
    Channel,
    FitSample,
    InputColumns,
    Label,
    Manifest,
    Source,
)
from training.data.raw_csv import Numbers, RawChunk, RawRowsWriter, Text
from training.data.sizing import Sizes
from training.data.split import Splitter
from training.errors import Problem, UserError, ValidationError
from training.files import (
    OWNER_FILE,
    FileLock,
    Locked,
    is_owned,
    lock_holder,
    make_owned_folder,
    remove_owned,
    stale_folders,
)
from training.limits import column_limits
from training.progress import progress

log = logging.getLogger("training")


@dataclass
class PrepareConfig:
    """Everything ``prepare`` needs; defaults are what a first run should use."""

    data: Path
    label: str
    predictor_type: str
    out: Path
    fmt: str = "recordio"
    seed: int = 0
    fractions: tuple[float, float, float] = (0.7, 0.15, 0.15)
    positive_class: str | None = None
    drop: tuple[str, ...] = ()
    drop_unlabeled: bool = False
    chunk_rows: int | None = None  # None: by the file's width and text (Sizes)
    fit_sample_rows: int | None = None  # None: by the file's width and text (Sizes)
    shard_bytes: int | None = None
    show_progress: bool = True


class Spill:
    """The parsed chunks and their splits, pickled to a scratch file: the fit sample and
    pass 2 read them back instead of parsing the CSV again."""

    def __init__(self, path: Path):
        self.path = path
        self._fh = open(path, "wb")  # noqa: SIM115 (closed by close())

    def add(self, chunk: RawChunk, splits: np.ndarray) -> None:
        pickle.dump((chunk, splits), self._fh, protocol=5)

    def reset(self) -> None:
        self._fh.seek(0)
        self._fh.truncate()

    def __iter__(self):
        self._fh.flush()
        with open(self.path, "rb") as fh:
            while True:
                try:
                    yield pickle.load(fh)
                except EOFError:
                    return

    def close(self) -> None:
        self._fh.close()
        self.path.unlink(missing_ok=True)


@dataclass
class Scan:
    """What pass 1 learned about the file."""

    rows: int
    unlabeled: int
    classes: set
    sample_rows: np.ndarray  # data row numbers of the fit sample, ascending
    split_counts: dict  # class value (None: regressor) -> rows in train, validation, test


def _scan(config: PrepareConfig, spill: Spill, check_rows: int) -> Scan:
    """Pass 1 with the fastest engine that reads the file as pandas does."""

    def attempt(engine: str) -> Scan:
        spill.reset()  # what an engine that gave up had spilled
        return _scan_with(config, spill, engine, check_rows)

    return raw_csv.with_engines(config.data, attempt)


def _scan_with(config: PrepareConfig, spill: Spill, engine: str, check_rows: int) -> Scan:
    """Validate the first rows; count rows and classes; split; sample; spill each chunk."""
    rows, unlabeled, classes, missing = 0, 0, set(), []
    keys, sample = np.zeros(0), np.zeros(0, np.int64)
    rng = np.random.default_rng([config.seed, 1 << 20])
    splitter = Splitter(config.fractions, config.seed, config.predictor_type != REGRESSOR)
    bar = progress(total=None, desc="read", unit="rows", enabled=config.show_progress)
    kinds = raw_checks.LabelKinds()

    def consume(chunk: RawChunk) -> None:
        nonlocal rows, unlabeled, keys, sample
        rows += chunk.rows
        y = chunk.columns[config.label]
        labelled = np.flatnonzero(~y.missing)
        if len(labelled) < chunk.rows:
            unlabeled += chunk.rows - len(labelled)
            absent = chunk.first_row + np.flatnonzero(y.missing)
            missing.extend((absent[: 3 - len(missing)] + 2).tolist())
            y = y.take(labelled)
        if config.predictor_type != REGRESSOR:
            classes.update(_distinct(y))
            problem = kinds.problem(str(config.data), config.label, y, chunk.first_row + labelled)
            if problem:  # one class spelt two ways would be two classes
                raise ValidationError([problem])
        else:  # text past the first rows: refused here, before anything is written
            problem = raw_checks.regression_label_problem(
                str(config.data), config.label, y, chunk.first_row + labelled
            )
            if problem:
                raise ValidationError([problem])
        splits = splitter.split(y, chunk.index)
        train = chunk.first_row + labelled[splits == 0]
        keys = np.concatenate([keys, rng.random(len(train))])
        sample = np.concatenate([sample, train])
        if len(sample) > config.fit_sample_rows:
            keep = np.sort(np.argpartition(keys, config.fit_sample_rows)[: config.fit_sample_rows])
            keys, sample = keys[keep], sample[keep]
        spill.add(chunk, splits)
        bar.update(chunk.rows)

    chunks = raw_csv.read_chunks(config.data, config.chunk_rows, engine, exact=(config.label,))
    try:
        head = []  # validated before any of its rows is used
        for chunk in chunks:
            head.append(chunk)
            if sum(c.rows for c in head) >= check_rows:
                break
        # candidate copies of the label, from the first rows; every row checks them again
        copies = _check_first_rows(config, head, check_rows).restarted()
        for chunk in itertools.chain(head, chunks):
            consume(chunk)
            copies.update(chunk)
    finally:
        bar.close()
    problems = copies.problems(str(config.data))
    if missing and not config.drop_unlabeled:
        problems += [
            Problem(
                str(config.data),
                f"label '{config.label}' is empty ({unlabeled} rows in all)",
                "fill the labels in, or pass --drop-unlabeled to leave those rows out",
                row=r,
            )
            for r in missing
        ]
    if problems:
        raise ValidationError(problems)
    if unlabeled:
        log.info("dropping %d rows whose label '%s' is empty", unlabeled, config.label)
    return Scan(rows, unlabeled, classes, sample, splitter.per_class())


def _check_split(config: PrepareConfig, scan: Scan) -> None:
    """Every split gets rows, and each class a share of each split when it has rows enough;
    a split that would come out empty is refused before anything is fitted or written,
    naming the classes too small for the requested fractions."""
    per_class = scan.split_counts
    totals = np.sum([counts for counts in per_class.values()], axis=0, dtype=np.int64)
    empty = [i for i, name in enumerate(CHANNELS) if totals.size and totals[i] == 0]
    split = " ".join(f"{f:g}" for f in config.fractions)
    if totals.size == 0 or empty:
        names = ", ".join(CHANNELS[i] for i in empty) or "every"
        share = min(config.fractions[i] for i in empty) if empty else min(config.fractions)
        rows = ", ".join(
            f"'{value}' {sum(counts)}" for value, counts in itertools.islice(per_class.items(), 5)
        )
        classes = f" (rows of each class: {rows}{', …' if len(per_class) > 5 else ''})"
        raise ValidationError(
            [
                Problem(
                    str(config.data),
                    f"the {names} split would be empty: {int(totals.sum())} labelled rows"
                    f"{classes if config.predictor_type != REGRESSOR else ''} are too few for "
                    f"a {share:g} share (--split {split}); a split needs about "
                    f"{int(np.ceil(1 / share))} rows of a class to get one",
                    "add rows (of the classes named), or raise that fraction in --split",
                )
            ]
        )
    for value, counts in per_class.items():
        missing = [name for name, n in zip(CHANNELS, counts) if n == 0]
        if missing and config.predictor_type != REGRESSOR:
            log.warning(
                "class '%s' has %d rows, too few for --split %s: none in %s",
                value, sum(counts), split, " or ".join(missing),
            )  # fmt: skip


def _check_first_rows(config: PrepareConfig, head: list[RawChunk], rows: int) -> LabelCopies:
    """``validate``'s column checks on the first ``rows`` rows, before any of them is used;
    the columns these rows show to be copies of the label."""
    frame = (
        raw_csv.to_frame(head).iloc[:rows]
        if head
        else pd.DataFrame(columns=raw_csv.header(config.data))
    )
    return raw_checks.check_raw_sample(
        config.data,
        frame,
        config.label,
        config.predictor_type,
        config.drop_unlabeled,
        config.drop,
    )


def _distinct(column: Numbers | Text) -> list:
    if isinstance(column, Text):
        return column.values[np.unique(column.codes)].tolist()
    return np.unique(column.values).tolist()


def _sample_frame(spill: Spill, rows: np.ndarray) -> pd.DataFrame:
    """The fit sample's rows, read back from the spill, as one DataFrame indexed by row."""
    parts, index = [], []
    for chunk, _ in spill:
        lo, hi = np.searchsorted(rows, [chunk.first_row, chunk.first_row + chunk.rows])
        if hi > lo:
            parts.append(chunk.take(rows[lo:hi] - chunk.first_row))
            index.append(rows[lo:hi])
    if not parts:
        return pd.DataFrame()
    return raw_csv.to_frame(parts, index=np.concatenate(index))


TEST_ROWS_FILE = "test_rows.csv"  # the test split as the source had it (header, label too)
# what prepare owns in out/
OUTPUTS = frozenset(
    (*CHANNELS, MANIFEST_FILE, PREPROCESSOR_FILE, PREPROCESSING_FILE, TEST_ROWS_FILE, OWNER_FILE)
)
# Tests only: "<checkpoint>:<KILL|STOP>" sends prepare that signal at one of its checkpoints
# (locked, staged, out-moved, swapped), on the real code path, to kill or pause it there.
SIGNAL_AT_ENV = "TRAINING_PREPARE_SIGNAL_AT"


@dataclass(frozen=True)
class Beside:
    """The entries ``prepare`` keeps beside ``--out`` (``.<name>.prepare…``): its lock, its
    staging folders, and the previous output while the new one is swapped in."""

    out: Path

    @property
    def lock(self) -> Path:
        return self.out.with_name(f".{self.out.name}.prepare.lock")

    @property
    def staging_prefix(self) -> str:
        return f".{self.out.name}.prepare-"

    @property
    def previous(self) -> Path:
        return self.out.with_name(f".{self.out.name}.prepare.previous")

    @property
    def owner(self) -> str:
        """files.OWNER_FILE's text in the folders prepare writes for this --out (its staging,
        its output): a folder of the exact staging name written for another --out is not
        this run's to remove."""
        return f"python -m training prepare --out {self.out}"


def prepare(config: PrepareConfig) -> Manifest:
    """Run the whole data path and return the manifest it wrote to ``out/manifest.json``.

    Under a lock beside ``out`` (a second ``prepare`` into it is refused, naming the holder),
    everything is written into a staging folder beside ``out`` and swapped in only when
    complete: a failed run leaves the previous output untouched and nothing partial. A run
    killed at any point leaves ``out`` whole (old or new) or recoverable, and the next run
    finishes the job: it restores or clears the previous output and removes the staging
    folders of killed runs, proven ours by their exact name and owner file.
    """
    config.data, config.out = Path(config.data), Path(config.out)
    beside = Beside(Path(os.path.abspath(config.out)))  # "." and "x/.." have a name too
    if not beside.out.name:
        raise ValidationError(
            [Problem(str(config.out), "--out is the root folder", "pass a folder path for --out")]
        )
    try:
        beside.out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise _beside_error(config.out, err) from None
    try:
        lock = FileLock(beside.lock).acquire()
    except Locked as held:
        raise UserError(
            f"--out {config.out} is locked by another prepare ({held.holder}): wait for it to "
            "finish, or pass another --out."
        ) from None
    except OSError as err:
        raise UserError(
            f"--out {config.out}: cannot take the lock {beside.lock}: {err.strerror}: remove "
            "it if it is a link or a folder, or pass an --out in a folder you can write to."
        ) from None
    try:
        _checkpoint("locked")
        _recover(beside)
        _check_out(config.out)
        _check_not_nested(config.out, beside)
        try:
            staging = make_owned_folder(beside.out.parent, beside.staging_prefix, beside.owner)
        except OSError as err:
            raise _beside_error(config.out, err) from None
        try:
            manifest = _prepare_into(config, staging)
            staging.chmod(0o777 & ~_umask())
            _checkpoint("staged")
            _check_out(config.out)  # again: a prepare into a folder inside it may have begun
            _replace_folder(staging, beside)
        except BaseException:
            with contextlib.suppress(OSError):  # else the next run removes it
                remove_owned(staging)
            raise
    finally:
        lock.release()
    return manifest


def _beside_error(out: Path, err: OSError) -> ValidationError:
    return ValidationError(
        [
            Problem(
                str(out),
                f"cannot create a folder beside --out: {err.strerror}",
                "pass an --out path in a folder you can write to",
            )
        ]
    )


def _checkpoint(name: str) -> None:
    point, _, sig = os.environ.get(SIGNAL_AT_ENV, "").partition(":")
    if point == name:
        os.kill(os.getpid(), getattr(signal, f"SIG{sig}"))


def _recover(beside: Beside) -> None:
    """Finish what a killed run left (under the lock, so no run is using any of it): the
    previous output back in place if the swap was cut before the new one arrived, else
    removed; the staging folders of killed runs removed."""
    out, previous = beside.out, beside.previous
    if previous.exists() or previous.is_symlink():
        if not is_owned(previous, beside.owner):
            raise ValidationError(
                [
                    Problem(
                        str(previous),
                        "is in the way of prepare's swap of --out and is not prepare's",
                        "move it elsewhere",
                    )
                ]
            )
        if is_owned(out, beside.owner):  # the new output had arrived: the old one goes
            remove_owned(previous)
        else:  # cut between the renames: the old output goes back (over an empty folder)
            if out.is_dir() and not out.is_symlink() and not any(out.iterdir()):
                out.rmdir()
            if out.exists() or out.is_symlink():
                raise ValidationError(
                    [
                        Problem(
                            str(out),
                            f"a killed prepare left the previous output in {previous.name}, "
                            "and --out now holds something else",
                            f"move {out} elsewhere, then rerun (its previous output returns)",
                        )
                    ]
                )
            os.rename(previous, out)
            log.info("%s: restored the output a killed prepare had moved aside", out)
    for stale in stale_folders(out.parent, beside.staging_prefix, beside.owner):
        remove_owned(stale)
        log.info("removed %s, left by a killed prepare", stale)


def _check_out(out: Path) -> None:
    """``out`` is new, empty, or a previous prepare output: never someone else's folder, and
    not a link (the swap renames --out itself: a link would be moved aside and the folder it
    points to emptied through it, and the run failed with the link left in the way)."""
    if out.is_symlink():
        raise ValidationError(
            [
                Problem(
                    str(out),
                    f"--out is a link (to {os.readlink(out)}); prepare replaces its --out folder "
                    "as a whole, by renames",
                    "pass the folder itself (or a new path) for --out",
                )
            ]
        )
    if out.exists() and not out.is_dir():
        raise ValidationError(
            [Problem(str(out), "--out is an existing file", "pass a folder path for --out")]
        )
    foreign = sorted(set(os.listdir(out)) - OUTPUTS) if out.is_dir() else []
    if foreign:
        shown = ", ".join(foreign[:5]) + (", …" if len(foreign) > 5 else "")
        raise ValidationError(
            [
                Problem(
                    str(out),
                    f"--out holds files prepare did not write ({shown}); prepare replaces its "
                    "output folder as a whole",
                    "pass a new or empty folder for --out",
                )
            ]
        )


def _check_not_nested(out: Path, beside: Beside) -> None:
    """``out`` is not inside another prepare's output, nor inside one being written: that
    prepare replaces its folder as a whole, and this output with it (it did, silently, after
    this run had said it was done)."""
    for folder in beside.out.parents:
        if not folder.name:
            break
        holder = lock_holder(Beside(folder).lock)
        if holder or is_owned(folder, Beside(folder).owner):
            what = f"which another prepare is writing ({holder})" if holder else "a prepare output"
            raise ValidationError(
                [
                    Problem(
                        str(out),
                        f"--out is inside {folder}, {what}: a prepare into {folder} replaces "
                        "it as a whole, and this output with it",
                        f"pass an --out outside {folder}",
                    )
                ]
            )


def _replace_folder(new: Path, beside: Beside) -> None:
    """Swap ``new`` in for ``out`` by renames: ``out`` moves aside (marked ours first, so a
    kill here leaves it recoverable), ``new`` takes its name, the old one is removed last."""
    out = beside.out
    if not out.exists():
        os.rename(new, out)
        return
    mark = out / OWNER_FILE
    if not is_owned(out, beside.owner):  # empty, an output of before owner files, or moved
        mark.write_text(beside.owner + "\n")
    os.rename(out, beside.previous)
    _checkpoint("out-moved")
    os.rename(new, out)
    _checkpoint("swapped")
    remove_owned(beside.previous)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@dataclass(frozen=True)
class Learned:
    """What the fit sample teaches: the label mapping, each column's role, the transformer."""

    columns: list[str]  # the source's, in order
    labels: LabelEncoding
    numeric: list[str]
    categorical: list[str]
    dropped: dict[str, str]
    transformer: object  # the fitted ColumnTransformer (training.data.fit)
    sample_rows: int


def _prepare_into(config: PrepareConfig, out: Path) -> Manifest:
    started = time.perf_counter()
    if abs(sum(config.fractions) - 1) > 1e-9 or min(config.fractions) <= 0:
        raise ValidationError(
            [
                Problem(
                    "--split",
                    f"fractions {config.fractions} must be positive and sum to 1",
                    "e.g. --split 0.7 0.15 0.15",
                )
            ]
        )
    raw_checks.check_raw_file(config.data, config.predictor_type)
    # the rows held at once
    sizes = Sizes.of_file(
        config.data, chunk_rows=config.chunk_rows, fit_sample_rows=config.fit_sample_rows
    )
    config = replace(config, chunk_rows=sizes.chunk_rows, fit_sample_rows=sizes.fit_sample_rows)
    spill = Spill(out / ".chunks")
    # the source's checksum is computed beside the main work
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="checksum") as pool:
        source_sha256 = pool.submit(file_sha256, config.data)
        try:
            scan = _scan(config, spill, sizes.check_rows)
            _check_split(config, scan)
            read = time.perf_counter()
            learned = _learn(config, spill, scan)
            fitted = time.perf_counter()
            featurizer = describe(
                learned.transformer, learned.columns, config.label, learned.dropped, learned.labels
            )
            _check_csv_width(config, len(featurizer.feature_names))
            encoder = FeatureEncoder(featurizer)  # the same, vectorised
            kept = scan.rows - scan.unlabeled
            channels = _write_channels(config, out, spill, encoder, learned.labels, kept)
            log.debug(
                "read %.2fs, sample and fit %.2fs, write %.2fs",
                read - started,
                fitted - read,
                time.perf_counter() - fitted,
            )
        finally:
            spill.close()
        source = Source(str(config.data), source_sha256.result(), scan.rows, scan.unlabeled)
    save_preprocessor(learned.transformer, learned.labels, out)
    featurizer.save(out / PREPROCESSING_FILE)
    manifest = _manifest(config, source, learned, featurizer, channels)
    manifest.write(out)
    log.info(
        "prepared %d of %d rows in %.1fs -> %s",
        scan.rows - scan.unlabeled, scan.rows, time.perf_counter() - started, config.out,
    )  # fmt: skip
    return manifest


def _check_csv_width(config: PrepareConfig, features: int) -> None:
    """CSV channels wider than ``validate`` (and the trainer's preflight) take are refused
    before a row is written: one-hot encoding can make many more features than columns."""
    most = column_limits()[1]
    if config.fmt == "csv" and features > most:
        raise ValidationError(
            [
                Problem(
                    str(config.data),
                    f"encodes to {features:,} features, over the limit of {most:,} for CSV "
                    "channels (training.limits.MAX_CSV_FEATURES)",
                    "use --format recordio (the default), or --drop categorical columns with "
                    "many values",
                )
            ]
        )


def _learn(config: PrepareConfig, spill: Spill, scan: Scan) -> Learned:
    """The fit sample read back, the columns' roles decided, the transformer fitted."""
    sample = _sample_frame(spill, scan.sample_rows)
    if len(sample) < 2:
        raise ValidationError(
            [
                Problem(
                    str(config.data),
                    f"only {scan.rows} rows; too few to split into train/validation/test",
                    "add data rows",
                )
            ]
        )
    labels = LabelEncoding.fit(config.predictor_type, scan.classes, config.positive_class)
    numeric, categorical, dropped = column_roles(sample, config.label, config.drop)
    for col, why in dropped.items():
        log.info("column '%s' is not used: %s", col, why)
    if not numeric and not categorical:
        raise ValidationError(
            [
                Problem(
                    str(config.data),
                    "no usable feature columns",
                    "add numeric or categorical feature columns",
                )
            ]
        )
    transformer = _fit(
        config, raw_checks.finite_frame(sample, numeric, str(config.data)), numeric, categorical
    )
    return Learned(
        list(sample.columns), labels, numeric, categorical, dropped, transformer, len(sample)
    )


def _manifest(
    config: PrepareConfig,
    source: Source,
    learned: Learned,
    featurizer: Featurizer,
    channels: dict[str, Channel],
) -> Manifest:
    feature_names = featurizer.feature_names
    hyperparameters = {"predictor_type": config.predictor_type, "feature_dim": len(feature_names)}
    if config.predictor_type == MULTICLASS:
        hyperparameters["num_classes"] = len(learned.labels.classes)
    train_rows = channels["train"].rows
    return Manifest(
        source=source,
        label=Label(config.label, config.predictor_type, list(learned.labels.classes)),
        feature_names=feature_names,
        input_columns=InputColumns(learned.numeric, learned.categorical, learned.dropped),
        format=config.fmt,
        channels=channels,
        split=dict(zip(CHANNELS, config.fractions)),
        seed=config.seed,
        fit_sample=FitSample(learned.sample_rows, learned.sample_rows < train_rows, train_rows),
        preprocessor=PREPROCESSOR_FILE,
        hyperparameters=hyperparameters,
        preprocessing=PREPROCESSING_FILE,
        test_rows=TEST_ROWS_FILE,
    )


def _fit(config: PrepareConfig, sample: pd.DataFrame, numeric, categorical):
    try:
        return fit_transformer(sample, numeric, categorical)
    except MixedCategoriesError as err:
        raise ValidationError(
            [
                Problem(
                    str(config.data),
                    f"{err} (some rows numbers, others text)",
                    "make the column text throughout, or numbers throughout",
                )
            ]
        ) from None


def _write_channels(
    config, out, spill, encoder: FeatureEncoder, labels, rows: int
) -> dict[str, Channel]:
    """Pass 2: each spilled chunk transformed, its rows shuffled within their split, appended.

    Two chunks are transformed at a time on worker threads (numpy releases the GIL) while
    this thread appends the finished ones, in order.
    """
    writers = {
        name: ChannelWriter(out / name, name, config.fmt, config.shard_bytes, len(labels.classes))
        for name in CHANNELS
    }
    test_rows = RawRowsWriter(out / TEST_ROWS_FILE)
    bar = progress(
        total=rows, desc=f"write {config.fmt}", unit="rows", enabled=config.show_progress
    )
    pending: deque = deque()
    try:
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="transform") as pool:
            for item in spill:
                pending.append(pool.submit(_encode_chunk, config, encoder, labels, *item))
                if len(pending) == 2:  # bounded: two chunks in flight
                    _append(writers, test_rows, *pending.popleft().result(), bar)
            while pending:
                _append(writers, test_rows, *pending.popleft().result(), bar)
    finally:
        for future in pending:
            future.cancel()
        bar.close()
        test_rows.close()
    return {name: w.close() for name, w in writers.items()}


def _append(writers: dict, test_rows: RawRowsWriter, parts: list, raw_test, bar) -> None:
    for name, (X, y) in zip(CHANNELS, parts):
        writers[name].write(X, y)
    test_rows.write(raw_test)
    bar.update(sum(len(y) for _, y in parts))


def _encode_chunk(config, encoder: FeatureEncoder, labels, chunk: RawChunk, splits: np.ndarray):
    """One chunk's labelled rows as (features, labels) per split, shuffled within the split."""
    labelled = np.flatnonzero(~chunk.columns[config.label].missing)
    if len(labelled) < chunk.rows:
        chunk = chunk.take(labelled)
    row_numbers = chunk.first_row + labelled
    X = encoder.transform_arrays(
        raw_checks.numeric_matrix(chunk, encoder.numeric, str(config.data), row_numbers),
        [chunk.columns[col] for col in encoder.categorical],
    )
    y = labels.encode_column(chunk.columns[config.label])
    _check_chunk(config, X, y, row_numbers)
    rng = np.random.default_rng([config.seed, chunk.index, 7])
    parts = []
    for s in range(len(CHANNELS)):
        rows = rng.permutation(np.flatnonzero(splits == s))
        parts.append((X[rows], y[rows]))
    # the test split's rows as the source had them, in the test channel's order
    return parts, chunk.take(rows)


def _check_chunk(config: PrepareConfig, X: np.ndarray, y: np.ndarray, index) -> None:
    """The channel preflight, applied to each chunk before it is written."""
    problems = label_problems(
        str(config.data), y, config.predictor_type, None, row_of=lambda i: int(index[i]) + 2
    )
    bad = np.flatnonzero(~np.isfinite(X).all(axis=1))
    problems += [
        Problem(
            str(config.data),
            "a feature is not finite after preprocessing",
            "check the row's values",
            row=int(index[i]) + 2,
        )
        for i in bad[:3]
    ]
    if problems:
        raise ValidationError(problems)
