"""The synthetic world looks like the real export and carries the signals later issues need."""

from __future__ import annotations

import gzip
import hashlib

import duckdb
import pytest

from ecom_assets.experiment.assignment import group_sql
from ecom_assets.generator import REES46_HEADER, GeneratorConfig, generate
from ecom_assets.lakehouse.landing import REES46, detect_format


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    out = tmp_path_factory.mktemp("landing")
    files = generate(out, GeneratorConfig(events=120_000, days=61, seed=7))
    con = duckdb.connect()
    con.execute(f"CREATE VIEW e AS SELECT * FROM read_csv('{out}/*.csv', all_varchar=true, header=true)")
    return files, con


def test_monthly_files_named_like_the_real_export(generated):
    files, _ = generated
    assert [f.name for f in files] == ["2019-Oct.csv", "2019-Nov.csv"]
    assert files[0].read_text().splitlines()[0] == REES46_HEADER
    assert detect_format(files[0]) is REES46
    assert not list(files[0].parent.glob(".*"))  # no temp file left behind


def test_event_mix_matches_the_cosmetics_shop(generated):
    _, con = generated
    mix = dict(con.execute("SELECT event_type, count(*) / sum(count(*)) OVER () FROM e GROUP BY 1").fetchall())
    target = {"view": 0.467, "cart": 0.279, "remove_from_cart": 0.192, "purchase": 0.062}
    for event_type, share in target.items():
        assert mix[event_type] == pytest.approx(share, abs=0.02), event_type


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
    distinct = con.execute("SELECT count(*) FROM (SELECT DISTINCT * FROM e)").fetchone()[0]
    assert 0.03 < 1 - distinct / total < 0.07  # exact duplicate lines
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
    assert buy_rate_by_activity[1] > buy_rate_by_activity[0] + 0.1


def test_treated_users_convert_more(generated):
    _, con = generated
    rates = dict(
        con.execute(f"""
        WITH u AS (SELECT user_id, max((event_type = 'purchase')::INT) buyer FROM e GROUP BY 1)
        SELECT {group_sql("user_id")} AS grp, avg(buyer) FROM u GROUP BY 1""").fetchall()
    )
    assert rates["treatment"] > rates["control"] + 0.02


def test_same_seed_same_bytes_other_seed_other_data(tmp_path):
    config = GeneratorConfig(events=5_000, days=3, seed=3, file_per="day", gzip=True)
    first = generate(tmp_path / "a", config)
    again = generate(tmp_path / "b", config)
    other = generate(tmp_path / "c", GeneratorConfig(events=5_000, days=3, seed=4, file_per="day", gzip=True))
    digest = lambda fs: [hashlib.sha256(f.read_bytes()).hexdigest() for f in fs]  # noqa: E731
    assert [f.name for f in first] == ["2019-10-01.csv.gz", "2019-10-02.csv.gz", "2019-10-03.csv.gz"]
    assert digest(first) == digest(again)
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
