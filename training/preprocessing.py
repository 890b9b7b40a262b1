"""Kept so ``preprocessor.joblib`` files written before the data path moved to
:mod:`training.data` still load: their pickles name ``training.preprocessing.LabelEncoding``."""

from training.data.labels import LabelEncoding  # noqa: F401
