"""Fixtures of the dashboard tests: a session, a live server on a free localhost port (uvicorn in a
thread, stopped at the end), and headless Debian Chromium driven by Selenium (the system browser,
nothing downloaded). Without a browser the browser tests skip, unless CHANNELMARKET_REQUIRE_BROWSER=1
(set by .ci/run), where they fail."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time

import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")

from channelmarket.eval.dashboard.server import build_session, create_app, parser  # noqa: E402

BROWSERS = ("chromium", "chromium-browser", "google-chrome")


def _make_session(*argv: str):
    return build_session(parser().parse_args(list(argv)))


@pytest.fixture()
def make_session():
    """make_session("--scenario", "energy_small", ...): a session as the command line builds it."""
    return _make_session


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    """uvicorn serving a session on 127.0.0.1 in a background thread."""

    def __init__(self, session) -> None:
        import uvicorn

        self.session = session
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.server = uvicorn.Server(uvicorn.Config(create_app(session), host="127.0.0.1", port=self.port,
                                                    log_level="warning", ws_max_size=16384))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> "LiveServer":
        self.thread.start()
        for _ in range(200):                 # at most 20 s
            if self.server.started:
                return self
            time.sleep(0.1)
        raise RuntimeError("the dashboard server did not start")

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


@pytest.fixture(scope="module")
def live_server(tmp_path_factory):
    rec = tmp_path_factory.mktemp("recordings")
    with LiveServer(_make_session("--scenario", "energy_default", "--record", str(rec))) as srv:
        yield srv


def _browser_or_skip() -> tuple[str, str]:
    exe = next((p for p in map(shutil.which, BROWSERS) if p), None)
    driver = shutil.which("chromedriver")
    missing = [n for n, p in (("chromium", exe), ("chromedriver (chromium-driver)", driver)) if p is None]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("selenium (pip install 'channelmarket[test]')")
    if missing:
        msg = f"browser tests need {', '.join(missing)}"
        if os.environ.get("CHANNELMARKET_REQUIRE_BROWSER") == "1":
            pytest.fail(msg + " (CHANNELMARKET_REQUIRE_BROWSER=1)")
        pytest.skip(msg)
    return exe, driver


@pytest.fixture(scope="module")
def browser():
    exe, driver_path = _browser_or_skip()
    os.environ.setdefault("SE_OFFLINE", "true")      # Selenium Manager must not download anything
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = exe
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1400,900", "--disable-background-timer-throttling",
                "--disable-renderer-backgrounding", "--disable-backgrounding-occluded-windows"):
        opts.add_argument(arg)
    drv = webdriver.Chrome(options=opts, service=Service(executable_path=driver_path))
    drv.set_page_load_timeout(30)
    try:
        yield drv
    finally:
        drv.quit()

