"""The featurizer runs where it will run: SageMaker's scikit-learn container (issue 23, item 7).

``featurizer.tar.gz``'s entry points (``code/featurize.py``, ``code/decode.py``) are served by
the container's own stack, in a Python with the container's versions
(``.venv-sklearn-container/``: Python 3.9 and the 1.2-1 image's pins, see
``requirements-sklearn-container.txt``; ``scripts/setup.sh`` makes it). A driver that the test
writes runs there and does what the image does at start-up and per request:

- ``sagemaker_sklearn_container.serving:main`` (the WSGI app gunicorn serves) as its source has
  it: ``modules.import_module`` copies ``code/`` to ``/opt/ml/code``, writes a setup.py and runs
  ``pip install .`` with no package index reachable (a network-isolated Model), then
  ``transformer.Transformer(model_fn=…, input_fn=…, predict_fn=…, output_fn=…)`` and SMC's
  ``worker.Worker`` Flask app;
- requests through werkzeug's test client (what Flask's test client is built on), as
  SageMaker sends them to the container.

What it answers is checked against the project's own Python: the features, byte for byte, are
``Featurizer.features_from_request`` + ``recordio_rows``; Linear Learner's local twin scores
those bytes as the local pipeline scores the raw rows; and decode.py, given that answer, says
what the local pipeline says, byte for byte. Refusals keep their status and message.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import os
import subprocess
import tarfile
from pathlib import Path

import numpy as np
import pytest

from training.aws import featurizer_artifact
from training.content_types import CSV, JSON, JSONLINES, RECORDIO
from training.core.featurizer import CATEGORICAL, NUMERIC, Featurizer, recordio_rows
from training.data import recordio
from training.data.prepare import PrepareConfig, prepare
from training.local.server import RequestError, predict_body
from training.local.trainer import train_local
from training.model_source import load_model, load_pipeline

ROOT = Path(__file__).parents[1]
PENGUINS = ROOT / "training" / "datasets" / "penguins.csv"
VENV = ROOT / ".venv-sklearn-container"
PYTHON = VENV / "bin" / "python"
STAMP = VENV / ".setup-stamp"  # written last by scripts/setup.sh: the venv is complete

pytestmark = pytest.mark.skipif(
    not (PYTHON.exists() and STAMP.exists()),
    reason=(
        f"{VENV.name}/ is missing or incomplete: bash scripts/setup.sh makes it when it finds "
        "a Python 3.9 (PYTHON39, pyenv's versions/3.9.*, or python3.9 on PATH) and says so "
        "when it does not"
    ),
)

# The driver: runs in the container's Python, as the container's serving stack. Its lines from
# serving.py are aws/sagemaker-scikit-learn-container branch 1.2-1 (b440c40d, 2025-09-22),
# src/sagemaker_sklearn_container/serving.py (blob e0eef782), verbatim but for the default
# functions' docstrings and two imports: serving_mms (multi-model serving only) and the
# package's exceptions (UserError, raised only for a module with both transform_fn and
# input_fn/predict_fn/output_fn). The package is not on PyPI.
DRIVER = '''\
"""Serve a model dir as sagemaker_sklearn_container.serving:main does; argv: spec, out."""
from __future__ import absolute_import
import base64
import importlib
import json
import logging
import platform
import sys
from importlib import metadata

import numpy as np
from werkzeug.test import Client

# ---- serving.py, from here ------------------------------------------------------------------
from sagemaker_containers.beta.framework import (
    content_types, encoders, env, modules, transformer, worker, server)

logging.basicConfig(format='%(asctime)s %(levelname)s - %(name)s - %(message)s', level=logging.INFO)

logging.getLogger('boto3').setLevel(logging.INFO)
logging.getLogger('s3transfer').setLevel(logging.INFO)
logging.getLogger('botocore').setLevel(logging.WARN)

logger = logging.getLogger(__name__)
logger.setLevel(logging.DEBUG)


class UserError(Exception):  # sagemaker_sklearn_container.exceptions.UserError, as used
    pass


def default_model_fn(model_dir):
    return transformer.default_model_fn(model_dir)


def default_input_fn(input_data, content_type):
    np_array = encoders.decode(input_data, content_type)
    return np_array.astype(np.float32) if content_type in content_types.UTF8_TYPES else np_array


def default_predict_fn(input_data, model):
    output = model.predict(input_data)
    return output


def default_output_fn(prediction, accept):
    return worker.Response(encoders.encode(prediction, accept), accept, mimetype=accept)


def _user_module_transformer(user_module):
    model_fn = getattr(user_module, "model_fn", default_model_fn)
    input_fn = getattr(user_module, "input_fn", None)
    predict_fn = getattr(user_module, "predict_fn", None)
    output_fn = getattr(user_module, "output_fn", None)
    transform_fn = getattr(user_module, "transform_fn", None)

    if transform_fn and (input_fn or predict_fn or output_fn):
        raise UserError("Cannot use transform_fn implementation with input_fn, predict_fn, and/or output_fn")

    if transform_fn is not None:
        return transformer.Transformer(model_fn=model_fn, transform_fn=transform_fn)
    else:
        return transformer.Transformer(
            model_fn=model_fn,
            input_fn=input_fn or default_input_fn,
            predict_fn=predict_fn or default_predict_fn,
            output_fn=output_fn or default_output_fn,
        )


def _user_module_execution_parameters_fn(user_module):
    return getattr(user_module, 'execution_parameters_fn', None)


def import_module(module_name, module_dir):

    try:  # if module_name already exists, use the existing one
        user_module = importlib.import_module(module_name)
    except ImportError:  # if the module has not been loaded, 'modules' downloads and installs it.
        user_module = modules.import_module(module_dir, module_name)
    except Exception:  # this shouldn't happen
        logger.info("Encountered an unexpected error.")
        raise

    user_module_transformer = _user_module_transformer(user_module)
    user_module_transformer.initialize()

    return user_module_transformer, _user_module_execution_parameters_fn(user_module)


app = None


def main(environ, start_response):
    global app

    if app is None:
        serving_env = env.ServingEnv()

        user_module_transformer, execution_parameters_fn = import_module(serving_env.module_name,
                                                                         serving_env.module_dir)

        app = worker.Worker(transform_fn=user_module_transformer.transform,
                            module_name=serving_env.module_name,
                            execution_parameters_fn=execution_parameters_fn)

    return app(environ, start_response)
# ---- serving.py, to here --------------------------------------------------------------------


def answer(response):
    return {
        "status": response.status_code,
        "content_type": response.headers.get("Content-Type"),
        "body": base64.b64encode(response.get_data()).decode(),
    }


def versions():
    names = ["numpy", "pandas", "scikit-learn", "scipy", "Flask", "Werkzeug",
             "sagemaker-containers", "pip", "setuptools", "linear_learner_featurizer"]
    out = {"python": platform.python_version()}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


spec = json.load(open(sys.argv[1]))
client = Client(main)  # the WSGI app gunicorn serves: SAGEMAKER_SERVING_MODULE
ping = client.get("/ping")  # SageMaker's first call: main() installs the code, loads the model
answers = []
for request in spec["requests"]:
    headers = {"Content-Type": request["content_type"]}
    if request["accept"] is not None:
        headers["Accept"] = request["accept"]
    body = base64.b64decode(request["body"])
    answers.append(answer(client.post("/invocations", data=body, headers=headers)))
module = sys.modules[env.ServingEnv().module_name]
with open(sys.argv[2], "w") as fh:
    json.dump({"ping": ping.status_code, "answers": answers, "versions": versions(),
               "module_file": module.__file__}, fh)
'''  # noqa: E501 (serving.py's lines as they are)


# No package index in the container: the Model is network-isolated. A dead address, and none
# of this machine's pip configuration (its find-links and local indexes).
OFFLINE_PIP = {
    "PIP_CONFIG_FILE": os.devnull,
    "PIP_INDEX_URL": "http://127.0.0.1:9/simple",
    "PIP_RETRIES": "0",
    "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    "PIP_NO_CACHE_DIR": "1",
}


def container(root: Path, program: str) -> tuple[Path, dict]:
    """A fresh container's Python and environment under ``root`` (its /opt/ml at
    ``root/opt/ml``): a venv over the container venv's packages, so the stack's `pip install .`
    lands there and leaves the shared venv as the image is, clean."""
    base = root / "opt" / "ml"  # SMC reads SAGEMAKER_BASE_DIR for /opt/ml
    python = root / "python"
    subprocess.run([PYTHON, "-m", "venv", "--without-pip", python], check=True)
    (site,) = python.glob("lib/python3*/site-packages")
    (shared,) = VENV.glob("lib/python3*/site-packages")
    (site / "container-image.pth").write_text(f"{shared}\n")
    env = {
        name: value.replace("/opt/ml", str(base))
        for name, value in featurizer_artifact.environment(program).items()
    }
    env.update(
        OFFLINE_PIP,
        SAGEMAKER_BASE_DIR=str(base),
        PATH=os.environ["PATH"],
        HOME=str(root),
        LANG="C.UTF-8",
        PYTHONDONTWRITEBYTECODE="1",  # the image's ENV
        PYTHONUNBUFFERED="1",
    )
    return python / "bin" / "python", env


def serve_in_container(work: Path, program: str, artifact: bytes, requests: list) -> dict:
    """One container: the artifact unpacked to its /opt/ml/model, ``program`` served by the
    stack, ``requests`` (content type, accept, body) sent; the driver's report."""
    # (not named as the program: the driver's folder is on sys.path, and a folder named
    # featurize there would be imported as the program, a namespace package)
    root = work / f"container-{program.removesuffix('.py')}"
    python, env = container(root, program)
    with tarfile.open(fileobj=io.BytesIO(artifact), mode="r:gz") as tar:
        tar.extractall(root / "opt" / "ml" / "model", filter="data")
    spec, out = root / "spec.json", root / "out.json"
    spec.write_text(
        json.dumps(
            {
                "requests": [
                    {"content_type": c, "accept": a, "body": base64.b64encode(b).decode()}
                    for c, a, b in requests
                ]
            }
        )
    )
    driver = work / "driver.py"
    driver.write_text(DRIVER)
    run = subprocess.run(
        [python, driver, spec, out],
        env=env,
        cwd=root,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert run.returncode == 0, f"{program} in the container:\n{run.stdout}\n{run.stderr}"
    report = json.loads(out.read_text())
    # the code came in through the stack's `pip install .`, into this container's Python
    assert Path(report["module_file"]).is_relative_to(root / "python"), report["module_file"]
    assert "Installing module with the following command" in run.stderr
    assert "Successfully installed linear_learner_featurizer-1.0.0" in run.stdout
    assert report["ping"] == 200
    for a in report["answers"]:
        a["body"] = base64.b64decode(a["body"])
    return report


def test_the_containers_pip_reaches_no_index(tmp_path):
    """The control: what the test's container installs comes from code/ alone."""
    python, env = container(tmp_path / "container", featurizer_artifact.FEATURIZE)
    run = subprocess.run(
        [python, "-m", "pip", "download", "--no-deps", "-d", tmp_path, "six"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode != 0, run.stdout
    assert "No matching distribution found for six" in run.stderr, run.stderr


# --------------------------------------------------------------------------- the raw rows


def raw_rows(data_dir: Path, label: str, featurizer: Featurizer) -> tuple[str, list[dict]]:
    """prepare's test_rows.csv without the label: as CSV text, and as JSON records (numbers as
    JSON numbers, an empty cell as null) keyed by column name."""
    with open(data_dir / "test_rows.csv", newline="") as fh:
        header, *rows = list(csv.reader(fh))
    at = header.index(label)
    names = [h for h in header if h != label]
    numeric = {c.name for c in featurizer.numeric}
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    records = []
    for row in rows:
        cells = [c for i, c in enumerate(row) if i != at]
        writer.writerow(cells)
        records.append(
            {
                name: None if cell == "" else float(cell) if name in numeric else cell
                for name, cell in zip(names, cells)
            }
        )
    return text.getvalue(), records


def edge_rows(featurizer: Featurizer, first: list[str]) -> tuple[str, dict]:
    """Rows a client sends that the featurizer must read as prepare would have: every cell
    empty (imputed), missing spellings and infinities (imputed), a category never seen (all
    zeros), a quoted field with a comma (one cell, unseen), spaces after commas. With, per
    row, what to check in its features."""
    inputs = featurizer.inputs
    cats = [i for i, c in enumerate(inputs) if c.role == CATEGORICAL]
    nums = [i for i, c in enumerate(inputs) if c.role == NUMERIC]
    rows = [[""] * len(inputs)]  # 0: everything imputed
    row = list(first)  # 1: missing spellings and infinities in the numbers, an unseen category
    for k, i in enumerate(nums):
        row[i] = ("NA", "", "inf", "-Infinity", "nan")[k % 5]
    row[cats[0]] = "Atlantis"
    rows.append(row)
    row = list(first)  # 2: a quoted field with a comma: one cell, a category never seen
    row[cats[-1]] = "Biscoe, north"
    rows.append(row)
    text = io.StringIO()
    csv.writer(text, lineterminator="\n", quoting=csv.QUOTE_MINIMAL).writerows(rows)
    # 3: the first row again, quoted and with spaces after the commas (pandas' reading)
    text.write(", ".join(f'"{cell}"' for cell in first) + "\n")
    return text.getvalue(), {"unseen": (1, cats[0]), "comma": (2, cats[-1])}


def category_block(featurizer: Featurizer, column_index: int) -> slice:
    """Where a categorical input's one-hot block sits in the features."""
    name = featurizer.inputs[column_index].name
    at = len(featurizer.numeric)
    for c in featurizer.categorical:
        if c.name == name:
            return slice(at, at + len(c.categories))
        at += len(c.categories)
    raise KeyError(name)


# --------------------------------------------------------------------------- the test


def local_answer(served, body: bytes, content_type: str, accept: str | None):
    """What the local twin answers: (status, body, content type); a refusal's message."""
    try:
        out, ctype = predict_body(served, body, content_type, accept)
    except RequestError as err:
        return err.status, str(err), None
    return 200, out, ctype


@pytest.mark.parametrize(
    "label, predictor_type",
    [("sex", "binary_classifier"), ("species", "multiclass_classifier")],
)
def test_the_container_featurizes_and_decodes_as_the_local_pipeline(
    tmp_path, label, predictor_type
):
    data_dir, model_dir = tmp_path / "data", tmp_path / "model"
    prepare(
        PrepareConfig(
            data=PENGUINS,
            label=label,
            predictor_type=predictor_type,
            out=data_dir,
            drop_unlabeled=True,
            show_progress=False,
        )
    )
    train_local(data_dir, model_dir, seed=0, show_progress=False, echo=lambda line: None)
    preprocessing = model_dir / "preprocessing.json"
    featurizer = Featurizer.load(preprocessing)
    model = load_model(str(model_dir / "model.tar.gz"))  # Linear Learner alone
    pipeline = load_pipeline(str(model_dir / "model.tar.gz"), show_progress=False)
    assert pipeline.featurizer == featurizer
    artifact = featurizer_artifact.to_bytes(preprocessing)

    text, records = raw_rows(data_dir, label, featurizer)
    first = next(csv.reader(io.StringIO(text)))
    edges, marks = edge_rows(featurizer, first)
    test_channel = recordio.read_arrays(data_dir / "test" / "test-00000.rec")
    bad = text.splitlines()
    column = featurizer.numeric[0]
    cells = next(csv.reader([bad[1]]))
    cells[[c.name for c in featurizer.inputs].index(column.name)] = "about 40"
    bad[1] = ",".join(cells)
    jsonlines = "".join(json.dumps(r) + "\n" for r in records)
    # name: (content type, accept, body); a first container gets no Accept, or */*
    requests = {
        "csv": (CSV, None, text.encode()),
        "csv; charset": ("text/csv; charset=utf-8", "*/*", text.encode()),  # bytes, not str
        "json": (JSON, None, json.dumps({"instances": records}).encode()),
        "jsonlines": (JSONLINES, None, jsonlines.encode()),
        "edges": (CSV, None, edges.encode()),
        "recordio": (RECORDIO, None, recordio_rows(featurizer.features_from_csv(text))),
        "bad row": (CSV, None, ("\n".join(bad) + "\n").encode()),
        "unsupported": ("text/plain", None, text.encode()),
    }
    featurized = serve_in_container(
        tmp_path / "featurize", featurizer_artifact.FEATURIZE, artifact, list(requests.values())
    )
    versions = featurized["versions"]
    assert versions["python"].startswith("3.9.") and versions["numpy"] == "1.24.1"
    assert versions["sagemaker-containers"] == "2.8.6.post2" and versions["Flask"] == "1.1.1"
    assert versions["linear_learner_featurizer"] == "1.0.0"  # code/, as `pip install .` built it

    answers = dict(zip(requests, featurized["answers"]))
    scored = {}
    for name, (ctype, _, body) in requests.items():
        got = answers[name]
        status, want, _ = local_answer(pipeline, body, ctype, JSON)
        assert got["status"] == status, (name, got)
        if status != 200:  # a refusal: the local endpoint's status and message
            assert got["content_type"] == JSON
            assert json.loads(got["body"]) == {"message": want}, name
            continue
        # (1) the features are the local featurizer's, byte for byte
        X = featurizer.features_from_request(body, ctype)
        expected = body if X is None else recordio_rows(X)
        assert got["content_type"] == RECORDIO, name
        assert got["body"] == expected, name
        # (2) ... and Linear Learner scores them as the local pipeline scores the raw rows
        status, ll_answer, ll_type = local_answer(model, got["body"], RECORDIO, JSON)
        assert status == 200 and ll_type == JSON, (name, ll_answer)
        plain = [
            {k: v for k, v in row.items() if k != "predicted_class"}
            for row in json.loads(want)["predictions"]
        ]
        assert json.loads(ll_answer)["predictions"] == plain, name
        scored[name] = ll_answer
    # the raw test rows, wherever they came in, are the test channel prepare encoded
    for name in ("csv", "csv; charset", "json", "jsonlines", "recordio"):
        assert answers[name]["body"] == recordio.encode_dense(test_channel.X), name
    assert "row 2" in answers["bad row"]["body"].decode()
    assert column.name in answers["bad row"]["body"].decode()
    # the edge rows, read back from the container's bytes
    E = recordio.read_arrays(answers["edges"]["body"]).X
    imputed = featurizer.features_from_records([{c.name: None for c in featurizer.inputs}])
    assert E[0].tobytes() == imputed[0].tobytes()
    for row, col in marks.values():  # unseen categories: all zeros
        assert not E[row, category_block(featurizer, col)].any()
    assert np.array_equal(E[3], test_channel.X[0])

    # decode.py, the last container: Linear Learner's JSON answer -> the client's Accept
    decoding = {  # name: (the answer decoded, content type, accept)
        "json": ("csv", JSON, JSON),
        "jsonlines": ("csv", JSON, JSONLINES),
        "no accept": ("csv", JSON, None),  # the container's SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT
        "any": ("edges", JSON, "*/*"),
        "edges, jsonlines": ("edges", JSON, f"text/html;q=0, {JSONLINES}"),
        "refused accept": ("csv", JSON, CSV),
        "not an answer": ("csv", CSV, JSON),
    }
    decoded = serve_in_container(
        tmp_path / "decode",
        featurizer_artifact.DECODE,
        artifact,
        [(ctype, accept, scored[source]) for source, ctype, accept in decoding.values()],
    )
    for name, got in zip(decoding, decoded["answers"]):
        source, ctype, accept = decoding[name]
        raw_type, _, raw = requests[source]
        if name == "not an answer":  # no local counterpart: the local pipeline has no seam
            assert got["status"] == 415 and got["content_type"] == JSON, got
            assert "expected Linear Learner's JSON answer" in got["body"].decode()
            continue
        status, want, want_type = local_answer(pipeline, raw, raw_type, accept)
        assert got["status"] == status, (name, got)
        if status != 200:  # 406: the local endpoint's message
            assert json.loads(got["body"]) == {"message": want}, name
            continue
        # the whole serial pipeline, featurize -> Linear Learner -> decode, is the local one
        assert (got["body"], got["content_type"]) == (want, want_type), name
        rows = [json.loads(line) for line in want.splitlines()]
        rows = rows[0]["predictions"] if want_type == JSON else rows
        assert {r["predicted_class"] for r in rows} <= set(featurizer.classes)
