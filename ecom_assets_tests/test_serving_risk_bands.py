"""Risk bands never contradict the decision (issue 14): for every probability on a grid from 0 to 1,
/predict and /bulk_predict (JSON and CSV) say "low" exactly when `will_abandon` is false.

The app runs in process over a stub registry whose "model" scores a session views_before_cart / 1000,
so the grid is sent as sessions and every probability, the threshold itself included, is hit."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from ecom_assets.ml.explain import Explanation
from ecom_assets.ml.feature_specs import CART_MODEL_NAME, PURCHASE_MODEL_NAME
from ecom_assets.ml.tracking import RISK_HIGH_TAG, ProductionModel
from ecom_assets.serving.model_store import ModelStore

THRESHOLD = 0.379  # the demo model's threshold, below the old fixed 0.4 edge
HIGH_FROM = 0.712
GRID = np.arange(0, 1001)  # views_before_cart: p = 0.000, 0.001, ..., 1.000


def _model(name: str, tags: dict[str, str]) -> ProductionModel:
    return ProductionModel(name, "1", object(), THRESHOLD, "2026-01-01T00:00:00+00:00", [], {}, "run", tags)


@pytest.fixture(scope="module", params=["logged edge", "no edge logged"])
def http(request):
    from fastapi.testclient import TestClient

    import ecom_assets.serving.api as api

    tags = {"threshold": str(THRESHOLD), RISK_HIGH_TAG: str(HIGH_FROM)} if request.param == "logged edge" else {}
    store = ModelStore(
        [CART_MODEL_NAME, PURCHASE_MODEL_NAME],
        "sqlite:///unused.db",
        3600,
        loader=lambda uri, name: _model(name, tags),
        version_probe=lambda uri, name: "1",
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(
            api,
            "explain",
            lambda model, row, specs: Explanation(
                row["views_before_cart"] / 1000, 0.0, {"views_before_cart": 0.0}, dict(row)
            ),
        )
        patch.setattr(api, "predict_proba", lambda model, features: features["views_before_cart"].to_numpy() / 1000)
        app = api.create_app(api.ServingSettings(tracking_uri="sqlite:///unused.db"), store=store)
        with TestClient(app) as client:
            yield client


def _session(views: int) -> dict:
    return {
        "views_before_cart": int(views),
        "other_items_viewed": 0,
        "cart_item_views": 1,
        "minutes_to_first_cart": 5.0,
        "cart_item_price": 20.0,
        "experiment_group": "control",
        "previous_sessions": 0,
        "previous_purchases": 0,
    }


def test_model_reports_bands_starting_at_the_threshold(http):
    bands = http.get("/model").json()["risk_bands"]
    assert bands["low_below"] == THRESHOLD
    assert bands["high_from"] in (HIGH_FROM, pytest.approx((THRESHOLD + 1) / 2))


def test_predict_band_agrees_with_will_abandon_on_the_whole_grid(http):
    seen = set()
    for views in GRID:
        body = http.post("/predict", json=_session(views)).json()
        p = body["abandonment_probability"]
        assert p == views / 1000
        assert body["will_abandon"] == (p >= THRESHOLD)
        assert (body["risk_band"] == "low") == (not body["will_abandon"]), body
        seen.add(body["risk_band"])
    assert seen == {"low", "medium", "high"}  # every band is reachable


def test_bulk_band_agrees_with_will_abandon_on_the_whole_grid(http):
    sessions = [_session(v) for v in GRID]
    body = http.post("/bulk_predict", json=sessions).json()
    high_from = body["risk_bands"]["high_from"]
    for views, row in zip(GRID, body["predictions"]):
        p = views / 1000
        assert row["will_abandon"] == (p >= THRESHOLD)
        expected = "high" if p >= high_from else "medium" if p >= THRESHOLD else "low"
        assert row["risk_band"] == expected, row
    scored = http.post(
        "/bulk_predict", content=pd.DataFrame(sessions).to_csv(index=False), headers={"content-type": "text/csv"}
    )
    frame = pd.read_csv(io.StringIO(scored.text))
    assert (frame["will_abandon"] == (frame["abandonment_probability"] >= THRESHOLD)).all()
    assert (frame["will_abandon"] == (frame["risk_band"] != "low")).all()
    assert set(frame["risk_band"]) == {"low", "medium", "high"}
