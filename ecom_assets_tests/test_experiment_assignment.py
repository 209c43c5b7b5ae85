import duckdb
import pytest

from ecom_assets.experiment.assignment import assign_group, group_sql, is_treated, legacy_group, legacy_group_sql


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


def test_legacy_parity_sql_matches_the_full_md5_integer_for_many_ids():
    """The SQL takes the last hex digit's parity; check it against int(md5, 16) % 2 itself."""
    import hashlib

    ids = list(range(0, 5_000)) + list(range(512_000_000, 512_005_000)) + [2**62, 9_223_372_036_854_775_807]
    expected = {u: "treatment" if int(hashlib.md5(str(u).encode()).hexdigest(), 16) % 2 else "control" for u in ids}
    with duckdb.connect() as con:
        con.execute("CREATE TABLE u AS SELECT unnest(?::BIGINT[]) AS user_id", [ids])
        sql = dict(con.execute(f"SELECT user_id, {legacy_group_sql('user_id')} FROM u").fetchall())
    assert sql == expected
    assert all(legacy_group(u) == expected[u] for u in ids)
    assert 0.48 < sum(g == "treatment" for g in expected.values()) / len(ids) < 0.52


def test_legacy_parity_for_known_rees46_user_ids():
    # Digests from coreutils (`echo -n 541312140 | md5sum`), independent of Python's hashlib:
    # the whole digest is odd exactly when its last hex digit is.
    known = {
        541312140: ("27d5b70d7f487fa4889f1be78da9d10f", "treatment"),
        554748717: ("e01d7a9f260f5b295d188ff183aeb5a4", "control"),
        519107250: ("ff93dfb853d1a81069a77ae033826359", "treatment"),
    }
    for user_id, (digest, group) in known.items():
        assert group == ("treatment" if int(digest, 16) % 2 else "control")
        assert legacy_group(user_id) == group
    with duckdb.connect() as con:
        rows = dict(
            con.execute(
                f"SELECT x, md5(CAST(x AS VARCHAR)) || ' ' || {legacy_group_sql('x')} FROM unnest(?::BIGINT[]) t(x)",
                [list(known)],
            ).fetchall()
        )
    assert rows == {u: f"{d} {g}" for u, (d, g) in known.items()}
