"""A day's data costs a day's work downstream of silver too (issue 12): the purchase cutoffs sit on a
fixed calendar, the forward one too; a complete cutoff's rows are computed once and kept, a day inside
the week computes no purchase row, a day that closes a week adds the new forward and test cutoffs, a
late file recomputes the cutoffs whose window it changed and keeps the rows that came out the same;
the cart features of older days are kept; batch scoring scores only the rows without a current
prediction."""

from __future__ import annotations

import datetime as dt

import dagster as dg
import pandas as pd
import pytest

from ecom_assets.assets import predictions
from ecom_assets.assets.model_inputs import USER_ITEM_FEATURES
from ecom_assets.assets.predictions import CART_ABANDONMENT_SCORES, ECOMMERCE_PREDICTIONS
from ecom_assets.generator import GeneratorConfig, generate
from ecom_assets.ml.feature_cutoffs import calendar_cutoffs, refresh_user_item_features
from ecom_assets.ml.feature_specs import FeatureWindows
from ecom_assets.one_shot import run_pipeline
from ecom_assets.resources import build_ml_resources, build_resources, open_warehouse

WINDOWS = FeatureWindows()  # weekly Monday cutoffs, 7-day horizon, 28-day lookback


def test_a_new_day_moves_no_cutoff_and_closes_one_a_week():
    start = dt.date(2019, 10, 1)
    week = dt.timedelta(days=7)
    seen: dict[dt.date, set[dt.date]] = {}
    for days in range(40, 70):
        end = start + dt.timedelta(days=days)
        forward, *labelled = calendar_cutoffs(start, end, WINDOWS)
        # the forward cutoff is on the calendar too: the newest Monday at or before the data's end
        assert forward.dataset == "score" and forward.cutoff.weekday() == 0
        assert forward.cutoff <= end < forward.cutoff + week  # its label window is open
        assert all(p.cutoff.weekday() == 0 for p in labelled)  # Mondays
        assert all(p.cutoff + week <= end for p in labelled)  # label window closed
        assert [p.dataset for p in labelled[:2]] == ["test", "validation"]
        assert labelled[0].cutoff == forward.cutoff - week  # the newest complete one is the test set
        seen[end] = {p.cutoff for p in (forward, *labelled)}
    ends = sorted(seen)
    for before, after in zip(ends, ends[1:]):
        if after.weekday() == 0:  # the day before a Monday closes a week: a new forward cutoff
            assert seen[after] - seen[before] == {after}
        else:  # any other day moves no cutoff, the forward one included
            assert seen[after] == seen[before]


def test_the_data_end_forward_cutoff_moves_every_day_over_the_same_labelled_cutoffs():
    """ECOM_ML_FORWARD_CUTOFF=data_end: predictions fresh to the last event, rescored every day."""
    start, daily = dt.date(2019, 10, 1), FeatureWindows(forward_cutoff="data_end")
    for days in range(40, 50):
        end = start + dt.timedelta(days=days)
        forward, *labelled = calendar_cutoffs(start, end, daily)
        assert (forward.dataset, forward.cutoff) == ("score", end)
        assert labelled == calendar_cutoffs(start, end, WINDOWS)[1:]  # the labelled ones stay on the calendar
    with pytest.raises(ValueError, match="forward_cutoff='daily'"):
        FeatureWindows(forward_cutoff="daily").sql_params()


def _features(paths) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    with build_resources(paths)["duckdb"].read_connection() as con:
        items = con.execute("SELECT * FROM gold.user_item_features ORDER BY cutoff, user_id, item_id").df()
        carts = con.execute("SELECT * FROM gold.cart_session_features ORDER BY session_id").df()
        scores = con.execute("SELECT * FROM gold.ecommerce_predictions ORDER BY cutoff, visitorid, itemid").df()
    return items, carts, scores


def _land_day(paths, day: dt.date, seed: int, events: int = 1_000) -> None:
    generate(paths.landing, GeneratorConfig(events=events, days=1, start=day, seed=seed, file_per="day"))


def _scored_now(instance, key) -> int:
    event = instance.get_latest_materialization_event(key)
    return event.asset_materialization.metadata["rows_scored_now"].value


def _split(frame: pd.DataFrame, dataset: str) -> pd.DataFrame:
    return frame[frame.dataset == dataset].reset_index(drop=True)


def test_a_new_day_keeps_older_cutoffs_rows_and_their_scores(built_copy, instance):
    """The built home holds Oct 1 - Nov 30 (forward cutoff: Monday Nov 25). Dec 1 closes the Nov 25
    cutoff's label window: it becomes the test set and Dec 2 the forward cutoff. Dec 2, inside that
    week, computes no purchase row and scores none: every cutoff's rows, the forward one's included,
    the older days' cart rows and every prediction stay as they were; only the new sessions are scored."""
    items_built, carts_built, _ = _features(built_copy)
    assert set(_split(items_built, "score").cutoff) == {pd.Timestamp("2019-11-25")}
    _land_day(built_copy, dt.date(2019, 12, 1), seed=101)
    assert run_pipeline(built_copy, instance, log=lambda _: None).ok
    items, carts, scores = _features(built_copy)
    assert set(_split(items, "score").cutoff) == {pd.Timestamp("2019-12-02")}
    assert set(_split(items, "test").cutoff) == {pd.Timestamp("2019-11-25")}
    # the cutoffs complete before kept their rows (a split down: test -> validation -> train)
    older = lambda f: f[(f.dataset != "score") & (f.cutoff < pd.Timestamp("2019-11-25"))]  # noqa: E731
    pd.testing.assert_frame_equal(
        older(items).drop(columns="dataset").reset_index(drop=True),
        older(items_built).drop(columns="dataset").reset_index(drop=True),
    )
    # and so did the cart rows of the days before the rebuilt ones (Nov 30 and Dec 1)
    before = lambda f: f[f.session_start < pd.Timestamp("2019-11-30")].drop(columns="dataset")  # noqa: E731
    pd.testing.assert_frame_equal(before(carts).reset_index(drop=True), before(carts_built).reset_index(drop=True))
    assert len(_split(items, "score")) > 0

    _land_day(built_copy, dt.date(2019, 12, 2), seed=102)
    assert run_pipeline(built_copy, instance, log=lambda _: None).ok
    items_after, carts_after, scores_after = _features(built_copy)
    # every cutoff's rows, the forward one's too, their build time included, are those computed before
    pd.testing.assert_frame_equal(items_after, items)
    # no prediction was scored again, forward or holdout
    pd.testing.assert_frame_equal(scores_after, scores)
    assert _scored_now(instance, ECOMMERCE_PREDICTIONS) == 0
    # cart rows of the days before the rebuilt ones (Dec 1 and 2) are kept as they were
    old = lambda f: f[f.session_start < pd.Timestamp("2019-12-01")].drop(columns="dataset")  # noqa: E731
    pd.testing.assert_frame_equal(old(carts_after).reset_index(drop=True), old(carts).reset_index(drop=True))
    # only the test sessions of the rebuilt days were scored (Dec 1 and 2: a session can cross midnight)
    rebuilt_test = (carts_after.dataset == "test") & (carts_after.session_start >= pd.Timestamp("2019-12-01"))
    assert (rebuilt_test & ~carts_after.session_id.isin(carts.session_id)).any()
    assert _scored_now(instance, CART_ABANDONMENT_SCORES) == int(rebuilt_test.sum())


def _values(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.drop(columns="features_built_at").set_index(["cutoff", "user_id", "item_id"]).sort_index()


def test_a_late_file_rescores_only_the_rows_it_changed_and_matches_a_full_build(built_copy, instance):
    """A late file dated Nov 20 lands in the forward cutoff's lookback (Nov 25: [Oct 28, Nov 25)) and
    in the test cutoff's label window (Nov 18: [Nov 18, Nov 25)): both are computed again, the older
    ones kept. The rows that came out the same keep their build time and their predictions; only the
    others are scored, and the table and the scores equal a full rebuild's on the same silver."""
    items, _, scores = _features(built_copy)
    _land_day(built_copy, dt.date(2019, 11, 20), seed=103, events=300)
    assert run_pipeline(built_copy, instance, log=lambda _: None).ok
    items_after, _, scores_after = _features(built_copy)
    event = instance.get_latest_materialization_event(USER_ITEM_FEATURES).asset_materialization.metadata
    assert event["cutoffs_computed"].value == "2019-11-25, 2019-11-18"

    new, old = _values(items_after), _values(items)
    common = new.index.intersection(old.index)
    same = (new.loc[common].fillna(-1) == old.loc[common].fillna(-1)).all(axis=1)
    unchanged = same[same].index
    changed = new.index.difference(unchanged)
    assert 0 < len(changed) < len(new) / 2  # the file touched some pairs, users and items, not most
    stamps = items_after.set_index(["cutoff", "user_id", "item_id"])["features_built_at"]
    old_stamps = items.set_index(["cutoff", "user_id", "item_id"])["features_built_at"]
    assert (stamps.loc[unchanged] == old_stamps.loc[unchanged]).all()  # kept, build time included
    assert (stamps.loc[changed] > old_stamps.max()).all()  # written now
    assert event["rows_changed"].value == len(changed)

    # only the published rows that changed were scored; the others' predictions are the ones before
    published = new.loc[changed]
    assert _scored_now(instance, ECOMMERCE_PREDICTIONS) == int(published.dataset.isin(["test", "score"]).sum())
    keys = ["cutoff", "visitorid", "itemid"]
    by_key = lambda f: f.set_index(keys).rename_axis(["cutoff", "user_id", "item_id"])  # noqa: E731
    kept = by_key(scores).index.intersection(unchanged)
    assert len(kept) > 0
    pd.testing.assert_frame_equal(by_key(scores_after).loc[kept], by_key(scores).loc[kept])

    # a full rebuild on the same silver computes the same rows, and scoring them gives the same scores
    resources = build_resources(built_copy)
    with open_warehouse(resources["duckdb"], resources["settings"]) as con:
        refresh_user_item_features(con, WINDOWS, everything=True)
    rebuilt, _, _ = _features(built_copy)
    pd.testing.assert_frame_equal(_values(rebuilt), new)
    assert dg.materialize(
        [predictions.ecommerce_predictions], resources={**resources, **build_ml_resources()}, instance=instance
    ).success
    _, _, rescored = _features(built_copy)
    columns = [*keys, "dataset", "predicted_prob", "mlflow_run_id"]
    pd.testing.assert_frame_equal(rescored[columns], scores_after[columns])
