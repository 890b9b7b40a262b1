"""Local tuning against the two things a user would otherwise do, on the speed benchmark's data.

    .venv/bin/python benchmarks/tune_bench.py [--rows 1000000] [--jobs 32]

Data: the learner speed benchmark's (1M x 50 dense float32, binary; 50k validation rows),
written as RecordIO channels. Contenders, each timed
as a whole command (wall time), in one run so the machine's phase is the same for all:

- ``tune``: ``python -m training tune --target local`` with ``--jobs`` jobs, 2 at a time, over
  learning_rate, wd and l1 (AWS's recommended ranges), bayesian, early stopping auto (its
  defaults);
- ``sequential train``: ``--jobs`` runs of ``python -m training train`` one after another, each
  with one model (``num_models=1``) and the hyperparameters the search tried, as a shell loop
  would run them (each reads the channels again);
- ``packed``: one ``python -m training train`` with its defaults: 32 packed models that search
  learning_rate, wd and l1 in one pass.

Reported: wall times and the validation objective loss of the model each keeps.
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "out" / "tune"
sys.path.insert(0, str(ROOT))

from training.data.recordio import write_numpy_to_dense_tensor  # noqa: E402

METRIC = "validation:objective_loss"
BINARY = "predictor_type=binary_classifier"  # channels written here: no manifest says it


def write_channels(rows: int, folder: Path) -> None:
    """The learner speed benchmark's data (same generator and seed), as prepared channels."""
    rng = np.random.default_rng(0)
    d = 50
    X = rng.standard_normal((rows, d), dtype=np.float32)
    w = rng.standard_normal(d, dtype=np.float32)
    y = ((X @ w + rng.standard_normal(rows, dtype=np.float32)) > 0).astype(np.float32)
    Xv = rng.standard_normal((50_000, d), dtype=np.float32)
    yv = ((Xv @ w + rng.standard_normal(50_000, dtype=np.float32)) > 0).astype(np.float32)
    for name, (features, labels) in {"train": (X, y), "validation": (Xv, yv)}.items():
        (folder / name).mkdir(parents=True, exist_ok=True)
        with (folder / name / f"{name}-00000.rec").open("wb") as f:
            write_numpy_to_dense_tensor(f, features, labels)


def timed(args: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "training", "-q", *args],
        check=True,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - started


def objective(folder: Path) -> float:
    return json.loads((folder / "metrics.json").read_text())["metrics"][METRIC]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--jobs", type=int, default=32)
    parser.add_argument(
        "--samplers", action="store_true", help="only: TPE against random search, real data"
    )
    args = parser.parse_args()
    if args.samplers:
        return samplers()
    data = OUT / "data"
    if not (data / "validation").exists():
        write_channels(args.rows, data)

    tune = [
        "tune",
        "--data-dir",
        str(data),
        "--ranges",
        "learning_rate",
        "wd",
        "l1",
        "--max-jobs",
        str(args.jobs),
        "--max-parallel-jobs",
        "2",
        "--hyperparameters",
        BINARY,
    ]
    tune_s = timed([*tune, "--out", str(OUT / "tuned")])
    all_epochs_s = timed([*tune, "--out", str(OUT / "all-epochs"), "--early-stopping", "off"])
    with (OUT / "tuned" / "tuning.csv").open(newline="") as f:
        trials = list(csv.DictReader(f))
    stopped = sum(t["status"] == "Stopped" for t in trials)

    sequential_s, losses = 0.0, []
    for t in trials:
        job = OUT / "sequential" / t["job"]
        sequential_s += timed(
            ["train", "--data-dir", str(data), "--out", str(job), "--hyperparameters",
             BINARY, "num_models=1", f"learning_rate={t['learning_rate']}", f"wd={t['wd']}",
             f"l1={t['l1']}"]
        )  # fmt: skip
        losses.append(objective(job))

    packed_s = timed(
        ["train", "--data-dir", str(data), "--out", str(OUT / "packed"), "--hyperparameters",
         BINARY]
    )  # fmt: skip

    print(f"\n{args.rows:,} x 50 rows, binary; {args.jobs} jobs; {METRIC} of the kept model\n")
    print(f"{'contender':<48}{'wall':>9}{'objective':>12}")
    print(
        f"{'tune --target local (2 at a time, ' + str(stopped) + ' stopped early)':<48}"
        f"{tune_s:>8.1f}s{objective(OUT / 'tuned' / 'best'):>12.5f}"
    )
    print(f"{'tune --target local --early-stopping off':<48}{all_epochs_s:>8.1f}s"
          f"{objective(OUT / 'all-epochs' / 'best'):>12.5f}")  # fmt: skip
    print(f"{'sequential train, num_models=1 (same points)':<48}{sequential_s:>8.1f}s"
          f"{min(losses):>12.5f}")  # fmt: skip
    print(f"{'one packed train (32 models, defaults)':<48}{packed_s:>8.1f}s"
          f"{objective(OUT / 'packed'):>12.5f}")  # fmt: skip


def samplers(seeds: int = 5, jobs: int = 16) -> None:
    """How Optuna's TPE (``--strategy bayesian``) compares with random search on real data:
    the best validation loss after 8 and after 16 jobs, mean over seeds (the same seeds for
    both); what decided using a model-based sampler by default."""
    import pandas as pd
    from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine

    from training.core import tuning
    from training.data.prepare import PrepareConfig, prepare
    from training.local.tuner import tune_local

    cases = [
        ("breast cancer", load_breast_cancer, "binary_classifier"),
        ("wine", load_wine, "multiclass_classifier"),
        ("diabetes", load_diabetes, "regressor"),
    ]
    print(
        f"\nTPE vs random, {jobs} jobs over learning_rate, wd, mini_batch_size=10:500, "
        f"{seeds} seeds: mean best {METRIC} after 8 / {jobs} jobs (lower is better)\n"
    )
    for title, load, predictor in cases:
        folder = OUT / "samplers" / title.replace(" ", "-")
        frame = load(as_frame=True).frame
        if not (folder / "data").exists():
            folder.mkdir(parents=True, exist_ok=True)
            frame.to_csv(folder / "data.csv", index=False)
            prepare(PrepareConfig(data=folder / "data.csv", label="target",
                                  predictor_type=predictor, out=folder / "data",
                                  show_progress=False))  # fmt: skip
        texts = ["learning_rate", "wd", "mini_batch_size=10:500"]
        line = f"{title:<16}"
        for strategy in ("bayesian", "random"):
            at8, at16 = [], []
            for seed in range(seeds):
                spec = tuning.define(
                    [tuning.parse_range(t) for t in texts],
                    predictor_type=predictor,
                    channels=("train", "validation", "test"),
                    max_jobs=jobs,
                    max_parallel_jobs=2,
                    strategy=strategy,
                    early_stopping="off",
                    seed=seed,
                )
                result = tune_local(spec, folder / "data", folder / "out", echo=lambda _: None)
                losses = [t.objective for t in sorted(result.trials, key=lambda t: t.number)]
                at8.append(min(losses[:8]))
                at16.append(min(losses))
            line += f"  {strategy} {pd.Series(at8).mean():.4f} / {pd.Series(at16).mean():.4f}"
        print(line)


if __name__ == "__main__":
    main()
