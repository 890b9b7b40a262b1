"""Scoring a big CSV: local batch transform vs pushing it through the local endpoint, and raw
rows (through the model's preprocessing) vs the same rows encoded.

    .venv/bin/python benchmarks/transform_bench.py [--rows 1000000] [--cols 20]

Each runs in its own process (wall time, peak RSS): ``transform --target local`` (streamed,
MultiRecord batches of MaxPayloadInMB) and ``predict --model`` (the whole file read into memory,
then 5 MB requests to a local endpoint over HTTP, as a user scores a file today), on encoded
features; then ``transform`` on the raw rows of a dataset of ``--cols`` columns (a quarter of
them categories, some cells missing) with a header, served behind its preprocessing, against
``transform`` on the very features those rows encode to. Scores are compared row for row.
Target: the raw transform within 1.5x of the encoded one.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from prepare_bench import generated  # the benchmarks' own directory: a sibling script

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


def make_features(rows: int, cols: int, path: Path) -> None:
    """Encoded features only: what ``transform`` and ``predict`` score without preprocessing."""
    print(f"generating {path} …", file=sys.stderr)
    X = np.random.default_rng(0).standard_normal((rows, cols)).astype(np.float32)
    np.savetxt(path, X, fmt="%.5g", delimiter=",")


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
    generated(make_features, args.rows, args.cols, csv)
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
    raw_vs_encoded(args, rng)


LEVELS = ("alpha", "beta", "gamma", "delta", "epsilon")


def bench_featurizer(cols: int):
    """Three numbers for every category column, five levels each, ``no``/``yes`` labels."""
    from training.core.featurizer import CATEGORICAL, NUMERIC, Column, Featurizer

    k_cat = max(1, cols // 4)
    columns = [
        Column(f"x{j}", NUMERIC, fill=0.0, mean=0.1 * j, scale=1.0 + j / 10)
        for j in range(cols - k_cat)
    ] + [Column(f"c{j}", CATEGORICAL, fill="alpha", categories=LEVELS) for j in range(k_cat)]
    return Featurizer(tuple(columns), "binary_classifier", ("no", "yes"))


def make_raw_and_encoded(n: int, cols: int, raw_csv: Path, encoded_csv: Path) -> None:
    """Raw rows (header, categories, 5% of x0 missing) and the features they encode to."""
    import polars as pl

    print(f"generating {raw_csv} and {encoded_csv} …", file=sys.stderr)
    rng = np.random.default_rng(2)
    featurizer = bench_featurizer(cols)
    k_cat = max(1, cols // 4)
    data = {f"x{j}": rng.standard_normal(n).round(4) for j in range(cols - k_cat)}
    data |= {f"c{j}": rng.choice(LEVELS, n) for j in range(k_cat)}
    frame = pl.DataFrame(data)
    frame = frame.with_columns(
        pl.when(pl.Series(rng.random(n) < 0.05)).then(None).otherwise(pl.col("x0")).alias("x0")
    )
    frame.write_csv(raw_csv)
    with open(encoded_csv, "w") as fh:  # in chunks, as a user's own encoder would
        for start in range(0, n, 100_000):
            part = frame.slice(start, 100_000).write_csv(include_header=False)
            np.savetxt(fh, featurizer.features_from_csv(part), fmt="%.9g", delimiter=",")


def raw_vs_encoded(args, rng) -> None:
    """The same rows, raw (header, categories, missing cells) and encoded."""
    from training.core import artifact
    from training.core.model import LinearModel

    n = args.rows
    raw_csv, encoded_csv = OUT / f"raw_{n}x{args.cols}.csv", OUT / f"encoded_{n}x{args.cols}.csv"
    featurizer = bench_featurizer(args.cols)
    model_dir = OUT / "raw_model"
    model_dir.mkdir(exist_ok=True)
    w = rng.standard_normal(featurizer.width).astype(np.float32)
    artifact.save(
        LinearModel("binary_classifier", "logistic", w, np.array(0.1, np.float32)),
        model_dir / "model.tar.gz",
    )
    featurizer.save(model_dir / "preprocessing.json")
    if not raw_csv.exists():
        encoded_csv.unlink(missing_ok=True)
    generated(make_raw_and_encoded, n, args.cols, raw_csv, encoded_csv)
    model = str(model_dir / "model.tar.gz")
    raw = run(["-q", "transform", "--input", str(raw_csv), "--out", str(OUT / "raw_out"),
               "--model", model])  # fmt: skip
    encoded = run(["-q", "transform", "--input", str(encoded_csv), "--out",
                   str(OUT / "encoded_out"), "--model", model, "--no-preprocessing"])  # fmt: skip
    ours = [json.loads(line)["score"] for line in (OUT / "raw_out" / f"{raw_csv.name}.out").open()]
    theirs = [
        json.loads(line)["score"]
        for line in (OUT / "encoded_out" / f"{encoded_csv.name}.out").open()
    ]
    same = len(ours) == len(theirs) == n and np.allclose(ours, theirs, rtol=1e-6)
    print(
        f"\nraw rows vs encoded: {n:,} rows, {args.cols} columns -> {featurizer.width} features\n"
    )
    print(f"{'contender':<40}{'wall':>9}{'rows/s':>12}{'peak RSS':>11}")
    for name, (wall, peak) in (
        ("transform, raw rows (preprocessing)", raw),
        ("transform, encoded features", encoded),
    ):
        print(f"{name:<40}{wall:>8.1f}s{n / wall:>12,.0f}{peak:>9.0f}MB")
    ratio = raw[0] / encoded[0]
    print(f"\nraw / encoded: {ratio:.2f}x ({'ok' if ratio <= 1.5 else 'MISSED'}: <= 1.5x); "
          f"same scores row for row: {same}")  # fmt: skip


if __name__ == "__main__":
    main()
