"""PNG charts for asset metadata and MLflow: ROC and precision-recall curves, bar charts."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: runs in the Dagster process and in tests
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score, roc_curve  # noqa: E402


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=90, bbox_inches="tight")
    plt.close(fig)
    tmp.replace(path)
    return path


def roc_pr_curves(y_true: np.ndarray, probabilities: Mapping[str, np.ndarray], title: str, path: Path) -> Path:
    """ROC and PR curves of several models on the same holdout, side by side."""
    fig, (roc_ax, pr_ax) = plt.subplots(1, 2, figsize=(11, 4.5))
    for name, p in probabilities.items():
        fpr, tpr, _ = roc_curve(y_true, p)
        roc_ax.plot(fpr, tpr, label=f"{name} (AUC {roc_auc_score(y_true, p):.3f})")
        precision, recall, _ = precision_recall_curve(y_true, p)
        pr_ax.plot(recall, precision, label=f"{name} (AP {average_precision_score(y_true, p):.3f})")
    roc_ax.plot([0, 1], [0, 1], ls="--", c="grey", lw=0.8)
    pr_ax.axhline(float(np.mean(y_true)), ls="--", c="grey", lw=0.8, label="base rate")
    roc_ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC (holdout)")
    pr_ax.set(xlabel="recall", ylabel="precision", title="Precision-recall (holdout)")
    for ax in (roc_ax, pr_ax):
        ax.legend(loc="best", fontsize=8)
    fig.suptitle(title)
    return _save(fig, path)


def bar_chart(frame: pd.DataFrame, x: str, ys: list[str], title: str, path: Path, horizontal: bool = False) -> Path:
    fig, ax = plt.subplots(figsize=(9, 4.5 if not horizontal else max(4.5, 0.25 * len(frame))))
    frame.plot(x=x, y=ys, kind="barh" if horizontal else "bar", ax=ax)
    if horizontal:
        ax.invert_yaxis()
    ax.set_title(title)
    return _save(fig, path)
