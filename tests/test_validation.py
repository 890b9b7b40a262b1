"""Preflight validation: one bad file per mistake, each message naming the problem and the fix."""

import http.client
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from memory_cap import run_capped, sparse_file

from training.data import channel_checks, raw_checks
from training.errors import ValidationError

BAD = Path(__file__).parent / "fixtures" / "bad"

# file, predictor type, extra kwargs, substrings the report must contain (where + what + fix)
CORPUS = [
    ("header.csv", "binary_classifier", {}, ["row 1", "header row present", "header=False"]),
    (
        "index_column.csv",
        "binary_classifier",
        {},
        ["column 1", "to_csv(index=True)", "index=False"],
    ),
    (
        "label_last.csv",
        "binary_classifier",
        {},
        ["is not 0 or 1", "column 4 holds values", "label column first"],
    ),
    (
        "ragged.csv",
        "binary_classifier",
        {},
        ["row 6", "has 2 fields but the other rows have 4", "same feature columns"],
    ),
    (
        "trailing_delimiter.csv",
        "binary_classifier",
        {},
        ["row 1", "trailing ','", "remove the trailing delimiter"],
    ),
    ("empty_line.csv", "binary_classifier", {}, ["row 7", "empty line", "delete empty lines"]),
    (
        "non_numeric.csv",
        "binary_classifier",
        {},
        ["row 4, column 2", "'red' is not a number", "one-hot encode"],
    ),
    ("nan_feature.csv", "binary_classifier", {}, ["row 5, column 2", "feature is nan", "impute"]),
    ("inf_label.csv", "regressor", {}, ["row 5, column 1", "label is inf", "valid label"]),
    (
        "binary_label_2.csv",
        "binary_classifier",
        {},
        ["row 3", "label 2 is not 0 or 1", "map the classes"],
    ),
    (
        "multiclass_label_3.csv",
        "multiclass_classifier",
        {"num_classes": 3},
        ["row 12", "label 3 >= num_classes=3", "num_classes to 4"],
    ),
    (
        "multiclass_fraction.csv",
        "multiclass_classifier",
        {"num_classes": 3},
        ["row 12", "label 1.5 is not a class index", "0..num_classes-1"],
    ),
    ("empty.csv", "regressor", {}, ["empty.csv", "empty (no rows)"]),
    (
        "good.csv",
        "binary_classifier",
        {"feature_dim": 4},
        ["has 3 features but feature_dim=4", "expected size 5", "feature_dim=3"],
    ),
    (
        "float64.rec",
        "binary_classifier",
        {},
        ["record 1", "features are Float64Tensor", "astype('float32')"],
    ),
    ("int_labels.rec", "binary_classifier", {}, ["labels are Int32Tensor", "only Float32Tensor"]),
    ("no_labels.rec", "binary_classifier", {}, ["record 1", "carry no label"]),
    (
        "nan_feature.rec",
        "binary_classifier",
        {},
        ["record 6, column 2", "feature value is nan", "impute"],
    ),
    ("bad_magic.rec", "binary_classifier", {}, ["bad magic", "byte offset 168"]),
    ("truncated.rec", "binary_classifier", {}, ["byte offset 616", "truncated"]),
    ("bad_protobuf.rec", "binary_classifier", {}, ["bad protobuf at byte offset 65"]),
]


@pytest.mark.parametrize("name, predictor, kwargs, expected", CORPUS, ids=[c[0] for c in CORPUS])
def test_each_bad_file_is_explained(name, predictor, kwargs, expected):
    with pytest.raises(ValidationError) as err:
        channel_checks.validate_channels([BAD / name], predictor, **kwargs)
    report = str(err.value)
    assert "nothing was uploaded or started" in report
    for text in expected:
        assert text in report, f"{text!r} missing from:\n{report}"


@pytest.mark.parametrize("name", ["good.csv", "good.rec"])
def test_good_files_pass_and_report_shape(name):
    (info,) = channel_checks.validate_channels([BAD / name], "binary_classifier", feature_dim=3)
    assert (info.rows, info.feature_dim) == (12, 3)
    assert info.content_type == (
        "text/csv" if name.endswith(".csv") else "application/x-recordio-protobuf"
    )


def test_channels_must_agree_on_feature_dim():
    with pytest.raises(
        ValidationError, match=r"five_features.csv.*has 5 features but .*good.csv has 3"
    ):
        channel_checks.validate_channels([BAD / "good.csv", BAD / "five_features.csv"], "regressor")


def test_folders_expand_to_their_files(tmp_path):
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "a.csv").write_text((BAD / "good.csv").read_text())
    (tmp_path / "train" / "b.csv").write_text((BAD / "header.csv").read_text())
    with pytest.raises(ValidationError) as err:
        channel_checks.validate_channels([tmp_path / "train"], "binary_classifier")
    assert "b.csv" in str(err.value) and "a.csv" not in str(err.value)


@pytest.mark.parametrize(
    "name, content, what",
    [
        ("test.rec.predictions.jsonl", '{"score": 0.9, "predicted_label": 1}\n', "predictions"),
        ("notes", '  [{"a": 1}]', "JSON"),
        ("report.html", "<html></html>", "a .html file"),
    ],
)
def test_a_file_in_a_channel_folder_that_is_not_channel_data_is_named(
    tmp_path, name, content, what
):
    """Not parsed as CSV and reported as a header row: named as what it is, with the fix."""
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "a.csv").write_text((BAD / "good.csv").read_text())
    (tmp_path / "train" / name).write_text(content)
    with pytest.raises(ValidationError) as err:
        channel_checks.validate_channels([tmp_path / "train"], "binary_classifier")
    (problem,) = err.value.problems
    assert problem.file == str(tmp_path / "train" / name)
    assert problem.message.startswith(f"not a channel file ({what}")
    assert "move it out of the channel folder" in problem.fix


def test_problems_in_many_files_are_all_reported():
    files = [BAD / "header.csv", BAD / "float64.rec", BAD / "ragged.csv"]
    with pytest.raises(ValidationError) as err:
        channel_checks.validate_channels(files, "binary_classifier")
    assert len({p.file for p in err.value.problems}) == 3


def test_repeated_row_problems_are_summarised(tmp_path):
    path = tmp_path / "many.csv"
    path.write_text("1,2,3\n" * 50 + "1,2\n" * 20)
    with pytest.raises(ValidationError) as err:
        channel_checks.validate_channels([path], "regressor")
    assert "row 51:" in str(err.value)
    assert "... and 17 more rows like that" in str(err.value)
    assert len(err.value.problems) == 4


@pytest.mark.parametrize(
    "content_type, ok",
    [
        ("text/csv", True),
        ("application/x-recordio-protobuf", True),
        ("csv", False),
        ("text/csv; charset=utf-8", False),
        ("application/x-recordio", False),
    ],
)
def test_content_type_must_be_exact(content_type, ok):
    problems = channel_checks.check_content_type(content_type, "train")
    assert (not problems) == ok
    if not ok:
        assert "No iterator has been registered" in problems[0].message


# ----------------------------------------------------------------------------- raw CSV


def raw(tmp_path, text):
    path = tmp_path / "raw.csv"
    path.write_text(text)
    return path


def test_raw_csv_unknown_label_suggests_the_close_name(tmp_path):
    path = raw(tmp_path, "age,Survived\n1,0\n2,1\n")
    with pytest.raises(
        ValidationError, match="(?s)no column named 'survived'.*did you mean 'Survived'"
    ):
        raw_checks.validate_raw_csv(path, "survived", "binary_classifier")


def test_raw_csv_binary_with_three_classes(tmp_path):
    path = raw(tmp_path, "x,y\n1,a\n2,b\n3,c\n")
    with pytest.raises(ValidationError, match="(?s)3 distinct values.*multiclass_classifier"):
        raw_checks.validate_raw_csv(path, "y", "binary_classifier")


def test_raw_csv_multiclass_needs_three(tmp_path):
    path = raw(tmp_path, "x,y\n1,a\n2,b\n")
    with pytest.raises(ValidationError, match="needs at least 3"):
        raw_checks.validate_raw_csv(path, "y", "multiclass_classifier")


def test_raw_csv_regressor_needs_numbers(tmp_path):
    path = raw(tmp_path, "x,y\n1,2.5\n2,high\n")
    with pytest.raises(ValidationError, match="(?s)row 3.*'high', not a finite number"):
        raw_checks.validate_raw_csv(path, "y", "regressor")


def test_raw_csv_ragged_row_named(tmp_path):
    path = raw(tmp_path, "x,y\n1,0\n2,1,7\n3,0\n")
    with pytest.raises(ValidationError, match="(?s)row 3.*3 fields but the header has 2"):
        raw_checks.validate_raw_csv(path, "y", "binary_classifier")


def test_raw_csv_missing_labels(tmp_path):
    path = raw(tmp_path, "x,y\n1,0\n2,\n3,1\n")
    with pytest.raises(ValidationError, match="(?s)row 3.*--drop-unlabeled"):
        raw_checks.validate_raw_csv(path, "y", "binary_classifier")
    raw_checks.validate_raw_csv(path, "y", "binary_classifier", allow_unlabeled=True)


def test_raw_csv_copies_of_the_label_are_named_and_drop_is_the_way_out(tmp_path):
    """The notebook's check names both kinds of copy on the rows it reads: the label spelt
    another way, and a feature that is the label under other values."""
    rng = np.random.default_rng(0)
    y = rng.choice(["yes", "no"], 40)
    frame = pd.DataFrame({"y": y, "x": rng.standard_normal(40), "is_yes": (y == "yes") * 1})
    frame.to_csv(tmp_path / "copy.csv", index=False)
    with pytest.raises(ValidationError, match=r"column 3: column 'is_yes' is the label 'y' under"):
        raw_checks.validate_raw_csv(tmp_path / "copy.csv", "y", "binary_classifier")
    raw_checks.validate_raw_csv(tmp_path / "copy.csv", "y", "binary_classifier", drop=("is_yes",))
    frame.rename(columns={"is_yes": "Y\u200b"}).assign(**{"Y\u200b": 0}).to_csv(
        tmp_path / "spelt.csv", index=False
    )
    with pytest.raises(ValidationError, match=r"column 'Y\\u200b' is the label 'y' \(column 1\)"):
        raw_checks.validate_raw_csv(tmp_path / "spelt.csv", "y", "binary_classifier")


def test_raw_csv_good(tmp_path):
    frame = pd.DataFrame({"x": range(10), "c": list("ab") * 5, "y": [0, 1] * 5})
    path = tmp_path / "ok.csv"
    frame.to_csv(path, index=False)
    raw_checks.validate_raw_csv(path, "y", "binary_classifier")


def test_a_notebook_export_gets_every_problem_in_one_run(tmp_path):
    """df.to_csv(path) of a frame with gaps: header, index column and empty cells, reported
    together (it took three rounds of fixing when the check stopped at the first)."""
    frame = pd.DataFrame({"label": [1, 0] * 10, "a": [0.5] * 20, "b": [-1.5] * 20}, dtype=float)
    frame.loc[3, "a"] = None
    frame.loc[7, "b"] = None  # the last column: an empty cell, not a trailing delimiter
    path = tmp_path / "export.csv"
    frame.to_csv(path)
    with pytest.raises(ValidationError) as err:
        channel_checks.validate_channels([path], "binary_classifier", feature_dim=2)
    said = [(p.row, p.column, p.message.split(":")[0]) for p in err.value.problems]
    assert said[:4] == [
        (1, None, "header row present (, label, a, b); SageMaker reads it as data"),
        (5, 3, "empty cell"),
        (9, 4, "empty cell"),
        (None, 1, "column 1 counts 0, 1, 2, …"),
    ]
    assert "has 3 features but feature_dim=2" in str(err.value)


def test_label_problems_after_a_header_name_the_files_rows(tmp_path):
    path = tmp_path / "h.csv"
    path.write_text("y,a,b\n" + "1,0.5,0.5\n" * 5 + "2,0.5,0.5\n" + "1,2\n" + "0,1,1\n" * 5)
    with pytest.raises(ValidationError) as err:
        channel_checks.validate_channels([path], "binary_classifier")
    text = str(err.value)
    assert "row 1: header row present" in text
    assert "row 8: has 2 fields but the other rows have 3" in text
    assert "row 7: label 2 is not 0 or 1" in text  # line 7 of the file, not the 6th label


def test_a_predictor_type_the_data_was_not_prepared_for_is_warned_about(tmp_path, caplog):
    from training.data.prepare import PrepareConfig, prepare

    data = tmp_path / "data"
    prepare(
        PrepareConfig(
            Path(__file__).parents[1] / "training" / "datasets" / "penguins.csv",
            "sex",
            "binary_classifier",
            data,
            drop_unlabeled=True,
            show_progress=False,
        )
    )
    caplog.clear()  # prepare's own lines (the CLI may have left the logger at INFO)
    with caplog.at_level("WARNING", logger="training"):
        channel_checks.check_training_data(data, {"predictor_type": "binary_classifier"})
    assert not [r for r in caplog.records if r.levelname == "WARNING"]
    with caplog.at_level("WARNING", logger="training"):
        channel_checks.check_training_data(
            data, {"predictor_type": "multiclass_classifier", "num_classes": "3"}
        )
    (record,) = [r for r in caplog.records if r.levelname == "WARNING"]
    assert (
        f"predictor_type=multiclass_classifier, but {data / 'manifest.json'} was prepared for "
        "binary_classifier (label 'sex': female, male)" in record.getMessage()
    )


def test_one_long_row_is_refused_with_bounded_memory(tmp_path):
    """A 384 MB row (one 300 MB row cost 3.1 GB) is refused once MAX_ROW_BYTES of it is read,
    under an address-space cap that reading it whole cannot fit in."""
    huge = sparse_file(tmp_path / "train.csv")
    res = run_capped("validate", "--predictor-type", "binary_classifier", huge)
    assert res.returncode == 2, res.stderr[-2000:]
    assert f"{huge}, row 1: a line over validate's row limit (16,777,216 bytes" in res.stderr
    assert "fix: end each row with \\n" in res.stderr and "Traceback" not in res.stderr


def test_a_last_row_without_a_line_break_is_held_to_the_row_limit_too(tmp_path, capsys):
    """A 17 MiB last row with no \n after it was read and parsed (the limit held only for
    rows that end in \n): refused like any row over MAX_ROW_BYTES, by its row."""
    from training.cli import main

    data = tmp_path / "train.csv"
    data.write_bytes(b"1,0.5\n0," + b"7" * (17 << 20))
    assert main(["validate", "--predictor-type", "binary_classifier", str(data)]) == 2
    err = capsys.readouterr().err
    assert f"{data}, row 2: a line over validate's row limit (16,777,216 bytes" in err
    assert "Traceback" not in err


@pytest.fixture(scope="module")
def endpoint():
    from training.core.model import LinearModel
    from training.local.server import serving

    model = LinearModel("binary_classifier", "logistic", np.ones(2, np.float32), np.float32(0), 0.5)
    with serving(model) as port:
        yield port


def post_csv(port: int, body: str) -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("POST", "/invocations", body.encode(), {"Content-Type": "text/csv"})
    res = conn.getresponse()
    return res.status, res.read().decode()


# cell -> what both validate and the endpoint make of it (training/core/csv_numbers.py)
CELLS = [
    ("0.5", "number"),
    (" 1 ", "number"),
    ("\t+1.5e-3", "number"),
    (".5", "number"),
    ("5.", "number"),
    ("1_0", "text"),  # Python's float() reads 10
    ("\u0661", "text"),  # Arabic-Indic 1: float() reads 1
    ("\uff11", "text"),  # full-width 1
    ("\u20031", "text"),  # an em space before it
    ("0x10", "text"),
    ("1e", "text"),
    ("nan", "not finite"),
    ("-Infinity", "not finite"),
    ("inf", "not finite"),
    ("1e39", "beyond float32"),  # finite in float64; the endpoint's float32 reads infinity
    ("-3.5E+38", "beyond float32"),
]


@pytest.mark.parametrize("cell, verdict", CELLS, ids=[repr(c) for c, _ in CELLS])
def test_validate_and_the_endpoint_read_a_cell_by_one_rule(
    tmp_path, endpoint, capsys, cell, verdict
):
    from training.cli import main

    data = tmp_path / "train.csv"
    data.write_text(f"0,1,1\n1,{cell},0\n1,0,1\n", encoding="utf-8")  # row 1 may be a header
    code = main(["validate", "--predictor-type", "binary_classifier", str(data)])
    status, answer = post_csv(endpoint, f"{cell},0\n")
    if verdict == "number":
        assert (code, status) == (0, 200), answer
        return
    assert (code, status) == (2, 400)
    err = capsys.readouterr().err
    if verdict == "text":
        assert f"{data}, row 2, column 2: '{cell}' is not a number" in err
        assert f"row 1, column 1: '{cell}' is not a number" in answer
    elif verdict == "beyond float32":
        assert (
            f"{data}, row 2, column 2: feature is {float(cell)}, beyond float32 (+-3.4e38): "
            "Linear Learner reads infinity (rescale it)"
        ) in err
        assert f"row 1, column 1 is {'-' if cell[0] == '-' else ''}inf: send finite" in answer
    else:
        assert f"{data}, row 2, column 2: feature is {float(cell)}" in err
        assert f"row 1, column 1 is {float(cell)}: send finite numbers" in answer


def test_a_lone_cr_file_is_refused_by_validate_as_the_endpoint_refuses_its_rows(
    tmp_path, endpoint, capsys
):
    from training.cli import main

    data = tmp_path / "train.csv"
    data.write_bytes(b"1,0.5,0\r0,1,1\r1,0,1\r")
    assert main(["validate", "--predictor-type", "binary_classifier", str(data)]) == 2
    err = capsys.readouterr().err
    assert f"{data}, row 1: rows end with a lone CR" in err and "write \\n line ends" in err
    status, answer = post_csv(endpoint, "0.5,0\r1,1\r")
    assert status == 400 and "row 1 contains the line break '\\r'" in answer
    data.write_bytes(b"1,0.5,0\r\n0,1,1\r\n1,0,1\r\n")  # CRLF: rows end at \n
    assert main(["validate", "--predictor-type", "binary_classifier", str(data)]) == 0
    assert post_csv(endpoint, "0.5,0\r\n1,1\r\n")[0] == 200


def test_the_fast_parse_reads_numbers_exactly_as_the_rule_does():
    """parse_rows hands most blocks to polars at once: for ASCII tokens without spaces, polars
    must accept exactly the rule's numbers, with float()'s values; any other token must send
    the block to the cell-by-cell parse, which refuses it."""
    from training.core.csv_numbers import _polars_rows, is_number, parse_rows

    rng = np.random.default_rng(5)
    alphabet = list("0123456789" * 3 + "+-.eEinfatyINFATYxXdD#")
    tokens = sorted(
        {"".join(rng.choice(alphabet, rng.integers(1, 8))) for _ in range(3000)}
        | {"1.", ".5", "-.5e-3", "+1E+05", "Infinity", "-nan", "1e", ".", "+", "e5", "1.5.5"}
    )
    numbers = [t for t in tokens if is_number(t)]
    others = [t for t in tokens if not is_number(t)]
    assert len(numbers) > 250 and len(others) > 500
    fast = _polars_rows("\n".join(numbers), len(numbers))
    assert fast is not None
    np.testing.assert_array_equal(fast[:, 0], [float(t) for t in numbers])
    for token in others:
        assert _polars_rows(token, 1) is None, token
        with pytest.raises(ValueError, match="not a number"):
            parse_rows([token])
