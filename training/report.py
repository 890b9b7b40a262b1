"""The run's report: a metrics table and PNG plots in one ``report.html`` a person opens.

Classifiers get ROC and precision-recall curves and a confusion matrix; regressors get
predicted-vs-actual and residuals; every run gets the training/validation loss per epoch.
"""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np

from training.core import metrics as lm


def _figure():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 4), dpi=100)
    return plt, fig, ax


def _save(plt, fig, path: Path) -> str:
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path.name


def loss_curve(history: list[dict], out: Path) -> str | None:
    if not history:
        return None
    plt, fig, ax = _figure()
    epochs = [h["epoch"] for h in history]
    for key, label in (
        ("train_objective_loss", "train"),
        ("validation_objective_loss", "validation"),
        ("train_sample_objective_loss", "train sample"),
    ):
        if key in history[0]:
            ax.plot(epochs, [h[key] for h in history], marker="o", label=label)
    ax.set(xlabel="epoch", ylabel="objective loss (best packed model)", title="Loss per epoch")
    ax.legend()
    return _save(plt, fig, out / "loss.png")


def binary_plots(score, y, predicted_label, out: Path, classes=("0", "1")) -> list[str]:
    y = np.asarray(y, np.float64)
    _, tp, fp = lm.threshold_curve(np.asarray(score, np.float64), y)
    pos, neg = y.sum(), y.size - y.sum()
    names = []
    plt, fig, ax = _figure()
    ax.plot(
        np.r_[0, fp / max(neg, 1)],
        np.r_[0, tp / max(pos, 1)],
        label=f"AUC {lm.roc_auc(score, y):.3f}",
    )
    ax.plot([0, 1], [0, 1], "--", color="grey")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC curve")
    ax.legend()
    names.append(_save(plt, fig, out / "roc.png"))
    plt, fig, ax = _figure()
    precision = tp / np.maximum(tp + fp, 1)
    ax.plot(tp / max(pos, 1), precision)
    ax.set(xlabel="recall", ylabel="precision", title="Precision-recall curve", ylim=(0, 1.05))
    names.append(_save(plt, fig, out / "precision_recall.png"))
    names.append(
        confusion(np.asarray(predicted_label, int), y.astype(int), [str(c) for c in classes], out)
    )
    return names


def confusion(pred, y, labels: list[str], out: Path) -> str:
    k = len(labels)
    matrix = np.zeros((k, k), np.int64)
    np.add.at(matrix, (np.asarray(y, int), np.asarray(pred, int)), 1)
    plt, fig, ax = _figure()
    ax.imshow(matrix, cmap="Blues")
    for i in range(k):
        for j in range(k):
            ax.text(
                j,
                i,
                str(matrix[i, j]),
                ha="center",
                va="center",
                color="white" if matrix[i, j] > matrix.max() / 2 else "black",
            )
    ax.set(
        xticks=range(k),
        yticks=range(k),
        xticklabels=labels,
        yticklabels=labels,
        xlabel="predicted",
        ylabel="actual",
        title="Confusion matrix (test)",
    )
    return _save(plt, fig, out / "confusion_matrix.png")


def regression_plots(pred, y, out: Path) -> list[str]:
    pred, y = np.asarray(pred, float), np.asarray(y, float)
    plt, fig, ax = _figure()
    ax.scatter(y, pred, s=10, alpha=0.6)
    lo, hi = float(min(y.min(), pred.min())), float(max(y.max(), pred.max()))
    ax.plot([lo, hi], [lo, hi], "--", color="grey")
    ax.set(xlabel="actual", ylabel="predicted", title="Predicted vs actual (test)")
    first = _save(plt, fig, out / "predicted_vs_actual.png")
    plt, fig, ax = _figure()
    ax.scatter(pred, y - pred, s=10, alpha=0.6)
    ax.axhline(0, color="grey", linestyle="--")
    ax.set(xlabel="predicted", ylabel="residual (actual - predicted)", title="Residuals (test)")
    return [first, _save(plt, fig, out / "residuals.png")]


def write_html(out: Path, title: str, metrics: dict, images: list[str], facts: dict) -> Path:
    rows = "\n".join(
        f"<tr><td>{html.escape(k)}</td><td>{v:.6g}</td></tr>"
        for k, v in sorted(metrics.items())
        if isinstance(v, (int, float))
    )
    info = "\n".join(
        f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(str(v))}</td></tr>"
        for k, v in facts.items()
    )
    figures = "\n".join(
        f'<figure><img src="{html.escape(n)}" alt="{html.escape(n)}"></figure>' for n in images if n
    )
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem; color: #222; }}
table {{ border-collapse: collapse; margin: 1rem 0; }}
td {{ border: 1px solid #ccc; padding: .3rem .7rem; }}
td:last-child {{ text-align: right; font-variant-numeric: tabular-nums; }}
figure {{ display: inline-block; margin: .5rem; }}
</style></head><body>
<h1>{html.escape(title)}</h1>
<h2>Run</h2><table>{info}</table>
<h2>Metrics (SageMaker names)</h2><table>{rows}</table>
<h2>Plots</h2>{figures}
</body></html>
"""
    path = out / "report.html"
    path.write_text(page)
    return path
