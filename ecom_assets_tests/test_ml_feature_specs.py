"""ml.feature_specs and the feature SQL (ml/sql): leak-free features, nothing at or after a cutoff (or a
session's first purchase) reaches a feature."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from ecom_assets.lakehouse.warehouse import run_sql_file
from ecom_assets.ml import SQL as ML_SQL
from ecom_assets.ml.feature_specs import (
    CART_FEATURES,
    PURCHASE_FEATURES,
    FeatureWindows,
    cart_feature_defaults,
    cart_feature_frame,
    names,
)
from ecom_assets.resources import build_resources, open_warehouse
from ecom_assets_tests.conftest import load_silver_events, sessionize

T0 = dt.datetime(2019, 10, 1)
WINDOWS = FeatureWindows(horizon_days=7, lookback_days=28, min_history_days=7, max_cutoffs=8)
# The last event is on Oct 28, so the cutoffs are Oct 29 (forward-looking), 22 (test), 15 (validation), 8 (train).
CUTOFF = dt.datetime(2019, 10, 22)


def _event(when, event_type, user_id, item_id, price=5.0, session="s"):
    return {
        "event_time": when,
        "event_type": event_type,
        "user_id": user_id,
        "session_id": f"{user_id}-{session}",
        "item_id": item_id,
        "category_id": None,
        "category": None,
        "brand": None,
        "price": price,
        "transaction_id": None,
        "source_file": "t.csv",
        "source_format": "rees46",
        "line_number": 0,
    }


def _base_events() -> list[dict]:
    day = dt.timedelta(days=1)
    return [
        _event(T0 + dt.timedelta(hours=1), "view", 1, 10),  # early history: the data start Oct 1
        _event(CUTOFF - 2 * day, "view", 1, 10),
        _event(CUTOFF - day, "cart", 1, 10),
        _event(CUTOFF - dt.timedelta(seconds=1), "view", 1, 20),
        _event(T0 + 27 * day + dt.timedelta(hours=12), "view", 2, 30),  # fixes the last day: Oct 28
    ]


def _features(paths, events) -> pd.DataFrame:
    resources = build_resources(paths)
    with open_warehouse(resources["duckdb"], resources["settings"]) as con:
        load_silver_events(con, events)
        run_sql_file(con, ML_SQL / "gold_user_item_features.sql", WINDOWS.sql_params())
        return con.execute("SELECT * FROM gold.user_item_features ORDER BY cutoff, user_id, item_id").df()


def test_cutoffs_step_back_by_the_horizon_and_split_by_time(paths):
    frame = _features(paths, _base_events())
    cutoffs = frame.groupby("dataset")["cutoff"].max().to_dict()
    assert cutoffs["score"] == pd.Timestamp("2019-10-29")
    assert cutoffs["test"] == pd.Timestamp("2019-10-22")
    assert cutoffs["validation"] == pd.Timestamp("2019-10-15")
    assert frame.loc[frame.dataset == "train", "cutoff"].max() < cutoffs["validation"]
    assert frame.loc[frame.dataset == "score", "converted"].isna().all()
    assert frame.loc[frame.dataset != "score", "converted"].notna().all()


def test_no_feature_uses_events_at_or_after_the_cutoff(paths):
    """Events at and after the cutoff change the label only; every feature stays the same."""
    before = _features(paths, _base_events())
    future = [
        _event(CUTOFF, "purchase", 1, 10),  # exactly at the cutoff: label, not a feature
        _event(CUTOFF + dt.timedelta(hours=1), "view", 1, 10),
        _event(CUTOFF + dt.timedelta(hours=2), "cart", 1, 10),
        _event(CUTOFF + dt.timedelta(days=1), "purchase", 1, 20),
        _event(CUTOFF + dt.timedelta(days=1), "purchase", 3, 10),  # item popularity after the cutoff
    ]
    after = _features(paths, _base_events() + future)
    at_cutoff = lambda f: f[f.cutoff == pd.Timestamp(CUTOFF)].set_index(["user_id", "item_id"])  # noqa: E731
    old, new = at_cutoff(before), at_cutoff(after)
    pd.testing.assert_frame_equal(old[names(PURCHASE_FEATURES)], new.loc[old.index, names(PURCHASE_FEATURES)])
    assert old.loc[(1, 10), "converted"] == 0 and new.loc[(1, 10), "converted"] == 1
    assert old.loc[(1, 20), "converted"] == 0 and new.loc[(1, 20), "converted"] == 1
    row = new.loc[(1, 10)]
    assert (row.views, row.carts, row.purchases, row.funnel_depth) == (2, 1, 0, 2)
    assert row.interaction_score == 2 + 3 * 1
    assert row.days_since_last_interaction == pytest.approx(1.0)


def test_purchase_before_the_cutoff_is_a_feature_not_a_label(paths):
    events = _base_events() + [_event(CUTOFF - dt.timedelta(hours=3), "purchase", 1, 10)]
    frame = _features(paths, events)
    row = frame[(frame.cutoff == pd.Timestamp(CUTOFF)) & (frame.user_id == 1) & (frame.item_id == 10)].iloc[0]
    assert row.funnel_depth == 3 and row.purchases == 1 and row.converted == 0


def _cart_features(paths, events) -> pd.DataFrame:
    resources = build_resources(paths)
    with open_warehouse(resources["duckdb"], resources["settings"]) as con:
        load_silver_events(con, events)
        sessionize(con)
        run_sql_file(con, ML_SQL / "gold_cart_session_features.sql", {"horizon_days": 7})
        return (
            con.execute("SELECT * FROM gold.cart_session_features ORDER BY session_start").df().set_index("session_id")
        )


def test_cart_features_stop_at_the_first_purchase(paths):
    start = dt.datetime(2019, 10, 3, 18)
    minute = dt.timedelta(minutes=1)
    bought = [
        _event(start, "view", 7, 1),
        _event(start + minute, "cart", 7, 1),
        _event(start + 3 * minute, "purchase", 7, 1),
        # after the decision point: must not count
        _event(start + 10 * minute, "view", 7, 2),
        _event(start + 11 * minute, "cart", 7, 2),
        _event(start + 12 * minute, "remove_from_cart", 7, 2),
    ]
    later = start + dt.timedelta(days=2)
    abandoned = [
        _event(later, "view", 7, 3),
        _event(later + minute, "cart", 7, 3),
        _event(later + 4 * minute, "remove_from_cart", 7, 3),
        _event(later + 6 * minute, "view", 7, 4),
    ]
    no_cart = [_event(later + dt.timedelta(days=1), "view", 8, 5)]
    frame = _cart_features(paths, bought + abandoned + no_cart)
    # session ids: user and start; the session without a cart is not a row
    assert list(frame.index) == ["7-20191003T180000", "7-20191005T180000"]
    first, second = frame.loc["7-20191003T180000"], frame.loc["7-20191005T180000"]
    assert (first.total_views, first.total_carts, first.total_removes, first.distinct_items) == (1, 1, 0, 1)
    assert first.session_duration_minutes == pytest.approx(1.0)
    assert first.abandoned_cart == 0 and first.previous_purchases == 0 and first.is_returning_user == 0
    assert (second.total_views, second.total_carts, second.total_removes) == (2, 1, 1)
    assert second.session_duration_minutes == pytest.approx(6.0)
    assert second.abandoned_cart == 1
    assert second.previous_purchases == 1 and second.previous_sessions == 1 and second.is_returning_user == 1
    assert second.experiment_group in ("control", "treatment")


def test_cart_feature_frame_fills_defaults_and_refuses_bad_rows():
    frame = cart_feature_frame(
        [{"total_views": 3, "total_carts": 1, "session_duration_minutes": 2.5, "experiment_group": "treatment"}]
    )
    assert list(frame.columns) == names(CART_FEATURES)
    for name, default in cart_feature_defaults().items():
        assert frame.loc[0, name] == default
    assert frame.loc[0, "experiment_group"] == "treatment"
    with pytest.raises(ValueError, match="session_duration_minutes"):
        cart_feature_frame([{"total_views": 3, "total_carts": 1, "experiment_group": "control"}])
    with pytest.raises(ValueError, match="experiment_group"):
        cart_feature_frame(
            [{"total_views": 3, "total_carts": 1, "session_duration_minutes": 1, "experiment_group": "blue"}]
        )
