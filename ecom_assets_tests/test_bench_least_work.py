"""bench/plain_duckdb_baseline.py --least-work, the project's lower bound in bench_landing_to_gold.py, does
the baseline's job: the same events (each repeated line kept once), from which the same SQL builds the
sessions and users. Otherwise the lower bound it claims would compare unlike work. (Sessions are not
compared row by row: the baseline's LAG may split events tied in time either way, run to run.)"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import duckdb

from ecom_assets.generator import GeneratorConfig, generate

BENCH = Path(__file__).resolve().parents[1] / "bench" / "plain_duckdb_baseline.py"
SPEC = importlib.util.spec_from_file_location("plain_duckdb_baseline", BENCH)
baseline = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(baseline)


def _tables(con: duckdb.DuckDBPyConnection) -> dict[str, list[tuple]]:
    columns = ", ".join(baseline.REES46_COLUMNS)
    return {
        "events": con.execute(f"SELECT {columns} FROM events ORDER BY ALL").fetchall(),
        "users": con.execute("SELECT user_id FROM dim_users ORDER BY ALL").fetchall(),
    }


def test_least_work_builds_the_baselines_tables(tmp_path):
    landing = tmp_path / "landing"
    generate(landing, GeneratorConfig(events=20_000, days=5, duplicate_share=0.05))
    files = sorted(landing.glob("*.csv"))
    lines = sum(len(f.read_text().splitlines()) - 1 for f in files)

    baseline.build(files, tmp_path / "baseline.duckdb")
    baseline.build(files, tmp_path / "least.sqlite", lake=True, least_work=True)
    with duckdb.connect(str(tmp_path / "baseline.duckdb"), read_only=True) as con:
        expected = _tables(con)
    with duckdb.connect() as con:
        baseline.attach_lake(con, tmp_path / "least.sqlite")
        got = _tables(con)

    assert 0 < len(expected["events"]) < lines  # repeated lines were there, and each was kept once
    assert got == expected
