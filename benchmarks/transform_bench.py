"""Scoring a big CSV: local batch transform vs pushing it through the local endpoint.

    .venv/bin/python benchmarks/transform_bench.py [--rows 1000000] [--cols 20]

Both run in their own process (wall time, peak RSS): ``transform --target local`` (streamed,
MultiRecord batches of MaxPayloadInMB) and ``predict --model`` (the whole file read into memory,
then 5 MB requests to a local endpoint over HTTP, as a user scores a file today). The scores of
the two are compared row for row.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "out"
sys.path.insert(0, str(ROOT))

PEAK = (
    "import resource, runpy, sys; sys.argv = ['training', *{args!r}]; "
    "code = 0\ntry:\n    runpy.run_module('training', run_name='__main__')\n"
    "except SystemExit as e:\n    code = e.code or 0\n"
    "print('PEAK_KB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n"
    "sys.exit(code)"
)


def run(args: list[str]) -> tuple[float, float]:
    start = time.perf_counter()
    res = subprocess.run(
        [sys.executable, "-c", PEAK.format(args=args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - start
    if res.returncode:
        raise SystemExit(res.stderr[-3000:])
    return wall, int(res.stderr.split("PEAK_KB")[-1]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--cols", type=int, default=20)
    args = parser.parse_args()
    from training.core import artifact
    from training.core.model import LinearModel

    OUT.mkdir(parents=True, exist_ok=True)
    csv = OUT / f"transform_{args.rows}x{args.cols}.csv"
    rng = np.random.default_rng(0)
    if not csv.exists():
        print(f"generating {csv} …", file=sys.stderr)
        X = rng.standard_normal((args.rows, args.cols)).astype(np.float32)
        np.savetxt(csv, X, fmt="%.5g", delimiter=",")
    model_path = OUT / "transform_model.tar.gz"
    w = rng.standard_normal(args.cols).astype(np.float32)
    artifact.save(
        LinearModel("binary_classifier", "logistic", w, np.array(0.1, np.float32)), model_path
    )
    size = csv.stat().st_size / 1e6
    t_dir = OUT / "transform_out"
    transform = run(
        ["-q", "transform", "--input", str(csv), "--out", str(t_dir), "--model", str(model_path)]
    )
    predicted = OUT / "transform_predict.jsonl"
    endpoint = run(
        ["-q", "predict", "--input", str(csv), "--model", str(model_path), "--out", str(predicted)]
    )
    ours = [json.loads(line)["score"] for line in (t_dir / f"{csv.name}.out").open()]
    theirs = [json.loads(line)["score"] for line in predicted.open()]
    same = len(ours) == len(theirs) == args.rows and np.allclose(ours, theirs, rtol=1e-6)
    print(f"\nscoring {args.rows:,} rows x {args.cols} ({size:.0f} MB CSV), binary classifier\n")
    print(f"{'contender':<40}{'wall':>9}{'rows/s':>12}{'peak RSS':>11}")
    for name, (wall, peak) in (
        ("transform --target local (streamed)", transform),
        ("predict --model (local endpoint, HTTP)", endpoint),
    ):
        print(f"{name:<40}{wall:>8.1f}s{args.rows / wall:>12,.0f}{peak:>9.0f}MB")
    print(f"\nsame scores row for row: {same}")


if __name__ == "__main__":
    main()
