"""How silver routes a file's lines to events and duplicates since the load got faster (issue 12,
item 7): repeats within a file are found by hash but decided by their exact text, and other files'
events are looked up only within the file's span of event times, edges included."""

from __future__ import annotations

from pathlib import Path

import pytest

from ecom_assets.lakehouse.data_tests import DATA_TESTS, find_violations
from ecom_assets.lakehouse.ingest import load_bronze, load_silver
from ecom_assets.lakehouse.landing import REES46
from ecom_assets.lakehouse.warehouse import ensure_schema
from ecom_assets.resources import build_resources

ACCOUNTING = next(t for t in DATA_TESTS if t.name == "accounting_balances")


def line(time: str, item: str = "44600062", user: str = "541312140", price: str = "35.79") -> str:
    return f"2019-{time} UTC,view,{item},2103807459595387724,,shiseido,{price},{user},72d76fde-8bb3-4e00-8c23"


@pytest.fixture
def con(paths):
    with build_resources(paths)["duckdb"].get_connection() as connection:
        ensure_schema(connection)
        yield connection


def land(con, paths, name: str, *lines: str):
    (paths.landing / name).write_text("\n".join([REES46.header, *lines]) + "\n")
    load_bronze(con, paths.landing / name)
    return load_silver(con, name)


def duplicates(con, name: str) -> list[tuple]:
    return con.execute(
        "SELECT line_number, duplicate_of_file, duplicate_of_line FROM silver.events_duplicates "
        "WHERE source_file = ? ORDER BY 1",
        [name],
    ).fetchall()


def test_a_repeat_is_the_same_text_not_the_same_event(con, paths):
    first = line("10-01 08:00:00")
    report = land(
        con,
        paths,
        "a.csv",
        first,
        line("10-01 08:00:00", item="044600062"),  # the same event once parsed, other text: an event
        first,  # the same text: a repeat of line 2
        line("10-01 08:00:00", price="35.790"),
        first,
    )
    assert (report.events, report.duplicates, report.quarantined) == (3, 2, 0)
    assert duplicates(con, "a.csv") == [(4, "a.csv", 2), (6, "a.csv", 2)]


def test_other_files_events_are_found_at_the_edges_of_the_files_time_span(con, paths):
    earliest, latest = line("10-01 00:00:00"), line("10-10 12:00:00", user="7")
    land(con, paths, "a.csv", earliest, line("10-05 09:30:00"), latest)
    # b starts with a's last event; c ends with a's first; d shares no time with a.
    later = land(con, paths, "b.csv", latest, line("10-20 10:00:00"))
    earlier = land(con, paths, "c.csv", line("09-01 10:00:00"), earliest)
    apart = land(con, paths, "d.csv", line("11-02 10:00:00"), line("11-03 10:00:00"))
    assert (later.events, later.duplicates, later.duplicates_of_other_files) == (1, 1, 1)
    assert duplicates(con, "b.csv") == [(2, "a.csv", 4)]
    assert (earlier.events, earlier.duplicates_of_other_files) == (1, 1)
    assert duplicates(con, "c.csv") == [(3, "a.csv", 2)]
    assert (apart.events, apart.duplicates) == (2, 0)
    assert find_violations(con, ACCOUNTING).count == 0


def test_the_parsed_lines_pass_through_a_scratch_file_that_is_gone_after_the_load(con, paths):
    """Silver writes a file's parsed lines to a scratch Parquet file (not a temp table, which the transaction
    would hold in memory to its end) and routes from it: the rules that come first still win (bytes that are
    not UTF-8 over broken quoting), a repeat of a rejected line is rejected too, a valid line is no repeat of a
    rejected one that shows the same text, and no scratch file stays behind."""
    first, bad = line("10-01 08:00:00"), line("10-01 09:00:00", price="-1")
    shown = line("10-04 08:00:00", user="9").replace("shiseido", "shi\ufffdseido")  # valid UTF-8
    lines = [REES46.header.encode(), *(t.encode() for t in (first, bad, line("10-02 08:00:00"), bad, first))]
    lines += [shown.replace("\ufffd", "\x00").encode().replace(b"\x00", b"\xff"), shown.encode()]  # bytes, text
    lines += [b'"unclosed,' + b"\xff", first.encode()]
    (paths.landing / "s.csv").write_bytes(b"\n".join(lines) + b"\n")
    load_bronze(con, paths.landing / "s.csv")
    report = load_silver(con, "s.csv")
    assert (report.events, report.duplicates, report.quarantined) == (3, 2, 4)
    assert duplicates(con, "s.csv") == [(6, "s.csv", 2), (10, "s.csv", 2)]
    reasons = con.execute(
        "SELECT line_number, reason FROM silver.events_quarantine WHERE source_file = 's.csv' ORDER BY 1"
    ).fetchall()
    assert [n for n, _ in reasons] == [3, 5, 7, 9]
    assert reasons[1][1] == reasons[0][1] == "negative price -1"
    assert reasons[2][1] == reasons[3][1] == "invalid UTF-8 (the exact bytes are in bronze.events.raw_bytes)"
    assert find_violations(con, ACCOUNTING).count == 0
    scratch = con.execute("SELECT current_setting('temp_directory')").fetchone()[0]
    assert list(Path(scratch).glob("silver-*")) == []
