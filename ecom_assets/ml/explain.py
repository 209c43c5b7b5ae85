"""Explanations: per-feature contributions for one prediction and global importance (mean |SHAP|).

Any family can be the champion, so the explainer follows the fitted classifier:
- gradient boosting: SHAP's TreeExplainer, exact on numeric / ordinal-encoded inputs (our
  pipelines never use native categorical splits, which it gets wrong); contributions in log-odds;
- logistic regression: the exact linear SHAP values on the standardised inputs, coefficient x
  standardised value, against the training mean (a standardised 0): also log-odds, base value
  = the intercept;
- random forest: TreeExplainer on the forest's averaged probabilities: contributions in
  probability, base value + sum = the probability itself (`Explanation.units` says which).
For log-odds, base value + sum of contributions = the model's raw score and its sigmoid is the
predicted probability.
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


def _is_linear(model) -> bool:
    from sklearn.linear_model import LogisticRegression

    return isinstance(model[-1], LogisticRegression)


def units(model) -> str:
    """What a model's contributions add up to: log-odds (boosting, logistic) or probability (forest)."""
    from sklearn.ensemble import RandomForestClassifier

    return "probability" if isinstance(model[-1], RandomForestClassifier) else "log-odds"


def _explainer(model):
    explainer = _explainers.get(model)
    if explainer is None:
        import shap  # imported on first use: it takes seconds (numba)

        explainer = shap.TreeExplainer(model[-1])
        _explainers[model] = explainer
    return explainer


def _shap_values(model, frame: pd.DataFrame, specs: Sequence[FeatureSpec]) -> tuple[np.ndarray, float]:
    encoded = np.asarray(model[:-1].transform(coerce(frame, specs)), dtype=np.float64)
    if _is_linear(model):  # standardised inputs: the training mean is 0, so SHAP = coef x value
        classifier = model[-1]
        return encoded * classifier.coef_[0], float(classifier.intercept_[0])
    explainer = _explainer(model)
    values = np.asarray(explainer.shap_values(encoded))
    base = np.ravel(explainer.expected_value)
    if values.ndim == 3:  # per-class output (forests): explain the positive class
        values, base = values[:, :, 1], base[1:]
    return values, float(base[-1])


@dataclass
class Explanation:
    probability: float
    base_value: float  # the score of an average row, in `units`
    contributions: dict[str, float]  # feature -> contribution in `units`, largest |value| first
    values: dict[str, Any]  # the feature values explained
    units: str = "log-odds"  # or "probability" (a random forest)

    def top(self, n: int = 5) -> list[tuple[str, float]]:
        return list(self.contributions.items())[:n]


def explain(model, row: Mapping[str, Any] | pd.DataFrame, specs: Sequence[FeatureSpec]) -> Explanation:
    """Why the model scored this one row as it did: each feature's contribution (see `units`)."""
    frame = row if isinstance(row, pd.DataFrame) else pd.DataFrame([dict(row)])
    if len(frame) != 1:
        raise ValueError(f"explain() takes one row, got {len(frame)}")
    frame = coerce(frame, specs)
    values, base = _shap_values(model, frame, specs)
    order = encoded_feature_names(specs)
    contributions = dict(sorted(zip(order, values[0].tolist()), key=lambda kv: -abs(kv[1])))  # plain floats: JSON
    probability = float(model.predict_proba(frame)[0, 1])
    return Explanation(probability, base, contributions, frame.iloc[0].to_dict(), units(model))


def global_importance(
    model, X: pd.DataFrame, specs: Sequence[FeatureSpec], max_rows: int = 2_000, seed: int = 0
) -> pd.DataFrame:
    """Mean |SHAP| per feature on (a sample of) the holdout, most important first."""
    sample = X.sample(n=min(max_rows, len(X)), random_state=seed) if len(X) > max_rows else X
    values, _ = _shap_values(model, sample, specs)
    frame = pd.DataFrame({"feature": encoded_feature_names(specs), "mean_abs_shap": np.abs(values).mean(axis=0)})
    return frame.sort_values("mean_abs_shap", ascending=False, ignore_index=True)
