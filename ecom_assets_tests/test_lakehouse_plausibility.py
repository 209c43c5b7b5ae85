"""Silver's plausibility rules (silver_parse_*.sql): an implausible event time, price or timestamp, or a
control character in a field, sends the line to quarantine with its reason; the bounds are settings."""

from __future__ import annotations

import datetime as dt

import duckdb
import pytest

from ecom_assets.lakehouse.ingest import load_bronze, load_silver
from ecom_assets.lakehouse.warehouse import ensure_schema
from ecom_assets.resources import EcomSettings, build_resources, open_warehouse
from ecom_assets_tests.conftest import ingest, landed_cleanly, query

REES46_HEADER = "event_time,event_type,product_id,category_id,category_code,brand,price,user_id,user_session"
RETAILROCKET_HEADER = "timestamp,visitorid,event,itemid,transactionid"


def _rees46(event_time="2019-10-01 00:00:05 UTC", brand="acme", price="1.50", category="") -> bytes:
    line = f"{event_time},view,5802432,1487580009286598681,{category},{brand},{price},463240011,s-1\n"
    return line.encode()


def _utc(delta: dt.timedelta) -> str:
    """A REES46 event time `delta` from now, the landing time of a file ingested by this test."""
    return (dt.datetime.now(dt.UTC) + delta).strftime("%Y-%m-%d %H:%M:%S UTC")


def _write(path, header: str, lines: list[bytes]) -> None:
    path.write_bytes(header.encode() + b"\n" + b"".join(lines))


def _reasons(paths, source_file: str) -> dict[int, str]:
    return dict(
        query(
            paths,
            "SELECT line_number, reason FROM silver.events_quarantine WHERE source_file = ? ORDER BY 1",
            [source_file],
        )
    )


def _silver_lines(paths, source_file: str) -> list[int]:
    rows = query(paths, "SELECT line_number FROM silver.events WHERE source_file = ? ORDER BY 1", [source_file])
    return [r[0] for r in rows]


REES46_LINES = [
    _rees46(),  # 2: valid
    _rees46(event_time="2099-01-01 00:00:00 UTC"),  # 3
    _rees46(event_time="0001-01-01 00:00:00 UTC"),  # 4
    _rees46(event_time="9999-12-31 23:59:59 UTC"),  # 5
    _rees46(event_time="1999-12-31 23:59:59 UTC"),  # 6: a second before the window
    _rees46(event_time="2000-01-01 00:00:00 UTC", brand="first"),  # 7: the window's first second
    _rees46(event_time=_utc(dt.timedelta(hours=12))),  # 8: within a day after landing
    _rees46(event_time=_utc(dt.timedelta(hours=25))),  # 9
    _rees46(price="1" + "0" * 400),  # 10: parses as inf
    _rees46(price="1000000.01"),  # 11
    _rees46(price="1000000", brand="dearest"),  # 12: the bound itself
    _rees46(brand="ac\x00me"),  # 13
    _rees46(category="electronics\tphone"),  # 14
    _rees46(brand="ac\x7fme"),  # 15
    _rees46(brand="ac\x85me"),  # 16: a C1 control (NEL), valid UTF-8
]

REES46_REASONS = {
    3: "event_time more than 1 day(s) after landing '2099-01-01 00:00:00 UTC'",
    4: "event_time before 2000-01-01 00:00:00 '0001-01-01 00:00:00 UTC'",
    5: "event_time more than 1 day(s) after landing '9999-12-31 23:59:59 UTC'",
    6: "event_time before 2000-01-01 00:00:00 '1999-12-31 23:59:59 UTC'",
    10: "price above 1000000.0 '1" + "0" * 400 + "'",
    11: "price above 1000000.0 '1000000.01'",
    13: "brand holds control character U+0000",
    14: "category_code holds control character U+0009",
    15: "brand holds control character U+007F",
    16: "brand holds control character U+0085",
}


def test_implausible_rees46_lines_are_quarantined_with_their_reason(paths, instance):
    _write(paths.landing / "odd.csv", REES46_HEADER, REES46_LINES)
    assert landed_cleanly(ingest(paths, instance, raise_on_error=False))
    reasons = _reasons(paths, "odd.csv")
    assert {k: v for k, v in reasons.items() if k != 9} == REES46_REASONS
    assert reasons[9].startswith("event_time more than 1 day(s) after landing '")
    assert _silver_lines(paths, "odd.csv") == [2, 7, 8, 12]
    events = query(paths, "SELECT brand, price FROM silver.events WHERE source_file = 'odd.csv' ORDER BY line_number")
    assert events[1] == ("first", 1.5) and events[3] == ("dearest", 1_000_000.0)
    assert query(paths, "SELECT count(*) FROM silver.events WHERE NOT isfinite(price)") == [(0,)]


def test_retailrocket_timestamps_must_be_13_digit_milliseconds(paths, instance):
    _write(
        paths.landing / "events.csv",
        RETAILROCKET_HEADER,
        [
            b"1433221332117,257597,view,355908,\n",  # 2: valid, 2015-06-02
            b"1433221332,257597,view,355908,\n",  # 3: seconds
            b"1433221332117000,257597,view,355908,\n",  # 4: microseconds
            b"9999999999999,257597,view,355908,\n",  # 5: 13 digits, year 2286
            b"1433221332117,2575\x0097,view,355908,\n",  # 6
            b"-433221332117,257597,view,355908,\n",  # 7
        ],
    )
    assert landed_cleanly(ingest(paths, instance, raise_on_error=False))
    assert _reasons(paths, "events.csv") == {
        3: "timestamp not 13-digit Unix milliseconds '1433221332'",
        4: "timestamp not 13-digit Unix milliseconds '1433221332117000'",
        5: "event_time more than 1 day(s) after landing '9999999999999'",
        6: "visitorid holds control character U+0000",
        7: "timestamp not 13-digit Unix milliseconds '-433221332117'",
    }
    assert _silver_lines(paths, "events.csv") == [2]


def test_the_bounds_are_settings(paths, instance, monkeypatch):
    monkeypatch.setenv("ECOM_EARLIEST_EVENT_TIME", "2015-06-01")
    monkeypatch.setenv("ECOM_MAX_DAYS_AFTER_LANDING", "3")
    monkeypatch.setenv("ECOM_MAX_PRICE", "100")
    _write(
        paths.landing / "odd.csv",
        REES46_HEADER,
        [
            _rees46(event_time="2015-05-31 23:59:59 UTC"),  # 2
            _rees46(event_time="2015-06-01 00:00:00 UTC"),  # 3
            _rees46(event_time=_utc(dt.timedelta(days=2))),  # 4: within 3 days now
            _rees46(price="100.01"),  # 5
            _rees46(price="100"),  # 6
        ],
    )
    _write(paths.landing / "events.csv", RETAILROCKET_HEADER, [b"1433116799999,1,view,2,\n"])  # 2015-05-31
    assert landed_cleanly(ingest(paths, instance, raise_on_error=False))
    assert _reasons(paths, "odd.csv") == {
        2: "event_time before 2015-06-01 00:00:00 '2015-05-31 23:59:59 UTC'",
        5: "price above 100.0 '100.01'",
    }
    assert _reasons(paths, "events.csv") == {2: "event_time before 2015-06-01 00:00:00 '1433116799999'"}


def test_a_bare_connection_applies_the_same_defaults(paths):
    """load_bronze / load_silver outside a run (no open_warehouse) quarantine exactly as the job does."""
    _write(paths.landing / "odd.csv", REES46_HEADER, REES46_LINES)
    con = duckdb.connect(str(paths.home / "bare.duckdb"))
    try:
        ensure_schema(con)
        assert load_bronze(con, paths.landing / "odd.csv").data_lines == len(REES46_LINES)
        report = load_silver(con, "odd.csv")
        reasons = dict(con.execute("SELECT line_number, reason FROM silver.events_quarantine").fetchall())
    finally:
        con.close()
    assert report.balanced and report.events == 4 and report.quarantined == len(REES46_REASONS) + 1
    assert {k: v for k, v in reasons.items() if k != 9} == REES46_REASONS
    # Reasons group by kind in the run's metadata, the offending value left out.
    assert report.quarantine_reasons == {
        "event_time more than 1 day(s) after landing": 3,
        "event_time before 2000-01-01 00:00:00": 2,
        "price above 1000000.0": 2,
        "brand holds control character U+0000": 1,
        "category_code holds control character U+0009": 1,
        "brand holds control character U+007F": 1,
        "brand holds control character U+0085": 1,
    }


def test_control_characters_are_found_whether_or_not_bronze_flagged_the_line(paths):
    """Bronze flags the lines that may hold a control character and silver's regex looks only at those; lines
    loaded before the flag existed (NULL) are all looked at, and the same lines are quarantined either way."""
    _write(paths.landing / "odd.csv", REES46_HEADER, REES46_LINES)
    con = duckdb.connect(str(paths.home / "bare.duckdb"))
    try:
        ensure_schema(con)
        load_bronze(con, paths.landing / "odd.csv")
        flagged = con.execute("SELECT line_number FROM bronze.events WHERE may_hold_control ORDER BY 1").fetchall()
        load_silver(con, "odd.csv")
        flagged_run = con.execute("SELECT line_number, reason FROM silver.events_quarantine ORDER BY 1").fetchall()
        con.execute("UPDATE bronze.events SET may_hold_control = NULL")  # as a lake loaded before the column
        load_silver(con, "odd.csv")
        unflagged_run = con.execute("SELECT line_number, reason FROM silver.events_quarantine ORDER BY 1").fetchall()
    finally:
        con.close()
    assert [n for (n,) in flagged] == [13, 14, 15, 16]  # NUL, tab, DEL, U+0085 (0xC2 0x85)
    assert flagged_run == unflagged_run
    assert [n for n, reason in flagged_run if "control character" in reason] == [13, 14, 15, 16]


def test_a_bad_earliest_event_time_names_its_variable(paths):
    settings = EcomSettings(home=str(paths.home), earliest_event_time="last tuesday")
    with pytest.raises(ValueError, match="ECOM_EARLIEST_EVENT_TIME='last tuesday'"):
        with open_warehouse(build_resources(paths)["duckdb"], settings):
            pass
