"""The notebook the notebook instance gets runs end to end, offline, from what deploy uploads."""

import shutil

from notebook_run import run_notebook

from training.aws import notebook_bundle


def test_notebook_runs_end_to_end_from_the_uploaded_bundle(tmp_path, monkeypatch):
    # the bundle as the stack stages it and the instance's OnStart sync lays it out: one
    # folder, no repository
    folder = tmp_path / "SageMaker" / "linear-learner"
    folder.parent.mkdir(parents=True)
    shutil.move(notebook_bundle.stage(), folder)
    monkeypatch.setenv("LL_RUN_DIR", str(tmp_path / "run"))
    monkeypatch.setenv("LL_TARGET", "local")
    monkeypatch.delenv("PYTHONPATH", raising=False)
    text = run_notebook(folder)
    assert f"project: {folder} " in text  # the bundle's training package, not this checkout
    assert "feature_dim" in text and "test:binary_classification_accuracy" in text
    assert "did you mean 'sex'" in text
    assert "endpoint stopped" in text
    assert (tmp_path / "run" / "model" / "model.tar.gz").exists()
