"""A day's data costs a day's work downstream of silver too (issue 12): the purchase cutoffs sit on a
fixed calendar, a complete cutoff's rows are computed once and kept, a new day adds the forward cutoff
(and, once a week, a newly complete one); the cart features of older days are kept; batch scoring
scores only the rows without a current prediction."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from ecom_assets.assets.predictions import CART_ABANDONMENT_SCORES, ECOMMERCE_PREDICTIONS
from ecom_assets.generator import GeneratorConfig, generate
from ecom_assets.ml.feature_cutoffs import calendar_cutoffs
from ecom_assets.ml.feature_specs import FeatureWindows
from ecom_assets.one_shot import run_pipeline
from ecom_assets.resources import build_resources

WINDOWS = FeatureWindows()  # weekly Monday cutoffs, 7-day horizon, 28-day lookback


def test_a_new_day_moves_no_cutoff_and_closes_one_a_week():
    start = dt.date(2019, 10, 1)
    seen: dict[dt.date, set[dt.date]] = {}
    for days in range(40, 70):
        end = start + dt.timedelta(days=days)
        planned = calendar_cutoffs(start, end, WINDOWS)
        assert planned[0].cutoff == end and planned[0].dataset == "score"
        labelled = planned[1:]
        assert all(p.cutoff.weekday() == 0 for p in labelled)  # Mondays
        assert all(p.cutoff + dt.timedelta(days=7) <= end for p in labelled)  # label window closed
        assert [p.dataset for p in labelled[:2]] == ["test", "validation"]
        assert labelled[0].cutoff > end - dt.timedelta(days=14)  # the newest complete one is the test set
        seen[end] = {p.cutoff for p in labelled}
    ends = sorted(seen)
    for before, after in zip(ends, ends[1:]):
        added = seen[after] - seen[before]
        assert len(added) <= 1 and (not added or after.weekday() == 0)  # a cutoff closes on a Monday only


def _features(paths) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    with build_resources(paths)["duckdb"].read_connection() as con:
        items = con.execute("SELECT * FROM gold.user_item_features ORDER BY cutoff, user_id, item_id").df()
        carts = con.execute("SELECT * FROM gold.cart_session_features ORDER BY session_id").df()
        scores = con.execute(
            "SELECT * FROM gold.ecommerce_predictions WHERE dataset = 'test' ORDER BY visitorid, itemid"
        ).df()
    return items, carts, scores


def _land_day(paths, day: dt.date, seed: int) -> None:
    generate(paths.landing, GeneratorConfig(events=1_000, days=1, start=day, seed=seed, file_per="day"))


def _scored_now(instance, key) -> int:
    event = instance.get_latest_materialization_event(key)
    return event.asset_materialization.metadata["rows_scored_now"].value


def test_a_new_day_keeps_older_cutoffs_rows_and_their_scores(built_copy, instance):
    """The built home holds Oct 1 - Nov 30. Dec 1 closes the Nov 25 cutoff's label window (a new test
    set); Dec 2 closes none: every complete cutoff's rows, the older days' cart rows and the holdout's
    predictions stay as they were, and only the forward cutoff and the new sessions are scored."""
    items_built, carts_built, _ = _features(built_copy)
    _land_day(built_copy, dt.date(2019, 12, 1), seed=101)
    assert run_pipeline(built_copy, instance, log=lambda _: None).ok
    items, carts, scores = _features(built_copy)
    labelled = items[items.dataset != "score"]
    assert labelled.cutoff.max() == pd.Timestamp("2019-11-25")
    assert set(labelled.loc[labelled.cutoff == labelled.cutoff.max(), "dataset"]) == {"test"}
    # the cutoffs complete before kept their rows (a split down: test -> validation -> train)
    older = lambda f: f[(f.dataset != "score") & (f.cutoff < pd.Timestamp("2019-11-25"))]  # noqa: E731
    pd.testing.assert_frame_equal(
        older(items).drop(columns="dataset").reset_index(drop=True),
        older(items_built).drop(columns="dataset").reset_index(drop=True),
    )
    # and so did the cart rows of the days before the rebuilt ones (Nov 30 and Dec 1)
    before = lambda f: f[f.session_start < pd.Timestamp("2019-11-30")].drop(columns="dataset")  # noqa: E731
    pd.testing.assert_frame_equal(before(carts).reset_index(drop=True), before(carts_built).reset_index(drop=True))
    forward_rows = int((items.dataset == "score").sum())

    _land_day(built_copy, dt.date(2019, 12, 2), seed=102)
    assert run_pipeline(built_copy, instance, log=lambda _: None).ok
    items_after, carts_after, scores_after = _features(built_copy)
    # every complete cutoff's rows, their build time included, are those computed before
    kept = items_after[items_after.dataset != "score"].reset_index(drop=True)
    pd.testing.assert_frame_equal(kept, labelled.reset_index(drop=True))
    # the forward cutoff moved to the new data end and was computed again
    assert set(items_after.loc[items_after.dataset == "score", "cutoff"]) == {pd.Timestamp("2019-12-03")}
    # the holdout's predictions were kept, not scored again; only the forward rows were
    pd.testing.assert_frame_equal(scores_after, scores)
    assert _scored_now(instance, ECOMMERCE_PREDICTIONS) == int((items_after.dataset == "score").sum())
    assert forward_rows > 0
    # cart rows of the days before the rebuilt ones (Dec 1 and 2) are kept as they were
    old = lambda f: f[f.session_start < pd.Timestamp("2019-12-01")].drop(columns="dataset")  # noqa: E731
    pd.testing.assert_frame_equal(old(carts_after).reset_index(drop=True), old(carts).reset_index(drop=True))
    # only the test sessions of the rebuilt days were scored (Dec 1 and 2: a session can cross midnight)
    rebuilt_test = (carts_after.dataset == "test") & (carts_after.session_start >= pd.Timestamp("2019-12-01"))
    assert (rebuilt_test & ~carts_after.session_id.isin(carts.session_id)).any()
    assert _scored_now(instance, CART_ABANDONMENT_SCORES) == int(rebuilt_test.sum())
