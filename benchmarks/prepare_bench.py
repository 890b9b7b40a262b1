"""`prepare` on a 1M-row CSV: wall time and peak memory, beside the in-memory notebook recipe.

    .venv/bin/python benchmarks/prepare_bench.py [--rows 1000000]

The CSV (numeric columns with missing values, two categorical columns, a binary label) is
generated once into benchmarks/out/. Each contender runs in its own process so its peak RSS is
its own: ``prepare`` (chunked, bounded memory), the recipe most notebooks use (read the
whole CSV with pandas, train_test_split, ColumnTransformer.fit_transform, write RecordIO),
and the floor: polars' and pandas' bare ``read_csv`` of the same file (no transform, no
output). Ratios are given both ways: work after imports (prepare's fixed cost, ~3 s of
importing scikit-learn, pandas and polars, does not grow with the file) and whole processes.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "out"


def generated(make, *args) -> None:
    """Run a ``make_*csv`` in a child process: Linux carries a process's peak RSS over into the
    children it starts, so data generated here would inflate every contender's figure. The
    last argument is the file: made once, kept."""
    if Path(args[-1]).exists():
        return
    child = multiprocessing.get_context("spawn").Process(target=make, args=args)
    child.start()
    child.join()
    if child.exitcode:
        raise SystemExit(f"generating {args[-1]} failed")


def make_wide_csv(rows: int, columns: int, path: Path) -> None:
    """Numbers only, ``columns`` of them and a label: what a width-bounded prepare must hold."""
    print(f"generating {rows:,}-row, {columns}-column CSV at {path} …", file=sys.stderr)
    rng = np.random.default_rng(1)
    X = rng.standard_normal((rows, columns)).round(4)
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(columns)])
    frame["label"] = np.where(X[:, 0] + rng.standard_normal(rows) > 0, "yes", "no")
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)


def make_csv(rows: int, path: Path) -> None:
    print(f"generating {rows:,}-row CSV at {path} …", file=sys.stderr)
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        rng.standard_normal((rows, 20)).round(4), columns=[f"x{i}" for i in range(20)]
    )
    frame.loc[rng.random(rows) < 0.05, "x3"] = np.nan
    frame["colour"] = rng.choice(["red", "green", "blue", None], rows)
    frame["region"] = rng.choice([f"r{i}" for i in range(30)], rows)
    score = frame["x0"].fillna(0) - frame["x1"] + (frame["colour"] == "red")
    frame["label"] = np.where(score + rng.standard_normal(rows) > 0, "yes", "no")
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)


NAIVE = """
import sys, numpy as np, pandas as pd
sys.path.insert(0, {root!r})
from sklearn.model_selection import train_test_split
from training.data.fit import build_transformer
from training.data.recordio import write_numpy_to_dense_tensor
frame = pd.read_csv({csv!r})
y = (frame.pop("label") == "yes").to_numpy(np.float32)
train, rest, y_train, y_rest = train_test_split(frame, y, test_size=0.3, stratify=y, random_state=0)
val, test, y_val, y_test = train_test_split(rest, y_rest, test_size=0.5, stratify=y_rest,
                                            random_state=0)
num = [c for c in frame.columns if c.startswith("x")]
t = build_transformer(num, ["colour", "region"]).fit(train)
for name, X, lab in (("train", train, y_train), ("validation", val, y_val), ("test", test, y_test)):
    with open({out!r} + "/" + name + ".rec", "wb") as f:
        write_numpy_to_dense_tensor(f, t.transform(X).astype(np.float32), lab)
"""


PEAK = "\nimport resource; print('PEAK_KB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"

READ_ONLY = """
import sys, time
t0 = time.perf_counter()
import {module}
t1 = time.perf_counter()
{module}.read_csv({csv!r})
print("READ_S", time.perf_counter() - t1, "IMPORT_S", t1 - t0)
"""

PREPARE = """
import sys, time
t0 = time.perf_counter()
sys.path.insert(0, {root!r})
import joblib, polars, sklearn.compose, sklearn.impute, sklearn.pipeline, sklearn.preprocessing
from training.__main__ import main
t1 = time.perf_counter()
main(["-q", "prepare", "--data", {csv!r}, "--label", "label", "--predictor-type",
      "binary_classifier", "--out", {out!r}])
print("WORK_S", time.perf_counter() - t1, "IMPORT_S", t1 - t0)
"""


def run(code: str) -> tuple[float, float, str]:
    """Wall seconds, peak RSS (MB) and stdout of the code, run in a fresh process."""
    start = time.perf_counter()
    res = subprocess.run(
        [sys.executable, "-c", code + PEAK], check=True, cwd=ROOT, capture_output=True, text=True
    )
    wall = time.perf_counter() - start
    peak_kb = int(res.stdout.split("PEAK_KB")[-1])
    return wall, peak_kb / 1024, res.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--wide-rows", type=int, default=300_000, help="0: skip the wide file")
    parser.add_argument("--wide-columns", type=int, default=150)
    args = parser.parse_args()
    csv = OUT / f"bench_{args.rows}.csv"
    generated(make_csv, args.rows, csv)
    size = csv.stat().st_size / 1e6
    results = {}
    naive_out, prep_out = OUT / "naive", OUT / "prepared"
    naive_out.mkdir(parents=True, exist_ok=True)
    fill = {"root": str(ROOT), "csv": str(csv)}
    results["python -m training prepare"] = run(PREPARE.format(out=str(prep_out), **fill))
    results["pandas + sklearn in memory"] = run(NAIVE.format(out=str(naive_out), **fill))
    reads = {}
    for module in ("polars", "pandas"):
        try:
            wall, peak, out = run(READ_ONLY.format(module=module, **fill))
        except subprocess.CalledProcessError:
            print(f"({module} not installed: pip install -r benchmarks/requirements.txt)")
            continue
        results[f"{module}.read_csv only"] = (wall, peak, out)
        reads[module] = float(out.split("READ_S")[1].split()[0])
    manifest = json.loads((prep_out / "manifest.json").read_text())
    print(
        f"\nprepare {args.rows:,} rows x {len(pd.read_csv(csv, nrows=1).columns)} columns "
        f"({size:.0f} MB CSV) -> feature_dim {manifest['feature_dim']}, RecordIO channels\n"
    )
    print(f"{'contender':<30}{'wall':>10}{'peak RSS':>12}   (each in a fresh process)")
    for name, (wall, peak, _) in results.items():
        print(f"{name:<30}{wall:>9.1f}s{peak:>10.0f}MB")
    prepare_wall, _, out = results["python -m training prepare"]
    work = float(out.split("WORK_S")[1].split()[0])
    print(f"\nprepare after its imports: {work:.2f}s ({size / work:.0f} MB/s)")
    for module, seconds in reads.items():
        fresh = results[f"{module}.read_csv only"][0]
        print(
            f"{module}.read_csv alone: {seconds:.2f}s after its import, {fresh:.1f}s in a fresh "
            f"process; prepare / that = {work / seconds:.1f}x after imports, "
            f"{prepare_wall / fresh:.1f}x as processes"
        )
    if args.wide_rows:
        wide(args.wide_rows, args.wide_columns)


def wide(rows: int, columns: int) -> None:
    """Peak memory must not grow with the width either: chunks and fit sample are set in cells."""
    csv = OUT / f"wide_{rows}x{columns}.csv"
    generated(make_wide_csv, rows, columns, csv)
    fill = {"root": str(ROOT), "csv": str(csv)}
    wall, peak, out = run(PREPARE.format(out=str(OUT / "prepared_wide"), **fill))
    work = float(out.split("WORK_S")[1].split()[0])
    print(
        f"\nwide: {rows:,} rows x {columns + 1} columns ({csv.stat().st_size / 1e6:.0f} MB): "
        f"prepare {wall:.1f}s as a process ({work:.2f}s after imports), peak RSS {peak:.0f}MB"
    )
    try:
        wall, peak, out = run(READ_ONLY.format(module="polars", **fill))
        print(f"  polars.read_csv only: {wall:.1f}s as a process, peak RSS {peak:.0f}MB")
    except subprocess.CalledProcessError:
        pass


if __name__ == "__main__":
    main()
