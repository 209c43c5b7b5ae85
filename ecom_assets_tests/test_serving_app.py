"""serving.app, tab by tab, through Streamlit's AppTest and then in a real browser, against the real
scoring API and the snapshots the whole graph published (the session's `built` home)."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pandas as pd
import pytest
from streamlit.dataframe_util import convert_arrow_bytes_to_pandas_df
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


def _charts(tab) -> list[tuple[dict, pd.DataFrame]]:
    """Each Vega-Lite chart in `tab`: its spec and the data it plots (the browser's own input)."""
    out = []
    for chart in tab.get("vega_lite_chart"):
        spec = json.loads(chart.proto.spec)
        data = {d.name: convert_arrow_bytes_to_pandas_df(d.data.data) for d in chart.proto.datasets}
        out.append((spec, data[spec["data"]["name"]]))
    return out


def _axis_order(spec: dict, channel: str, data: pd.DataFrame) -> list[str]:
    """The categories along `channel` as drawn: an explicit sort list must name every category."""
    sort = spec["encoding"][channel]["sort"]
    assert isinstance(sort, list), f"{channel} has no explicit order (Vega-Lite would sort it alphabetically)"
    assert set(sort) == set(data[spec["encoding"][channel]["field"]]), "the sort names every category"
    return sort


def test_predictor_tab_shows_probability_verdict_and_explanation(app):
    tab = app.tabs[0]
    metric = tab.metric[0]
    assert metric.label == "Abandonment probability" and metric.value.endswith("%")
    verdicts = [a.value for a in (*tab.error, *tab.warning, *tab.success)]
    assert len(verdicts) == 1 and "risk" in verdicts[0]
    assert len(tab.image) == 1  # the waterfall chart
    table = tab.dataframe[0].value
    assert table.set_index("feature").loc["cart_item_views", "value"] == "1.0"
    app.slider(key="cart_item_views").set_value(6).run()
    assert not app.exception
    table = app.tabs[0].dataframe[0].value
    assert table.set_index("feature").loc["cart_item_views", "value"] == "6.0"  # the API scored the new input


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
    assert tab.metric[2].value.startswith("$") and tab.metric[3].delta[0] in "+-" and tab.metric[3].delta[1] == "$"


def test_ab_funnel_is_in_funnel_order_in_percent(app, built):
    [(spec, data)] = _charts(app.tabs[1])
    enc = spec["encoding"]
    assert _axis_order(spec, "x", data) == ["viewed", "carted", "purchased"]  # not carted, purchased, viewed
    assert enc["y"]["axis"]["format"] == "%" and enc["y"]["title"] == "Share of the arm's sessions"
    assert enc["x"]["title"] == "Funnel stage"
    by_arm = pd.read_parquet(built.paths.published / app_data.AB_SESSIONS_BY_ARM)
    shown = by_arm[by_arm["experiment"] == by_arm["experiment"].iloc[0]]
    for _, arm in shown.iterrows():  # the plotted shares are the published counts over sessions
        plotted = data[data["arm"] == arm["experiment_group"]].set_index("stage")["share"]
        expected = arm[["sessions_with_view", "sessions_with_cart", "purchasing_sessions"]] / arm["sessions"]
        assert list(plotted[["viewed", "carted", "purchased"]]) == pytest.approx(list(expected.astype(float)))
        assert plotted["viewed"] >= plotted["carted"] >= plotted["purchased"]


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


def test_insight_top_lists_are_ranked_by_value_and_bands_keep_their_order(app):
    charts = dict(zip([i.name for i in INSIGHTS], _charts(app.tabs[3]), strict=True))
    for name, id_column, value in [
        ("top_items_by_predicted_conversions", "Item id", "expected_conversions"),
        ("high_intent_visitors", "Visitor id", "expected_purchases"),
    ]:
        spec, data = charts[name]
        enc = spec["encoding"]
        assert enc["y"]["title"] == id_column and enc["x"]["title"] == app_data.title(value) != value
        order = _axis_order(spec, "y", data)
        values = data.set_index("category")["value"]
        drawn = [values[c] for c in order]
        assert drawn == sorted(drawn, reverse=True), f"{name}: top of the chart is the largest value"
        assert len(order) > 1 and order != sorted(order, key=int), f"{name} is not sorted by id"
    spec, data = charts["conversion_by_engagement_score"]
    order = _axis_order(spec, "x", data)
    assert len(order) > 1 and order == sorted(order, key=int)  # 1, 2, 3 ... as the bands go, not by value
    spec, data = charts["conversion_by_funnel_depth"]
    assert _axis_order(spec, "x", data) == ["1: viewed", "2: carted", "3: purchased"]
    spec, data = charts["conversion_by_interaction_score"]
    assert _axis_order(spec, "x", data) == ["01: 1", "02: 2-3", "03: 4-6", "04: 7-10", "05: 11+"]
    for name in ("conversion_overview", "conversion_by_engagement_score", "conversion_by_interaction_score"):
        spec, data = charts[name]
        enc = spec["encoding"]
        assert enc["y"]["axis"]["format"] == "%", f"{name}: rates on a percent axis"
        assert set(data["measure"]) == {"Actual conversion rate", "Predicted conversion rate"}
        assert "_" not in enc["x"]["title"] + enc["y"]["title"], f"{name}: readable axis titles"
        assert data["value"].dropna().between(0, 1).all()  # no actual rate for the forward-looking cutoff


def test_monitoring_tab_summarises_the_latest_drift_reports(app, built):
    tab = app.tabs[4]
    reports = app_data.latest_drift_reports(built.paths.reports)
    assert reports, "the whole graph writes drift reports"
    assert [m.label for m in tab.metric] == ["Drifted columns"] * len(reports)
    assert {b.label for b in tab.get("download_button")} == {f"Download the report ({r.html.name})" for r in reports}
    assert not tab.get("iframe"), "the reports (megabytes each) are only sent when asked for"
    first = reports[0]
    app.toggle(key=f"drift_show_{first.model}").set_value(True).run()
    assert not app.exception
    [frame] = app.tabs[4].get("iframe")  # the report opens in the page, not as a download
    assert frame.proto.srcdoc == first.html.read_text(encoding="utf-8")


def test_the_uploader_takes_what_the_api_accepts(app, monkeypatch):
    from ecom_assets.serving.api import MB, ServingSettings

    uploader = app.file_uploader(key="bulk_upload")
    assert uploader.proto.max_upload_size_mb == ServingSettings.max_upload_bytes // MB == 20
    assert "20 MB" in uploader.proto.label
    monkeypatch.setenv("ECOM_API_MAX_UPLOAD_MB", "5.5")
    assert app_data.upload_limit_mb() == 5 == int(ServingSettings.from_env().max_upload_bytes // MB)


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

    # Move the visitor's earlier purchases to the maximum with the keyboard; the app reruns and asks
    # the API again.
    purchases = wait.until(
        lambda d: d.find_element(By.CSS_SELECTOR, 'input[type="range"][aria-label="Purchases in those sessions"]')
    )
    browser.execute_script("arguments[0].focus()", purchases)  # the range input itself is visually hidden
    ActionChains(browser).send_keys(Keys.END).perform()
    wait.until(lambda d: purchases.get_attribute("value") == "20")
    wait.until(lambda d: "20 earlier purchases" in d.find_element(By.TAG_NAME, "body").text)
    assert wait.until(probability)
