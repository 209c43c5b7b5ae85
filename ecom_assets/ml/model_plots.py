"""PNG charts of a model for asset metadata and MLflow: ROC and precision-recall curves."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: runs in the Dagster process and in tests
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score, roc_curve  # noqa: E402

from ecom_assets.publishing import save_figure  # noqa: E402


def roc_pr_curves(y_true: np.ndarray, probabilities: Mapping[str, np.ndarray], title: str, path: Path) -> Path:
    """ROC and PR curves of several models on the same holdout, side by side."""
    fig, (roc_ax, pr_ax) = plt.subplots(1, 2, figsize=(11, 4.5))
    for name, p in probabilities.items():
        fpr, tpr, _ = roc_curve(y_true, p)
        roc_ax.plot(fpr, tpr, label=f"{name} (AUC {roc_auc_score(y_true, p):.3f})")
        precision, recall, _ = precision_recall_curve(y_true, p)
        pr_ax.plot(recall, precision, label=f"{name} (AP {average_precision_score(y_true, p):.3f})")
    roc_ax.plot([0, 1], [0, 1], ls="--", c="grey", lw=0.8)
    pr_ax.axhline(float(np.mean(y_true)), ls="--", c="grey", lw=0.8, label="no skill (base rate)")
    roc_ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC (holdout)")
    pr_ax.set(xlabel="recall", ylabel="precision", title="Precision-recall (holdout)")
    for ax in (roc_ax, pr_ax):
        ax.legend(loc="best", fontsize=8)
    fig.suptitle(title)
    return save_figure(fig, path)
