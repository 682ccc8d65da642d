"""The portal in a real browser: Debian's Chromium driven by Playwright, against a
real uvicorn server on loopback (in this process, so it shares libvirt's test
driver with the fixtures that brought project ``lab`` up).

Screenshots land in tests/artifacts/. Skipped, saying why, when
/usr/bin/chromium is not installed (``make setup`` installs it).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright
from portal_support import NAMES, PASSWORD, give_passwords, serving
from server_support import Cast

from corral.config import SiteConfig
from corral.ops.session import Session
from corral.server.app import create_app

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(),
                       reason="needs Debian's chromium package at /usr/bin/chromium "
                              "(make setup installs it)"),
]


@pytest.fixture
def server(site: SiteConfig, admin_session: Session, cast: Cast,
           lab: dict[str, Any]) -> Iterator[str]:
    give_passwords(admin_session)
    with serving(create_app(site)) as url:
        yield url


@pytest.fixture
def browser() -> Iterator[Browser]:
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True,
            args=["--no-sandbox", "--disable-dev-shm-usage"])
        try:
            yield launched
        finally:
            launched.close()


def _log_in(page: Page, url: str, role: str, path: str = "/") -> None:
    page.goto(url + path)
    expect(page).to_have_url(f"{url}/login?next={path}")
    page.get_by_label("User name").fill(NAMES[role])
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(url + path)


def test_a_vm_stops_and_starts_on_the_overview_without_a_reload(server: str,
                                                                browser: Browser) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    navigations: list[str] = []
    _log_in(page, server, "owner")
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    web = page.locator('tr[data-vm="lab.web"]')
    expect(web).to_have_attribute("data-state", "running")
    expect(page.locator('tr[data-vm="lab.app"]')).to_be_visible()
    expect(page.locator("#host-rows").get_by_role("row")).to_contain_text("local up")
    page.evaluate("window.corralMarker = 'the same page'")
    page.on("framenavigated", lambda frame: navigations.append(frame.url))

    page.get_by_role("button", name="Shut down lab.web").click()
    expect(page.locator("#notice")).to_contain_text("lab.web: clean")
    expect(web).to_have_attribute("data-state", "shutoff", timeout=15_000)
    expect(web.locator(".state")).to_have_text("shutoff")
    page.get_by_role("button", name="Start lab.web").click()
    expect(page.locator("#notice")).to_contain_text("lab.web: starting")
    expect(web).to_have_attribute("data-state", "running", timeout=15_000)

    assert page.evaluate("window.corralMarker") == "the same page"
    assert navigations == []
    page.screenshot(path=str(ARTIFACTS / "overview-desktop.png"), full_page=True)


def test_the_overview_greys_while_its_live_stream_is_lost_and_clears_when_back(
    site: SiteConfig, admin_session: Session, cast: Cast, lab: dict[str, Any],
    browser: Browser,
) -> None:
    """The server goes away under an open overview: its rows are greyed and the
    notice says since when; started again on the same address, the page's
    stream reconnects by itself and the marks go, without a reload."""
    give_passwords(admin_session)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    live = page.locator("[sse-connect]")
    with serving(create_app(site)) as url:
        _log_in(page, url, "owner")
        expect(page.locator('tr[data-vm="lab.web"]')).to_have_attribute("data-state", "running")
        expect(live).not_to_have_class(re.compile("live-lost"))
        page.evaluate("window.corralMarker = 'the same page'")
    expect(live).to_have_class(re.compile("live-lost"), timeout=15_000)
    expect(page.locator("#notice")).to_contain_text(re.compile(
        r"Live updates lost at \d\d:\d\d:\d\d"))
    grey = page.locator('tr[data-vm="lab.web"]').evaluate(
        "row => getComputedStyle(row).color")
    page.screenshot(path=str(ARTIFACTS / "overview-live-lost.png"), full_page=True)
    port = int(url.rsplit(":", 1)[1])
    with serving(create_app(site), port=port):
        expect(live).not_to_have_class(re.compile("live-lost"), timeout=30_000)
        expect(page.locator("#notice")).to_contain_text("Live updates are back")
        assert page.locator('tr[data-vm="lab.web"]').evaluate(
            "row => getComputedStyle(row).color") != grey
        assert page.evaluate("window.corralMarker") == "the same page"


def test_the_audit_page_for_an_administrator_and_not_for_a_user(server: str,
                                                                browser: Browser) -> None:
    admin = browser.new_page()
    _log_in(admin, server, "admin")
    admin.get_by_role("link", name="Audit log").click()
    expect(admin.get_by_role("heading", name="Audit log")).to_be_visible()
    expect(admin.get_by_role("region", name="Audit entries")).to_contain_text("login")
    admin.get_by_label("User").fill("alice")
    admin.get_by_role("button", name="Filter").click()
    expect(admin).to_have_url(f"{server}/audit?user=alice&since=")
    admin.screenshot(path=str(ARTIFACTS / "audit.png"), full_page=True)

    user = browser.new_context().new_page()
    _log_in(user, server, "owner")
    expect(user.get_by_role("link", name="Audit log")).to_have_count(0)
    answer = user.goto(f"{server}/audit")
    assert answer is not None and answer.status == 403
    expect(user.get_by_role("heading", name="403: Not allowed")).to_be_visible()


def test_the_overview_fits_a_phone(server: str, browser: Browser) -> None:
    page = browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True,
                            device_scale_factor=2)
    _log_in(page, server, "owner")
    expect(page.locator('tr[data-vm="lab.web"]')).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.screenshot(path=str(ARTIFACTS / "overview-phone.png"), full_page=True)
    page.goto(f"{server}/vms/lab.web")
    expect(page.get_by_role("button", name="Pause lab.web")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.screenshot(path=str(ARTIFACTS / "vm-phone.png"), full_page=True)


def test_a_project_file_is_edited_checked_and_applied(server: str, browser: Browser) -> None:
    page = browser.new_page()
    _log_in(page, server, "owner", "/projects/lab")
    editor = page.get_by_label("Project file")
    text = editor.input_value()
    assert "project lab" in text
    editor.fill(text.replace("memory 128M", "memory lots"))
    page.get_by_role("button", name="Check and save").click()
    errors = page.get_by_role("alert")
    expect(errors).to_contain_text("The file was not saved")
    expect(errors.locator("code").first).to_have_text(re.compile(r"lab\.corral:\d+:\d+"))
    editor.fill(text.replace("memory 128M", "memory 160M"))
    page.get_by_role("button", name="Check and save").click()
    expect(page.locator("#notice")).to_have_text("saved lab.corral")
    expect(page.get_by_role("region", name="Plan")).to_contain_text("memory")
    page.get_by_role("button", name="Upgrade: apply the changes").click()
    expect(page.get_by_role("heading", name="upgrade lab")).to_be_visible()
    expect(page.locator("#job-end")).to_contain_text("Done (ok)", timeout=30_000)
    page.screenshot(path=str(ARTIFACTS / "job.png"), full_page=True)
