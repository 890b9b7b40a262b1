"""Linear Learner's hyperparameter table: defaults, constraints and SageMaker-style errors."""

from dataclasses import fields

import pytest

from training.core import hyperparameters as hp
from training.core.hyperparameters import Hyperparameters, Interval, Resolved
from training.errors import HyperparameterError


def test_defaults_are_filled_in_with_sagemaker_values():
    values = hp.validate({"predictor_type": "binary_classifier"})
    assert values.epochs == 15
    assert values.mini_batch_size == 1000
    assert values.num_models == "auto"
    assert values.use_bias is True
    assert values.binary_classifier_model_selection_criteria == "accuracy"
    assert values.normalize_data is True
    assert values.num_classes is None  # SageMaker has no default for it
    strings = values.to_strings()
    assert len(strings) == len(fields(Hyperparameters)) - 1 and "num_classes" not in strings


def test_string_values_as_sagemaker_sends_them():
    values = hp.validate(
        {
            "predictor_type": "regressor",
            "epochs": "5",
            "use_bias": "False",
            "learning_rate": "0.1",
            "wd": "auto",
        }
    )
    assert values.epochs == 5 and values.use_bias is False
    assert values.learning_rate == 0.1 and values.wd == "auto"
    assert values.given("learning_rate") and not values.given("wd")


def test_every_problem_is_listed_with_its_rule():
    with pytest.raises(HyperparameterError) as err:
        hp.validate(
            {
                "predictor_type": "regressor",
                "epoch": "3",
                "mini_batch_size": "1.5",
                "lr_scheduler_factor": "1",
                "loss": "logistic",
                "beta_1": "nan",
            }
        )
    text = str(err.value)
    assert "Unknown hyperparameter 'epoch'. Did you mean 'epochs'?" in text
    assert "mini_batch_size='1.5' is invalid: must be an integer > 0. Default: 1000." in text
    assert "lr_scheduler_factor='1' is invalid: must be 'auto' or a number > 0 and < 1" in text
    assert "loss='logistic' does not fit predictor_type=regressor" in text
    assert "beta_1='nan' is invalid" in text


@pytest.mark.parametrize("text", ["100.0", "1e2", " 100.00 "])
def test_a_whole_number_written_as_a_float_is_refused_saying_how_to_write_it(text):
    """What SageMaker's container does with epochs='100.0' is not documented: refused here,
    with the spelling every SDK sends (a billed job that fails on it costs minutes)."""
    with pytest.raises(HyperparameterError) as err:
        hp.validate({"predictor_type": "regressor", "epochs": text})
    assert str(err.value) == (
        f"Hyperparameter epochs='{text.strip()}' is invalid: must be an integer > 0. Default: "
        f"15. Write 100: SageMaker checks '{text.strip()}' as text against an integer rule, "
        "and a job could fail on it after minutes of billing."
    )
    with pytest.raises(HyperparameterError) as err:  # a fraction, or a number field: no hint
        hp.validate({"predictor_type": "regressor", "epochs": "1.5", "learning_rate": "x"})
    assert "Write" not in str(err.value)


@pytest.mark.parametrize(
    "given, message",
    [
        ({}, "Missing required hyperparameter 'predictor_type'"),
        ({"predictor_type": "multiclass_classifier"}, "Missing hyperparameter 'num_classes'"),
        (
            {"predictor_type": "multiclass_classifier", "num_classes": "2"},
            "num_classes=2 is too small",
        ),
        ({"predictor_type": "binary"}, "predictor_type='binary' is invalid"),
    ],
)
def test_required_and_combined_rules(given, message):
    with pytest.raises(HyperparameterError, match=message):
        hp.validate(given)


CASES = [
    (name, constraint) for name, f in hp.TABLE.items() for constraint in f.metadata["constraints"]
]


@pytest.mark.parametrize(
    "name, constraint", CASES, ids=[f"{n}-{type(c).__name__}" for n, c in CASES]
)
def test_an_invalid_value_for_every_constraint_is_refused_naming_the_hyperparameter(
    name, constraint
):
    """As scikit-learn's shared tests do: a value that breaks each constraint of the table,
    refused with the hyperparameter's name, what it must be, and nothing else started."""
    bad = constraint.invalid()
    with pytest.raises(ValueError):
        constraint.parse(bad)
    base = {"predictor_type": "regressor"} if name != "predictor_type" else {}
    with pytest.raises(HyperparameterError) as err:
        hp.validate({**base, name: bad})
    assert f"Hyperparameter {name}='{bad}' is invalid: must be {hp.rule(name)}" in str(err.value)


@pytest.mark.parametrize(
    "interval, inside, outside",
    [
        (Interval(float, 0, 1, "neither"), ["0.5"], ["0", "1", "inf", "nan"]),
        (Interval(float, 0, 1, "left"), ["0", "0.99"], ["1", "-0.1"]),
        (Interval(int, 0, None, "right"), ["1", "10"], ["0", "1.5", "-1"]),
        (Interval(float), ["-1e30", "0"], ["inf", "-inf", "nan", "x"]),
    ],
)
def test_intervals_keep_their_ends(interval, inside, outside):
    for text in inside:
        interval.parse(text)
    for text in outside:
        with pytest.raises(ValueError):
            interval.parse(text)


def test_balanced_weight_and_legacy_criteria():
    values = hp.validate(
        {
            "predictor_type": "binary_classifier",
            "positive_example_weight_mult": "balanced",
            "binary_classifier_model_selection_criteria": "f1",
        }
    )
    assert values.positive_example_weight_mult == "balanced"
    assert values.binary_classifier_model_selection_criteria == "f_beta"
    assert values.to_strings()["binary_classifier_model_selection_criteria"] == "f_beta"


def test_resolved_hyperparameters_have_a_concrete_type_for_every_auto_field():
    """Every field that may be given as auto is redeclared concrete in Resolved."""
    autos = {n for n, f in hp.TABLE.items() if hp.Keyword(hp.AUTO) in f.metadata["constraints"]}
    redeclared = set(Resolved.__annotations__)
    assert autos <= redeclared, autos - redeclared
    assert all("str" not in Resolved.__annotations__[n] for n in autos - {"loss", "optimizer"})


def test_to_strings_and_command_line_assignments():
    values = hp.validate({"predictor_type": "regressor", "use_bias": "FALSE", "epochs": "3"})
    assert values.to_strings(["use_bias", "epochs"]) == {"use_bias": "false", "epochs": "3"}
    assert hp.parse_assignments(["epochs=3", " wd = 0.1"]) == {"epochs": "3", "wd": "0.1"}
    with pytest.raises(HyperparameterError, match="name=value"):
        hp.parse_assignments(["epochs"])
