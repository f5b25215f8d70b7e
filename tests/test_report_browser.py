"""The HTML report in a real browser: fits the page, fetches nothing, runs nothing.

Drives Debian's chromium (``apt-get install chromium``) through Playwright for Python
(``pip install playwright``); no browser is downloaded. The screenshot of the compensated
failover report is kept as ``report.png`` in the test's tmp directory (or in
``$DRC_REPORT_SCREENSHOTS`` when set) to be looked at.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from reports.build import build_report
from reports.render import render_html
from tests.reports_golden.cases import HOSTILE, Case, compensated_failover, hostile
from tests.support.browser import ARGS, CHROMIUM

playwright_api = pytest.importorskip("playwright.async_api")
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"no {CHROMIUM}")

# Every element whose box ends right of the page's visible width.
OVERFLOWING = """() => {
  const width = document.documentElement.clientWidth;
  return [...document.querySelectorAll('body *')]
    .filter(e => e.getBoundingClientRect().right > width + 0.5)
    .map(e => e.tagName + (e.className ? '.' + e.className : ''));
}"""


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    async with playwright_api.async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield chromium
        finally:
            await chromium.close()


async def _open(
    browser: Any, case: Case, where: Path, width: int
) -> tuple[Any, list[str], list[str]]:
    """The page of ``case``'s report, with the requests it made and the dialogs it opened."""
    report = build_report(case.incident, case.runs, case.changes)
    path = where / "report.html"
    path.write_text(render_html(report), encoding="utf-8")
    page = await browser.new_page(viewport={"width": width, "height": 900})
    requests: list[str] = []
    dialogs: list[str] = []
    page.on("request", lambda request: requests.append(request.url))

    async def dismiss(dialog: Any) -> None:
        dialogs.append(dialog.message)
        await dialog.dismiss()

    page.on("dialog", dismiss)
    await page.goto(path.as_uri())
    await page.wait_for_load_state("load")
    return page, requests, dialogs


@pytest.mark.parametrize("width", [1280, 800])
async def test_the_report_fits_the_page_and_fetches_nothing(
    browser: Any, tmp_path: Path, width: int
) -> None:
    page, requests, _ = await _open(browser, compensated_failover(), tmp_path, width)
    sizes = await page.evaluate(
        "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert sizes[0] <= sizes[1], f"the page scrolls sideways at {width} px: {sizes}"
    assert await page.evaluate(OVERFLOWING) == []
    assert requests == [(tmp_path / "report.html").as_uri()]
    assert (
        await page.locator("svg.chart circle").count()
        == await page.locator(
            "table.timeline tr.ok, table.timeline tr.fail, table.timeline tr.warn, "
            "table.timeline tr.info"
        ).count()
    )
    shot = tmp_path / "report.png"
    await page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    keep = os.environ.get("DRC_REPORT_SCREENSHOTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(keep) / f"report-{width}.png")


async def test_hostile_names_show_as_text_and_run_nothing(browser: Any, tmp_path: Path) -> None:
    page, requests, dialogs = await _open(browser, hostile(), tmp_path, 1280)
    text = await page.inner_text("body")
    assert HOSTILE in text
    assert "[x](javascript:alert(2))" in text
    assert await page.locator("script").count() == 0
    assert await page.locator("main b").count() == 0  # "<b>bold</b>" stayed text
    assert dialogs == []
    assert requests == [(tmp_path / "report.html").as_uri()]
