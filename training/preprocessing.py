"""From a raw CSV to Linear Learner channels: validate, encode labels, split, transform, write.

The CSV is streamed in chunks twice: pass 1 counts rows, collects the label classes and a
bounded uniform sample of training rows to fit the ``ColumnTransformer`` on; pass 2 transforms
each chunk and appends it to the channel files. Memory stays bounded by the chunk and sample
sizes, whatever the file size. The split of each chunk is seeded by (seed, chunk index), so both
passes (and any rerun) agree on which row goes where.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from training import validation
from training.bulk_transform import BulkTransform
from training.channels import ChannelWriter
from training.checksums import file_sha256
from training.errors import Problem, ValidationError
from training.progress import progress

log = logging.getLogger("training")
CHANNELS = ("train", "validation", "test")
PREPROCESSOR_FILE = "preprocessor.joblib"
MANIFEST_FILE = "manifest.json"
INDEX_COLUMN = "Unnamed: 0"


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
    chunk_rows: int = 100_000
    fit_sample_rows: int = 200_000
    shard_bytes: int | None = None
    show_progress: bool = True


@dataclass
class LabelEncoding:
    """Original label values <-> the numbers Linear Learner trains on."""

    predictor_type: str
    classes: list = field(default_factory=list)  # index = encoded value (classifiers)

    @classmethod
    def fit(cls, predictor_type: str, values: set, positive_class: str | None) -> LabelEncoding:
        if predictor_type == "regressor":
            return cls(predictor_type)
        classes = sorted(values, key=_sort_key)
        if predictor_type == "binary_classifier" and positive_class is not None:
            match = [c for c in classes if str(c) == str(positive_class)]
            if not match:
                raise ValidationError(
                    [
                        Problem(
                            "--positive-class",
                            f"'{positive_class}' is not one of the label values "
                            f"({', '.join(map(str, classes))})",
                            "pass one of those values",
                        )
                    ]
                )
            classes = [c for c in classes if c is not match[0]] + match
        return cls(predictor_type, [_plain(c) for c in classes])

    def encode(self, labels: pd.Series) -> np.ndarray:
        if self.predictor_type == "regressor":
            return pd.to_numeric(labels).to_numpy(np.float32)
        codes = pd.Categorical(labels, categories=self.classes).codes
        if (codes < 0).any():
            unknown = labels[codes < 0].iloc[0]
            raise ValueError(f"label value {unknown!r} is not one of {self.classes}")
        return codes.astype(np.float32)

    def to_json(self) -> dict:
        out = {"predictor_type": self.predictor_type}
        if self.classes:
            out["classes"] = self.classes
            if self.predictor_type == "binary_classifier":
                out["positive_class"] = self.classes[1]
        return out


def _plain(value):
    """numpy scalars -> Python values, so the mapping is JSON."""
    return value.item() if hasattr(value, "item") else value


def _sort_key(value):
    value = _plain(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return (isinstance(value, str), value if not isinstance(value, str) else value)


# --------------------------------------------------------------------------- split


def assign_splits(codes: np.ndarray, fractions, rng: np.random.Generator, stratify: bool):
    """0/1/2 (train/validation/test) per row; per class when stratified."""
    out = np.empty(codes.size, np.int8)
    groups = (
        [np.flatnonzero(codes == c) for c in np.unique(codes)]
        if stratify
        else [np.arange(codes.size)]
    )
    bounds = np.cumsum(fractions)[:-1]
    for idx in groups:
        idx = rng.permutation(idx)
        cuts = np.round(bounds * idx.size).astype(int)
        out[idx] = np.searchsorted(cuts, np.arange(idx.size), side="right")
    return out


# --------------------------------------------------------------------------- transformer


def build_transformer(numeric: list[str], categorical: list[str]):
    """Impute (median / most frequent), one-hot encode categoricals, scale numerics."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    parts = []
    if numeric:
        parts.append(
            (
                "num",
                make_pipeline(SimpleImputer(strategy="median"), StandardScaler()),
                numeric,
            )
        )
    if categorical:
        parts.append(
            (
                "cat",
                make_pipeline(
                    SimpleImputer(strategy="most_frequent"),
                    OneHotEncoder(handle_unknown="ignore", sparse_output=False, dtype=np.float32),
                ),
                categorical,
            )
        )
    return ColumnTransformer(parts, remainder="drop", sparse_threshold=0.0)


def _column_roles(sample: pd.DataFrame, label: str, drop: tuple[str, ...]):
    """Numeric vs categorical inputs, and what is dropped and why."""
    numeric, categorical, dropped = [], [], {}
    for col in sample.columns:
        if col == label:
            continue
        series = sample[col]
        if col in drop:
            dropped[col] = "dropped on request (--drop)"
        elif col == INDEX_COLUMN or (str(col).startswith("Unnamed:") and _counts_up(series)):
            dropped[col] = "row index written by to_csv(index=True); not a feature"
        elif series.isna().all():
            dropped[col] = "empty in every row"
        elif _mostly_numbers(series):
            numeric.append(col)
        else:
            distinct = series.nunique(dropna=True)
            if distinct > 100 and distinct > 0.5 * series.notna().sum():
                dropped[col] = (
                    f"text with {distinct} distinct values in {series.notna().sum()} rows "
                    "(an identifier or free text; one-hot encoding it would only memorise rows)"
                )
            else:
                categorical.append(col)
    return numeric, categorical, dropped


def _mostly_numbers(series: pd.Series) -> bool:
    """Numeric dtype, or text that is numbers but for a few stray cells (reported later)."""
    if pd.api.types.is_bool_dtype(series):
        return False
    if pd.api.types.is_numeric_dtype(series):
        return True
    present = series.dropna()
    parsed = pd.to_numeric(present, errors="coerce").notna().sum()
    return present.size > 0 and parsed >= 0.9 * present.size


def _counts_up(series: pd.Series) -> bool:
    values = pd.to_numeric(series, errors="coerce").to_numpy()
    return values.size > 1 and bool(np.all(np.diff(values) == 1))


# --------------------------------------------------------------------------- prepare


def _chunks(config: PrepareConfig, total_rows: int | None, desc: str):
    reader = pd.read_csv(config.data, chunksize=config.chunk_rows, skipinitialspace=True)
    bar = progress(total=total_rows, desc=desc, unit="rows", enabled=config.show_progress)
    try:
        first_row = 0
        for i, chunk in enumerate(reader):
            chunk.index = np.arange(first_row, first_row + len(chunk))
            first_row += len(chunk)
            yield i, chunk
            bar.update(len(chunk))
    except pd.errors.ParserError as err:
        raise ValidationError([validation.ragged_row_problem(str(config.data), err)]) from None
    finally:
        bar.close()


def _chunk_splits(config: PrepareConfig, i: int, codes: np.ndarray) -> np.ndarray:
    rng = np.random.default_rng([config.seed, i])
    stratify = config.predictor_type != "regressor"
    return assign_splits(codes, config.fractions, rng, stratify)


def _scan(config: PrepareConfig):
    """Pass 1: rows, label classes, missing labels, a bounded sample of training rows."""
    rows, unlabeled, classes = 0, 0, set()
    sample, keys = None, None
    rng = np.random.default_rng([config.seed, 1 << 20])
    missing: list[int] = []
    for i, chunk in _chunks(config, None, "scan"):
        rows += len(chunk)
        y = chunk[config.label]
        absent = y.isna().to_numpy()
        if absent.any():
            unlabeled += int(absent.sum())
            missing += (chunk.index[absent] + 2).tolist()[: 3 - len(missing)]
            chunk, y = chunk[~absent], y[~absent]
        if config.predictor_type != "regressor":
            classes.update(y.unique().tolist())
        codes = _provisional_codes(y, config.predictor_type)
        train = chunk[_chunk_splits(config, i, codes) == 0]
        k = rng.random(len(train))
        sample = train if sample is None else pd.concat([sample, train])
        keys = k if keys is None else np.concatenate([keys, k])
        if len(sample) > config.fit_sample_rows:
            keep = np.argpartition(keys, config.fit_sample_rows)[: config.fit_sample_rows]
            sample, keys = sample.iloc[np.sort(keep)], keys[np.sort(keep)]
    if missing and not config.drop_unlabeled:
        raise ValidationError(
            [
                Problem(
                    str(config.data),
                    f"label '{config.label}' is empty ({unlabeled} rows in all)",
                    "fill the labels in, or pass --drop-unlabeled to leave those rows out",
                    row=r,
                )
                for r in missing
            ]
        )
    if unlabeled:
        log.info("dropping %d rows whose label '%s' is empty", unlabeled, config.label)
    return rows, unlabeled, classes, sample


def _provisional_codes(y: pd.Series, predictor_type: str) -> np.ndarray:
    """Per-class codes for stratifying one chunk (both passes see the same chunk, so the
    order-of-appearance codes of ``factorize`` agree; no salted ``hash``)."""
    if predictor_type == "regressor":
        return np.zeros(len(y), np.int64)
    return pd.factorize(y)[0]


OUTPUTS = frozenset((*CHANNELS, MANIFEST_FILE, PREPROCESSOR_FILE))  # what prepare owns in out/


def prepare(config: PrepareConfig) -> dict:
    """Run the whole data path and return the manifest it wrote to ``out/manifest.json``.

    Everything is written into a staging folder beside ``out`` and moved into place only
    when complete: a failed run leaves the previous output untouched and nothing partial.
    """
    config.data, config.out = Path(config.data), Path(config.out)
    _check_out(config.out)
    try:
        config.out.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(
            tempfile.mkdtemp(prefix=f".{config.out.name}.prepare-", dir=config.out.parent)
        )
    except OSError as err:
        raise ValidationError(
            [
                Problem(
                    str(config.out),
                    f"cannot create a folder beside --out: {err.strerror}",
                    "pass an --out path in a folder you can write to",
                )
            ]
        ) from None
    try:
        manifest = _prepare_into(config, staging)
        staging.chmod(0o777 & ~_umask())
        _replace_folder(staging, config.out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return manifest


def _check_out(out: Path) -> None:
    """``out`` is new, empty, or a previous prepare output: never someone else's folder."""
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


def _replace_folder(new: Path, out: Path) -> None:
    """Swap ``new`` in for ``out`` with renames; the old folder is removed only afterwards."""
    if not out.exists():
        os.rename(new, out)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{out.name}.replaced-", dir=out.parent))
    os.rename(out, old / out.name)
    os.rename(new, out)
    shutil.rmtree(old, ignore_errors=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _prepare_into(config: PrepareConfig, out: Path) -> dict:
    import joblib

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
    validation.validate_raw_csv(
        config.data, config.label, config.predictor_type, allow_unlabeled=config.drop_unlabeled
    )
    total_rows, unlabeled, classes, sample = _scan(config)
    if sample is None or len(sample) < 2:
        raise ValidationError(
            [
                Problem(
                    str(config.data),
                    f"only {total_rows} rows; too few to split into train/validation/test",
                    "add data rows",
                )
            ]
        )
    labels = LabelEncoding.fit(config.predictor_type, classes, config.positive_class)
    numeric, categorical, dropped = _column_roles(sample, config.label, config.drop)
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
    transformer = build_transformer(numeric, categorical)
    transformer.fit(_finite(sample, numeric, str(config.data)))
    feature_names = [n.split("__", 1)[-1] for n in transformer.get_feature_names_out()]
    bulk = BulkTransform.from_fitted(transformer)  # the same transform, vectorised

    writers = {
        name: ChannelWriter(out / name, name, config.fmt, config.shard_bytes) for name in CHANNELS
    }
    for i, chunk in _chunks(config, total_rows, f"write {config.fmt}"):
        chunk = chunk[chunk[config.label].notna()]
        codes = _provisional_codes(chunk[config.label], config.predictor_type)
        splits = _chunk_splits(config, i, codes)
        X = bulk.transform(_finite(chunk, numeric, str(config.data)))
        y = labels.encode(chunk[config.label])
        _check_chunk(config, X, y, chunk.index)
        rng = np.random.default_rng([config.seed, i, 7])
        for s, name in enumerate(CHANNELS):
            rows = rng.permutation(np.flatnonzero(splits == s))  # shuffle within the chunk
            writers[name].write(X[rows], y[rows])
    channels = {name: w.close() for name, w in writers.items()}
    empty = [name for name, info in channels.items() if info["rows"] == 0]
    if empty:
        raise ValidationError(
            [
                Problem(
                    str(config.data),
                    f"the {', '.join(empty)} split came out empty from {total_rows} rows",
                    "add rows or change --split",
                )
            ]
        )
    joblib.dump({"transformer": transformer, "labels": labels}, out / PREPROCESSOR_FILE)

    hyperparameters = {"predictor_type": config.predictor_type, "feature_dim": len(feature_names)}
    if config.predictor_type == "multiclass_classifier":
        hyperparameters["num_classes"] = len(labels.classes)
    manifest = {
        "format_version": 1,
        "source": {
            "path": str(config.data),
            "sha256": file_sha256(config.data),
            "rows": total_rows,
            "unlabeled_rows_dropped": unlabeled,
        },
        "label": {"column": config.label, **labels.to_json()},
        "feature_dim": len(feature_names),
        "feature_names": feature_names,
        "input_columns": {"numeric": numeric, "categorical": categorical, "dropped": dropped},
        "format": config.fmt,
        "channels": channels,
        "split": dict(zip(CHANNELS, config.fractions)),
        "seed": config.seed,
        "fit_sample": {
            "rows": len(sample),
            "bounded": len(sample) < channels["train"]["rows"],
            "train_rows": channels["train"]["rows"],
        },
        "preprocessor": PREPROCESSOR_FILE,
        "hyperparameters": hyperparameters,
    }
    (out / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, default=str))
    log.info(
        "prepared %d rows in %.1fs -> %s", total_rows, time.perf_counter() - started, config.out
    )
    return manifest


def _finite(frame: pd.DataFrame, numeric: list[str], source: str = "") -> pd.DataFrame:
    """Numeric columns as floats: text in them is an error, infinities count as missing."""
    frame = frame.copy()
    for col in numeric:
        if pd.api.types.is_numeric_dtype(frame[col]):
            continue
        coerced = pd.to_numeric(frame[col], errors="coerce")
        bad = coerced.isna() & frame[col].notna()
        if bad.any():
            row = bad.idxmax()
            raise ValidationError(
                [
                    Problem(
                        source,
                        f"column '{col}' holds '{frame[col][row]}', not a number, though it "
                        "is numeric elsewhere in the file",
                        "fix or blank out that cell",
                        row=int(row) + 2,
                    )
                ]
            )
        frame[col] = coerced
    values = frame[numeric].to_numpy(dtype=np.float64, na_value=np.nan)
    inf = np.isinf(values)
    if inf.any():
        for col in np.array(numeric)[inf.any(axis=0)]:
            log.info("column '%s': infinite values treated as missing (imputed)", col)
        frame[numeric] = np.where(inf, np.nan, values)
    return frame


def _check_chunk(config: PrepareConfig, X: np.ndarray, y: np.ndarray, index) -> None:
    """The channel preflight, applied to each chunk before it is written."""
    problems = validation.label_problems(
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


def read_manifest(directory: Path) -> dict:
    """The manifest ``prepare`` wrote in ``directory``, or {} for hand-made channels."""
    path = Path(directory) / MANIFEST_FILE
    return json.loads(path.read_text()) if path.exists() else {}


class Preprocessor:
    """The fitted transform and label mapping, for applying to raw rows at inference."""

    def __init__(self, directory: Path):
        import joblib

        saved = joblib.load(Path(directory) / PREPROCESSOR_FILE)
        self.transformer = saved["transformer"]
        self.labels: LabelEncoding = saved["labels"]

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        return self.transformer.transform(frame).astype(np.float32)

    def decode(self, predicted: np.ndarray) -> list:
        if not self.labels.classes:
            return list(predicted)
        return [self.labels.classes[int(i)] for i in predicted]
