"""The console's message search says, in a real headless Chromium, when it stopped at its read
budget (the API's `complete: false`) rather than showing "0 messages" as if nothing matched."""

from __future__ import annotations

from typing import Any, Iterator

import pytest
from kafka import KafkaProducer

from ottla.server.http import api
from ottla.testing import ThreadedBroker, running_broker

pytestmark = pytest.mark.external

# How long the page may take to show what it fetched: a wait for an element, not a timing claim.
PATIENCE_SECONDS = 30


@pytest.fixture
def broker() -> Iterator[ThreadedBroker]:
    with running_broker(data_dir=None, http_port=0) as handle:
        yield handle


def _status(browser: Any) -> str:
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, PATIENCE_SECONDS, ignored_exceptions=(StaleElementReferenceException,))
    return str(wait.until(lambda d: next((e.text for e in d.find_elements(By.CSS_SELECTOR, "[data-test=message-status]") if e.text), None)))


def test_a_search_that_ran_out_of_budget_says_so(browser: Any, broker: ThreadedBroker) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    assert broker.broker is not None and broker.broker.http is not None
    broker.create_topic("big")
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap_servers, linger_ms=5, max_request_size=2 << 20)
    # More than one request's read budget of records none of which matches.
    filler = b"x" * 100_000
    for _ in range(api.MAX_READ_BYTES // len(filler) + 10):
        producer.send("big", value=filler, partition=0)
    producer.flush(timeout=60)
    producer.close()

    browser.get(f"{broker.broker.http.url}/#/topics/big")
    # The first load, the newest 50 (some 5 MB), fits the budget: no marker.
    assert _status(browser) == "50 messages"
    assert not browser.find_elements(By.CSS_SELECTOR, "[data-test=search-incomplete]")

    contains = browser.find_element(By.CSS_SELECTOR, "[data-test=browse] [name=contains]")
    contains.send_keys("absent")
    browser.find_element(By.CSS_SELECTOR, "[data-test=browse] button").click()
    marker = WebDriverWait(browser, PATIENCE_SECONDS).until(
        lambda d: next(iter(d.find_elements(By.CSS_SELECTOR, "[data-test=message-status] [data-test=search-incomplete]")), None)
    )
    assert "stopped at its read budget" in marker.text
    assert _status(browser).startswith("0 messages; the search stopped at its read budget")
