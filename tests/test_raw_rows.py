"""Raw rows in, answers in the user's terms out: the fitted preprocessing travels with the model.

prepare describes what it fitted (preprocessing.json); train puts it beside the model; the
local endpoint, predict and transform serve the model behind it as SageMaker's serial pipeline
will. Checked here against what a user would otherwise do by hand: the persisted scikit-learn
preprocessor, then x.W + b.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import boto3
import joblib
import numpy as np
import pandas as pd
import pytest
import requests

from training.cli import main
from training.core import artifact
from training.core.featurizer import Featurizer, PreprocessingError, RowError, recordio_rows
from training.core.losses import scores
from training.data import recordio
from training.data.prepare import PrepareConfig, prepare
from training.local.server import serving
from training.local.trainer import train_local
from training.model_source import load_pipeline

ROOT = Path(__file__).parents[1]
PENGUINS = ROOT / "training" / "datasets" / "penguins.csv"


def awkward_csv(path, n=600, seed=0):
    """A CSV as users have them: missing cells, categories, booleans, quoted text with commas,
    an identifier column, and a label that is text."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(n)
    colour = rng.choice(["red", "green", "blue, dark", 'say "hi"'], n)
    member = rng.choice([True, False], n)
    size = rng.integers(1, 5, n).astype(float)
    logit = 1.5 * x + (colour == "red") - 0.8 * member + 0.3 * size
    label = np.where(logit + rng.standard_normal(n) * 0.5 > 0.5, "yes", "no")
    frame = pd.DataFrame(
        {
            "customer": [f"C{i:05d}" for i in range(n)],  # an identifier: dropped, and why
            "x": x.round(4),
            "colour": colour,
            "member": member,
            "size": size,
            "bought": label,
        }
    )
    frame.loc[rng.random(n) < 0.1, "x"] = np.nan
    frame.loc[rng.random(n) < 0.1, "colour"] = np.nan
    frame.loc[rng.random(n) < 0.1, "size"] = np.nan
    frame.to_csv(path, index=False)
    return path


def prepared(tmp_path, data, label, predictor_type, **kw):
    data_dir, model_dir = tmp_path / "data", tmp_path / "model"
    manifest = prepare(
        PrepareConfig(
            data=data,
            label=label,
            predictor_type=predictor_type,
            out=data_dir,
            drop_unlabeled=True,
            show_progress=False,
            **kw,
        )
    )
    train_local(data_dir, model_dir, show_progress=False, echo=lambda line: None)
    return manifest, data_dir, model_dir


def source_rows(data_dir, label):
    """prepare's test_rows.csv: the header, the rows as CSV text without the label, labels."""
    with open(data_dir / "test_rows.csv", newline="") as fh:
        rows = list(csv.reader(fh, skipinitialspace=True))
    header, body = rows[0], rows[1:]
    at = header.index(label)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for row in body:
        writer.writerow([c for i, c in enumerate(row) if i != at])
    return header, out.getvalue(), [row[at] for row in body]


@pytest.fixture(scope="module")
def awkward(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("awkward")
    data = awkward_csv(tmp / "customers.csv")
    manifest, data_dir, model_dir = prepared(tmp, data, "bought", "binary_classifier")
    return tmp, data, manifest, data_dir, model_dir


@pytest.mark.parametrize(
    "label, predictor",
    [
        ("sex", "binary_classifier"),
        ("species", "multiclass_classifier"),
        ("body_mass_g", "regressor"),
    ],
)
def test_featurizing_the_source_rows_gives_the_channels_features_bit_for_bit(
    tmp_path, label, predictor
):
    _, data_dir, _ = prepared(tmp_path, PENGUINS, label, predictor)
    featurizer = Featurizer.load(data_dir / "preprocessing.json")
    _, text, _ = source_rows(data_dir, label)
    channel = recordio.read_arrays(data_dir / "test" / "test-00000.rec")
    X = featurizer.features_from_csv(text)
    assert X.dtype == np.float32 and X.tobytes() == channel.X.tobytes()
    # the featurizer's RecordIO (what SageMaker's Linear Learner gets) is SDK 2.x's bytes
    assert recordio_rows(X) == recordio.encode_dense(channel.X)


def test_an_awkward_csv_is_featurized_as_prepare_encoded_it(awkward):
    _, _, manifest, data_dir, _ = awkward
    featurizer = Featurizer.load(data_dir / "preprocessing.json")
    roles = {c.name: (c.role, c.why) for c in featurizer.columns}
    assert roles["customer"][0] == "dropped" and "identifier" in roles["customer"][1]
    assert roles["member"][0] == "categorical" and roles["bought"][0] == "label"
    assert featurizer.classes == ("no", "yes")
    header, text, _ = source_rows(data_dir, "bought")
    channel = recordio.read_arrays(data_dir / "test" / "test-00000.rec")
    assert featurizer.features_from_csv(text).tobytes() == channel.X.tobytes()
    # the same rows as JSON records keyed by column name
    frame = pd.read_csv(io.StringIO(text), names=[h for h in header if h != "bought"], dtype=str)
    records = [
        {k: (None if pd.isna(v) else v) for k, v in row.items()}
        for row in frame.to_dict(orient="records")
    ]
    assert featurizer.features_from_records(records).tobytes() == channel.X.tobytes()
    assert manifest.preprocessing == "preprocessing.json" and manifest.test_rows == "test_rows.csv"


def test_the_local_endpoint_answers_raw_rows_as_the_persisted_preprocessor_and_the_model(
    awkward,
):
    """What a client would do by hand (scikit-learn's preprocessor, then x.W + b), the
    endpoint does from the rows as they are, over real HTTP and through boto3."""
    tmp, data, _, data_dir, model_dir = awkward
    header, text, _ = source_rows(data_dir, "bought")
    inputs = [h for h in header if h != "bought"]
    frame = pd.read_csv(io.StringIO(text), names=inputs, skipinitialspace=True)
    saved = joblib.load(data_dir / "preprocessor.joblib")
    X = saved["transformer"].transform(frame).astype(np.float32)
    model = artifact.load(model_dir / "model.tar.gz")
    expected = scores("logistic", X.astype(np.float64) @ model.weights + model.bias)
    served = load_pipeline(str(model_dir / "model.tar.gz"))
    assert served.raw_rows
    with serving(served) as port:
        res = requests.post(
            f"http://127.0.0.1:{port}/invocations",
            data=text.encode(),
            headers={"Content-Type": "text/csv", "Accept": "application/json"},
            timeout=30,
        )
        assert res.status_code == 200, res.text
        answers = res.json()["predictions"]
        runtime = boto3.client(
            "sagemaker-runtime", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1"
        )
        via_boto3 = json.loads(
            runtime.invoke_endpoint(
                EndpointName="ll-e2e-endpoint",
                ContentType="text/csv",
                Accept="application/jsonlines",
                Body=text.encode(),
            )["Body"]
            .read()
            .decode()
            .splitlines()[0]
        )
    got = np.array([a["score"] for a in answers])
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-7)
    assert {a["predicted_class"] for a in answers} <= {"yes", "no"}
    for a in answers:
        assert a["predicted_class"] == ("yes" if a["predicted_label"] == 1 else "no")
    assert via_boto3 == answers[0]


@pytest.mark.parametrize(
    "body, ctype, status, words",
    [
        ("C1,abc,red,True,2", "text/csv", 400, ["row 1", "column 'x'", "'abc' is not a number"]),
        ("C1,0.5,red,True", "text/csv", 400, ["row 1 has 4 fields", "customer, x, colour"]),
        (
            "C1,0.5,red,True,2,yes",
            "text/csv",
            400,
            ["6 fields", "a label column? leave 'bought' out"],
        ),
        ('{"x": 1}', "application/json", 400, ["record 1", "column 'colour' is missing"]),
        (
            '{"x": 1, "colour": "red", "member": true, "size": 2, "age": 3}',
            "application/json",
            400,
            ["record 1", "unknown column 'age'"],
        ),
        ("{not json", "application/json", 400, ["invalid JSON"]),
        ("C1,0.5,red,True,2", "application/x-npy", 415, ["raw rows"]),
    ],
)
def test_a_bad_raw_row_gets_a_4xx_naming_the_row_and_the_column(
    awkward, body, ctype, status, words
):
    _, _, _, _, model_dir = awkward
    with serving(load_pipeline(str(model_dir / "model.tar.gz"))) as port:
        res = requests.post(
            f"http://127.0.0.1:{port}/invocations",
            data=body.encode(),
            headers={"Content-Type": ctype},
            timeout=30,
        )
    assert res.status_code == status, res.text
    for word in words:
        assert word in res.text


def test_missing_values_are_imputed_as_trained_and_unseen_categories_encode_as_zeros(awkward):
    _, _, _, data_dir, _ = awkward
    featurizer = Featurizer.load(data_dir / "preprocessing.json")
    colour = next(c for c in featurizer.columns if c.name == "colour")
    missing = featurizer.features_from_csv("C1,,,,\n")
    filled = featurizer.features_from_records(
        [
            {
                "customer": "C1",
                "x": next(c.fill for c in featurizer.columns if c.name == "x"),
                "colour": colour.fill,
                "member": next(c.fill for c in featurizer.columns if c.name == "member"),
                "size": next(c.fill for c in featurizer.columns if c.name == "size"),
            }
        ]
    )
    assert missing.tobytes() == filled.tobytes()  # an empty cell is the fill value
    names = featurizer.feature_names
    unseen = featurizer.features_from_csv("C1,0.1,violet,False,2\n")[0]
    assert all(unseen[names.index(f"colour_{v}")] == 0 for v in colour.categories)
    assert unseen[names.index("member_False")] == 1


def test_encoded_vectors_still_pass_as_recordio_and_with_preprocessing_off(awkward):
    _, _, _, data_dir, model_dir = awkward
    channel = recordio.read_arrays(data_dir / "test" / "test-00000.rec")
    model = artifact.load(model_dir / "model.tar.gz")
    with serving(load_pipeline(str(model_dir / "model.tar.gz"))) as port:
        res = requests.post(
            f"http://127.0.0.1:{port}/invocations",
            data=recordio.encode_dense(channel.X[:3]),
            headers={"Content-Type": "application/x-recordio-protobuf"},
            timeout=30,
        )
    got = [p["score"] for p in res.json()["predictions"]]
    np.testing.assert_allclose(got, model.predict(channel.X[:3]).score, rtol=1e-12)
    assert (
        load_pipeline(str(model_dir / "model.tar.gz"), use_preprocessing=False).featurizer is None
    )


def test_predict_and_transform_read_a_raw_csv_and_join_back(awkward, capsys):
    """The training file's layout (label included, columns in another order, an id column):
    predictions.csv keeps input order and the id; --labelled metrics are the trainer's; the
    batch transform answers what the endpoint answers."""
    tmp, data, _, data_dir, model_dir = awkward
    test = pd.read_csv(data_dir / "test_rows.csv", dtype=str, keep_default_na=False)
    shuffled = test[list(reversed(test.columns))]  # any column order, by name
    shuffled.to_csv(tmp / "mine.csv", index=False)
    model = str(model_dir / "model.tar.gz")
    argv = ["-q", "predict", "--model", model, "--input", str(tmp / "mine.csv"), "--labelled"]
    assert main([*argv, "--id-column", "customer", "--out", str(tmp / "p.csv")]) == 0
    printed = capsys.readouterr().out
    out = pd.read_csv(tmp / "p.csv", dtype={"customer": str})
    assert list(out.columns) == [
        "customer", "bought", "score", "predicted_label", "predicted_class"
    ]  # fmt: skip
    assert out["customer"].tolist() == test["customer"].tolist()
    trained = json.loads((model_dir / "metrics.json").read_text())["metrics"]
    accuracy = float(printed.split("test:binary_classification_accuracy")[1].split()[0])
    assert accuracy == pytest.approx(trained["test:binary_classification_accuracy"], abs=1e-6)
    assert main(["-q", "transform", "--model", model, "--input", str(tmp / "mine.csv"),
                 "--out", str(tmp / "scored")]) == 0  # fmt: skip
    lines = (tmp / "scored" / "mine.csv.out").read_text().splitlines()
    answered = [json.loads(line) for line in lines]
    assert [a["score"] for a in answered] == pytest.approx(out["score"].tolist(), rel=1e-6)
    assert [a["predicted_class"] for a in answered] == out["predicted_class"].tolist()


def test_multiclass_predictions_csv_has_a_column_per_class(tmp_path):
    _, data_dir, model_dir = prepared(tmp_path, PENGUINS, "species", "multiclass_classifier")
    raw = data_dir / "test_rows.csv"
    assert main(["-q", "predict", "--model", str(model_dir / "model.tar.gz"), "--input",
                 str(raw), "--out", str(tmp_path / "p.csv")]) == 0  # fmt: skip
    out = pd.read_csv(tmp_path / "p.csv")
    assert list(out.columns) == [
        "row", "score_Adelie", "score_Chinstrap", "score_Gentoo", "predicted_label",
        "predicted_class",
    ]  # fmt: skip
    np.testing.assert_allclose(out.filter(like="score_").sum(axis=1), 1, rtol=1e-6)
    assert out["row"].tolist() == list(range(1, len(out) + 1))


def test_serve_finds_the_preprocessing_beside_the_model_and_flags_turn_it(tmp_path, capsys):
    _, data_dir, model_dir = prepared(tmp_path, PENGUINS, "sex", "binary_classifier")
    alone = tmp_path / "alone"
    alone.mkdir()
    (alone / "model.tar.gz").write_bytes((model_dir / "model.tar.gz").read_bytes())
    assert not load_pipeline(str(alone / "model.tar.gz")).raw_rows  # nothing beside it
    pointed = load_pipeline(str(alone / "model.tar.gz"), data_dir / "preprocessing.json")
    assert pointed.raw_rows and pointed.classes == ("female", "male")
    other = tmp_path / "other"
    prepared(other, PENGUINS, "species", "multiclass_classifier")
    argv = ["inspect", str(alone / "model.tar.gz")]
    assert main([*argv, "--preprocessing", str(other / "data" / "preprocessing.json")]) == 2
    assert "the preprocessing makes 10 features, the model takes" in capsys.readouterr().err
    assert main(["inspect", str(model_dir / "model.tar.gz")]) == 0
    out = capsys.readouterr().out
    assert "island_" in out  # the preprocessing names the features
    assert "raw rows of 7 columns (2 categorical, 5 numeric)" in out
    assert "classes        female, male" in out


def test_a_damaged_or_foreign_description_is_refused_by_name(tmp_path):
    good = json.loads(
        (
            prepared(tmp_path, PENGUINS, "sex", "binary_classifier")[1] / "preprocessing.json"
        ).read_text()
    )
    cases = {
        "version": {**good, "version": 99},
        "format": {**good, "format": "sklearn"},
        "role": {**good, "columns": [{**good["columns"][0], "role": "secret"}]},
        "features": {**good, "features": good["features"][:-1]},
    }
    for name, doc in cases.items():
        with pytest.raises(PreprocessingError, match="not a preprocessing description"):
            Featurizer.from_json(doc, name)
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(PreprocessingError, match="cannot be read as JSON"):
        Featurizer.load(tmp_path / "bad.json")


def test_a_hostile_description_is_one_line_through_inspect_not_a_traceback(tmp_path, capsys):
    """preprocessing.json is read through the same door as the model: too deep, a number
    Python refuses, or larger than any description, each is refused naming the file."""
    from training.core.featurizer import MAX_DESCRIPTION_BYTES
    from training.limits import MAX_PREPROCESSING_BYTES

    assert MAX_DESCRIPTION_BYTES == MAX_PREPROCESSING_BYTES  # the container's copy
    _, _, model_dir = prepared(tmp_path, PENGUINS, "sex", "binary_classifier")
    model = str(model_dir / "model.tar.gz")
    huge = tmp_path / "huge.json"
    with open(huge, "wb") as fh:  # sparse: no disk, and never read past the limit
        fh.truncate(MAX_PREPROCESSING_BYTES + 1)
    cases = {
        "deep.json": ("[" * 100_000, "cannot be read as JSON (nested too deep)"),
        "digits.json": ('{"version": ' + "9" * 5000 + "}", "cannot be read as JSON (Exceeds"),
        "huge.json": (None, "is over 64 MiB, more than a preprocessing description holds"),
    }
    for name, (text, message) in cases.items():
        if text is not None:
            (tmp_path / name).write_text(text)
        assert main(["inspect", model, "--preprocessing", str(tmp_path / name)]) == 2
        err = capsys.readouterr().err
        assert f"{tmp_path / name} {message}" in err and "Traceback" not in err


def test_a_deployed_featurizer_archive_is_read_with_the_models_limits(tmp_path):
    """transform --target aws reads the deployed pipeline's featurizer.tar.gz from S3: a bomb
    there is refused by its header like a model's, not unpacked into memory."""
    import gzip
    import io
    import tarfile

    from training.core import artifact
    from training.errors import ArtifactError
    from training.limits import MAX_PREPROCESSING_BYTES

    _, data_dir, _ = prepared(tmp_path, PENGUINS, "sex", "binary_classifier")
    good = (data_dir / "preprocessing.json").read_bytes()
    from training.aws.featurizer_artifact import to_bytes

    assert artifact.tar_member(
        to_bytes(data_dir / "preprocessing.json"), "f.tar.gz", "preprocessing.json",
        MAX_PREPROCESSING_BYTES,
    ) == good  # fmt: skip
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tar:
        info = tarfile.TarInfo("preprocessing.json")
        info.size = 1 << 40  # claims 1 TiB; the data is never there
        tar.addfile(info)
    bomb = gzip.compress(raw.getvalue()[:512])
    with pytest.raises(ArtifactError, match=r"s3://b/f.tar.gz: model is larger than 64 MiB"):
        artifact.tar_member(bomb, "s3://b/f.tar.gz", "preprocessing.json", MAX_PREPROCESSING_BYTES)


@pytest.mark.parametrize("kind", ["binary", "multiclass", "regressor", "not finite"])
def test_answer_rows_are_rendered_as_json_would_render_them(kind):
    """The endpoint formats its answers without a dict per row (a transform renders
    millions): the text must be what json.dumps gives the row's object."""
    from training.core.featurizer import with_classes
    from training.core.model import Predictions

    rng = np.random.default_rng(3)
    classes = ()
    if kind == "multiclass":
        score = rng.dirichlet(np.ones(3), 50)
        p = Predictions(score, score.argmax(axis=1))
        classes = ("Adélie", 'say "hi"', 7)
    elif kind == "regressor":
        p = Predictions(rng.standard_normal(50) * 1e6)
    else:
        score = rng.random(50)
        if kind == "not finite":
            score[3] = np.nan
        p = Predictions(score, (score > 0.5).astype(np.int64))
        classes = (False, "yes\n")
    expected = [json.dumps(row) for row in with_classes(p.rows(), classes)]
    assert p.rows_json(classes) == expected


@pytest.mark.parametrize("cell", ["1_0", "١٢", "1.2.3", "0x10", "1e", "--1"])
def test_numbers_only_python_reads_are_refused_naming_the_cell(awkward, cell):
    """prepare read numbers as polars and pandas do (ASCII decimal notation); the endpoint
    holds to the same rule, so a cell float() alone would take is refused, not scored."""
    featurizer = Featurizer.load(awkward[3] / "preprocessing.json")
    with pytest.raises(RowError, match=f"row 2, column 'x': '{cell}' is not a number"):
        featurizer.features_from_csv(f"C1,0.5,red,True,2\nC2,{cell},red,True,2\n")


def test_a_raw_csv_without_line_breaks_is_refused_at_its_header_with_bounded_memory(tmp_path):
    """The header reader read the whole first line: a 384 MB file of NULs (or of commas) took
    prepare, and transform behind preprocessing, to a MemoryError under a 512 MiB cap before
    any row limit applied. Refused at row 1 once the row limit (16 MiB) is read."""
    from memory_cap import run_capped, sparse_file

    _, _, model_dir = prepared(tmp_path, PENGUINS, "species", "multiclass_classifier")
    nul = sparse_file(tmp_path / "nul.csv")
    commas = tmp_path / "commas.csv"
    with open(commas, "wb") as fh:
        fh.write(b"x," * (10 << 20))  # 20 MB, one line
    model = model_dir / "model.tar.gz"
    for huge in (nul, commas):
        for command in (
            ["prepare", "--data", huge, "--label", "y", "--predictor-type", "regressor",
             "--out", tmp_path / "p"],
            ["transform", "--model", model, "--input", huge, "--out", tmp_path / "t"],
        ):  # fmt: skip
            res = run_capped("-q", *command)
            assert res.returncode == 2, res.stderr[-2000:]
            assert (
                f"{huge}, row 1: a line over the row limit (16,777,216 bytes; a file without line "
                "breaks?), refused before it is read whole"
            ) in res.stderr
            assert "Traceback" not in res.stderr
    assert not (tmp_path / "p").exists() and not list((tmp_path / "t").rglob("*"))
