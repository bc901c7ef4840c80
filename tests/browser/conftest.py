"""The headless Chromium the console's browser tests drive (Debian's chromium and
chromedriver, which `python -m compat.install` installs)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from unavailable import unavailable

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


@pytest.fixture
def browser() -> Iterator[Any]:
    if not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)):
        unavailable("chromium and chromedriver are not installed (python -m compat.install installs them)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1360,1000", "--lang=en-US"):
        options.add_argument(argument)
    # The given chromedriver: Selenium Manager would otherwise try to download one.
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()
