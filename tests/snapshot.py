"""The pipeline's predictions on the bundled penguins data, against a reviewed snapshot.

``tests/fixtures/snapshots/penguins_predictions.json`` holds what ``prepare`` + the local
trainer (seed 0, defaults) + the local endpoint predict for the penguins test splits (binary
``sex``, multiclass ``species``, regressor ``body_mass_g``). ``tests/test_artifact.py`` checks
today's code predicts the same. A change to what training produces changes the snapshot: run
``.venv/bin/python tests/snapshot.py`` and say why in the snapshot folder's README.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SNAPSHOT = ROOT / "tests" / "fixtures" / "snapshots" / "penguins_predictions.json"
TASKS = [
    ("binary_classifier", "sex"),
    ("multiclass_classifier", "species"),
    ("regressor", "body_mass_g"),
]


def penguins_predictions(work: Path) -> dict:
    """Per predictor type: the endpoint's scores and labels for the test split, and the
    model's threshold."""
    from training import predict
    from training.core import artifact
    from training.data.channels import read_channel
    from training.data.prepare import PrepareConfig, prepare
    from training.local.server import serving
    from training.local.trainer import train_local

    out = {}
    for ptype, label in TASKS:
        d = work / ptype
        prepare(
            PrepareConfig(
                data=ROOT / "training" / "datasets" / "penguins.csv",
                label=label,
                predictor_type=ptype,
                out=d / "data",
                drop_unlabeled=True,
                show_progress=False,
            )
        )
        train_local(d / "data", d / "model", seed=0, show_progress=False, echo=lambda line: None)
        test = read_channel(d / "data" / "test")
        with serving(d / "model" / "model.tar.gz") as port:
            answers = predict.predict(predict.local_invoker("127.0.0.1", port), test.X, "text/csv")
        entry = {"score": answers.score.tolist()}
        if answers.predicted_label is not None:
            entry["predicted_label"] = answers.predicted_label.tolist()
        entry["threshold"] = artifact.load(d / "model" / "model.tar.gz").threshold
        out[ptype] = entry
    return out


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    with tempfile.TemporaryDirectory() as work:
        SNAPSHOT.write_text(json.dumps(penguins_predictions(Path(work)), indent=1) + "\n")
    print(f"wrote {SNAPSHOT}; say why in {SNAPSHOT.parent / 'README.md'}")
