"""Both models' features are fixed at their decision point: rewriting every event after it changes
no feature value of any row (labels may change).

A small generated dataset goes through the real ingest (bronze, silver); the feature SQL then runs
on silver as it is, and again after the events past the decision point are deleted, moved later,
retyped and joined by new purchases, carts and views, some in the very second of the decision.

- Cart abandonment decides at each session's first add-to-cart. A user's later sessions may read
  an earlier session's whole history, so the events rewritten are, per user, those after the first
  cart of the user's last cart session: after the decision point of every row of that user.
- Purchase prediction decides at each cutoff: for each cutoff in turn, the forward-looking one
  included (it is on the calendar: the days of its week come after it), every event at or after it
  is rewritten and the rows at that cutoff (and earlier ones) must not change.

Each check also runs on a leaky variant of the SQL (one comparison letting the decision's own second
in) and must catch it: the test can fail.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from ecom_assets.ecom_home import EcomPaths
from ecom_assets.generator import GeneratorConfig, generate
from ecom_assets.ml import SQL as ML_SQL
from ecom_assets.ml.feature_cutoffs import refresh_user_item_features
from ecom_assets.ml.feature_days import refresh_cart_session_features
from ecom_assets.ml.feature_specs import CART_FEATURES, PURCHASE_FEATURES, FeatureWindows, names
from ecom_assets.ml.tracking import tracking_uri
from ecom_assets.resources import build_resources, open_warehouse
from ecom_assets_tests.conftest import ingest, landed_cleanly, load_silver_events, sessionize

CART_SQL = ML_SQL / "gold_cart_session_features.sql"
PURCHASE_SQL = ML_SQL / "gold_user_item_features.sql"
WINDOWS = FeatureWindows(horizon_days=7, lookback_days=28, min_history_days=7, max_cutoffs=8)
EVENT_ORDER = ["event_time", "source_file", "line_number"]

# One character each: "<" becomes "<=", so events in the decision's own second reach a feature.
LEAKY_CART = ("WHERE se.event_time < fc.decision_at", "WHERE se.event_time <= fc.decision_at")
LEAKY_PURCHASE = ("ON e.event_time < c.cutoff", "ON e.event_time <= c.cutoff")


@pytest.fixture(scope="module")
def silver(tmp_path_factory):
    """(home, silver.events as a frame): ~25k generated events over 5 weeks, ingested for real."""
    root = tmp_path_factory.mktemp("decision_point")
    paths = EcomPaths(root / "ecom_home").ensure()
    with pytest.MonkeyPatch.context() as env:
        env.setenv("ECOM_HOME", str(paths.home))
        env.setenv("MLFLOW_TRACKING_URI", tracking_uri(paths, configured=""))
        generate(paths.landing, GeneratorConfig(events=25_000, days=35, seed=5))
        with dg.instance_for_test() as instance:
            assert landed_cleanly(ingest(paths, instance))
        resources = build_resources(paths)
        with open_warehouse(resources["duckdb"], resources["settings"]) as con:
            events = con.execute(f"SELECT * FROM silver.events ORDER BY {', '.join(EVENT_ORDER)}").df()
        yield paths, events


def _sql(path: Path, tmp_path: Path, leak: tuple[str, str] | None) -> Path:
    if leak is None:
        return path
    text = path.read_text()
    assert text.count(leak[0]) == 1, f"{path.name} no longer has {leak[0]!r}: update the leaky variant"
    leaky = tmp_path / f"leaky_{path.name}"
    leaky.write_text(text.replace(*leak))
    return leaky


def _cart_features(paths: EcomPaths, events: pd.DataFrame, sql: Path) -> pd.DataFrame:
    resources = build_resources(paths)
    with open_warehouse(resources["duckdb"], resources["settings"]) as con:
        load_silver_events(con, events)  # lines renumbered in frame order: the frame keeps event order
        sessionize(con)
        refresh_cart_session_features(con, WINDOWS.horizon_days, sql=sql, everything=True)
        return con.execute("SELECT * FROM gold.cart_session_features").df().set_index("session_id").sort_index()


def _purchase_features(paths: EcomPaths, events: pd.DataFrame, sql: Path) -> pd.DataFrame:
    resources = build_resources(paths)
    with open_warehouse(resources["duckdb"], resources["settings"]) as con:
        load_silver_events(con, events)
        refresh_user_item_features(con, WINDOWS, sql=sql, everything=True)
        frame = con.execute("SELECT * FROM gold.user_item_features").df()
    return frame.set_index(["cutoff", "user_id", "item_id"]).sort_index()


def _rewrite_after(events: pd.DataFrame, after: pd.Series, at: pd.Series, seed: int) -> pd.DataFrame:
    """Rewrite the events flagged `after`: delete a quarter, retype a quarter, move the rest later
    within their day; then add, per row of `at` (user or cutoff -> a timestamp), a purchase, a cart
    and a view in that very second and a purchase an hour on. Events not flagged stay as they were,
    in the same order."""
    rng = np.random.default_rng(seed)
    kept = events[~after]
    future = events[after].copy()
    fate = rng.random(len(future))
    future = future[fate >= 0.25]
    fate = fate[fate >= 0.25]
    retyped = fate < 0.5
    future.loc[retyped, "event_type"] = rng.choice(["view", "cart", "remove_from_cart", "purchase"], retyped.sum())
    moved = future["event_time"] + pd.to_timedelta(rng.integers(0, 90, len(future)), unit="m")
    end_of_day = future["event_time"].dt.floor("D") + pd.Timedelta(days=1) - pd.Timedelta(seconds=1)
    future["event_time"] = moved.where(moved <= end_of_day, end_of_day)
    added = []
    for _, row in at.iterrows():
        for offset, kind in [(0, "purchase"), (0, "cart"), (0, "view"), (3600, "purchase")]:
            added.append(
                {
                    **row["template"],
                    "event_time": row["when"] + pd.Timedelta(seconds=offset),
                    "event_type": kind,
                    "source_file": "zz_rewritten.csv",  # after every original line of the same second
                }
            )
    out = pd.concat([kept, future, pd.DataFrame(added)], ignore_index=True)
    return out.sort_values(EVENT_ORDER, kind="stable").reset_index(drop=True)


def _changed(before: pd.DataFrame, after: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Rows of `before` whose features differ in `after` (or that are gone from it)."""
    missing = before.index.difference(after.index)
    common = before.index.intersection(after.index)
    old, new = before.loc[common, columns], after.loc[common, columns]
    differs = ~((old == new) | (old.isna() & new.isna())).all(axis=1)
    return pd.concat([before.loc[missing, columns], old[differs]])


def _cart_rewrite(events: pd.DataFrame, baseline: pd.DataFrame) -> pd.DataFrame:
    """Every event after the last first-cart of its user (the decision point of the user's last row)."""
    last_decision = baseline.groupby("user_id")["decision_at"].max()
    decided = events["user_id"].map(last_decision)
    after = decided.notna() & (events["event_time"] > decided)
    templates = events.drop_duplicates("user_id").set_index("user_id")
    at = pd.DataFrame(
        {"when": last_decision, "template": [templates.loc[u].to_dict() | {"user_id": u} for u in last_decision.index]}
    )
    return _rewrite_after(events, after, at, seed=1)


@pytest.mark.parametrize("leak", [None, LEAKY_CART], ids=["first_cart", "leaky_variant"])
def test_cart_features_do_not_see_past_the_first_add_to_cart(silver, tmp_path, leak):
    paths, events = silver
    sql = _sql(CART_SQL, tmp_path, leak)
    before = _cart_features(paths, events, sql)
    assert len(before) > 300 and 0.2 < before["abandoned_cart"].mean() < 0.9
    rewritten = _cart_rewrite(events, before)
    after = _cart_features(paths, rewritten, sql)
    changed = _changed(before, after, names(CART_FEATURES) + ["user_id", "session_start", "decision_at"])
    if leak is not None:
        assert len(changed) > 0, "the leaky SQL went unnoticed: the rewrite does not reach the decision's second"
        return
    assert changed.empty, f"{len(changed)} rows changed a feature:\n{changed.head()}"
    # the rewrite was real: labels moved, and new rows (sessions it created) start after every old one
    flipped = (before["abandoned_cart"] != after.loc[before.index, "abandoned_cart"]).sum()
    assert flipped > 0.1 * before["abandoned_cart"].sum()
    new_rows = after.index.difference(before.index)
    last = before.groupby("user_id")["decision_at"].max()
    assert (after.loc[new_rows, "session_start"] >= after.loc[new_rows, "user_id"].map(last)).all()


@pytest.mark.parametrize("leak", [None, LEAKY_PURCHASE], ids=["cutoff", "leaky_variant"])
def test_purchase_features_do_not_see_the_cutoff_or_after(silver, tmp_path, leak):
    paths, events = silver
    sql = _sql(PURCHASE_SQL, tmp_path, leak)
    before = _purchase_features(paths, events, sql)
    cutoffs = sorted(before.index.get_level_values("cutoff").unique())
    assert len(cutoffs) >= 3
    caught = 0
    # The forward-looking cutoff too: on the calendar, it has the days of its week after it to rewrite.
    forward = before[before.dataset == "score"].index.get_level_values("cutoff").unique()
    assert list(forward) == cutoffs[-1:] and (events["event_time"] >= cutoffs[-1]).sum() > 100
    for cutoff in cutoffs:
        after = events["event_time"] >= cutoff
        pairs = before.loc[cutoff].reset_index()[["user_id", "item_id"]].sample(200, random_state=0, replace=True)
        templates = events.drop_duplicates("user_id").set_index("user_id")
        at = pd.DataFrame(
            {
                "when": [pd.Timestamp(cutoff)] * len(pairs),
                "template": [
                    templates.loc[u].to_dict() | {"user_id": u, "item_id": i}
                    for u, i in zip(pairs.user_id, pairs.item_id)
                ],
            }
        )
        rewritten = _rewrite_after(events, after, at, seed=int(pd.Timestamp(cutoff).timestamp()) % 1000)
        new = _purchase_features(paths, rewritten, sql)
        assert sorted(new.index.get_level_values("cutoff").unique()) == cutoffs  # the rewrite moved no cutoff
        upto = before[before.index.get_level_values("cutoff") <= cutoff]
        changed = _changed(upto, new, names(PURCHASE_FEATURES))
        if leak is not None:
            caught += len(changed) > 0
            continue
        assert changed.empty, f"cutoff {cutoff}: {len(changed)} rows changed a feature:\n{changed.head()}"
        if cutoff == cutoffs[-1]:  # the forward cutoff has no label
            continue
        labels = before.loc[cutoff, "converted"], new.loc[cutoff].loc[before.loc[cutoff].index, "converted"]
        assert (labels[0] != labels[1]).any(), "the rewrite moved no label: it did not reach the horizon"
    if leak is not None:
        assert caught == len(cutoffs), "the leaky SQL went unnoticed at some cutoff"


def test_the_rewrite_keeps_the_events_before_the_decision_point(silver):
    """The helper itself: every event before the cut stays, in order; the ones after it change."""
    _, events = silver
    cut = events["event_time"].quantile(0.5)
    after = events["event_time"] >= cut
    at = pd.DataFrame({"when": [cut], "template": [events.iloc[0].to_dict()]})
    rewritten = _rewrite_after(events, after, at, seed=0)
    before_cut = lambda f: f[f["event_time"] < cut].reset_index(drop=True)  # noqa: E731
    pd.testing.assert_frame_equal(before_cut(events), before_cut(rewritten), check_dtype=False)
    tail = lambda f: f[f["event_time"] >= cut]  # noqa: E731
    assert len(tail(rewritten)) < len(tail(events))  # a quarter deleted, four added
    assert (tail(rewritten)["event_time"] == cut).sum() >= 3  # a purchase, a cart and a view in its second
