"""prepare: raw CSV -> validated, encoded, split channels with a manifest and a saved transform."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from training.data import recordio
from training.data.channel_checks import validate_channels
from training.data.fit import Preprocessor
from training.data.manifest import CHANNELS
from training.data.prepare import PrepareConfig, prepare
from training.data.raw_csv import Text
from training.data.split import Splitter
from training.errors import ValidationError

ROOT = Path(__file__).parents[1]
PENGUINS = ROOT / "training" / "datasets" / "penguins.csv"


def run(tmp_path, **kw):
    args = dict(
        data=PENGUINS,
        label="species",
        predictor_type="multiclass_classifier",
        out=tmp_path / "out",
        show_progress=False,
    )
    args.update(kw)
    return prepare(PrepareConfig(**args))


def test_penguins_multiclass_recordio(tmp_path):
    manifest = run(tmp_path)
    out = tmp_path / "out"
    assert manifest.label.classes == ["Adelie", "Chinstrap", "Gentoo"]
    assert manifest.hyperparameters == {
        "predictor_type": "multiclass_classifier",
        "feature_dim": manifest.feature_dim,
        "num_classes": 3,
    }
    rows = {name: c.rows for name, c in manifest.channels.items()}
    assert sum(rows.values()) == 344
    assert rows["train"] == pytest.approx(0.7 * 344, abs=3)
    # island and sex are one-hot encoded, the numeric columns kept and scaled
    assert "island_Biscoe" in manifest.feature_names
    assert "sex_female" in manifest.feature_names
    assert manifest.feature_dim == len(manifest.feature_names)
    assert manifest.source.sha256 and manifest.fit_sample.bounded is False
    arrays = recordio.read_arrays(out / "train" / manifest.channels["train"].files[0])
    assert arrays.feature_type == arrays.label_type == "Float32"
    assert arrays.X.shape == (rows["train"], manifest.feature_dim)
    assert np.isfinite(arrays.X).all()  # imputed
    # scaled on the train split alone (the whole of it here: the fit sample is not bounded):
    # there each numeric column has mean 0 and standard deviation 1 to float32's precision,
    # which the file's other rows do not share
    numeric = arrays.X[:, :5].astype(np.float64)
    assert np.abs(numeric.mean(axis=0)).max() < 1e-5
    assert np.abs(numeric.std(axis=0) - 1).max() < 1e-5
    splits = [recordio.read_arrays(out / n / manifest.channels[n].files[0]) for n in CHANNELS]
    whole = np.vstack([a.X[:, :5] for a in splits]).astype(np.float64)
    assert np.abs(whole.mean(axis=0)).max() > 1e-3
    # every split holds every class (stratified), and the manifest counts them as written
    for name, split in zip(CHANNELS, splits):
        assert set(split.y.tolist()) == {0.0, 1.0, 2.0}
        assert manifest.channels[name].label_counts == np.bincount(split.y.astype(int)).tolist()
    assert json.loads((out / "manifest.json").read_text()) == manifest.to_json()


def test_same_seed_same_bytes_other_seed_other_split(tmp_path):
    a, b = run(tmp_path / "a"), run(tmp_path / "b")
    run(tmp_path / "c", seed=1)
    read = lambda d: (d / "out" / "train" / "train-00000.rec").read_bytes()  # noqa: E731
    assert a.channels == b.channels and read(tmp_path / "a") == read(tmp_path / "b")
    assert read(tmp_path / "a") != read(tmp_path / "c")


def test_csv_format_is_label_first_headerless_and_passes_preflight(tmp_path):
    manifest = run(
        tmp_path,
        fmt="csv",
        label="sex",
        predictor_type="binary_classifier",
        drop_unlabeled=True,
        positive_class="female",
    )
    path = tmp_path / "out" / "train" / "train-00000.csv"
    first = path.read_text().splitlines()[0].split(",")
    assert first[0] in ("0", "1") and len(first) == manifest.feature_dim + 1
    assert manifest.label.classes == ["male", "female"]  # positive class last -> 1
    assert manifest.source.unlabeled_rows_dropped == 11
    validate_channels([tmp_path / "out" / "train"], "binary_classifier", manifest.feature_dim)


def test_chunked_run_matches_shapes_and_bounds_the_fit_sample(tmp_path):
    manifest = run(tmp_path, chunk_rows=50, fit_sample_rows=100)
    assert vars(manifest.fit_sample) == {
        "rows": 100,
        "bounded": True,
        "train_rows": manifest.channels["train"].rows,
    }
    assert sum(c.rows for c in manifest.channels.values()) == 344


def test_shards(tmp_path):
    manifest = run(tmp_path, shard_bytes=4096)
    files = manifest.channels["train"].files
    assert len(files) > 1
    total = sum(recordio.read_arrays(tmp_path / "out" / "train" / f).X.shape[0] for f in files)
    assert total == manifest.channels["train"].rows


def test_preprocessor_applies_the_same_transform_to_raw_rows(tmp_path):
    run(tmp_path)
    pre = Preprocessor(tmp_path / "out")
    raw = pd.read_csv(PENGUINS).head(3)
    raw.loc[0, "island"] = "Atlantis"  # unknown category at inference must not fail
    X = pre.transform(raw)
    assert X.dtype == np.float32 and X.shape[0] == 3 and np.isfinite(X).all()
    assert pre.decode(np.array([2, 0])) == ["Gentoo", "Adelie"]


def test_a_preprocessor_saved_before_the_data_path_moved_still_loads(tmp_path, monkeypatch):
    """Files written before the move pickle the label mapping as
    ``training.preprocessing.LabelEncoding``: the module path stays importable."""
    import joblib

    from training.data.labels import LabelEncoding

    run(tmp_path)
    saved = joblib.load(tmp_path / "out" / "preprocessor.joblib")
    with monkeypatch.context() as patch:  # pickle it under the module path it had then
        patch.setattr(LabelEncoding, "__module__", "training.preprocessing")
        joblib.dump(saved, tmp_path / "out" / "preprocessor.joblib")
    assert b"training.preprocessing" in (tmp_path / "out" / "preprocessor.joblib").read_bytes()
    pre = Preprocessor(tmp_path / "out")
    assert pre.decode(np.array([2, 0])) == ["Gentoo", "Adelie"]


def test_index_and_identifier_columns_are_dropped(tmp_path):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "name": [f"p{i}" for i in range(300)],
            "x": rng.standard_normal(300),
            "y": rng.integers(0, 2, 300),
        }
    )
    path = tmp_path / "raw.csv"
    frame.to_csv(path)  # index=True: writes an unnamed index column
    manifest = prepare(
        PrepareConfig(path, "y", "binary_classifier", tmp_path / "o", show_progress=False)
    )
    assert manifest.feature_names == ["x"]
    assert set(manifest.input_columns.dropped) == {"Unnamed: 0", "name"}


def test_bad_inputs_are_refused_before_writing(tmp_path):
    with pytest.raises(ValidationError, match="--drop-unlabeled"):
        run(tmp_path, label="sex", predictor_type="binary_classifier")
    with pytest.raises(ValidationError, match="not one of the label values"):
        run(
            tmp_path,
            label="sex",
            predictor_type="binary_classifier",
            drop_unlabeled=True,
            positive_class="Male",
        )
    with pytest.raises(ValidationError, match="sum to 1"):
        run(tmp_path, fractions=(0.5, 0.2, 0.2))
    assert not (tmp_path / "out" / "manifest.json").exists()


def test_splits_are_stratified_and_hold_the_fractions_however_chunked():
    codes = np.repeat([0, 1], [80, 20])
    rng = np.random.default_rng(0)
    labels = rng.permutation(np.where(codes == 1, "yes", "no"))
    for size in (100, 7, 1):  # one chunk; several; a row a chunk
        splitter = Splitter((0.7, 0.15, 0.15), seed=0, stratify=True)
        splits = np.concatenate(
            [
                splitter.split(Text(*_text_codes(labels[i : i + size])), i // size)
                for i in range(0, 100, size)
            ]
        )
        for value, n in (("yes", 20), ("no", 80)):
            counts = np.bincount(splits[labels == value], minlength=3)
            assert np.abs(counts - n * np.array([0.7, 0.15, 0.15])).max() < 1, (size, counts)
            assert splitter.per_class()[value] == tuple(counts)


def _text_codes(values):
    distinct, codes = np.unique(values, return_inverse=True)
    return codes.astype(np.int32), distinct.astype(object)


def prepare_cli(*args):
    """``python -m training prepare …`` as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "training", "prepare", "--quiet", *map(str, args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_rare_class_reaches_every_split_though_each_chunk_holds_one_row(tmp_path):
    """40 positives in 4000 rows read 100 rows at a time: one positive a chunk, which the
    old per-chunk rounding always put in train (28 / 12 / 0 on 2M rows)."""
    rng = np.random.default_rng(5)
    y = np.zeros(4000, int)
    y[np.arange(40) * 100 + rng.integers(0, 100, 40)] = 1
    frame = pd.DataFrame({"x": rng.standard_normal(4000).round(3), "y": y})
    frame.to_csv(tmp_path / "rare.csv", index=False)
    res = prepare_cli(
        "--data", tmp_path / "rare.csv", "--label", "y", "--predictor-type",
        "binary_classifier", "--out", tmp_path / "out", "--chunk-rows", 100, "--format", "csv",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    positives = {name: c["label_counts"][1] for name, c in manifest["channels"].items()}
    assert sum(positives.values()) == 40
    assert positives == {"train": 28, "validation": 6, "test": 6}
    for name, share in zip(CHANNELS, (0.7, 0.15, 0.15)):
        rows = manifest["channels"][name]["rows"]
        assert abs(rows - 4000 * share) < 2, (name, rows)  # within a row for each class


def test_a_split_too_small_for_the_classes_is_named_before_anything_is_written(tmp_path):
    path = tmp_path / "tiny.csv"
    path.write_text("x,y\n" + "".join(f"{i},{'ab'[i % 2]}\n" for i in range(6)))
    res = prepare_cli(
        "--data", path, "--label", "y", "--predictor-type", "binary_classifier",
        "--out", tmp_path / "out", "--split", 0.98, 0.01, 0.01,
    )  # fmt: skip
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "split would be empty: 6 labelled rows (rows of each class: 'a' 3, 'b' 3)" in (
        res.stderr
    )
    assert "too few for a 0.01 share (--split 0.98 0.01 0.01)" in res.stderr
    assert "raise that fraction in --split" in res.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.csv"]


def test_a_class_too_rare_for_a_split_is_warned_about(tmp_path):
    rng = np.random.default_rng(1)
    y = np.array(["a", "b"] * 100 + ["rare"] * 2)
    frame = pd.DataFrame({"x": rng.standard_normal(y.size).round(3), "y": rng.permutation(y)})
    frame.to_csv(tmp_path / "rare.csv", index=False)
    res = prepare_cli(
        "--data", tmp_path / "rare.csv", "--label", "y", "--predictor-type",
        "multiclass_classifier", "--out", tmp_path / "out",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert "class 'rare' has 2 rows, too few for --split 0.7 0.15 0.15: none in" in res.stderr


def test_sharded_manifest_format():
    from training.data.channels import sharded_manifest

    assert sharded_manifest("s3://b/run/train", ["train-00000.rec", "train-00001.rec"]) == [
        {"prefix": "s3://b/run/train/"},
        "train-00000.rec",
        "train-00001.rec",
    ]
    with pytest.raises(ValueError, match="s3://"):
        sharded_manifest("/local/path", [])


def test_infinities_are_imputed_and_text_in_a_numeric_column_is_named(tmp_path):
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"x": rng.standard_normal(200), "y": rng.integers(0, 2, 200)})
    frame.loc[5, "x"] = np.inf
    path = tmp_path / "inf.csv"
    frame.to_csv(path, index=False)
    manifest = prepare(
        PrepareConfig(path, "y", "binary_classifier", tmp_path / "a", show_progress=False)
    )
    assert sum(c.rows for c in manifest.channels.values()) == 200
    frame["x"] = frame["x"].astype(object)
    frame.loc[150, "x"] = "oops"
    frame.to_csv(path, index=False)
    with pytest.raises(ValidationError, match=r"(?s)row 152.*'x' holds 'oops'"):
        prepare(
            PrepareConfig(
                path, "y", "binary_classifier", tmp_path / "b", chunk_rows=100, show_progress=False
            )
        )


def test_regression_labels_that_are_infinite_are_refused(tmp_path):
    frame = pd.DataFrame({"x": np.arange(300.0), "y": np.arange(300.0)})
    frame.loc[250, "y"] = np.inf
    path = tmp_path / "r.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(ValidationError, match=r"(?s)row 252.*'inf', not a finite number"):
        prepare(
            PrepareConfig(
                path, "y", "regressor", tmp_path / "o", chunk_rows=100, show_progress=False
            )
        )


def _tree(folder: Path) -> dict:
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


# small chunks and fit sample: the bad row is written in a later chunk, not seen by the fit
LATE_FAILURE = dict(
    label="y", predictor_type="binary_classifier", chunk_rows=100, fit_sample_rows=20
)


def _late_failing_csv(tmp_path) -> Path:
    """Rows that pass the scan and the fit sample but fail in the write pass: text in a
    numeric column at row 452, past the first chunks that get written."""
    rng = np.random.default_rng(2)
    frame = pd.DataFrame({"x": rng.standard_normal(500), "y": rng.integers(0, 2, 500)})
    frame["x"] = frame["x"].astype(object)
    frame.loc[450, "x"] = "oops"
    path = tmp_path / "late.csv"
    frame.to_csv(path, index=False)
    return path


def test_a_failed_prepare_leaves_the_previous_output_untouched(tmp_path):
    out = tmp_path / "out"
    run(tmp_path)
    before = _tree(out)
    bad = _late_failing_csv(tmp_path)
    with pytest.raises(ValidationError, match=r"row 452.*'x' holds 'oops'"):
        run(tmp_path, data=bad, **LATE_FAILURE)
    assert _tree(out) == before  # old manifest, old channels, nothing new beside them
    assert sorted(p.name for p in tmp_path.iterdir()) == ["late.csv", "out"]  # no staging left
    validate_channels([out / "train"], "multiclass_classifier")


def test_a_failed_prepare_into_a_new_folder_leaves_nothing(tmp_path):
    bad = _late_failing_csv(tmp_path)
    with pytest.raises(ValidationError, match="'x' holds 'oops'"):
        run(tmp_path, data=bad, **LATE_FAILURE)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["late.csv"]


def test_a_rerun_replaces_the_previous_output_whole(tmp_path):
    out = tmp_path / "out"
    run(tmp_path, shard_bytes=2000)
    assert len(list((out / "train").iterdir())) > 1
    run(tmp_path)
    assert sorted(p.name for p in (out / "train").iterdir()) == ["train-00000.rec"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_prepare_never_replaces_a_folder_it_did_not_write(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(ValidationError, match=r"--out holds files prepare did not write \(notes"):
        run(tmp_path)
    assert _tree(out) == {"notes.txt": b"mine"}
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValidationError, match="--out is an existing file"):
        run(tmp_path, out=tmp_path / "file")


def test_a_repeated_label_column_is_refused_not_leaked(tmp_path):
    path = tmp_path / "dup.csv"
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 60)
    lines = ["y,f0,y"] + [f"{a},{b:.3f},{a}" for a, b in zip(y, rng.standard_normal(60))]
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValidationError, match=r"column 3: column name 'y' appears twice.*label"):
        run(tmp_path, data=path, label="y", predictor_type="binary_classifier")
    assert not (tmp_path / "out").exists()


def described(fitted, columns, label=""):
    """The fitted transformer's portable description, read back from its JSON: what every
    encoder (channels, endpoints, the SageMaker featurizer) uses."""
    from training.core.featurizer import Featurizer
    from training.data.fit import describe
    from training.data.labels import LabelEncoding

    featurizer = describe(fitted, list(columns), label, {}, LabelEncoding("regressor"))
    return Featurizer.from_json(json.loads(json.dumps(featurizer.to_json())))


def test_the_feature_encoder_equals_the_persisted_preprocessor_row_for_row():
    from training.data.encode import FeatureEncoder
    from training.data.fit import build_transformer

    rng = np.random.default_rng(5)
    n = 3000
    frame = pd.DataFrame(
        {
            "x": rng.standard_normal(n) * 1e3,
            "ints": rng.integers(-5, 5, n),
            "constant": np.full(n, 2.5),  # scale 0 -> 1 in StandardScaler
            "colour": rng.choice(["red", "green", "blue"], n).astype(object),
            "flag": rng.choice([True, False], n),
        }
    )
    frame.loc[rng.random(n) < 0.1, "x"] = np.nan
    frame.loc[rng.random(n) < 0.1, "colour"] = np.nan
    numeric, categorical = ["x", "ints", "constant"], ["colour", "flag"]
    fitted = build_transformer(numeric, categorical).fit(frame.iloc[:2000])
    unseen = frame.iloc[2000:].copy()
    unseen.loc[unseen.index[:50], "colour"] = "violet"  # unknown category: no 1 at all
    unseen.loc[unseen.index[50:60], "x"] = np.nan
    encoder = FeatureEncoder(described(fitted, frame.columns))
    for part in (frame.iloc[:2000], unseen):
        expected = fitted.transform(part).astype(np.float32)
        got = encoder.transform(part)
        assert got.dtype == np.float32 and got.shape == expected.shape
        assert got.tobytes() == expected.tobytes()
    assert encoder.transform(unseen)[:50, 3:6].sum() == 0


def test_the_feature_encoder_equals_it_on_the_bundled_dataset(tmp_path):
    import joblib

    from training.data.encode import FeatureEncoder

    run(tmp_path)
    fitted = joblib.load(tmp_path / "out" / "preprocessor.joblib")["transformer"]
    raw = pd.read_csv(PENGUINS, skipinitialspace=True)
    expected = fitted.transform(raw).astype(np.float32)
    encoder = FeatureEncoder(described(fitted, raw.columns, "species"))
    assert encoder.transform(raw).tobytes() == expected.tobytes()
    # prepare wrote that same description, with the label's classes
    written = json.loads((tmp_path / "out" / "preprocessing.json").read_text())
    ours = encoder.featurizer.to_json()
    assert (written["columns"], written["features"]) == (ours["columns"], ours["features"])
    assert written["classes"] == ["Adelie", "Chinstrap", "Gentoo"]


def _awkward_sample(n: int, seed: int) -> tuple[pd.DataFrame, list, list]:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "label": rng.choice(["a", "b"], n),
            "x": rng.standard_normal(n) * 1e3,
            "ints": rng.integers(-5, 5, n),
            "constant": np.full(n, 2.5),
            "halves": rng.integers(0, 4, n) / 2,  # many ties at the median
            "colour": rng.choice(["red", "green", "blue"], n).astype(object),
            "tied": np.array(["p", "q"] * (n // 2) + ["p"] * (n % 2), object),
            "flag": rng.choice([True, False], n),
            "unused": np.arange(n),
        }
    )
    frame.loc[rng.random(n) < 0.2, "x"] = np.nan
    frame.loc[rng.random(n) < 0.1, "colour"] = np.nan
    frame.loc[rng.random(n) < 0.5, "halves"] = np.nan
    return frame, ["x", "ints", "constant", "halves"], ["colour", "tied", "flag"]


def assert_same_state(a, b, path="transformer"):
    """Every attribute of every estimator equal: arrays by dtype and bits (object arrays by
    each element's type and value), NaN equal to NaN."""
    assert type(a) is type(b), path
    if hasattr(a, "__dict__") and not isinstance(a, type):
        assert sorted(vars(a)) == sorted(vars(b)), path
        for key in vars(a):
            assert_same_state(vars(a)[key], vars(b)[key], f"{path}.{key}")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same_state(x, y, f"{path}[{i}]")
    elif isinstance(a, dict):
        assert list(a) == list(b), path
        for key in a:
            assert_same_state(a[key], b[key], f"{path}[{key!r}]")
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape, path
        if a.dtype == object:
            assert_same_state(a.tolist(), b.tolist(), path)
        else:
            assert a.tobytes() == b.tobytes(), path
    elif isinstance(a, float) and a != a:
        assert b != b, path
    else:
        assert a == b, (path, a, b)


@pytest.mark.parametrize("n, seed", [(1, 0), (2, 1), (7, 2), (1000, 3), (1001, 4)])
def test_the_fast_fit_is_the_plain_fit_attribute_for_attribute(n, seed):
    """fit_transformer sets the learned values a different way; the fitted object must be
    exactly scikit-learn's own fit, every attribute of every step, and transform the same."""
    from training.data.fit import build_transformer, fit_transformer

    frame, numeric, categorical = _awkward_sample(n, seed)
    if n == 1:
        numeric, categorical = ["x", "ints"], ["colour"]
        frame.loc[0, ["x", "colour"]] = [1.5, "red"]
    plain = build_transformer(numeric, categorical).fit(frame)
    fast = fit_transformer(frame, numeric, categorical)
    assert_same_state(fast, plain)
    rows = frame.sample(frac=1.0, random_state=seed)
    assert fast.transform(rows).tobytes() == plain.transform(rows).tobytes()


def test_the_fast_fit_on_the_bundled_dataset_and_text_only_categories():
    from training.data.fit import build_transformer, fit_transformer

    raw = pd.read_csv(PENGUINS, skipinitialspace=True)
    numeric = [c for c in raw.columns if pd.api.types.is_numeric_dtype(raw[c])]
    categorical = [c for c in raw.columns if c not in numeric and c != "species"]
    plain = build_transformer(numeric, categorical).fit(raw)
    assert_same_state(fit_transformer(raw, numeric, categorical), plain)


def test_a_categorical_column_of_numbers_and_text_is_named(tmp_path):
    from training.data.fit import MixedCategoriesError, fit_transformer

    frame = pd.DataFrame({"c": np.array(["a", 1.5, "b"], object), "x": [1.0, 2.0, 3.0]})
    with pytest.raises(MixedCategoriesError, match="column 'c' mixes float, str values"):
        fit_transformer(frame, ["x"], ["c"])


def test_the_manifest_reads_back_as_written(tmp_path):
    import json

    from training.data.manifest import Manifest

    manifest = run(tmp_path)
    text = (tmp_path / "out" / "manifest.json").read_text()
    assert Manifest.load(tmp_path / "out") == manifest
    assert json.dumps(manifest.to_json(), indent=2) == text  # same keys, same order
    assert manifest.label.positive_class is None  # multiclass: no positive class


def test_free_text_is_measured_numbers_and_repeated_categories_are_not(tmp_path):
    """What a row brings in distinct text decides how many rows prepare holds at once."""
    from training.data import raw_csv

    rng = np.random.default_rng(1)
    n = 2000
    frame = pd.DataFrame(
        {"x": rng.standard_normal(n).round(3), "colour": rng.choice(["red", "blue"], n)}
    )
    frame.loc[::7, "x"] = np.nan  # written as NA: still a column of numbers
    frame.to_csv(tmp_path / "plain.csv", index=False, na_rep="NA")
    assert raw_csv.distinct_text_bytes(tmp_path / "plain.csv") < 1
    # a distinct 100-character comment per row: its length and a Python string's overhead
    frame["comment"] = ["".join(rng.choice(list("abcdefgh"), 100)) for _ in range(n)]
    frame.to_csv(tmp_path / "text.csv", index=False, na_rep="NA")
    assert 150 < raw_csv.distinct_text_bytes(tmp_path / "text.csv") < 165
    assert raw_csv.distinct_text_bytes(tmp_path / "missing.csv") == 0  # the readers say why


def test_rows_held_at_once_shrink_with_the_files_width_and_text(tmp_path, monkeypatch):
    """Chunks, first-row checks and the fit sample are budgeted in cells and in distinct text,
    so prepare's memory is bounded for wide and text-heavy files too; a file of up to 25
    columns without free text keeps 100 000-row chunks and a 200 000-row sample (its output
    is what it always was)."""
    from training.data import raw_csv, sizing

    rows_for = sizing.rows_for
    assert rows_for(sizing.CHUNK_CELLS, 25, sizing.CHUNK_ROWS) == 100_000
    assert rows_for(sizing.SAMPLE_CELLS, 25, sizing.SAMPLE_ROWS) == 200_000
    assert rows_for(sizing.CHUNK_CELLS, 151, sizing.CHUNK_ROWS) == 16_556
    assert rows_for(sizing.SAMPLE_CELLS, 151, sizing.SAMPLE_ROWS) == 33_112
    assert rows_for(sizing.CHUNK_CELLS, 10**6, 100) == sizing.MIN_ROWS

    # a 40-column file under budgets scaled down to its size: 250-row chunks, 400-row sample
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        rng.standard_normal((3000, 39)).round(3), columns=[f"x{i}" for i in range(39)]
    )
    frame["y"] = (frame["x0"] > 0).astype(int)
    frame.to_csv(tmp_path / "wide.csv", index=False)
    monkeypatch.setattr(sizing, "MIN_ROWS", 10)
    monkeypatch.setattr(sizing, "CHUNK_CELLS", 40 * 250)
    monkeypatch.setattr(sizing, "SAMPLE_CELLS", 40 * 400)
    read = raw_csv.read_chunks
    sizes = []

    def reading(path, chunk_rows, *args, **kwargs):  # the real reader, its chunk size noted
        sizes.append(chunk_rows)
        yield from read(path, chunk_rows, *args, **kwargs)

    monkeypatch.setattr(raw_csv, "read_chunks", reading)
    config = dict(data=tmp_path / "wide.csv", label="y", predictor_type="binary_classifier")
    manifest = prepare(PrepareConfig(**config, out=tmp_path / "auto", show_progress=False))
    assert sizes == [250] and manifest.fit_sample.rows == 400 and manifest.fit_sample.bounded
    assert sum(c.rows for c in manifest.channels.values()) == 3000
    # sizes given are kept
    given = PrepareConfig(
        **config, out=tmp_path / "given", chunk_rows=1000, fit_sample_rows=900, show_progress=False
    )
    manifest = prepare(given)
    assert sizes[-1] == 1000 and manifest.fit_sample.rows == 900

    # free text: ~157 bytes of distinct text a row, against a budget of 300 rows' worth
    frame["note"] = ["".join(rng.choice(list("abcdefgh"), 100)) for _ in range(len(frame))]
    frame.to_csv(tmp_path / "text.csv", index=False)
    monkeypatch.setattr(sizing, "CHUNK_CELLS", 10**9)  # the text alone decides
    monkeypatch.setattr(sizing, "CHUNK_TEXT", 157 * 300)
    config["data"] = tmp_path / "text.csv"
    prepare(PrepareConfig(**config, out=tmp_path / "text", show_progress=False))
    assert 290 <= sizes[-1] <= 310


def test_validate_raw_csv_reads_the_first_rows_prepare_checks(tmp_path, monkeypatch):
    """It read 100 000 rows whatever the width (630 MB for a 30 000-row, 2 000-column file):
    now the rows prepare checks first, budgeted in cells and text like prepare's chunks."""
    from training.data import raw_checks, sizing

    rng = np.random.default_rng(1)
    frame = pd.DataFrame(
        rng.standard_normal((3000, 39)).round(3), columns=[f"x{i}" for i in range(39)]
    )
    frame["y"] = (frame["x0"] > 0).astype(int)
    path = tmp_path / "wide.csv"
    frame.to_csv(path, index=False)
    monkeypatch.setattr(sizing, "MIN_ROWS", 10)
    monkeypatch.setattr(sizing, "CHUNK_CELLS", 40 * 250)
    read_csv, nrows = pd.read_csv, []

    def reading(*args, **kwargs):  # pandas' real reader, the rows asked for noted
        nrows.append(kwargs.get("nrows"))
        return read_csv(*args, **kwargs)

    monkeypatch.setattr(pd, "read_csv", reading)
    raw_checks.validate_raw_csv(path, "y", "binary_classifier")
    assert nrows == [250] == [sizing.check_rows(path)]
    raw_checks.validate_raw_csv(path, "y", "binary_classifier", sample_rows=77)
    assert nrows[-1] == 77
    # and what it checks is checked within those rows: a label of three values at row 12
    frame.loc[10, "y"] = 7
    frame.to_csv(path, index=False)
    with pytest.raises(ValidationError, match="(?s)3 distinct values.*multiclass_classifier"):
        raw_checks.validate_raw_csv(path, "y", "binary_classifier")


def _sex_file(path: Path, copy_name: str | None = None, copy=None, rows: int = 120) -> Path:
    """Label ``sex`` (M/F), a feature, and a copy of the label named ``copy_name`` whose
    values are ``copy(sex)`` (default: the label's own)."""
    rng = np.random.default_rng(3)
    sex = rng.choice(["M", "F"], rows)
    frame = pd.DataFrame({"sex": sex, "x": rng.standard_normal(rows).round(3)})
    if copy_name is not None:
        frame[copy_name] = copy(sex) if copy else sex
    frame.to_csv(path, index=False)
    return path


SPELLINGS = {  # the label 'sex' spelt another way -> as the error shows it
    "Sex": "'Sex'",
    "SEX": "'SEX'",
    "sex\u00a0": "'sex\\xa0'",  # non-breaking space
    "sex\u200b": "'sex\\u200b'",  # zero-width space
    "\ufeffsex": "'\\ufeffsex'",  # a byte-order mark inside the header
    "s\u200dex": "'s\\u200dex'",  # zero-width joiner
    "\uff53\uff45\uff58": "'\uff53\uff45\uff58'",  # fullwidth letters
    "\uff33ex\u3000": "'\\uff33ex\\u3000'",  # fullwidth capital, ideographic space
    "sex\u2060": "'sex\\u2060'",  # word joiner
    "se\u00adx": "'se\\xadx'",  # soft hyphen
    # default-ignorable, but no format character: combining grapheme joiner, Hangul filler,
    # variation selector
    "sex\u034f": "'sex\\u034f'",
    "sex\u3164": "'sex\\u3164'",
    "s\ufe0fex": "'s\\ufe0fex'",
}


def test_the_label_under_another_spelling_is_refused_not_leaked(tmp_path):
    path = _sex_file(tmp_path / "leak.csv", "sex_copy")
    frame = pd.read_csv(path)
    for spelling in SPELLINGS:
        frame[spelling] = frame["sex"]
    frame.drop(columns="sex_copy").to_csv(path, index=False)
    res = prepare_cli(
        "--data", path, "--label", "sex", "--predictor-type", "binary_classifier",
        "--out", tmp_path / "out",
    )  # fmt: skip
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert f"{len(SPELLINGS)} problems found" in res.stderr
    for column, shown in enumerate(SPELLINGS.values(), start=3):
        assert (
            f"leak.csv, row 1, column {column}: column {shown} is the label 'sex' (column 1) "
            "spelt another way (case, spaces, invisible or fullwidth characters)"
        ) in res.stderr, (shown, res.stderr)
        assert f"or pass --drop {shown}\n" in res.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["leak.csv"]


def test_a_trailing_space_is_a_spelling_too_and_drop_is_the_way_out(tmp_path):
    path = tmp_path / "leak.csv"
    path.write_text(_sex_file(tmp_path / "plain.csv", "copy").read_text().replace(
        "sex,x,copy", 'sex,x,"sex "', 1
    ))  # fmt: skip
    args = ["--data", path, "--label", "sex", "--predictor-type", "binary_classifier"]
    res = prepare_cli(*args, "--out", tmp_path / "out")
    assert res.returncode == 2 and "column 'sex ' is the label 'sex'" in res.stderr
    res = prepare_cli(*args, "--out", tmp_path / "out", "--drop", "sex ")
    assert res.returncode == 0, res.stderr
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["input_columns"]["dropped"] == {"sex ": "dropped on request (--drop)"}


def test_a_label_spelt_another_way_in_the_header_is_suggested(tmp_path):
    path = _sex_file(tmp_path / "plain.csv")
    path.write_text(path.read_text().replace("sex,x", "sex\u00a0,x", 1))
    res = prepare_cli(
        "--data", path, "--label", "sex", "--predictor-type", "binary_classifier",
        "--out", tmp_path / "out",
    )  # fmt: skip
    assert res.returncode == 2
    assert "no column named 'sex'" in res.stderr and "did you mean 'sex\\xa0'?" in res.stderr


COPIES = {  # a feature that is the label under other values -> the mapping the error shows
    "is_male": (lambda s: (s == "M").astype(int), "'F' -> 0, 'M' -> 1"),
    "code": (lambda s: np.where(s == "M", "man", "woman"), "'F' -> 'woman', 'M' -> 'man'"),
    # a flag set for one class and left empty for the other
    "male_flag": (lambda s: np.where(s == "M", 1.0, np.nan), "'F' -> (empty), 'M' -> 1"),
    "gender": (lambda s: s, None),  # the label's own values under an unrelated name
}


def test_a_feature_that_is_the_label_under_other_values_is_refused(tmp_path):
    path = _sex_file(tmp_path / "leak.csv", rows=3000)
    frame = pd.read_csv(path)
    for name, (copy, _) in COPIES.items():
        frame[name] = copy(frame["sex"].to_numpy())
    frame.to_csv(path, index=False)
    res = prepare_cli(
        "--data", path, "--label", "sex", "--predictor-type", "binary_classifier",
        "--out", tmp_path / "out", "--chunk-rows", 500,
    )  # fmt: skip
    assert res.returncode == 2 and "Traceback" not in res.stderr
    for column, (name, (_, shown)) in enumerate(COPIES.items(), start=3):
        values = f"under other values ({shown})" if shown else "with the same values"
        assert (
            f"leak.csv, column {column}: column '{name}' is the label 'sex' {values} in all "
            "3000 labelled rows"
        ) in res.stderr, res.stderr
        assert f"remove the column, or pass --drop '{name}'" in res.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["leak.csv"]


def test_a_regression_label_copied_under_other_values_is_refused(tmp_path):
    rng = np.random.default_rng(4)
    rating = rng.integers(1, 6, 400)
    frame = pd.DataFrame({"x": rng.standard_normal(400).round(3), "rating": rating})
    frame["stars"] = ["*" * r for r in rating]
    frame.to_csv(tmp_path / "leak.csv", index=False)
    with pytest.raises(ValidationError, match=r"column 'stars' is the label 'rating' under other"):
        run(tmp_path, data=tmp_path / "leak.csv", label="rating", predictor_type="regressor")


LINES = {  # a regressor's label 'price' copied on a straight line -> how the error says it
    "price_copy": (lambda p: p, "itself"),
    "pr\u0456ce": (lambda p: p, "itself"),  # a Cyrillic i: a name no spelling rule folds
    "price_cents": (lambda p: (p * 100).round(1), "on a straight line ('price' = 0.01 x"),
    "price_eur": (
        lambda p: (p * 0.92 + 5).round(4),
        "on a straight line ('price' = 1.08696 x 'price_eur' -5.43478)",
    ),
}


def test_a_regression_label_on_a_straight_line_is_refused(tmp_path):
    """A continuous label has a value a row, so no one-to-one mapping tells a copy of it from
    an identifier: the copy under another name, in cents, in another currency and rounded all
    leaked (R² 1.0). Refused after every row, read 500 at a time, agreed."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal(3000).round(3)
    price = (40 + 10 * x + rng.standard_normal(3000)).round(6)  # a value a row
    frame = pd.DataFrame({"x": x, "price": price})
    for name, (copy, _) in LINES.items():
        frame[name] = copy(price)
    frame.to_csv(tmp_path / "leak.csv", index=False)
    res = prepare_cli(
        "--data", tmp_path / "leak.csv", "--label", "price", "--predictor-type", "regressor",
        "--out", tmp_path / "out", "--chunk-rows", 500,
    )  # fmt: skip
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert f"{len(LINES)} problems found" in res.stderr
    for column, (name, (_, how)) in enumerate(LINES.items(), start=3):
        assert (
            f"leak.csv, column {column}: column '{name}' is the label 'price' {how}"
        ) in res.stderr, res.stderr
        assert "in all 3000 rows holding both" in res.stderr
        assert f"remove the column, or pass --drop '{name}'" in res.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["leak.csv"]


def test_features_close_to_a_regression_label_but_not_on_its_line_are_kept(tmp_path, monkeypatch):
    """No false alarms: a feature that explains 99.99% of the label's variance, and one on its
    line in the first rows that departs from it in a later chunk, are features."""
    from training.data import sizing

    monkeypatch.setattr(sizing, "CHUNK_ROWS", 100)
    monkeypatch.setattr(sizing, "MIN_ROWS", 50)
    rng = np.random.default_rng(8)
    price = rng.standard_normal(400).round(4)
    frame = pd.DataFrame({"price": price, "close": price + 0.01 * rng.standard_normal(400)})
    frame["later"] = 2 * price
    frame.loc[350, "later"] += 1.0  # row 352: off the line
    frame.to_csv(tmp_path / "near.csv", index=False)
    manifest = run(tmp_path, data=tmp_path / "near.csv", label="price", predictor_type="regressor")
    assert {"close", "later"} <= set(manifest.input_columns.numeric)
    frame.loc[350, "later"] -= 1.0  # on the line in every row: a copy
    frame.to_csv(tmp_path / "near.csv", index=False)
    with pytest.raises(ValidationError, match=r"'later' is the label 'price' on a straight line"):
        run(tmp_path, data=tmp_path / "near.csv", label="price", predictor_type="regressor")


def test_columns_that_only_look_like_the_label_are_kept(tmp_path, monkeypatch):
    """No false alarms: a label with no repeats (a continuous target beside an identifier),
    too few rows to tell, and a column that maps one to one onto the label in the first rows
    but departs from it in a later chunk."""
    from training.data import sizing

    rng = np.random.default_rng(6)
    frame = pd.DataFrame({"x": rng.standard_normal(300), "y": rng.standard_normal(300)})
    frame["id"] = [f"r{i}" for i in range(300)]
    frame.to_csv(tmp_path / "continuous.csv", index=False)
    run(tmp_path, data=tmp_path / "continuous.csv", label="y", predictor_type="regressor")
    small = _sex_file(tmp_path / "small.csv", "is_male", lambda s: (s == "M").astype(int), 31)
    run(tmp_path, data=small, label="sex", predictor_type="binary_classifier")
    # the first 100 rows checked (the rows prepare holds at once, shrunk), 400 in all
    monkeypatch.setattr(sizing, "CHUNK_ROWS", 100)
    monkeypatch.setattr(sizing, "MIN_ROWS", 50)
    later = _sex_file(tmp_path / "later.csv", "group", lambda s: (s == "M").astype(int), 400)
    frame = pd.read_csv(later)
    frame.loc[350, "group"] = 1 - frame.loc[350, "group"]  # row 352: a departure
    frame.to_csv(later, index=False)
    manifest = run(tmp_path, data=later, label="sex", predictor_type="binary_classifier")
    assert "group" in manifest.input_columns.numeric
    frame.loc[350, "group"] = 1 - frame.loc[350, "group"]  # a copy again, in every row
    frame.to_csv(later, index=False)
    with pytest.raises(ValidationError, match="'group' is the label 'sex' under other values"):
        run(tmp_path, data=later, label="sex", predictor_type="binary_classifier")


def test_a_huge_or_unclosed_row_under_the_header_is_refused_in_bounded_memory_and_time(tmp_path):
    """Under a good header: a 40 MB row of commas (polars past 1.5 GiB; 200 MB of them past
    24 GB, killed), 384 MB of NULs without a line break (2.9 GB, then a wrong 'label is
    empty'), a lone-CR file, each refused at its row once the row limit is read, under a 1 GiB
    address-space cap; and a 4 MB file with one quote never closed, which the record splitter
    scanned once per line (hours), answered by the CSV reader at once."""
    from memory_cap import run_capped

    commas, nul, quote = tmp_path / "commas.csv", tmp_path / "nul.csv", tmp_path / "quote.csv"
    commas.write_bytes(b"x,y\n1,2\n" + b"3," * (20 << 20))
    with open(nul, "wb") as fh:
        fh.write(b"x,y\n1,2\n")
        fh.truncate(384 << 20)  # the rest: NULs, no line break (sparse: no disk, no time)
    quote.write_bytes(b'x,y\n"1,2\n' + b"1,2\n" * (1 << 20))
    lone_cr = tmp_path / "cr.csv"  # lone CR line ends: polars sized it as one 2M-field row
    lone_cr.write_bytes(b"x,y\r1,2\r3,4\r" + b"5," * (20 << 20))  # (109 s, 1.6 GB)
    args = ["-q", "prepare", "--label", "y", "--predictor-type", "regressor", "--out"]
    for path, row in ((commas, 3), (nul, 3), (lone_cr, 1)):
        res = run_capped(*args, tmp_path / "out", "--data", path, cap=1 << 30, timeout=60)
        assert res.returncode == 2, res.stderr[-2000:]
        assert (
            f"{path}, row {row}: a line over the row limit (16,777,216 bytes; a file without line "
            "breaks?), refused before it is read whole"
        ) in res.stderr
        assert "fix: end each row with a line break, and close every quote you open" in res.stderr
    res = run_capped(*args, tmp_path / "out", "--data", quote, cap=2 << 30, timeout=60)
    assert res.returncode == 2, res.stderr[-2000:]
    assert f"{quote}: cannot parse as CSV: " in res.stderr and "EOF inside string" in res.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "commas.csv", "cr.csv", "nul.csv", "quote.csv"
    ]  # fmt: skip
