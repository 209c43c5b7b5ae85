"""The models' time splits (ml/sql/gold_*_features.sql) come from the days that hold a real share of
the data: one stray event, dated 2099 or 2000, moves no cutoff and empties no split."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from ecom_assets.ml.feature_cutoffs import refresh_user_item_features
from ecom_assets.ml.feature_days import refresh_cart_session_features
from ecom_assets.ml.feature_specs import FeatureWindows
from ecom_assets.resources import build_resources, open_warehouse
from ecom_assets_tests.conftest import load_silver_events, sessionize

T0 = dt.datetime(2019, 10, 1)
DAYS = 28  # Oct 1-28: cutoffs Oct 29 (score), 22 (test), 15 (validation), 8 (train)
# Cutoffs every 7 days from Tuesday Oct 1, the data's first day
WINDOWS = FeatureWindows(
    horizon_days=7, lookback_days=28, min_history_days=7, max_cutoffs=8, cutoff_anchor="2019-10-01"
)


def _event(when: dt.datetime, event_type: str, user_id: int, item_id: int, session: str) -> dict:
    return {
        "event_time": when,
        "event_type": event_type,
        "user_id": user_id,
        "session_id": session,
        "item_id": item_id,
        "price": 5.0,
        "source_file": "t.csv",
        "source_format": "rees46",
    }


def _month(days: int = DAYS) -> list[dict]:
    """40 users a day, each viewing and carting an item; every third buys it."""
    events = []
    for day in range(days):
        for user in range(40):
            start, session = T0 + dt.timedelta(days=day, minutes=10 + 20 * user), f"{user}-{day}"
            item = (user + day) % 9
            events.append(_event(start, "view", user, item, session))
            events.append(_event(start + dt.timedelta(minutes=1), "cart", user, item, session))
            if (user + day) % 3 == 0:
                events.append(_event(start + dt.timedelta(minutes=2), "purchase", user, item, session))
    return events


def _stray(when: dt.datetime, user_id: int = 999) -> list[dict]:
    return [_event(when, "view", user_id, 1, f"stray-{when:%Y}"), _event(when, "cart", user_id, 1, f"stray-{when:%Y}")]


def _build(paths, events: list[dict]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """gold.user_item_features and gold.cart_session_features over `events` as silver."""
    resources = build_resources(paths)
    with open_warehouse(resources["duckdb"], resources["settings"]) as con:
        load_silver_events(con, events)
        refresh_user_item_features(con, WINDOWS, everything=True)
        sessionize(con)
        refresh_cart_session_features(con, WINDOWS.horizon_days, everything=True)
        items = con.execute(
            "SELECT * EXCLUDE (features_built_at) FROM gold.user_item_features ORDER BY cutoff, user_id, item_id"
        ).df()
        carts = con.execute(
            "SELECT * EXCLUDE (features_built_at) FROM gold.cart_session_features ORDER BY session_id"
        ).df()
    return items, carts


def _cutoffs(items: pd.DataFrame) -> dict[str, list[pd.Timestamp]]:
    return {name: sorted(group["cutoff"].unique()) for name, group in items.groupby("dataset")}


def test_a_2099_event_moves_no_cutoff(paths):
    items, carts = _build(paths, _month())
    assert _cutoffs(items)["score"] == [pd.Timestamp("2019-10-29")]
    assert _cutoffs(items)["test"] == [pd.Timestamp("2019-10-22")]

    stray_items, stray_carts = _build(paths, _month() + _stray(dt.datetime(2099, 1, 1)) + _stray(T0.replace(year=2000)))
    assert _cutoffs(stray_items) == _cutoffs(items)
    normal = stray_items[stray_items.user_id != 999].reset_index(drop=True)
    pd.testing.assert_frame_equal(normal, items)  # every feature and label as without the strays
    # The cart model's splits: the same sessions in test and validation as without the strays.
    kept = stray_carts[~stray_carts.session_id.str.startswith("999-")].reset_index(drop=True)
    pd.testing.assert_frame_equal(kept[["session_id", "dataset"]], carts[["session_id", "dataset"]])
    assert set(carts.dataset) == {"train", "validation", "test"}


def test_a_quiet_but_real_last_day_still_counts(paths):
    """A day is not dropped for being small: a fifth of a typical day's events is data (the
    threshold is a tenth), a stray event or two in a month of thousands is not. The quiet day, Oct 28,
    closes the Oct 22 cutoff's label window: the forward cutoff moves to Oct 29 (Oct 22 without it)."""
    quiet_day = [
        _event(T0 + dt.timedelta(days=DAYS - 1, hours=1, minutes=m), kind, 500 + m, 3, f"q-{m}")
        for m in range(10)
        for kind in ("view", "cart")
    ]
    items, carts = _build(paths, _month(DAYS - 1) + quiet_day)
    assert _cutoffs(items)["score"] == [pd.Timestamp("2019-10-29")]
    assert _cutoffs(items)["test"] == [pd.Timestamp("2019-10-22")]
    assert carts.loc[carts.session_id.str.startswith("q-"), "dataset"].eq("test").all()


def test_data_younger_than_a_week_has_no_cutoff_yet(paths):
    """Two days from Wednesday Oct 2: the forward cutoff (the newest calendar one, Tuesday Oct 1 here) is
    not after the data's start, so no cutoff has an event before it. The table is built empty, no
    failure, and a later refresh keeps it so."""
    events = [e for e in _month(3) if e["event_time"] >= T0 + dt.timedelta(days=1)]
    resources = build_resources(paths)
    with open_warehouse(resources["duckdb"], resources["settings"]) as con:
        load_silver_events(con, events)
        for _ in range(2):
            refresh = refresh_user_item_features(con, WINDOWS)
            assert refresh.built == [] and refresh.rows_built == 0
            assert con.execute("SELECT count(*) FROM gold.user_item_features").fetchone()[0] == 0
