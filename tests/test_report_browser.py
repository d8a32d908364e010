"""The yearly report as a reader sees it: opened offline in headless Debian chromium."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pipeline.data import project_paths
from pipeline.report import NAME

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(),
        reason="Debian's chromium is not installed (`make browser` installs it as root with apt)",
    ),
]


def _report(root: Path) -> Path:
    folder = project_paths(root).report
    found = sorted(folder.glob(NAME.format(year="*") + ".html"))
    assert found, f"no report in {folder}"
    return found[-1]


def test_report_opens_without_errors_and_shows_heatmap_and_quotes(
    pipeline_root: Path, tmp_path: Path
) -> None:
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    html = _report(pipeline_root)
    problems: list[str] = []
    requests: list[str] = []
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900}, locale="nl-NL")
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.on("request", lambda r: requests.append(r.url))
            page.goto(html.as_uri(), wait_until="load")
            heatmap = page.locator("#heatmap svg.figuur")
            assert heatmap.is_visible()
            box = heatmap.bounding_box()
            assert box and box["width"] > 300 and box["height"] > 100
            quotes = page.locator("blockquote.citaat")
            assert quotes.count() >= 3
            quotes.first.scroll_into_view_if_needed()
            assert quotes.first.is_visible()
            assert "bron" in quotes.first.inner_text() and "beurt" in quotes.first.inner_text()
            assert page.locator("h2", has_text="Opkomende onderwerpen").is_visible()
            shot = tmp_path / f"{html.stem}.png"
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    print(f"screenshot: {shot}")
    assert shot.stat().st_size > 10_000
    assert problems == [], f"console errors: {problems}"
    assert [u for u in requests if not u.startswith("file:")] == [], "the report loads nothing"
