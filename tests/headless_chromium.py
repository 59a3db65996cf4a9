"""The system's Chromium, headless, through Selenium and the apt `chromium-driver`: one launcher for the explorer's
browser tests and its benchmark (no browser download; the README's browser line installs both)."""

from __future__ import annotations

import importlib.util
import shutil
from typing import Any

BROWSERS = ("chromium", "chromium-browser", "google-chrome")


def browser_path() -> str | None:
    return next((path for name in BROWSERS if (path := shutil.which(name))), None)


def browser_missing() -> str | None:
    """Why a headless Chromium cannot be started here, or None."""
    if importlib.util.find_spec("selenium") is None:
        return "the explorer's browser tests need selenium (pip install selenium)"
    if browser_path() is None or shutil.which("chromedriver") is None:
        return "no Chromium or chromedriver on PATH: apt-get install -y chromium chromium-driver"
    return None


def start_chromium(performance_log: bool = False) -> Any:
    """A headless Chromium session, 1600 x 1000; with ``performance_log``, its log records every network request."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = browser_path()
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1600,1000",
    ):
        options.add_argument(arg)
    if performance_log:
        options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    return webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
