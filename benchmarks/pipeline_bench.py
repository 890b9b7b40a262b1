"""What the serial pipeline's two extra containers add per request, measured where they run.

    .venv/bin/python benchmarks/pipeline_bench.py [--repeat 300]

Trains the endpoint benchmark's model (penguins, species: three classes), builds its
``featurizer.tar.gz`` as ``deploy`` uploads it, unpacks it as SageMaker does into
``/opt/ml/model``, and calls the handlers of ``featurize.py`` (raw CSV rows -> RecordIO) and
``decode.py`` (Linear Learner's JSON -> with ``predicted_class``) the way the scikit-learn
container's serving stack does, in ``.venv-sklearn-container`` (the container's Python, numpy,
pandas and scikit-learn; ``scripts/setup.sh`` makes it) when it exists, else in this project's
Python. Beside them: the local Linear Learner scoring the same rows in-process, the floor of the
container in the middle. What this leaves out, for want of an AWS account: the two extra HTTP hops
on the instance, gunicorn and nginx; compare ``ModelLatency`` with and without preprocessing on
SageMaker for those.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np
from endpoint_bench import _raw_lines, train_model  # the benchmarks' own directory

ROOT = Path(__file__).resolve().parents[1]
CONTAINER_PYTHON = ROOT / ".venv-sklearn-container" / "bin" / "python"

HANDLERS = """
import json, sys, time
sys.path.insert(0, sys.argv[1] + "/code")
import featurize, decode, numpy
model_dir, repeat = sys.argv[1], int(sys.argv[2])
cases = json.loads(open(sys.argv[3]).read())

def p50(call):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2] * 1e3

f_model, d_model = featurize.model_fn(model_dir), decode.model_fn(model_dir)
out = {"python": sys.version.split()[0], "numpy": numpy.__version__}
for name, case in cases.items():
    body, answer = case["rows"].encode(), case["answer"].encode()
    fx = lambda: featurize.output_fn(featurize.predict_fn(
        featurize.input_fn(body, "text/csv"), f_model), "application/x-recordio-protobuf")
    dx = lambda: decode.output_fn(decode.predict_fn(
        decode.input_fn(answer, "application/json"), d_model), "application/json")
    out[name] = {"featurize": p50(fx), "decode": p50(dx)}
print(json.dumps(out))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=300)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from training.aws import featurizer_artifact
    from training.core import artifact
    from training.core.featurizer import Featurizer

    python = CONTAINER_PYTHON if CONTAINER_PYTHON.exists() else Path(sys.executable)
    with tempfile.TemporaryDirectory(prefix="pipeline-bench-") as tmp:
        work = Path(tmp)
        model_path = train_model(work)
        preprocessing = model_path.parent / "preprocessing.json"
        model_dir = work / "opt-ml-model"
        built = featurizer_artifact.build(preprocessing, work / "featurizer.tar.gz")
        with tarfile.open(built) as unpacked:  # as SageMaker unpacks it into /opt/ml/model
            unpacked.extractall(model_dir, filter="data")
        featurizer, model = Featurizer.load(preprocessing), artifact.load(model_path)
        lines = _raw_lines(work / "prep" / "test_rows.csv", "species")
        cases, linear_learner = {}, {}
        for n in (1, 1000):
            rows = "\n".join((lines * n)[:n])
            X = featurizer.features_from_csv(rows)
            predictions = model.predict(X)
            answer = '{"predictions": [' + ", ".join(predictions.rows_json()) + "]}"
            cases[f"{n} row{'s' * (n > 1)}"] = {"rows": rows, "answer": answer}
            linear_learner[f"{n} row{'s' * (n > 1)}"] = p50(lambda X=X: model.predict(X), args)
        (work / "cases.json").write_text(json.dumps(cases))
        res = subprocess.run(
            [str(python), "-c", HANDLERS, str(model_dir), str(args.repeat), work / "cases.json"],
            capture_output=True,
            text=True,
        )
        if res.returncode:
            raise SystemExit(res.stderr[-3000:])
        measured = json.loads(res.stdout)
    print(
        f"\nper-request handler time, p50 of {args.repeat} (ms): Python {measured['python']}, "
        f"numpy {measured['numpy']} ({'the container' if python == CONTAINER_PYTHON else 'ours'})"
        f"\n\n{'request':<12}{'featurize':>11}{'decode':>9}{'local LL':>11}"
    )
    for name in cases:
        print(
            f"{name:<12}{measured[name]['featurize']:>11.3f}{measured[name]['decode']:>9.3f}"
            f"{linear_learner[name]:>11.3f}"
        )


def p50(call, args) -> float:
    times = []
    for _ in range(args.repeat):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1e3)


if __name__ == "__main__":
    main()
