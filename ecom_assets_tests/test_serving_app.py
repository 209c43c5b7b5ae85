"""serving.app, tab by tab, through Streamlit's AppTest and then in a real browser, against the real
scoring API and the snapshots the whole graph published (the session's `built` home)."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from ecom_assets.ecom_home import EcomPaths
from ecom_assets.insights.questions import INSIGHTS
from ecom_assets.serving import app_data
from ecom_assets_tests.api_server import copy_registry, running_api
from ecom_assets_tests.servers import free_port, serving

APP = str(Path(__file__).parents[1] / "ecom_assets" / "serving" / "app.py")
TABS = ["Real-time predictor", "A/B dashboard", "Bulk scoring", "Insights", "Monitoring"]


@pytest.fixture(scope="module")
def api_url(built, tmp_path_factory):
    folder = tmp_path_factory.mktemp("app_api")
    with running_api(copy_registry(built.paths, folder), built.paths.home, folder / "api.log") as server:
        yield server.url


def _app(monkeypatch, home: Path, url: str) -> AppTest:
    monkeypatch.setenv("ECOM_HOME", str(home))
    monkeypatch.setenv("ECOM_API_URL", url)
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert [t.label for t in at.tabs] == TABS
    return at


@pytest.fixture
def app(built, api_url, monkeypatch) -> AppTest:
    return _app(monkeypatch, built.paths.home, api_url)


def test_predictor_tab_shows_probability_verdict_and_explanation(app):
    tab = app.tabs[0]
    metric = tab.metric[0]
    assert metric.label == "Abandonment probability" and metric.value.endswith("%")
    verdicts = [a.value for a in (*tab.error, *tab.warning, *tab.success)]
    assert len(verdicts) == 1 and "risk" in verdicts[0]
    assert len(tab.image) == 1  # the waterfall chart
    table = tab.dataframe[0].value
    assert table.set_index("feature").loc["total_carts", "value"] == "1.0"
    app.slider(key="total_carts").set_value(6).run()
    assert not app.exception
    table = app.tabs[0].dataframe[0].value
    assert table.set_index("feature").loc["total_carts", "value"] == "6.0"  # the API scored the new input


def test_ab_tab_shows_arms_deltas_funnel_and_verdict(app, built):
    tab = app.tabs[1]
    labels = [m.label for m in tab.metric]
    assert labels == [
        "Conversion, control",
        "Conversion, treatment",
        "Revenue per user, control",
        "Revenue per user, treatment",
    ]
    assert tab.metric[1].delta.endswith("pp")
    results = pd.read_parquet(built.paths.published / app_data.AB_RESULTS)
    by_arm = pd.read_parquet(built.paths.published / app_data.AB_SESSIONS_BY_ARM)
    shown = app_data.experiments(results, by_arm)[0]
    assert shown == by_arm["experiment"].iloc[0]
    verdict = results.loc[results["experiment"] == shown, "verdict"].iloc[0]
    assert any(verdict in s.value for s in (*tab.success, *tab.error))
    assert len(tab.get("vega_lite_chart")) == 1  # the funnel by arm
    funnel = app_data.session_funnel_by_arm(by_arm)
    assert list(funnel.columns) == ["control", "treatment"] and (funnel.diff().iloc[1:] <= 0).all().all()


def test_bulk_tab_scores_an_uploaded_file_and_offers_the_download(app):
    frame = app_data.example_sessions(rows=30, seed=3)
    app.file_uploader(key="bulk_upload").set_value(("mine.csv", frame.to_csv(index=False).encode(), "text/csv"))
    app.run()
    assert not app.exception
    tab = app.tabs[2]
    assert any("Scored 30 sessions from mine.csv" in s.value for s in tab.success)
    preview = tab.dataframe[0].value
    assert {"session_id", "abandonment_probability", "risk_band"} <= set(preview.columns)
    assert any(b.label == "Download the scored file" for b in tab.get("download_button"))


def test_bulk_tab_example_button_and_a_bad_file(app):
    app.button(key="score_example").click().run()
    assert any("Scored 200 sessions" in s.value for s in app.tabs[2].success)
    app.file_uploader(key="bulk_upload").set_value(("bad.csv", b"views,carts\n1,2\n", "text/csv"))
    app.run()
    assert not app.exception
    assert any("missing required column" in e.value for e in app.tabs[2].error)


def test_insights_tab_charts_the_six_questions(app):
    tab = app.tabs[3]
    texts = " ".join(m.value for m in tab.markdown)
    for insight in INSIGHTS:
        assert insight.description in texts
    assert len(tab.get("vega_lite_chart")) == len(INSIGHTS) == 6


def test_monitoring_tab_summarises_the_latest_drift_reports(app, built):
    tab = app.tabs[4]
    reports = app_data.latest_drift_reports(built.paths.reports)
    assert reports, "the whole graph writes drift reports"
    assert [m.label for m in tab.metric] == ["Drifted columns"] * len(reports)
    assert {b.label for b in tab.get("download_button")} == {f"Open the full report ({r.html.name})" for r in reports}


def test_an_empty_home_and_no_api_say_what_to_do(tmp_path, monkeypatch):
    home = EcomPaths(tmp_path / "empty").ensure()
    at = _app(monkeypatch, home.home, f"http://127.0.0.1:{free_port()}")
    assert "not reachable" in at.tabs[0].error[0].value and "make serve" in at.tabs[0].error[0].value
    assert "No A/B results published yet" in at.tabs[1].info[0].value
    assert "No purchase predictions published yet" in at.tabs[3].info[0].value
    assert "No drift report yet" in at.tabs[4].info[0].value


# --- the same app in a real browser: `streamlit run` against the same API, driven by headless Chromium
# (Debian's `chromium` and `chromium-driver`, installed by `.ci/run`; nothing is downloaded) ------------

CHROMIUM = os.environ.get("ECOM_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("ECOM_CHROMEDRIVER", shutil.which("chromedriver") or "/usr/bin/chromedriver")
needs_chromium = pytest.mark.skipif(
    not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()),
    reason="needs Debian's chromium and chromium-driver (apt-get install -y chromium chromium-driver; .ci/run does)",
)


@pytest.fixture(scope="module")
def app_url(built, api_url, tmp_path_factory):
    folder = tmp_path_factory.mktemp("browser")
    port = free_port()
    env = {**os.environ, "ECOM_HOME": str(built.paths.home), "ECOM_API_URL": api_url}
    command = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        APP,
        "--server.address",
        "127.0.0.1",
        "--server.port",
        str(port),
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        "--server.fileWatcherType",
        "none",
    ]
    url = f"http://127.0.0.1:{port}"
    with serving(
        command,
        f"{url}/_stcore/health",
        folder / "streamlit.log",
        env=env,
        healthy=lambda response: response.text == "ok",
        startup_seconds=120,
    ):
        yield url


@pytest.fixture
def browser(monkeypatch):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    monkeypatch.setenv("SE_OFFLINE", "true")  # Selenium Manager must not look for a driver online
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-dev-shm-usage",
        "--window-size=1400,1000",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


@needs_chromium
def test_a_prediction_appears_and_follows_the_sliders(app_url, browser):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(app_url)
    wait = WebDriverWait(browser, 120, poll_frequency=0.5)

    def probability(driver):
        for metric in driver.find_elements(By.CSS_SELECTOR, '[data-testid="stMetric"]'):
            if "Abandonment probability" in metric.text:
                value = metric.find_element(By.CSS_SELECTOR, '[data-testid="stMetricValue"]').text
                return value if value.endswith("%") else False
        return False

    first = wait.until(probability)
    assert 0 <= float(first.rstrip("%")) <= 100
    assert wait.until(
        lambda d: any("risk" in a.text for a in d.find_elements(By.CSS_SELECTOR, '[data-testid="stAlert"]'))
    )

    # Move "Add-to-carts" to its maximum with the keyboard; the app reruns and asks the API again.
    carts = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, 'input[type="range"][aria-label="Add-to-carts"]'))
    browser.execute_script("arguments[0].focus()", carts)  # the range input itself is visually hidden
    ActionChains(browser).send_keys(Keys.END).perform()
    wait.until(lambda d: carts.get_attribute("value") == "15")
    wait.until(lambda d: "15 add-to-carts" in d.find_element(By.TAG_NAME, "body").text)
    assert wait.until(probability)
