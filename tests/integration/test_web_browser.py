"""The web page in a real browser (Debian's chromium driven by Playwright) on known data.

A real worker scores real Kafka events into the real Redis; ``engagement web`` serves the
page; the browser logs in and reads what the page shows. Screenshots of every view are
saved under ``.artifacts/screenshots/``.
"""

from __future__ import annotations

import shutil
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from devtools.localstack.stack import free_port
from devtools.localstack.web import WebProcess
from tests.integration.conftest import Deployment, wait_until

pytestmark = pytest.mark.integration
CHROMIUM = "/usr/bin/chromium"
TOKEN = "web-test-token-0123456789"
MINUS = "\u2212"  # the page writes negative changes with a true minus sign
SHOTS = Path(__file__).parents[2] / ".artifacts" / "screenshots"


def event(customer: str, kind: str, n: int) -> dict[str, Any]:
    return {"event_id": f"{customer}-{kind}-{n}", "customer_id": customer, "type": kind,
            "timestamp": int(time.time() * 1000)}  # fmt: skip


@pytest.fixture
def page_on_known_data(
    deploy: Callable[..., Deployment], tmp_path: Path
) -> Iterator[tuple[Deployment, WebProcess]]:
    """Three customers: a power user, a middling one and one who uninstalled the app."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make install` installs Debian's chromium")
    d = deploy(model=str(segments_model(tmp_path)), ENGAGEMENT_API_TOKEN=TOKEN)
    d.start_worker()
    for n in range(12):
        d.send("clickstream", "web-power", event("web-power", "conversion", n))
    for n in range(5):
        d.send("clickstream", "web-mid", event("web-mid", "conversion", n))
    d.send("app_installs", "web-risk", event("web-risk", "app_install", 0))
    now_ms = int(time.time() * 1000)
    calls = [{"type": "identify", "messageId": "i1", "traits": {"plan": "pro", "país": "España"}},
             {"type": "group", "messageId": "g1", "groupId": 4242}]  # fmt: skip
    for call in calls:
        d.send("clickstream", "web-risk", {**call, "userId": "web-risk", "timestamp": now_ms})
    for user, plan, country in (("web-power", "pro", "DE"), ("web-mid", "free", "FR")):
        traits = {"plan": plan, "country": country}
        d.send("clickstream", user, {"type": "identify", "messageId": f"i-{user}", "userId": user,
                                     "timestamp": now_ms, "traits": traits})  # fmt: skip
    d.flush()
    wait_until(lambda: d.customer("web-risk").get("band") == "very_disengaged", 60)
    d.send("app_installs", "web-risk", event("web-risk", "app_uninstall", 1))
    d.flush()
    wait_until(lambda: d.redis.zcard(f"{d.settings.redis_prefix}:alerts") == 1, 60)
    web = WebProcess(d.env, tmp_path / "web.log", free_port(), snapshot_every_s=1)
    web.start()
    try:
        yield d, web
    finally:
        web.stop()


def segments_model(tmp: Path) -> Path:
    """The default model with segment dimensions plan and country."""
    doc = yaml.safe_load((Path(__file__).parents[2] / "stream/config/models/default.yaml")
                         .read_text())  # fmt: skip
    doc["segments"] = {"dimensions": ["plan", "country"]}
    path = tmp / "segments-model.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def http(url: str, method: str = "GET", token: str | None = None) -> tuple[int, Any]:
    request = urllib.request.Request(url, method=method)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, orjson.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, None


def api_needs_the_token_and_is_read_only(web: WebProcess) -> None:
    assert http(web.url + "api/overview")[0] == 401
    assert http(web.url + "api/overview", token="wrong-token-0123456789")[0] == 401
    status, overview = http(web.url + "api/overview", token=TOKEN)
    assert status == 200 and overview["total"] == 3
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        assert http(web.url + "api/overview", method=method, token=TOKEN)[0] == 405
    assert http(web.url + "api/customers/a%00b", token=TOKEN)[0] == 400  # a control character
    assert http(web.url + "api/customers/a%7Bb%7D", token=TOKEN)[0] == 404  # valid, unknown
    assert http(web.url + "api/customers/nobody", token=TOKEN)[0] == 404
    status, customer = http(web.url + "api/customers/web-risk", token=TOKEN)
    assert customer["breakdown"] == {"app_installs": 10.0, "app_uninstalls": -40.0,
                                     "regularity": 2.0}  # fmt: skip
    assert [a["type"] for a in customer["alerts"]] == ["churn_risk_entered"]
    assert customer["traits"] == {"plan": "pro", "país": "España"}
    assert customer["account"] == "4242"
    assert http(web.url + "api/segments")[0] == 401
    status, found = http(web.url + "api/segments", token=TOKEN)
    assert status == 200 and list(found["dimensions"]) == ["plan", "country"]
    assert found["dimensions"]["plan"][0] == {
        "value": "pro", "customers": 2, "mean_score": 47.0,
        "bands": {"churn_risk": 1, "very_disengaged": 0, "somewhat_engaged": 0,
                  "highly_engaged": 0, "power_user": 1},
        "index": {"engaged": 50.0, "responsive": 0.0, "disengaged": 50.0},
    }  # fmt: skip


def test_page_shows_known_data(page_on_known_data: tuple[Deployment, WebProcess]) -> None:
    from playwright.sync_api import sync_playwright  # noqa: PLC0415

    deployment, web = page_on_known_data
    api_needs_the_token_and_is_read_only(web)
    shutil.rmtree(SHOTS, ignore_errors=True)
    SHOTS.mkdir(parents=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1366, "height": 860})
            page.set_default_timeout(15_000)
            log_in(page, web)
            overview(page)
            segments(page)
            lists(page)
            customer(page, deployment)
            log_out(page, web)
        finally:
            browser.close()


def log_in(page: Any, web: WebProcess) -> None:
    """Login required: the page sends an anonymous visitor to the form."""
    from playwright.sync_api import expect  # noqa: PLC0415

    page.goto(web.url)
    expect(page).to_have_url(web.url + "login")
    page.fill("#token", "not-the-token-0123456789")
    page.click("button[type=submit]")
    expect(page.locator(".error")).to_be_visible()
    page.fill("#token", TOKEN)
    page.screenshot(path=SHOTS / "web-login.png")
    page.click("button[type=submit]")
    expect(page.locator('[data-kpi="total"]')).to_be_visible()
    cookie = next(c for c in page.context.cookies() if c["name"] == "engagement_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert TOKEN not in cookie["value"]


def overview(page: Any) -> None:
    """Band counts, the engagement index and the alert count of the known data."""
    from playwright.sync_api import expect  # noqa: PLC0415

    expected = {"power_user": "1", "highly_engaged": "0", "somewhat_engaged": "1",
                "very_disengaged": "0", "churn_risk": "1"}  # fmt: skip
    for band, count in expected.items():
        expect(page.locator(f'[data-count="{band}"]')).to_have_text(count)
    expect(page.locator('[data-kpi="total"] .value')).to_have_text("3")
    expect(page.locator('[data-kpi="engaged"] .value')).to_have_text("33.3%")
    expect(page.locator('[data-kpi="disengaged"] .value')).to_have_text("33.3%")
    expect(page.locator('[data-kpi="alerts"] .value')).to_have_text("1")
    expect(page.locator(".alert-row").first).to_contain_text("web-risk")
    page.screenshot(path=SHOTS / "web-overview.png", full_page=True)


def segments(page: Any) -> None:
    """The segment comparison on the overview: per plan, then per country (known data:
    web-power and web-risk on plan pro, web-mid on free; web-risk has no country)."""
    from playwright.sync_api import expect  # noqa: PLC0415

    card = page.locator("#segments")
    expect(card.locator("#segment-table")).to_have_attribute("data-dimension", "plan")
    expect(card.locator("tbody tr")).to_have_count(2)
    expect(card.locator("tbody tr").first).to_have_attribute("data-segment", "pro")
    expect(card.locator('[data-seg-customers="pro"]')).to_have_text("2")
    expect(card.locator('[data-seg-mean="pro"]')).to_have_text("47")  # (122 - 28) / 2
    expect(card.locator('[data-seg-engaged="pro"]')).to_have_text("50.0%")
    expect(card.locator('[data-seg-customers="free"]')).to_have_text("1")
    expect(card.locator('[data-seg-engaged="free"]')).to_have_text("0.0%")
    expect(card.locator('tr[data-segment="pro"] [data-mix]')).to_have_count(2)
    card.locator('button[data-dimension="country"]').click()
    expect(card.locator("#segment-table")).to_have_attribute("data-dimension", "country")
    for value in ("DE", "FR", "(none)"):
        expect(card.locator(f'[data-seg-customers="{value}"]')).to_have_text("1")
    card.screenshot(path=SHOTS / "web-segments.png")
    card.locator('button[data-dimension="plan"]').click()


def lists(page: Any) -> None:
    """At risk (with the reason), alerts of the last 24 hours, upsell."""
    from playwright.sync_api import expect  # noqa: PLC0415

    page.click('.tabs a[data-view="at-risk"]')
    row = page.locator('#at-risk tr[data-customer="web-risk"]')
    expect(row).to_contain_text("Very disengaged")
    expect(row.locator('[data-factor="app_uninstalls"]')).to_have_text(f"App uninstalls {MINUS}40")
    expect(row.locator("td.num")).to_have_text("-28")
    page.screenshot(path=SHOTS / "web-at-risk.png", full_page=True)

    page.click('.tabs a[data-view="alerts"]')
    expect(page.locator("#alerts tbody tr")).to_have_count(1)
    expect(page.locator("#alerts tbody tr")).to_contain_text("Churn risk entered")
    page.screenshot(path=SHOTS / "web-alerts.png", full_page=True)

    page.click('.tabs a[data-view="upsell"]')
    expect(page.locator("#upsell tbody tr")).to_have_count(1)
    expect(page.locator('#upsell tr[data-customer="web-power"]')).to_contain_text("122")
    page.screenshot(path=SHOTS / "web-upsell.png", full_page=True)


def customer(page: Any, deployment: Deployment) -> None:
    """Score, band, breakdown by factor and the alert; then a live update."""
    from playwright.sync_api import expect  # noqa: PLC0415

    page.fill("#search-input", "web-risk")
    page.press("#search-input", "Enter")
    expect(page.locator("#customer-id")).to_have_text("web-risk")
    expect(page.locator("#customer-score")).to_have_text("-28")
    expect(page.locator(".customer-head .pill")).to_have_text("Churn risk")
    points = {"app_uninstalls": f"{MINUS}40", "app_installs": "+10", "regularity": "+2"}
    for factor, shown in points.items():
        expect(page.locator(f'[data-points="{factor}"]')).to_have_text(shown)
    expect(page.locator(".alert-item")).to_have_count(1)
    expect(page.locator("#customer-account")).to_have_text("Account 4242")
    expect(page.locator('#traits [data-trait="país"]')).to_have_text("país: España")
    page.screenshot(path=SHOTS / "web-customer.png", full_page=True)
    # Live: new events show up without a reload (8 conversions: -28 + 80).
    for n in range(8):
        deployment.send("clickstream", "web-risk", event("web-risk", "conversion", 100 + n))
    deployment.flush()
    expect(page.locator("#customer-score")).to_have_text("52", timeout=30_000)
    expect(page.locator(".customer-head .pill")).to_have_text("Somewhat engaged")


def log_out(page: Any, web: WebProcess) -> None:
    from playwright.sync_api import expect  # noqa: PLC0415

    page.click(".logout button")
    expect(page).to_have_url(web.url + "login")
    page.goto(web.url)
    expect(page).to_have_url(web.url + "login")
