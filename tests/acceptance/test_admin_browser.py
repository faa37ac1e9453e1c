"""The admin in a real browser (headless Chromium) against a live test server: log in, filter
dead events, open one, requeue it, see it pending. Saves docs/admin.png for the README."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import pgoutbox
from pgoutbox.models import OutboxEvent
from tests.support.browser import ensure_chromium, start_chromium, stop_chromium

pytestmark = pytest.mark.django_db(transaction=True)

# The README's screenshot: rewritten when missing or with PGOUTBOX_UPDATE_SCREENSHOT=1, so
# that running the tests leaves the working tree clean.
README_SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "admin.png"


@pytest.fixture
def screenshot(tmp_path: Path) -> Path:
    if os.environ.get("PGOUTBOX_UPDATE_SCREENSHOT") == "1" or not README_SCREENSHOT.exists():
        return README_SCREENSHOT
    return tmp_path / "admin.png"


@pytest.fixture(scope="session")
def chromium_installed() -> None:
    ensure_chromium()


@pytest.fixture
def browser(chromium_installed: None) -> Iterator[Any]:
    driver = start_chromium()
    driver.implicitly_wait(5)
    yield driver
    stop_chromium(driver)


def _events() -> tuple[int, int]:
    for n in range(3):
        pgoutbox.send("/queue/orders", {"order": n, "total": "12.50"}, stream="orders")
    pgoutbox.send("/queue/invoices", {"invoice": 9}, stream="billing")
    pgoutbox.send("/exchange/missing/x", {"order": 41, "lines": [{"sku": "A-1", "qty": 2}]})
    pgoutbox.send("/exchange/missing/y", {"order": 42})
    first, second = OutboxEvent.objects.order_by("-id")[:2]
    error = "broker rejected: no exchange 'missing' in vhost '/'"
    OutboxEvent.objects.filter(pk__in=[first.pk, second.pk]).update(
        status="dead", attempts=25, last_error=error
    )
    return second.pk, first.pk


def test_log_in_filter_dead_open_requeue(live_server, browser, django_user_model, screenshot):
    from selenium.webdriver.common.by import By

    django_user_model.objects.create_superuser("ops", "ops@example.com", "secret-pw")
    dead, other_dead = _events()

    browser.get(f"{live_server.url}/admin/pgoutbox/outboxevent/")
    assert "/admin/login/" in browser.current_url  # anonymous users are sent to log in
    browser.find_element(By.NAME, "username").send_keys("ops")
    browser.find_element(By.NAME, "password").send_keys("secret-pw")
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    assert browser.find_element(By.ID, "result_list")

    browser.find_element(By.LINK_TEXT, "Dead").click()
    assert "status__exact=dead" in browser.current_url
    rows = browser.find_elements(By.CSS_SELECTOR, "#result_list tbody tr")
    assert [row.find_element(By.CSS_SELECTOR, "th a").text for row in rows] == [
        str(other_dead),
        str(dead),
    ]
    browser.find_element(By.ID, "toggle-nav-sidebar").click()  # more room for the list
    screenshot.parent.mkdir(exist_ok=True)
    assert browser.save_screenshot(str(screenshot))

    browser.find_element(By.LINK_TEXT, str(dead)).click()
    body = browser.find_element(By.CSS_SELECTOR, ".field-pretty_body pre").text
    assert '"sku": "A-1"' in body
    assert browser.find_element(By.CSS_SELECTOR, ".field-status .readonly").text == "Dead"

    browser.find_element(By.ID, "requeue-event").click()
    assert f"Event {dead} requeued" in browser.find_element(By.CSS_SELECTOR, ".messagelist").text
    assert browser.find_element(By.CSS_SELECTOR, ".field-status .readonly").text == "Pending"
    assert not browser.find_elements(By.ID, "requeue-event")  # no longer dead

    event = OutboxEvent.objects.get(pk=dead)
    assert (event.status, event.attempts) == ("pending", 0)
    assert event.last_error == "broker rejected: no exchange 'missing' in vhost '/'"
    assert OutboxEvent.objects.get(pk=other_dead).status == "dead"
    assert screenshot.read_bytes().startswith(b"\x89PNG")
    assert 10_000 < screenshot.stat().st_size < 200_000
