"""Day partitions: however the days arrive (one file, a file per day, a day late), silver, the
sessions and their ids, and the model features computed after each arrival (only what changed) come out
the same; an unchanged file recomputes nothing, a changed one exactly
its days; day ranges publish side by side while a reader reads; a planted violation fails its day."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import dagster as dg
import pytest

from ecom_assets.definitions import build_definitions
from ecom_assets.ecom_home import EcomPaths
from ecom_assets.generator import GeneratorConfig, generate
from ecom_assets.lakehouse import SQL, event_days
from ecom_assets.lakehouse.warehouse import run_sql_file
from ecom_assets.ml.feature_cutoffs import refresh_user_item_features
from ecom_assets.ml.feature_days import refresh_cart_session_features
from ecom_assets.ml.feature_specs import FeatureWindows
from ecom_assets.one_shot import build_stale_sessions, ingest_landing_files
from ecom_assets.resources import build_resources, open_warehouse
from ecom_assets.sensors import stale_session_ranges

DAYS = 4
START = dt.date(2019, 10, 1)
# Daily cutoffs over the 4 days: Oct 5 forward, Oct 4 test, Oct 3 validation, Oct 2 train.
FEATURE_WINDOWS = FeatureWindows(horizon_days=1, lookback_days=2, min_history_days=1)


@pytest.fixture(scope="module")
def day_files(tmp_path_factory) -> dict[dt.date, bytes]:
    """A generated export split into one REES46 file per day (header + that day's lines)."""
    folder = tmp_path_factory.mktemp("generated")
    generate(folder, GeneratorConfig(events=12_000, days=DAYS, seed=5))
    (export,) = sorted(folder.glob("*.csv"))
    header, *lines = export.read_bytes().splitlines(keepends=True)
    by_day: dict[dt.date, list[bytes]] = defaultdict(list)
    for line in lines:
        by_day[dt.date.fromisoformat(line[:10].decode())].append(line)
    assert sorted(by_day) == [START + dt.timedelta(days=i) for i in range(DAYS)]
    return {day: header + b"".join(day_lines) for day, day_lines in sorted(by_day.items())}


def _land(paths: EcomPaths, name: str, content: bytes) -> Path:
    path = paths.landing / name
    path.write_bytes(content)
    return path


def _ingest_and_sessionize(paths: EcomPaths, instance, files: list[Path]) -> list[dg.ExecuteInProcessResult]:
    defs = build_definitions(paths)
    for _, result in ingest_landing_files(defs, instance, files, log=lambda _: None):
        assert result.success
    runs = list(build_stale_sessions(defs, instance, log=lambda _: None))
    assert all(run.success for run in runs)
    resources = build_resources(paths)
    with open_warehouse(resources["duckdb"], resources["settings"]) as con:  # as each refresh: what changed only
        refresh_user_item_features(con, FEATURE_WINDOWS)
        refresh_cart_session_features(con, FEATURE_WINDOWS.horizon_days)
    return runs


def _snapshot(paths: EcomPaths) -> dict[str, list[tuple]]:
    with build_resources(paths)["duckdb"].get_connection() as con:
        run_sql_file(con, SQL / "gold_dim_users.sql")
        return {
            "silver": con.execute(
                "SELECT * EXCLUDE (source_file, line_number) FROM silver.events ORDER BY ALL"
            ).fetchall(),
            "sessions": con.execute("SELECT * FROM gold.fact_user_sessions ORDER BY session_id").fetchall(),
            "users": con.execute("SELECT * FROM gold.dim_users ORDER BY user_id").fetchall(),
            # when a row was computed differs by arrival; what it holds must not
            "user_item_features": con.execute(
                "SELECT * EXCLUDE (features_built_at) FROM gold.user_item_features ORDER BY cutoff, user_id, item_id"
            ).fetchall(),
            "cart_session_features": con.execute(
                "SELECT * EXCLUDE (features_built_at) FROM gold.cart_session_features ORDER BY session_id"
            ).fetchall(),
        }


@pytest.fixture(scope="module")
def all_at_once(day_files, tmp_path_factory) -> dict[str, list[tuple]]:
    home = EcomPaths(tmp_path_factory.mktemp("once") / "home").ensure()
    with pytest.MonkeyPatch.context() as env, dg.instance_for_test() as instance:
        env.setenv("ECOM_HOME", str(home.home))
        _ingest_and_sessionize(home, instance, [_land(home, "all.csv", b"".join(_all(day_files)))])
        return _snapshot(home)


def _all(day_files: dict[dt.date, bytes]) -> list[bytes]:
    first, *rest = day_files.values()
    return [first, *(content.split(b"\n", 1)[1] for content in rest)]


def test_sessions_cross_midnight_and_ids_say_user_and_start(all_at_once):
    sessions = all_at_once["sessions"]
    assert len({s[0] for s in sessions}) == len(sessions)
    crossing = [s for s in sessions if s[3].date() > s[2].date()]
    assert crossing, "the generated days should hold sessions that cross midnight"
    for session_id, user_id, start, *_ in sessions:
        assert session_id == f"{user_id}-{start:%Y%m%dT%H%M%S}"


@pytest.mark.parametrize("order", ["day_by_day", "a_day_late"])
def test_days_in_any_order_give_the_same_silver_sessions_and_users(paths, instance, day_files, all_at_once, order):
    days = list(day_files)
    if order == "a_day_late":
        days = [days[0], *days[2:], days[1]]  # the second day's file lands last
    for day in days:
        _ingest_and_sessionize(paths, instance, [_land(paths, f"{day}.csv", day_files[day])])
    snapshot = _snapshot(paths)
    assert {c[0] for c in snapshot["user_item_features"]} == {dt.datetime(2019, 10, d) for d in (2, 3, 4, 5)}
    assert {c[2] for c in snapshot["user_item_features"]} == {"score", "test", "validation", "train"}
    assert {c[4] for c in snapshot["cart_session_features"]} == {"test", "validation", "train"}
    assert snapshot == all_at_once


def test_an_unchanged_file_recomputes_nothing_and_a_changed_one_exactly_its_days(paths, instance, day_files):
    files = [_land(paths, f"{day}.csv", content) for day, content in day_files.items()]
    first = _ingest_and_sessionize(paths, instance, files)
    assert len(first) == 1  # one run over the consecutive days
    warehouse = build_resources(paths)["duckdb"]
    # The same bytes again (forced past the one-shot's skip): no day changed, no session day is stale.
    assert _ingest_and_sessionize(paths, instance, files[1:2]) == []
    # One event of the second day altered: that day and the day on either side, in one run.
    second = files[1]
    header, line, *rest = second.read_bytes().splitlines(keepends=True)
    second.write_bytes(header + line.replace(b",view,", b",cart,", 1) + b"".join(rest))
    defs = build_definitions(paths)
    for _, result in ingest_landing_files(defs, instance, [second], log=lambda _: None):
        assert result.success
    assert [(s, e) for s, e, _ in stale_session_ranges(warehouse)] == [(START, START + dt.timedelta(days=3))]
    (run,) = list(build_stale_sessions(defs, instance, log=lambda _: None))
    assert run.dagster_run.tags["dagster/asset_partition_range_start"] == str(START)
    assert run.dagster_run.tags["dagster/asset_partition_range_end"] == str(START + dt.timedelta(days=2))
    assert stale_session_ranges(warehouse) == []


READER = """
import sys, time
from ecom_assets.ecom_home import EcomPaths
from ecom_assets.resources import build_resources, open_warehouse
warehouse = build_resources(EcomPaths(__import__("pathlib").Path(sys.argv[1])))["duckdb"]
reads, deadline = 0, time.monotonic() + float(sys.argv[2])
while time.monotonic() < deadline:
    with warehouse.read_connection() as con:
        days = con.execute("SELECT session_date, count(*) FROM gold.fact_user_sessions GROUP BY 1").fetchall()
    reads += 1
print(reads, flush=True)
"""

WRITER = """
import sys, datetime as dt
import dagster as dg
from ecom_assets.definitions import build_definitions
from ecom_assets.ecom_home import EcomPaths
from ecom_assets.lakehouse.event_days import partition_range_tags
defs = build_definitions(EcomPaths(__import__("pathlib").Path(sys.argv[1])))
start, end = dt.date.fromisoformat(sys.argv[2]), dt.date.fromisoformat(sys.argv[3])
with dg.instance_for_test() as instance:
    result = defs.resolve_job_def("build_sessions").execute_in_process(
        instance=instance, tags=partition_range_tags(start, end), raise_on_error=False)
print("ok" if result.success else "failed", flush=True)
"""


def test_two_day_ranges_publish_side_by_side_while_a_reader_reads(paths, instance, day_files):
    files = [_land(paths, f"{day}.csv", content) for day, content in day_files.items()]
    _ingest_and_sessionize(paths, instance, files)
    before = _snapshot(paths)["sessions"]
    env = {"ECOM_HOME": str(paths.home)}
    python = [sys.executable, "-c"]
    reader = subprocess.Popen([*python, READER, str(paths.home), "20"], stdout=subprocess.PIPE, text=True, env=env)
    halves = [(START, START + dt.timedelta(days=2)), (START + dt.timedelta(days=2), START + dt.timedelta(days=DAYS))]
    writers = [
        subprocess.Popen([*python, WRITER, str(paths.home), str(s), str(e)], stdout=subprocess.PIPE, text=True, env=env)
        for s, e in halves
    ]
    outputs = [w.communicate(timeout=300)[0].strip() for w in writers]
    reads, _ = reader.communicate(timeout=300)
    assert outputs == ["ok", "ok"]
    assert reader.returncode == 0 and int(reads) > 10
    assert _snapshot(paths)["sessions"] == before


def test_a_violation_planted_in_one_day_fails_that_days_check_only(paths, instance, day_files):
    files = [_land(paths, f"{day}.csv", content) for day, content in day_files.items()]
    _ingest_and_sessionize(paths, instance, files)
    bad_day = START + dt.timedelta(days=2)
    with build_resources(paths)["duckdb"].get_connection() as con:
        con.execute(
            "INSERT INTO silver.events (event_time, event_type, user_id, item_id, source_file, line_number) "
            "VALUES (? + INTERVAL 12 HOUR, 'view', NULL, 1, 'planted.csv', 2)",
            [bad_day],
        )
    job = build_definitions(paths).resolve_job_def("build_sessions")
    results = {}
    for day in (START, bad_day):
        run = job.execute_in_process(instance=instance, partition_key=str(day), raise_on_error=False)
        results[day] = {e.check_name: e.passed for e in run.get_asset_check_evaluations()}
    assert all(results[START].values())
    assert results[bad_day]["not_null_keys"] is False
    assert results[bad_day]["unique_session_id"] is True


def test_day_ranges_of_stale_days():
    d = [START + dt.timedelta(days=i) for i in (0, 1, 2, 5, 7, 8)]
    assert event_days.day_ranges(d) == [
        (d[0], d[2] + dt.timedelta(days=1)),
        (d[3], d[3] + dt.timedelta(days=1)),
        (d[4], d[5] + dt.timedelta(days=1)),
    ]
