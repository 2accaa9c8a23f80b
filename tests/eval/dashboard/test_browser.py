"""End to end in headless Chromium: the page served by a live server on localhost, driven as a
person would: EXECUTE, the trade counter grows, a shock makes the price chart react, PAUSE resets;
a bad message gets an error back; two tabs watch one simulation. Writes a dashboard screenshot
(CHANNELMARKET_UPDATE_SCREENSHOT=1 also copies it to eval/dashboard/screenshot.png for the README)."""

from __future__ import annotations

import json
import os
import shutil
import urllib.request
from pathlib import Path

import pytest

SCREENSHOT = Path(__file__).resolve().parents[3] / "eval" / "dashboard" / "screenshot.png"

pytestmark = pytest.mark.slow
TIMEOUT = 60      # generous: the machine is shared; no assertion is timed


def wait(drv, cond, what: str, timeout: float = TIMEOUT):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(drv, timeout, poll_frequency=0.1).until(lambda d: cond(d), message=what)


def text(drv, css: str) -> str:
    from selenium.webdriver.common.by import By

    return drv.find_element(By.CSS_SELECTOR, css).text


def trades(drv) -> int:
    return int(drv.execute_script("return Number(document.getElementById('stat-trades').dataset.total)"))


def click(drv, css: str) -> None:
    from selenium.webdriver.common.by import By

    drv.find_element(By.CSS_SELECTOR, css).click()


def choose(drv, css: str, value: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    Select(drv.find_element(By.CSS_SELECTOR, css)).select_by_value(value)


def open_page(drv, url: str) -> None:
    drv.get(url)
    wait(drv, lambda d: d.execute_script("return document.querySelectorAll('#sel-scenario option').length") > 0,
         "the page received the options")


def test_execute_trade_shock_pause(live_server, browser, tmp_path):
    drv = browser
    open_page(drv, live_server.url)
    assert text(drv, "#stat-trades") == "—"
    assert drv.execute_script("return typeof d3.forceSimulation") == "function"   # the bundled D3
    choose(drv, "#sel-speed", "0.1")
    click(drv, "#btn-execute")
    wait(drv, lambda d: text(d, "#status").startswith("running"), "the simulation runs")
    wait(drv, lambda d: trades(d) > 0, "trades are executed")
    first = trades(drv)
    wait(drv, lambda d: trades(d) > first, "the trade counter grows")
    assert drv.execute_script("return document.querySelectorAll('#topology circle').length") == 100
    assert drv.execute_script("return document.querySelectorAll('#topology line').length") > 0
    assert drv.execute_script("return document.querySelectorAll('#resources rect').length") > 0
    before = drv.execute_script("return document.querySelectorAll('#price-chart .shock-band').length")
    assert before == 0
    choose(drv, "#sel-speed", "0.5")                # slower, so the screenshot below shows the shock on
    wait(drv, lambda d: d.execute_script("return window.channelmarketDashboard.status") == "running", "running")
    click(drv, ".shock-btn[data-shock='DEMAND_SURGE']")
    # the chart flashes orange at once, then the shocked steps are shaded and the panel stays marked
    wait(drv, lambda d: "flash-orange" in d.find_element("id", "price-panel").get_attribute("class")
         or d.execute_script("return document.getElementById('price-panel').dataset.shock") == "DEMAND_SURGE",
         "the price chart reacts to the shock")
    wait(drv, lambda d: d.execute_script("return document.querySelectorAll('#price-chart .shock-band').length") > 0,
         "shocked steps are shaded")
    assert "DEMAND_SURGE" in text(drv, "#stat-shock")
    assert not drv.find_element("css selector", ".shock-btn[data-shock='DEMAND_DROP']").is_enabled()  # one at a time
    t0 = drv.execute_script("return window.channelmarketDashboard.frame.summary.t")
    wait(drv, lambda d: d.execute_script("return window.channelmarketDashboard.frame.summary.t") >= t0 + 3,
         "the market goes on under the shock")
    drv.execute_script("document.querySelectorAll('.toast').forEach(e => e.remove());"
                       "document.getElementById('price-panel').classList.remove('flash-orange')")
    shot = tmp_path / "dashboard.png"
    drv.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000
    if os.environ.get("CHANNELMARKET_UPDATE_SCREENSHOT") == "1":
        shutil.copyfile(shot, SCREENSHOT)
    click(drv, "#btn-pause")
    wait(drv, lambda d: text(d, "#status").startswith("idle"), "PAUSE stops the simulation")
    wait(drv, lambda d: text(d, "#stat-trades") == "—", "PAUSE resets the market view")
    assert drv.execute_script("return document.querySelectorAll('#topology circle').length") == 0


def test_bad_message_gets_an_error_and_the_server_lives(live_server, browser):
    drv = browser
    open_page(drv, live_server.url)
    wait(drv, lambda d: d.execute_script("return window.channelmarketDashboard.ws.readyState") == 1, "connected")
    drv.execute_script("window.channelmarketDashboard.ws.send('{not json');"
                       "window.channelmarketDashboard.ws.send(JSON.stringify({type: 'shock', kind: 'METEOR'}))")
    wait(drv, lambda d: len(d.find_elements("css selector", ".toast.error")) >= 2, "errors shown on the page")
    msgs = " ".join(e.text for e in drv.find_elements("css selector", ".toast.error"))
    assert "not JSON" in msgs and "METEOR" in msgs
    with urllib.request.urlopen(live_server.url + "health", timeout=10) as r:
        assert json.load(r)["ok"] is True


def test_two_tabs_watch_one_simulation(live_server, browser):
    drv = browser
    open_page(drv, live_server.url)
    first = drv.current_window_handle
    drv.switch_to.new_window("tab")
    open_page(drv, live_server.url)
    second = drv.current_window_handle
    choose(drv, "#sel-scenario", "energy_small")
    choose(drv, "#sel-speed", "0.1")
    click(drv, "#btn-execute")                       # started from the second tab ...
    wait(drv, lambda d: trades(d) > 0, "the second tab sees trades")
    drv.switch_to.window(first)                      # ... the first tab watches the same market
    wait(drv, lambda d: text(d, "#stat-agents") == "12" and trades(d) > 0, "the first tab sees the same market")
    click(drv, "#btn-pause")
    wait(drv, lambda d: text(d, "#status").startswith("idle"), "paused from the first tab")
    drv.switch_to.window(second)
    wait(drv, lambda d: text(d, "#status").startswith("idle"), "the second tab sees the pause")
    drv.close()
    drv.switch_to.window(first)
