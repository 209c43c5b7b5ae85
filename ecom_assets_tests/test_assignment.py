import duckdb
import pytest

from ecom_assets.experiment.assignment import (
    assign_group, group_sql, is_treated, legacy_group, legacy_group_sql,
)


def test_sql_and_python_assign_every_user_identically():
    ids = list(range(463_240_000, 463_250_000)) + [1, 2**62, 9_223_372_036_854_775_807]
    with duckdb.connect() as con:
        con.execute("CREATE TABLE u AS SELECT unnest(?::BIGINT[]) AS user_id", [ids])
        sql_groups = dict(con.execute(f"SELECT user_id, {group_sql('user_id')} FROM u").fetchall())
    assert all(sql_groups[u] == assign_group(u) for u in ids)
    treated = is_treated(ids)
    assert [("treatment" if t else "control") for t in treated] == [assign_group(u) for u in ids]
    share = treated.mean()
    assert 0.48 < share < 0.52


def test_split_is_configurable_and_salted():
    ids = range(100_000, 120_000)
    share_20 = sum(assign_group(u, treatment_share=0.2) == "treatment" for u in ids) / 20_000
    assert 0.18 < share_20 < 0.22
    same = sum(assign_group(u, "exp_a") == assign_group(u, "exp_b") for u in ids) / 20_000
    assert 0.45 < same < 0.55  # different experiments bucket independently
    with pytest.raises(ValueError, match="between 0 and 1"):
        assign_group(1, treatment_share=1.5)


def test_legacy_md5_parity_reproduces_the_seed_project():
    # md5("1") = c4ca...849b (b odd), md5("2") = c81e...862c (c even), md5("3") = eccb...baf3 (3 odd)
    assert [legacy_group(u) for u in (1, 2, 3)] == ["treatment", "control", "treatment"]
    with duckdb.connect() as con:
        rows = con.execute(f"SELECT {legacy_group_sql('x')} FROM range(1, 4) t(x) ORDER BY x").fetchall()
    assert [r[0] for r in rows] == ["treatment", "control", "treatment"]
