"""lakehouse.ingest through the ingest job alone (the bronze and silver assets with their checks):
real export quirks land exactly where they should, bad files are reported, re-landing replaces."""

import datetime as dt
import gzip
import shutil

import dagster as dg

from ecom_assets.assets.silver import SILVER_EVENTS
from ecom_assets.definitions import build_definitions
from ecom_assets.lakehouse.ingest import load_bronze
from ecom_assets.partitions import landing_files
from ecom_assets.resources import build_resources
from ecom_assets_tests.conftest import FIXTURES, ingest, land, landed_cleanly, query

REES = "rees46_quirks.csv"
RR = "retailrocket_quirks.csv"


def lines(paths, table, source_file):
    return [
        r[0] for r in query(paths, f"SELECT line_number FROM {table} WHERE source_file = ? ORDER BY 1", [source_file])
    ]


def _warnings(results: list[dg.ExecuteInProcessResult]) -> dict[str, str]:
    """The latest warning per check, keyed like `ecom-assets run` reports them."""
    return {
        f"{e.asset_key.to_user_string()} / {e.check_name}": e.description or ""
        for r in results
        for e in r.get_asset_check_evaluations()
        if not e.passed and e.severity == dg.AssetCheckSeverity.WARN
    }


def test_rees46_quirks_route_every_line(paths, instance):
    land(paths, REES)
    assert landed_cleanly(ingest(paths, instance, raise_on_error=False))
    # CRLF endings, unsorted rows, a 19-digit user id, a 0.00 price and empty brand/category are valid.
    assert lines(paths, "silver.events", REES) == [2, 3, 5, 13]
    assert query(paths, "SELECT line_number, duplicate_of_line FROM silver.events_duplicates") == [(4, 2)]
    reasons = dict(query(paths, "SELECT line_number, reason FROM silver.events_quarantine ORDER BY 1"))
    assert reasons == {
        6: "negative price -3.50",
        7: "missing user_session",
        8: "unknown event type 'wishlist'",
        9: "unparseable event_time 'not-a-time'",
        10: "missing or invalid user_id ''",
        11: "empty line",
        12: "expected 9 fields, found 4",
        14: "negative price -3.50",  # a repeat of a quarantined line stays in quarantine
        15: "expected 9 fields, found 8",  # the last line, cut short with no newline
    }
    rows = query(
        paths,
        """SELECT line_number, event_time, event_type, user_id, item_id, category_id,
                                  brand, category, price FROM silver.events ORDER BY line_number""",
    )
    assert rows[0] == (
        2,
        dt.datetime(2019, 10, 1, 0, 0, 5),
        "view",
        463240011,
        5802432,
        "1487580009286598681",
        None,
        None,
        0.32,
    )
    assert rows[2][2] == "purchase" and rows[2][8] == 0.0 and rows[2][6] == "runail"
    assert rows[3][3] == 1234567890123456789  # 19 digits survive exactly
    raw = query(paths, "SELECT raw_line FROM bronze.events WHERE line_number = 15")[0][0]
    assert raw.endswith(",grattol,5.24,57")  # bronze keeps the cut line as landed


def test_retailrocket_quirks_gzip_and_float_transaction_ids(paths, instance):
    with open(FIXTURES / RR, "rb") as src, gzip.open(paths.landing / "events.csv.gz", "wb") as dst:
        shutil.copyfileobj(src, dst)
    assert landed_cleanly(ingest(paths, instance, raise_on_error=False))
    name = "events.csv.gz"
    assert lines(paths, "silver.events", name) == [2, 3, 4, 5, 11]
    assert query(paths, "SELECT line_number, duplicate_of_line FROM silver.events_duplicates") == [(6, 2)]
    assert lines(paths, "silver.events_quarantine", name) == [7, 8, 9, 10, 12]
    purchase = query(
        paths,
        "SELECT event_type, transaction_id, event_time, session_id, price FROM silver.events WHERE line_number = 5",
    )[0]
    assert purchase == ("purchase", "8693", dt.datetime(2015, 6, 2, 5, 17, 56, 276000), None, None)
    assert query(paths, "SELECT event_type FROM silver.events WHERE line_number = 4") == [("cart",)]
    assert query(paths, "SELECT user_id FROM silver.events WHERE line_number = 11") == [(9223372036854775807,)]


def test_bad_files_are_reported_not_fatal(paths, instance):
    land(paths, REES)
    (paths.landing / "empty.csv").write_bytes(b"")
    (paths.landing / "orders.csv").write_text("order_id,amount\n1,2\n")
    (paths.landing / "header_only.csv").write_text("timestamp,visitorid,event,itemid,transactionid\n")
    results = ingest(paths, instance, raise_on_error=False)
    assert landed_cleanly(results)
    assert lines(paths, "silver.events", REES) == [2, 3, 5, 13]  # the good file still loads
    status = dict(query(paths, "SELECT source_file, status FROM bronze.landing_files"))
    assert status == {
        REES: "accepted",
        "empty.csv": "rejected",
        "orders.csv": "rejected",
        "header_only.csv": "header_only",
    }
    warning = _warnings(results)["bronze/events / landing_files_accepted"]
    assert warning.startswith("3 offending row(s)") and "orders.csv" in warning
    # The run's metadata says why, in words.
    records = instance.fetch_materializations(dg.AssetKey(["bronze", "events"]), limit=10).records
    messages = {r.partition_key: r.asset_materialization.metadata["message"].value for r in records}
    assert "unknown format, header is 'order_id,amount'" in messages["orders.csv"]
    assert "the file is empty" in messages["empty.csv"]


def test_rematerializing_a_partition_replaces_it(paths, instance):
    land(paths, REES, RR)
    defs = build_definitions(paths)
    instance.add_dynamic_partitions(landing_files.name, [REES, RR])
    job = defs.resolve_job_def("ingest_landing_file")
    counts = (
        "SELECT (SELECT count(*) FROM bronze.events), (SELECT count(*) FROM silver.events), "
        "(SELECT count(*) FROM silver.events_quarantine), (SELECT count(*) FROM silver.events_duplicates)"
    )
    for key in (REES, RR):
        assert job.execute_in_process(partition_key=key, instance=instance).success
    first = query(paths, counts)
    assert first == [(25, 9, 14, 2)]
    assert job.execute_in_process(partition_key=REES, instance=instance).success
    assert query(paths, counts) == first


def test_unreadable_relanding_keeps_the_previous_good_lines(paths):
    land(paths, REES)
    with build_resources(paths)["duckdb"].get_connection() as con:
        from ecom_assets.lakehouse.warehouse import ensure_schema

        ensure_schema(con)
        assert load_bronze(con, paths.landing / REES).data_lines == 14
        (paths.landing / REES).write_text("garbage,header\n1,2\n")
        report = load_bronze(con, paths.landing / REES)
        assert report.status == "rejected" and "unknown format" in report.message
        assert con.execute("SELECT count(*) FROM bronze.events").fetchone() == (14,)


def _freshness(paths) -> dg.FreshnessPolicy:
    return build_definitions(paths).resolve_assets_def(SILVER_EVENTS).specs_by_key[SILVER_EVENTS].freshness_policy


def test_silver_declares_how_fresh_landing_data_should_be(paths):
    policy = _freshness(paths)
    assert policy is not None
    assert policy.warn_window.to_timedelta() < policy.fail_window.to_timedelta()


def test_freshness_windows_are_configurable(paths, monkeypatch):
    monkeypatch.setenv("ECOM_FRESHNESS_WARN_HOURS", "2")
    monkeypatch.setenv("ECOM_FRESHNESS_FAIL_HOURS", "5.5")
    policy = _freshness(paths)
    assert policy.warn_window.to_timedelta().total_seconds() == 2 * 3600
    assert policy.fail_window.to_timedelta().total_seconds() == 5.5 * 3600
