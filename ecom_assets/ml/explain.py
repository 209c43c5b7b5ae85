"""Explanations: per-feature contributions for one prediction and global importance (mean |SHAP|).

SHAP's TreeExplainer is exact for HistGradientBoosting on numeric / ordinal-encoded inputs (our
pipelines never use native categorical splits, which it gets wrong). Contributions are in
log-odds: base value + sum of contributions = the model's raw score, and the sigmoid of that is
the predicted probability.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ecom_assets.ml.feature_specs import FeatureSpec, coerce
from ecom_assets.ml.training import encoded_feature_names

_explainers: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


def _explainer(model):
    explainer = _explainers.get(model)
    if explainer is None:
        import shap  # imported on first use: it takes seconds (numba)

        explainer = shap.TreeExplainer(model[-1])
        _explainers[model] = explainer
    return explainer


def _shap_values(model, frame: pd.DataFrame, specs: Sequence[FeatureSpec]) -> tuple[np.ndarray, float]:
    encoded = model[:-1].transform(coerce(frame, specs))
    explainer = _explainer(model)
    values = np.asarray(explainer.shap_values(np.asarray(encoded, dtype=np.float64)))
    base = np.ravel(explainer.expected_value)
    if values.ndim == 3:  # per-class output (forests): explain the positive class
        values, base = values[:, :, 1], base[1:]
    return values, float(base[-1])


@dataclass
class Explanation:
    probability: float
    base_value: float  # log-odds of an average row
    contributions: dict[str, float]  # feature -> log-odds contribution, largest |value| first
    values: dict[str, Any]  # the feature values explained

    def top(self, n: int = 5) -> list[tuple[str, float]]:
        return list(self.contributions.items())[:n]


def explain(model, row: Mapping[str, Any] | pd.DataFrame, specs: Sequence[FeatureSpec]) -> Explanation:
    """Why the model scored this one row as it did: each feature's contribution in log-odds."""
    frame = row if isinstance(row, pd.DataFrame) else pd.DataFrame([dict(row)])
    if len(frame) != 1:
        raise ValueError(f"explain() takes one row, got {len(frame)}")
    frame = coerce(frame, specs)
    values, base = _shap_values(model, frame, specs)
    order = encoded_feature_names(specs)
    contributions = dict(sorted(zip(order, values[0].astype(float)), key=lambda kv: -abs(kv[1])))
    probability = float(model.predict_proba(frame)[0, 1])
    return Explanation(probability, base, contributions, frame.iloc[0].to_dict())


def global_importance(
    model, X: pd.DataFrame, specs: Sequence[FeatureSpec], max_rows: int = 2_000, seed: int = 0
) -> pd.DataFrame:
    """Mean |SHAP| per feature on (a sample of) the holdout, most important first."""
    sample = X.sample(n=min(max_rows, len(X)), random_state=seed) if len(X) > max_rows else X
    values, _ = _shap_values(model, sample, specs)
    frame = pd.DataFrame({"feature": encoded_feature_names(specs), "mean_abs_shap": np.abs(values).mean(axis=0)})
    return frame.sort_values("mean_abs_shap", ascending=False, ignore_index=True)
