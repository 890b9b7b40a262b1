"""Linear Learner's hyperparameter table: defaults, rules and SageMaker-style errors."""

import pytest

from training import hyperparameters as hp
from training.hyperparameters import HyperparameterError


def test_defaults_are_filled_in_with_sagemaker_values():
    values = hp.validate({"predictor_type": "binary_classifier"})
    assert values["epochs"] == 15
    assert values["mini_batch_size"] == 1000
    assert values["num_models"] == "auto"
    assert values["use_bias"] is True
    assert values["binary_classifier_model_selection_criteria"] == "accuracy"
    assert values["normalize_data"] == "true"
    assert len(values) == len(hp.PARAMS) - 1  # all but num_classes (no default)


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
    assert values["epochs"] == 5 and values["use_bias"] is False
    assert values["learning_rate"] == 0.1 and values["wd"] == "auto"


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


def test_balanced_weight_and_legacy_criteria():
    values = hp.validate(
        {
            "predictor_type": "binary_classifier",
            "positive_example_weight_mult": "balanced",
            "binary_classifier_model_selection_criteria": "f1",
        }
    )
    assert values["positive_example_weight_mult"] == "balanced"
    assert values["binary_classifier_model_selection_criteria"] == "f_beta"


def test_to_strings_and_command_line_assignments():
    assert hp.to_strings({"use_bias": True, "epochs": 3}) == {"use_bias": "true", "epochs": "3"}
    assert hp.parse_assignments(["epochs=3", " wd = 0.1"]) == {"epochs": "3", "wd": "0.1"}
    with pytest.raises(HyperparameterError, match="name=value"):
        hp.parse_assignments(["epochs"])
