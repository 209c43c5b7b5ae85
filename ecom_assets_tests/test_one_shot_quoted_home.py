"""The whole graph under an ECOM_HOME whose path holds a quote and a space: every statement that names
a file (COPY TO, read_csv, the MLflow store, the reports) takes it as a parameter or a quoted literal."""

from __future__ import annotations

import dagster as dg
import duckdb
import pytest

from ecom_assets.ecom_home import EcomPaths
from ecom_assets.generator import GeneratorConfig, generate
from ecom_assets.ml.tracking import tracking_uri
from ecom_assets.one_shot import highlights, run_pipeline
from ecom_assets_tests.conftest import query

PUBLISHED = {
    "predicted_purchase.parquet": "ecommerce.predicted_purchase",
    "ab_test_results.parquet": "experiment.ab_test_results",
    "ab_sessions_by_arm.parquet": "experiment.ab_sessions_by_arm",
}


@pytest.fixture
def quoted_home(tmp_path, monkeypatch) -> EcomPaths:
    home = tmp_path / "l'équipe data" / "o'brien's home"
    monkeypatch.setenv("ECOM_HOME", str(home))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster home"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking_uri(EcomPaths(home), configured=""))
    monkeypatch.setenv("ECOM_ML_GB_MAX_ITER", "60")  # small models: this test is about paths
    monkeypatch.setenv("ECOM_ML_RF_TREES", "30")
    return EcomPaths(home).ensure()


def test_the_whole_graph_runs_under_a_home_with_a_quote_and_a_space(quoted_home):
    paths = quoted_home
    # 20k events (seed 3): every layer is built in well under a minute. 42 days: with cutoffs on the
    # Monday calendar, 40 days from Tuesday 2019-10-01 leave no train cutoff (feature_cutoffs.py).
    generate(paths.landing, GeneratorConfig(events=20_000, days=42, seed=3))
    with dg.instance_for_test() as instance:
        outcome = run_pipeline(paths, instance, log=lambda _: None)
    assert outcome.runs == 4 and not outcome.failed_steps, outcome.failed_steps  # 2 files, sessions, refresh
    # Whether gradient boosting beats its baselines on 20k events is the models' business
    # (test_one_shot checks it on the larger built dataset); every other check must pass.
    assert [c for c in outcome.failed_checks if "gb_beats_baselines" not in c] == []

    published = sorted(p.name for p in paths.published.iterdir())
    assert published == sorted(PUBLISHED)  # and no temp file left behind
    for name, table in PUBLISHED.items():
        path = paths.published / name
        with duckdb.connect() as con:
            rows = con.execute("SELECT count(*) FROM read_parquet(?)", [str(path)]).fetchone()[0]
        assert rows > 0 and rows == query(paths, f"SELECT count(*) FROM {table}")[0][0], name

    reports = [p.name for p in paths.reports.iterdir()]
    assert any(n.startswith("purchase_drift_") and n.endswith(".html") for n in reports), reports
    assert paths.mlflow_db.exists() and any(p.is_file() for p in paths.mlflow_artifacts.rglob("*"))
    lines = highlights(paths)
    assert any(line.startswith("purchase model (production v") for line in lines), lines
    assert any(line.startswith("cart-abandonment model (production v") for line in lines), lines
