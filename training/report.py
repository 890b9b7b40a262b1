"""The run's report: one self-contained ``report.html`` a person opens (plots inline).

What it holds, in reading order: what ran and how it scored, the data (rows and class balance
per channel, what each column became), the metrics as a table by channel, the selected model,
the hyperparameters as given and as resolved, the largest weights by feature name, and the
plots: loss per epoch with the kept epoch marked, ROC and precision-recall on the test split
with the operating point marked (classifiers), a confusion matrix, or predicted-vs-actual and
residuals (regressors). No other files: a re-run cannot leave an old plot beside a new report.
"""

from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from training.core import metrics as lm
from training.core.metrics import Metrics

REPORT_FILE = "report.html"
# the PNG files reports wrote beside report.html before the plots went inline
LEGACY_PLOTS = (
    "loss.png",
    "roc.png",
    "precision_recall.png",
    "confusion_matrix.png",
    "predicted_vs_actual.png",
    "residuals.png",
)
CHANNEL_ORDER = ("train", "validation", "test")  # then any other, e.g. endpoint_test


@dataclass(frozen=True)
class Figure:
    """One plot, rendered: a PNG and the sentence that says what it shows."""

    title: str
    png: bytes
    caption: str = ""


@dataclass(frozen=True)
class DataProfile:
    """The data as prepare left it: rows and, for classifiers, labels per channel."""

    source: str
    source_rows: int
    unlabeled_rows_dropped: int
    rows: dict[str, int]  # by channel
    classes: list  # encoded order; empty for regressors
    label_counts: dict[str, list[int]]  # by channel, in ``classes`` order (classifiers)
    numeric: list[str]
    categorical: list[str]
    dropped: dict[str, str]  # column -> why
    feature_dim: int


@dataclass(frozen=True)
class RunReport:
    title: str
    headline: str  # one sentence: how the model scored where it was served
    facts: dict[str, str]
    profile: DataProfile
    metrics: Metrics
    selected_model: dict[str, object] | None = None  # the training record's, or None (AWS)
    hyperparameters_given: dict[str, str] = field(default_factory=dict)
    hyperparameters_resolved: dict[str, str] = field(default_factory=dict)
    # (feature, class or "", weight), largest magnitude first
    largest_weights: list[tuple[str, str, float]] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what is missing and why
    tuning: TuningSection | None = None  # run --tune N: the search that chose the model


@dataclass(frozen=True)
class TuningSection:
    """The tuning jobs that chose the model: a sentence, their table, the search's plot."""

    summary: str
    header: list[str]
    rows: list[list[str]]
    best: str  # the best job's id, marked in the table
    plot: bytes  # tuning.png


# ------------------------------------------------------------------ plots


def _figure():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 4), dpi=100)
    return plt, fig, ax


def _render(plt, fig, title: str, caption: str) -> Figure:
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return Figure(title, buf.getvalue(), caption)


def loss_curve(history: list[dict], kept_epoch: int | None, regressor: bool) -> Figure | None:
    """The best packed model's loss at each epoch, the epoch whose weights were kept marked."""
    if not history:
        return None
    plt, fig, ax = _figure()
    epochs = [h["epoch"] for h in history]
    for key, label in (
        ("train_objective_loss", "train (a sample)"),
        ("validation_objective_loss", "validation"),
        ("train_sample_objective_loss", "train sample"),
    ):
        if key in history[0]:
            ax.plot(epochs, [h[key] for h in history], marker="o", label=label)
    if kept_epoch is not None:
        ax.axvline(kept_epoch, color="grey", linestyle="--", label=f"kept: epoch {kept_epoch}")
    ax.set(xlabel="epoch", ylabel="objective loss", title="Loss per epoch")
    ax.legend()
    scale = " on scaled labels (the metrics table's objective_loss is on yours)"
    scale = scale if regressor else ""
    return _render(
        plt,
        fig,
        "Loss per epoch",
        f"The best of the packed models at each epoch, as training measured it{scale}; the "
        "dashed line is the epoch the selected model's weights were kept from.",
    )


def binary_plots(score, y, predicted_label, classes, threshold: float | None) -> list[Figure]:
    """ROC and precision-recall on the test split, the model's operating point marked (its
    predicted labels: the threshold in use), and the confusion matrix."""
    score, y = np.asarray(score, np.float64), np.asarray(y, np.float64)
    pred = np.asarray(predicted_label, np.int64)
    _, tp, fp = lm.threshold_curve(score, y)
    pos, neg = max(y.sum(), 1), max(y.size - y.sum(), 1)
    at_tpr, at_fpr = float((pred[y == 1] == 1).sum() / pos), float((pred[y == 0] == 1).sum() / neg)
    at_precision = float((pred[y == 1] == 1).sum() / max((pred == 1).sum(), 1))
    point = "threshold " + (f"{threshold:.3g}" if threshold is not None else "in use")
    plt, fig, ax = _figure()
    ax.plot(np.r_[0, fp / neg], np.r_[0, tp / pos], label=f"AUC {lm.roc_auc(score, y):.3f}")
    ax.plot([0, 1], [0, 1], "--", color="grey")
    ax.plot([at_fpr], [at_tpr], "o", color="C3", label=point)
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC curve (test)")
    ax.legend(loc="lower right")
    roc = _render(plt, fig, "ROC curve", f"Test split, as the endpoint answered; {point} marked.")
    plt, fig, ax = _figure()
    ax.plot(tp / pos, tp / np.maximum(tp + fp, 1))
    ax.plot([at_tpr], [at_precision], "o", color="C3", label=point)
    ax.set(xlabel="recall", ylabel="precision", title="Precision-recall (test)", ylim=(0, 1.05))
    ax.legend(loc="lower left")
    pr = _render(
        plt, fig, "Precision-recall curve", f"Test split, positive class '{classes[1]}'; {point}."
    )
    return [roc, pr, confusion(pred, y.astype(int), [str(c) for c in classes])]


def confusion(pred, y, labels: list[str]) -> Figure:
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
    return _render(plt, fig, "Confusion matrix", "Test split, rows the actual class.")


def regression_plots(pred, y) -> list[Figure]:
    pred, y = np.asarray(pred, float), np.asarray(y, float)
    plt, fig, ax = _figure()
    ax.scatter(y, pred, s=10, alpha=0.6)
    lo, hi = float(min(y.min(), pred.min())), float(max(y.max(), pred.max()))
    ax.plot([lo, hi], [lo, hi], "--", color="grey")
    ax.set(xlabel="actual", ylabel="predicted", title="Predicted vs actual (test)")
    first = _render(plt, fig, "Predicted vs actual", "Test split; the line is a perfect fit.")
    plt, fig, ax = _figure()
    ax.scatter(pred, y - pred, s=10, alpha=0.6)
    ax.axhline(0, color="grey", linestyle="--")
    ax.set(xlabel="predicted", ylabel="residual (actual - predicted)", title="Residuals (test)")
    return [first, _render(plt, fig, "Residuals", "Test split.")]


# ------------------------------------------------------------------ the page


def _table(header: list[str] | None, rows: list[list[object]], numeric_from: int = 1) -> str:
    """Rows under a header (None: a two-column list of facts, no header)."""

    def cell(value, i):
        if isinstance(value, float):
            value = f"{value:.6g}"
        css = ' class="num"' if i >= numeric_from else ""
        return f"<td{css}>{html.escape(str(value))}</td>"

    head = "".join(f"<th>{html.escape(h)}</th>" for h in header or [])
    body = "\n".join("<tr>" + "".join(cell(v, i) for i, v in enumerate(r)) + "</tr>" for r in rows)
    return f"<table>{f'<tr>{head}</tr>' if head else ''}\n{body}</table>"


def _channels(names) -> list[str]:
    order = {name: i for i, name in enumerate(CHANNEL_ORDER)}
    return sorted(names, key=lambda n: (order.get(n, len(order)), n))


def metrics_table(metrics: Metrics) -> str:
    """One row per metric, one column per channel (SageMaker's names: ``<channel>:<name>``)."""
    channels = _channels(metrics.by_channel)
    names = sorted({n for values in metrics.by_channel.values() for n in values})
    rows = [[name] + [metrics.by_channel[c].get(name, "") for c in channels] for name in names]
    return _table(["metric"] + channels, rows)


def _profile_section(p: DataProfile) -> str:
    header = ["channel", "rows"] + [f"{c}" for c in p.classes]
    rows = []
    for channel in _channels(p.rows):
        counts = p.label_counts.get(channel, [])
        shares = [f"{n} ({100 * n / max(p.rows[channel], 1):.0f}%)" for n in counts] or [""] * len(
            p.classes
        )
        rows.append([channel, p.rows[channel], *shares])
    columns = [
        ["numeric (imputed, scaled)", ", ".join(p.numeric) or "none"],
        ["categorical (one-hot)", ", ".join(p.categorical) or "none"],
    ] + [[f"dropped: {name}", why] for name, why in p.dropped.items()]
    dropped = p.unlabeled_rows_dropped
    return (
        f"<p>{html.escape(p.source)}: {p.source_rows} rows"
        + (f", {dropped} without a label left out" if dropped else "")
        + f"; {p.feature_dim} features.</p>"
        + _table(header, rows)
        + _table(None, columns, numeric_from=2)
    )


def write_html(out: Path, report: RunReport) -> Path:
    """``report.html`` in ``out``, whole: every plot inline."""
    sections = [
        f"<h1>{html.escape(report.title)}</h1>",
        f'<p class="headline">{html.escape(report.headline)}</p>',
        _table(None, [[k, v] for k, v in report.facts.items()], numeric_from=2),
        "<h2>Data</h2>",
        _profile_section(report.profile),
        "<h2>Metrics</h2>",
        "<p>By channel, under SageMaker's names: <code>test</code> as the trainer scored it, "
        "<code>endpoint_test</code> as the served model answered the test split's raw rows.</p>",
        metrics_table(report.metrics),
    ]
    if report.selected_model:
        sections += [
            "<h2>Selected model</h2>",
            "<p>Of the packed models trained at once, the one chosen on the selection data; "
            "when <code>averaged_models</code> lists more, the exported model is their "
            "average.</p>",
            _table(None, [[k, v] for k, v in report.selected_model.items()]),
        ]
    if report.hyperparameters_resolved or report.hyperparameters_given:
        names = sorted(set(report.hyperparameters_given) | set(report.hyperparameters_resolved))
        rows = [
            [
                n,
                report.hyperparameters_given.get(n, ""),
                report.hyperparameters_resolved.get(n, ""),
            ]
            for n in names
        ]
        sections += [
            "<h2>Hyperparameters</h2>",
            "<p>As given (by you, or implied by the data) and as training resolved them; "
            "an empty <i>given</i> is Linear Learner's default or <code>auto</code>.</p>",
            _table(["hyperparameter", "given", "resolved"], rows, numeric_from=3),
        ]
        if int(report.hyperparameters_resolved.get("num_models", "1")) > 1:
            sections.append(
                "<p>With more than one packed model, model 0 trains with the learning_rate, wd "
                "and l1 above and the others with values spread around them: the selected "
                "model's own are under <i>Selected model</i>.</p>"
            )
    if report.tuning is not None:
        t = report.tuning
        rows = [[("★ " if r[0] == t.best else "") + r[0], *r[1:]] for r in t.rows]
        data = base64.b64encode(t.plot).decode("ascii")
        sections += [
            "<h2>Tuning</h2>",
            f"<p>{html.escape(t.summary)}</p>",
            f'<img class="wide" src="data:image/png;base64,{data}" alt="tuning">',
            _table(t.header, rows, numeric_from=2),
        ]
    if report.largest_weights:
        with_class = any(c for _, c, _ in report.largest_weights)
        header = ["feature"] + (["class"] if with_class else []) + ["weight"]
        rows = [[f] + ([c] if with_class else []) + [w] for f, c, w in report.largest_weights]
        sections += [
            "<h2>Largest weights</h2>",
            "<p>On the raw features (normalisation folded in), largest magnitude first.</p>",
            _table(header, rows, numeric_from=len(header) - 1),
        ]
    if report.notes:
        items = "".join(f"<li>{html.escape(n)}</li>" for n in report.notes)
        sections.append(f"<ul>{items}</ul>")
    sections.append("<h2>Plots</h2>")
    for fig in report.figures:
        data = base64.b64encode(fig.png).decode("ascii")
        sections.append(
            f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(fig.title)}">'
            f"<figcaption>{html.escape(fig.caption)}</figcaption></figure>"
        )
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(report.title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem; color: #222; max-width: 72rem; }}
table {{ border-collapse: collapse; margin: 1rem 0; }}
th, td {{ border: 1px solid #ccc; padding: .3rem .7rem; text-align: left; }}
td.num {{ text-align: right; font-variant-numeric: tabular-nums; }}
.headline {{ font-size: 1.2rem; }}
figure {{ display: inline-block; margin: .5rem; vertical-align: top; max-width: 500px; }}
figcaption {{ font-size: .9rem; color: #555; }}
img.wide {{ max-width: 100%; }}
</style></head><body>
{chr(10).join(sections)}
</body></html>
"""
    path = out / REPORT_FILE
    path.write_text(page)
    return path
