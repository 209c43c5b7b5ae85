"""End to end: `streamlit run` the app against the real API and drive it in headless Chromium
(Debian's `chromium` and `chromium-driver`, installed by `.ci/run`; nothing is downloaded)."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

from ecom_assets_tests.api_server import copy_registry, running_api
from ecom_assets_tests.servers import free_port, serving

APP = Path(__file__).parents[1] / "ecom_assets" / "serving" / "app.py"
CHROMIUM = os.environ.get("ECOM_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("ECOM_CHROMEDRIVER", shutil.which("chromedriver") or "/usr/bin/chromedriver")

pytestmark = pytest.mark.skipif(
    not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()),
    reason="needs Debian's chromium and chromium-driver (apt-get install -y chromium chromium-driver; .ci/run does)")


@pytest.fixture(scope="module")
def app_url(built, tmp_path_factory):
    folder = tmp_path_factory.mktemp("browser")
    with running_api(copy_registry(built.paths, folder), built.paths.home, folder / "api.log") as api:
        port = free_port()
        env = {**os.environ, "ECOM_HOME": str(built.paths.home), "ECOM_API_URL": api.url}
        command = [sys.executable, "-m", "streamlit", "run", str(APP), "--server.address", "127.0.0.1",
                   "--server.port", str(port), "--server.headless", "true", "--browser.gatherUsageStats", "false",
                   "--server.fileWatcherType", "none"]
        url = f"http://127.0.0.1:{port}"
        with serving(command, f"{url}/_stcore/health", folder / "streamlit.log", env=env,
                     healthy=lambda response: response.text == "ok", startup_seconds=120):
            yield url


@pytest.fixture
def browser(monkeypatch):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    monkeypatch.setenv("SE_OFFLINE", "true")  # Selenium Manager must not look for a driver online
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-dev-shm-usage", "--window-size=1400,1000"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


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
    assert wait.until(lambda d: any("risk" in a.text for a in d.find_elements(By.CSS_SELECTOR, '[data-testid="stAlert"]')))

    # Move "Add-to-carts" to its maximum with the keyboard; the app reruns and asks the API again.
    carts = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, 'input[type="range"][aria-label="Add-to-carts"]'))
    browser.execute_script("arguments[0].focus()", carts)  # the range input itself is visually hidden
    ActionChains(browser).send_keys(Keys.END).perform()
    wait.until(lambda d: carts.get_attribute("value") == "15")
    wait.until(lambda d: "15 add-to-carts" in d.find_element(By.TAG_NAME, "body").text)
    assert wait.until(probability)
