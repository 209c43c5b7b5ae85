"""One session scored and explained in well under a millisecond, checked against `ml.explain`.

`ecom_assets.ml.explain.explain` goes through pandas (frame, coercion, the ColumnTransformer) and
then predicts separately: about 10-20 ms for one row, most of a /predict latency budget. This reads
the fitted pipeline's own parts instead (the ordinal codes its encoder learnt, the order of its
columns) and asks SHAP's TreeExplainer once: the probability is the sigmoid of base value plus
contributions, which is exactly the gradient-boosting model's output (SHAP's additivity).

The same encoding, vectorised, feeds bulk scoring straight to the classifier (`predict_proba`),
skipping the pipeline's pandas encoder.

It supports the pipeline shape `ml.training` builds for the gradient-boosting family (encode with
an OrdinalEncoder and passthrough, then the classifier). `RowExplainer.build` compares it with
`ml.explain.explain` and with the pipeline's own `predict_proba` on a few rows and returns None
when the pipeline has another shape or they disagree; the service then uses those instead.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.preprocessing import FunctionTransformer, OrdinalEncoder

from ecom_assets.ml.explain import explain
from ecom_assets.ml.feature_specs import FeatureSpec, coerce
from ecom_assets.ml.training import predict_proba

log = logging.getLogger(__name__)
TOLERANCE = 1e-6


@dataclass
class RowExplanation:
    probability: float
    base_value: float
    contributions: dict[str, float]  # largest |contribution| first
    values: dict[str, Any]


class RowExplainer:
    def __init__(self, model, specs: Sequence[FeatureSpec]) -> None:
        encoder = model[:-1]
        if len(encoder) != 1 or not isinstance(encoder[0], ColumnTransformer):
            raise TypeError(f"unsupported pipeline steps {[type(s).__name__ for s in encoder]}")
        self.columns: list[tuple[str, dict | None]] = []
        for name, transformer, cols in encoder[0].transformers_:
            if name == "remainder" and transformer == "drop":
                continue
            if transformer == "passthrough" or (  # fitted 'passthrough' is an identity FunctionTransformer
                isinstance(transformer, FunctionTransformer) and transformer.func is None
            ):
                self.columns += [(c, None) for c in cols]
            elif isinstance(transformer, OrdinalEncoder):
                self.columns += [
                    (c, {v: float(i) for i, v in enumerate(cats)}) for c, cats in zip(cols, transformer.categories_)
                ]
            else:
                raise TypeError(f"unsupported transformer {name}: {type(transformer).__name__}")
        import shap  # seconds to import (numba): only on a model load, never on a request

        self.classifier = model[-1]
        self.explainer = shap.TreeExplainer(model[-1])
        base = np.ravel(self.explainer.expected_value)
        if len(base) != 1:
            raise TypeError("expected one raw output (binary gradient boosting)")
        self.base_value = float(base[0])
        self.names = [c for c, _ in self.columns]

    def explain(self, row: Mapping[str, Any]) -> RowExplanation:
        """`row` holds every feature already validated (defaults filled in)."""
        x = np.array(
            [[(codes.get(str(row[c]), math.nan) if codes is not None else float(row[c])) for c, codes in self.columns]],
            dtype=np.float64,
        )
        # No per-call additivity check: `build` compared this path with the model's own output.
        values = np.asarray(self.explainer.shap_values(x, check_additivity=False), dtype=np.float64).reshape(-1)
        raw = self.base_value + float(values.sum())
        probability = 1.0 / (1.0 + math.exp(-raw))
        order = np.argsort(-np.abs(values), kind="stable")
        contributions = {self.names[i]: float(values[i]) for i in order}
        return RowExplanation(probability, self.base_value, contributions, {c: row[c] for c in self.names})

    def encode(self, features: pd.DataFrame) -> np.ndarray:
        """The model's input matrix for a validated feature frame: what the pipeline's encoder computes."""
        return np.column_stack(
            [
                features[c].map(codes).astype(np.float64).to_numpy()
                if codes is not None
                else features[c].to_numpy(dtype=np.float64)
                for c, codes in self.columns
            ]
        )

    def predict_proba(self, features: pd.DataFrame) -> np.ndarray:
        """P(label = 1) for many rows, skipping the pipeline's pandas encoder (see `build`)."""
        return self.classifier.predict_proba(self.encode(features))[:, 1].astype(np.float64)

    @classmethod
    def build(cls, model, specs: Sequence[FeatureSpec], probe_rows: Sequence[Mapping[str, Any]]) -> RowExplainer | None:
        """A checked fast path, or None (use `ml.explain.explain`) when it does not reproduce it."""
        try:
            fast = cls(model, specs)
            frame = coerce(pd.DataFrame(list(probe_rows)), specs)
            if not np.allclose(fast.predict_proba(frame), predict_proba(model, frame), rtol=0, atol=TOLERANCE):
                log.warning("fast bulk scoring disagrees with the pipeline: not used")
                return None
            for row in probe_rows:
                reference = explain(model, row, specs)
                mine = fast.explain(row)
                if abs(reference.probability - mine.probability) > TOLERANCE or any(
                    abs(reference.contributions[f] - mine.contributions.get(f, math.inf)) > TOLERANCE
                    for f in reference.contributions
                ):
                    log.warning(
                        "fast explanation disagrees with ml.explain (p %.6f vs %.6f): not used",
                        mine.probability,
                        reference.probability,
                    )
                    return None
            return fast
        except Exception as exc:
            log.warning("no fast explanation path (%s: %s): using ml.explain", type(exc).__name__, exc)
            return None
