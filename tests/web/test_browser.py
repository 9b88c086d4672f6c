"""The status page as a person sees it: the real server over real local tables (after a monitor
run against the emulator with failed and long runs, a rejected edit and a held sync: manual
change), opened in Debian's headless Chromium through Playwright for Python (the system browser:
no download). Saves its screenshots; with ``LJM_WRITE_SCREENSHOTS=1`` into docs/images, the ones
docs/ and the README show (a plain test run leaves the checkout as it was)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.run_world import BROKEN_LINE
from tests.web.conftest import REPORTS_EDIT, Served

CHROMIUM = "/usr/bin/chromium"
DOCS_IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is missing (apt-get install chromium)"
    ),
]


def test_a_person_sees_the_failing_module_its_error_and_its_whole_graph(
    served: Served, tmp_path: Path
) -> None:
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    images = DOCS_IMAGES if os.environ.get("LJM_WRITE_SCREENSHOTS") == "1" else tmp_path
    images.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 720})
            page.goto(f"{served.url}/")
            failing = page.locator('tr[data-module="nightly_sales"]')
            assert "unhealthy" in (failing.get_attribute("class") or "")
            assert failing.locator(".badge.health-failing").inner_text() == "failing"
            assert f"sales.yaml:{BROKEN_LINE}" in failing.locator("td.error").inner_text()
            orders = page.locator('tr[data-module="hourly_orders"]')
            assert orders.locator(".badge").nth(1).inner_text() == "too long"
            page.screenshot(path=str(images / "status_overview.png"), full_page=True)

            page.goto(f"{served.url}/?health=failing")
            assert page.locator("#modules tbody tr").count() == 1

            failing.page.goto(f"{served.url}/")
            page.locator('tr[data-module="nightly_sales"] a').first.click()
            page.wait_for_url("**/modules/nightly_sales")
            assert page.locator("#health").inner_text() == "failing"
            errors = page.locator("#errors").inner_text()
            assert f"sales.yaml:{BROKEN_LINE}" in errors and "2 consecutive failures" in errors
            tasks = page.locator("#graph g.task")
            assert sorted(tasks.nth(i).get_attribute("data-task") for i in range(tasks.count())) == [
                "sales_extract",
                "sales_publish",
                "sales_report",
            ]
            assert all(tasks.nth(i).is_visible() for i in range(tasks.count()))
            assert "cell 3: KeyError" in page.locator("#runs").inner_text()
            page.screenshot(path=str(images / "status_module.png"), full_page=True)

            page.goto(f"{served.url}/")
            manual = page.locator('tr[data-module="weekly_report"]')
            assert manual.locator(".badge").first.inner_text() == "manual pending"
            manual.locator("a").first.click()
            page.wait_for_url("**/modules/weekly_report")
            pending = page.locator("#pending").inner_text()
            old, new = REPORTS_EDIT
            assert f'tasks[weekly_summary].notebook_task.notebook_path: "{old}" -> "{new}"' in pending
            assert "apply --module weekly_report" in pending
            page.screenshot(path=str(images / "status_pending.png"), full_page=True)

            page.goto(f"{served.url}/rejected")
            assert f"sales.yaml:{BROKEN_LINE}" in page.locator("#rejected").inner_text()
            page.goto(f"{served.url}/monitor")
            assert "monitor@" in page.locator("#lease").inner_text()
        finally:
            browser.close()
