"""cli: `ecom-assets run` exits non-zero with a message that says what failed or what to do."""

from __future__ import annotations

from ecom_assets.cli import main
from ecom_assets_tests.conftest import land


def test_run_reports_a_failed_step_and_exits_non_zero(paths, monkeypatch, capsys):
    land(paths, "rees46_quirks.csv")
    monkeypatch.setenv("ECOM_DUCKDB_MEMORY_LIMIT", "plenty")  # not a size: DuckDB refuses to open
    assert main(["run"]) == 1
    assert "FAILED" in capsys.readouterr().err


def test_run_without_files_says_what_to_do(paths, capsys):
    assert main(["run"]) == 2
    assert "ecom-assets generate" in capsys.readouterr().err
