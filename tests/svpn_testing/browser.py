"""A real browser for the tests: Debian's headless Chromium driven by Selenium through Debian's chromedriver
(scripts/bootstrap.sh installs both), and a WSGI app served by waitress in a thread.

Usable by the unit tests and by a molecule scenario against the lab farm's helpdesk page. The browser reaches
only this machine's loopback and the lab's 198.18.0.0/15: every other request (Chromium's own background
traffic included) goes to a proxy address where nothing listens.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
LAB_NETWORKS = ("198.18.0.0/15",)
NOWHERE_PROXY = "http://127.0.0.1:9"  # the discard port: nothing listens, so nothing leaves

CHROMIUM_ARGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-dev-shm-usage",
    "--disable-gpu",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-domain-reliability",
    "--disable-extensions",
    "--disable-sync",
    "--no-pings",
    "--lang=ko-KR",
)


@contextmanager
def headless_chromium(
    *, allow: Sequence[str] = LAB_NETWORKS, window: tuple[int, int] = (1280, 1024), timeout: float = 20.0
) -> Iterator[Any]:
    """A headless Chromium WebDriver, quit on exit. *allow*: networks (CIDR) reached directly besides
    loopback; everything else goes to a dead proxy."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:
        needs = "run scripts/bootstrap.sh (it installs chromium and chromium-driver)"
        raise RuntimeError(f"{', '.join(missing)} missing: {needs}")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in CHROMIUM_ARGS:
        options.add_argument(arg)
    options.add_argument(f"--window-size={window[0]},{window[1]}")
    options.add_argument(f"--proxy-server={NOWHERE_PROXY}")
    options.add_argument(f"--proxy-bypass-list={';'.join(('127.0.0.0/8', *allow))}")
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    try:
        driver.set_page_load_timeout(timeout)
        yield driver
    finally:
        driver.quit()


@contextmanager
def served(app: Any, host: str = "127.0.0.1") -> Iterator[str]:
    """Serve the WSGI *app* with waitress on a free port of *host* in a thread; yields its base URL. On exit
    the server and every connection still open (a browser's keep-alive) are closed by the serving thread."""
    import waitress
    from waitress import wasyncore

    server = waitress.create_server(app, host=host, port=0, threads=4)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():  # waitress's own run() loops until every connection is gone
            wasyncore.loop(timeout=0.1, map=server._map, count=1)
        wasyncore.close_all(server._map, ignore_all=True)
        server.task_dispatcher.shutdown()

    thread = threading.Thread(target=serve, name=f"waitress-{host}", daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.effective_port}"
    finally:
        stop.set()
        thread.join(timeout=10)
