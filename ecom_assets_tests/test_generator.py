"""The synthetic world looks like the real export and carries the signals later issues need."""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib

import duckdb
import pandas as pd
import pytest

from ecom_assets.experiment.assignment import group_sql
from ecom_assets.generator import REES46_HEADER, TRUTH_FILES, GeneratorConfig, generate, purchase_oracle
from ecom_assets.lakehouse.landing import REES46, detect_format, list_landing_files


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """120k events without duplicate lines (so per-session counts are the world's own), with the
    hidden truth written into the landing folder itself: the ingest must not pick it up."""
    out = tmp_path_factory.mktemp("landing")
    files = generate(out, GeneratorConfig(events=120_000, days=61, seed=7, duplicate_share=0.0), truth_dir=out)
    con = duckdb.connect()
    con.execute(f"CREATE VIEW e AS SELECT * FROM read_csv('{out}/*.csv', all_varchar=true, header=true)")
    con.execute(f"CREATE VIEW truth_sessions AS SELECT * FROM '{out}/truth_sessions.parquet'")
    return files, con


def test_monthly_files_named_like_the_real_export(generated):
    files, _ = generated
    assert [f.name for f in files] == ["2019-Oct.csv", "2019-Nov.csv"]
    assert files[0].read_text().splitlines()[0] == REES46_HEADER
    assert detect_format(files[0]) is REES46
    assert not list(files[0].parent.glob(".*"))  # no temp file left behind


def test_event_mix_is_a_funnel(generated):
    """Views far ahead of carts, carts ahead of removes and purchases, as in real shops (the
    cosmetics export has more carts; RetailRocket far fewer)."""
    _, con = generated
    mix = dict(con.execute("SELECT event_type, count(*) / sum(count(*)) OVER () FROM e GROUP BY 1").fetchall())
    assert 0.70 < mix["view"] < 0.90
    assert 0.08 < mix["cart"] < 0.20
    assert 0.01 < mix["purchase"] < 0.05
    assert mix["remove_from_cart"] < mix["cart"] and mix["purchase"] < mix["cart"]


def test_a_few_percent_of_users_buy_and_most_cart_sessions_are_abandoned(generated):
    _, con = generated
    control, abandoned = con.execute(f"""
        WITH u AS (SELECT user_id, max((event_type = 'purchase')::INT) buyer FROM e GROUP BY 1),
             s AS (SELECT user_session, max((event_type = 'purchase')::INT) bought FROM e
                   WHERE user_session IS NOT NULL GROUP BY 1 HAVING bool_or(event_type = 'cart'))
        SELECT (SELECT avg(buyer) FROM u WHERE {group_sql("user_id")} = 'control'),
               (SELECT 1 - avg(bought) FROM s)""").fetchone()
    assert 0.03 < control < 0.10
    assert 0.6 < abandoned < 0.85


def test_removes_never_exceed_the_carts_of_that_item_in_the_session(generated):
    _, con = generated
    worst, removed_pairs = con.execute("""
        WITH pairs AS (
            SELECT user_session, product_id,
                   count(*) FILTER (event_type = 'cart') AS carts,
                   count(*) FILTER (event_type = 'remove_from_cart') AS removes,
                   min(event_time) FILTER (event_type = 'cart') AS first_cart,
                   min(event_time) FILTER (event_type = 'remove_from_cart') AS first_remove
            FROM e
            -- a line that lost its session id (a quirk of the export) would split the user's counts
            WHERE user_id NOT IN (SELECT user_id FROM e WHERE user_session IS NULL)
            GROUP BY 1, 2)
        SELECT max(removes - carts), count(*) FILTER (removes > 0 AND first_remove >= first_cart)
        FROM pairs WHERE removes > 0""").fetchone()
    assert worst <= 0
    assert removed_pairs > 1_000  # and removes do happen, after a cart of the same item


def test_intent_changes_over_time_for_the_same_user(generated):
    """Hidden intent drifts: sessions of one user weeks apart are far less alike than a day apart,
    and what a user does follows it (visits in a high-intent spell cart more)."""
    _, con = generated
    near, far = con.execute("""
        WITH s AS (SELECT user_id, session_start, intent,
                          lead(intent) OVER w AS next_intent, lead(session_start) OVER w AS next_start
                   FROM truth_sessions WINDOW w AS (PARTITION BY user_id ORDER BY session_start))
        SELECT corr(intent, next_intent) FILTER (next_start - session_start < INTERVAL 2 DAY),
               corr(intent, next_intent) FILTER (next_start - session_start > INTERVAL 14 DAY)
        FROM s""").fetchone()
    assert near > 0.7
    assert far < 0.4
    low, high = con.execute("""
        WITH c AS (SELECT user_session, max((event_type = 'cart')::INT) carted FROM e GROUP BY 1)
        SELECT avg(carted) FILTER (t.intent < -0.5), avg(carted) FILTER (t.intent > 0.5)
        FROM truth_sessions t JOIN c USING (user_session)""").fetchone()
    assert high > 2 * low


def test_cheaper_items_are_bought_more(generated):
    _, con = generated
    by_price = [
        r[1]
        for r in con.execute("""
        WITH v AS (SELECT ntile(4) OVER (ORDER BY price::DOUBLE) q, event_type FROM e WHERE price::DOUBLE > 0)
        SELECT q, count(*) FILTER (event_type = 'purchase') / count(*) FILTER (event_type = 'view')
        FROM v GROUP BY 1 ORDER BY 1""").fetchall()
    ]
    assert by_price == sorted(by_price, reverse=True)
    assert by_price[0] > 2 * by_price[-1]


def test_truth_is_written_on_request_and_never_ingested(generated, tmp_path):
    files, con = generated
    landing = files[0].parent
    assert all((landing / name).is_file() for name in TRUTH_FILES)
    assert list_landing_files(landing) == sorted(files)  # the sensor and `run` ingest only the CSVs
    plain = tmp_path / "plain"
    generate(plain, GeneratorConfig(events=3_000, days=5, seed=7))
    assert sorted(p.name for p in plain.iterdir()) == ["2019-Oct.csv"]
    # The truth matches the events: every session it names is in the files, with its first event.
    sessions, unmatched, lost_ids = con.execute("""
        WITH s AS (SELECT user_session, min(event_time[:19]::TIMESTAMP) first_event FROM e GROUP BY 1)
        SELECT count(*), count(*) FILTER (s.first_event IS DISTINCT FROM t.session_start),
               (SELECT count(*) FROM e WHERE user_session IS NULL)
        FROM truth_sessions t LEFT JOIN s USING (user_session)""").fetchone()
    assert sessions > 10_000
    assert unmatched <= lost_ids  # only where a session's first line lost its session id (an export quirk)


def test_the_purchase_oracle_knows_more_than_history(generated):
    """Pairs the oracle rates high are bought far more often in the next week than pairs it rates low."""
    files, con = generated
    cutoff = dt.datetime(2019, 11, 17)
    oracle = purchase_oracle(files[0].parent, [cutoff], horizon_days=7, reps=50)
    assert oracle["p_oracle"].between(0, 1).all() and (oracle["cutoff"] == pd.Timestamp(cutoff)).all()
    con.register("oracle", oracle)
    high, low = con.execute("""
        WITH bought AS (SELECT DISTINCT user_id::BIGINT user_id, product_id::BIGINT item_id FROM e
                        WHERE event_type = 'purchase' AND event_time >= '2019-11-17' AND event_time < '2019-11-24')
        SELECT avg((b.user_id IS NOT NULL)::INT) FILTER (o.p_oracle >= 0.2),
               avg((b.user_id IS NOT NULL)::INT) FILTER (o.p_oracle < 0.05)
        FROM oracle o LEFT JOIN bought b USING (user_id, item_id)""").fetchone()
    assert high > 0.2 and high > 5 * low


def test_row_quirks_of_the_real_export(generated):
    _, con = generated
    brand_empty, code_empty, negative, no_session, total = con.execute("""
        SELECT avg((brand IS NULL)::INT), avg((category_code IS NULL)::INT),
               count(*) FILTER (price::DOUBLE < 0), count(*) FILTER (user_session IS NULL), count(*)
        FROM e""").fetchone()
    assert 0.35 < brand_empty < 0.50
    assert code_empty > 0.95
    assert 0 < negative < total * 0.001
    assert 0 < no_session < total * 0.001
    times = [r[0] for r in con.execute("SELECT event_time FROM e LIMIT 3").fetchall()]
    assert all(t.endswith(" UTC") for t in times)


def test_sessions_users_and_items_are_realistic(generated):
    _, con = generated
    multi_event, returning = con.execute("""
        SELECT (SELECT avg((n > 1)::INT) FROM (SELECT count(*) n FROM e GROUP BY user_session)),
               (SELECT avg((s > 1)::INT) FROM (SELECT count(DISTINCT user_session) s FROM e GROUP BY user_id))
    """).fetchone()
    assert multi_event > 0.7
    assert returning > 0.3
    # Power law: the top 1% of items draw a large share of views.
    top_share = con.execute("""
        WITH v AS (SELECT product_id, count(*) n FROM e WHERE event_type = 'view' GROUP BY 1),
             r AS (SELECT n, row_number() OVER (ORDER BY n DESC) rk, count(*) OVER () items FROM v)
        SELECT sum(n) FILTER (rk <= items / 100) / sum(n) FROM r""").fetchone()[0]
    assert top_share > 0.10


def test_purchases_follow_carts_and_engaged_users_buy_more(generated):
    _, con = generated
    orphan_purchases = con.execute("""
        SELECT count(*) FROM e p WHERE p.event_type = 'purchase' AND NOT EXISTS (
          SELECT 1 FROM e c WHERE c.event_type = 'cart' AND c.user_id = p.user_id
            AND c.product_id = p.product_id AND c.event_time <= p.event_time)""").fetchone()[0]
    assert orphan_purchases == 0
    buy_rate_by_activity = con.execute("""
        WITH u AS (SELECT user_id, count(DISTINCT user_session) sessions,
                          max((event_type = 'purchase')::INT) buyer FROM e GROUP BY 1)
        SELECT avg(buyer) FILTER (sessions = 1), avg(buyer) FILTER (sessions >= 4) FROM u""").fetchone()
    assert buy_rate_by_activity[1] > 5 * buy_rate_by_activity[0]


def test_treated_users_convert_more(generated):
    _, con = generated
    rates = dict(
        con.execute(f"""
        WITH u AS (SELECT user_id, max((event_type = 'purchase')::INT) buyer FROM e GROUP BY 1)
        SELECT {group_sql("user_id")} AS grp, avg(buyer) FROM u GROUP BY 1""").fetchall()
    )
    assert rates["treatment"] > rates["control"] * 1.2


def test_exact_duplicate_lines_like_the_real_export(tmp_path):
    generate(tmp_path, GeneratorConfig(events=20_000, days=10, seed=7))
    total, distinct = (
        duckdb.connect()
        .execute(f"""SELECT count(*), (SELECT count(*) FROM (SELECT DISTINCT * FROM read_csv('{tmp_path}/*.csv')))
                     FROM read_csv('{tmp_path}/*.csv')""")
        .fetchone()
    )
    assert 0.03 < 1 - distinct / total < 0.07


def test_same_seed_same_bytes_other_seed_other_data(tmp_path):
    config = GeneratorConfig(events=5_000, days=3, seed=3, file_per="day", gzip=True)
    first = generate(tmp_path / "a", config, truth_dir=tmp_path / "truth_a")
    again = generate(tmp_path / "b", config, truth_dir=tmp_path / "truth_b")
    other = generate(tmp_path / "c", GeneratorConfig(events=5_000, days=3, seed=4, file_per="day", gzip=True))
    digest = lambda fs: [hashlib.sha256(f.read_bytes()).hexdigest() for f in fs]  # noqa: E731
    assert [f.name for f in first] == ["2019-10-01.csv.gz", "2019-10-02.csv.gz", "2019-10-03.csv.gz"]
    assert digest(first) == digest(again)
    assert pd.read_parquet(tmp_path / "truth_a" / TRUTH_FILES[1]).equals(
        pd.read_parquet(tmp_path / "truth_b" / TRUTH_FILES[1])
    )
    assert digest(first) != digest(other)
    with gzip.open(first[0], "rt") as handle:
        assert handle.readline().strip() == REES46_HEADER


def test_drift_shifts_carts_and_session_length(tmp_path):
    def cart_share_and_duration(out, drift_from_day):
        generate(out, GeneratorConfig(events=40_000, days=20, seed=1, drift_from_day=drift_from_day))
        return (
            duckdb.connect()
            .execute(f"""
            WITH e AS (SELECT * FROM read_csv('{out}/*.csv', all_varchar=true)
                       WHERE event_time >= '2019-10-11'),
                 s AS (SELECT user_session, epoch(max(event_time[:19]::TIMESTAMP) - min(event_time[:19]::TIMESTAMP)) d
                       FROM e GROUP BY 1)
            SELECT (SELECT avg((event_type = 'cart')::INT) FROM e), (SELECT avg(d) FROM s)""")
            .fetchone()
        )

    plain = cart_share_and_duration(tmp_path / "plain", None)
    drifted = cart_share_and_duration(tmp_path / "drifted", 10)
    assert drifted[0] > plain[0] + 0.05
    assert drifted[1] > plain[1] * 1.3


def test_bad_configuration_is_refused():
    with pytest.raises(ValueError, match="file_per"):
        GeneratorConfig(file_per="week")
    with pytest.raises(ValueError, match="positive"):
        GeneratorConfig(events=0)
