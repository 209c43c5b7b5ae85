"""ml.feature_specs and the feature SQL (ml/sql): leak-free features, nothing at or after a cutoff (or
after a session's first add-to-cart) reaches a feature."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from ecom_assets.ml.feature_cutoffs import refresh_user_item_features
from ecom_assets.ml.feature_days import refresh_cart_session_features
from ecom_assets.ml.feature_specs import (
    CART_FEATURES,
    PURCHASE_FEATURES,
    FeatureWindows,
    cart_feature_defaults,
    cart_feature_frame,
    defaulted_cart_features,
    names,
    required_cart_features,
)
from ecom_assets.resources import build_resources, open_warehouse
from ecom_assets_tests.conftest import load_silver_events, sessionize

T0 = dt.datetime(2019, 10, 1)
# Cutoffs every 7 days from Tuesday Oct 1, the data's first day
WINDOWS = FeatureWindows(
    horizon_days=7, lookback_days=28, min_history_days=7, max_cutoffs=8, cutoff_anchor="2019-10-01"
)
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
        refresh_user_item_features(con, WINDOWS, everything=True)
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
        refresh_cart_session_features(con, 7, everything=True)
        return (
            con.execute("SELECT * FROM gold.cart_session_features ORDER BY session_start").df().set_index("session_id")
        )


def test_cart_features_stop_at_the_first_add_to_cart_whatever_the_outcome(paths):
    """One cut for every session, its first add-to-cart: a buyer and an abandoner that look the same
    up to it get the same features, whatever they do next."""
    minute = dt.timedelta(minutes=1)

    def session(user, start, after_cart):
        return [
            _event(start, "view", user, 1, price=20.0),
            _event(start + 2 * minute, "view", user, 2),
            _event(start + 3 * minute, "view", user, 1, price=20.0),
            _event(start + 4 * minute, "cart", user, 1, price=20.0),
            _event(start + 4 * minute, "view", user, 9),  # the cart's own second: after it
            *after_cart(start + 4 * minute),
        ]

    buys = lambda t: [_event(t + minute, "view", 7, 3), _event(t + 2 * minute, "purchase", 7, 1)]  # noqa: E731
    browses = lambda t: [  # noqa: E731
        _event(t + minute, "view", 8, 3),
        _event(t + 2 * minute, "view", 8, 4),
        _event(t + 3 * minute, "cart", 8, 4),
        _event(t + 20 * minute, "remove_from_cart", 8, 1),
    ]
    one_click = lambda t: [_event(t, "purchase", 10, 1)]  # noqa: E731
    start = dt.datetime(2019, 10, 3, 18)
    already_bought = [  # bought, then carted again: its checkout came first, so it has no row
        _event(start, "view", 11, 5),
        _event(start + minute, "purchase", 11, 5),
        _event(start + 2 * minute, "cart", 11, 6),
    ]
    later = start + dt.timedelta(days=2)
    returning = [_event(later, "view", 7, 2), _event(later + minute, "cart", 7, 2, price=8.0)]
    events = (
        session(7, start, buys)
        + session(8, start, browses)
        + session(10, start, one_click)
        + already_bought
        + returning
        + [_event(later + dt.timedelta(days=1), "view", 12, 5)]  # no cart: no row
    )
    frame = _cart_features(paths, events)
    assert list(frame.index) == ["10-20191003T180000", "7-20191003T180000", "8-20191003T180000", "7-20191005T180000"]
    features = [n for n in names(CART_FEATURES) if n != "experiment_group"]  # the arm follows the user id
    first = frame.loc[["7-20191003T180000", "8-20191003T180000", "10-20191003T180000"], features]
    assert (first.nunique() == 1).all(), "the buyer, the abandoner and the one-click buyer differ before the cart"
    row = frame.loc["8-20191003T180000"]
    assert (row.views_before_cart, row.other_items_viewed, row.cart_item_views) == (3, 1, 2)
    assert row.minutes_to_first_cart == pytest.approx(4.0) and row.cart_item_price == 20.0
    assert row.decision_at == pd.Timestamp(start + 4 * minute)
    labels = frame["abandoned_cart"].to_dict()
    assert labels["7-20191003T180000"] == 0 and labels["8-20191003T180000"] == 1
    assert labels["10-20191003T180000"] == 0  # a purchase in the cart's own second is later: bought
    back = frame.loc["7-20191005T180000"]
    assert (back.previous_sessions, back.previous_purchases, back.previous_cart_sessions) == (1, 1, 1)
    assert (back.views_before_cart, back.cart_item_views, back.minutes_to_first_cart) == (1, 1, 1.0)
    assert back.abandoned_cart == 1


FIRST_CART = {
    "views_before_cart": 3,
    "other_items_viewed": 1,
    "cart_item_views": 2,
    "minutes_to_first_cart": 2.5,
    "cart_item_price": 19.9,
    "experiment_group": "treatment",
    "previous_sessions": 2,
    "previous_purchases": 1,
}


def test_cart_feature_frame_fills_defaults_and_refuses_bad_rows():
    frame = cart_feature_frame([FIRST_CART])
    assert list(frame.columns) == names(CART_FEATURES)
    for name, default in cart_feature_defaults().items():
        assert frame.loc[0, name] == default
    assert frame.loc[0, "experiment_group"] == "treatment"
    assert defaulted_cart_features(FIRST_CART) == list(cart_feature_defaults())
    assert defaulted_cart_features({**FIRST_CART, "hour_of_day": 9, "day_of_week": None}) == [
        "previous_cart_sessions",
        "day_of_week",
    ]
    for name in ("previous_purchases", "minutes_to_first_cart"):  # what the model leans on is never guessed
        with pytest.raises(ValueError, match=name):
            cart_feature_frame([{k: v for k, v in FIRST_CART.items() if k != name}])
    with pytest.raises(ValueError, match="experiment_group"):
        cart_feature_frame([{**FIRST_CART, "experiment_group": "blue"}])


def test_the_cart_contract_asks_only_for_what_the_first_add_to_cart_knows():
    """No feature whose value depends on the rest of the session, and none that is constant there."""
    assert "previous_purchases" in required_cart_features()
    for gone in ("total_carts", "session_duration_minutes", "distinct_items", "cart_value", "total_removes"):
        assert gone not in names(CART_FEATURES)
