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
from stream.adapters.redis_keys import account_alerts_key
from tests.integration.conftest import Deployment, wait_until

pytestmark = pytest.mark.integration
CHROMIUM = "/usr/bin/chromium"
TOKEN = "web-test-token-0123456789"
MINUS = "\u2212"  # the page writes negative changes with a true minus sign
SHOTS = Path(__file__).parents[2] / ".artifacts" / "screenshots"
DEFAULT_MODEL = Path(__file__).parents[2] / "stream/config/models/default.yaml"
FIRST_VERSION = "web-v1"
NEW_VERSION = "default-2026.11"  # the version of default.yaml


def event(customer: str, kind: str, n: int) -> dict[str, Any]:
    return {"event_id": f"{customer}-{kind}-{n}", "customer_id": customer, "type": kind,
            "timestamp": int(time.time() * 1000)}  # fmt: skip


@pytest.fixture
def page_on_known_data(
    deploy: Callable[..., Deployment], tmp_path: Path
) -> Iterator[tuple[Deployment, WebProcess]]:
    """Four customers: a power user, a middling one and two who uninstalled the app (one
    on plan pro of account 4242, one on plan free of account acme). They are scored by a
    worker with model ``web-v1`` (the default model with accounts on); a second worker with
    the same model as the default version then scores the middling one again, which marks
    the model-version change in its history."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make install` installs Debian's chromium")
    d = deploy(model=accounts_model(tmp_path, FIRST_VERSION), ENGAGEMENT_API_TOKEN=TOKEN)
    d.start_worker()
    for n in range(12):
        d.send("clickstream", "web-power", event("web-power", "conversion", n))
    for n in range(5):
        d.send("clickstream", "web-mid", event("web-mid", "conversion", n))
    now_ms = int(time.time() * 1000)
    profiles = {"web-risk": ({"plan": "pro", "país": "España"}, 4242),
                "web-risk2": ({"plan": "free"}, "acme")}  # fmt: skip
    for customer, (traits, account) in profiles.items():
        d.send("app_installs", customer, event(customer, "app_install", 0))
        calls = [{"type": "identify", "messageId": f"i-{customer}", "traits": traits},
                 {"type": "group", "messageId": f"g-{customer}", "groupId": account}]  # fmt: skip
        for call in calls:
            d.send("clickstream", customer, {**call, "userId": customer, "timestamp": now_ms})
    for user, plan, country in (("web-power", "pro", "DE"), ("web-mid", "free", "FR")):
        traits = {"plan": plan, "country": country}
        d.send("clickstream", user, {"type": "identify", "messageId": f"i-{user}", "userId": user,
                                     "timestamp": now_ms, "traits": traits})  # fmt: skip
    d.flush()
    for customer, (_, account) in profiles.items():
        # Its account is known before the uninstall is read (the group call comes on another
        # topic): an account first seen already at risk has no band to leave, so no alert.
        wait_until(lambda c=customer, a=str(account): d.customer(c).get("band")
                   == "very_disengaged" and d.customer(c).get("account") == a, 60)  # fmt: skip
        d.send("app_installs", customer, event(customer, "app_uninstall", 1))
    d.flush()
    wait_until(lambda: d.redis.zcard(f"{d.settings.redis_prefix}:alerts") == 2, 60)
    # The account roll-up (and its alert) follows the customers' publish in the same batch.
    risky_account = account_alerts_key(d.settings.redis_prefix, "4242")
    wait_until(lambda: d.redis.llen(risky_account) == 1, 60)
    d.workers[0].stop()
    d.start_worker(ENGAGEMENT_MODEL=accounts_model(tmp_path, NEW_VERSION))
    d.send("clickstream", "web-mid", event("web-mid", "page_view", 99))
    d.flush()
    wait_until(lambda: NEW_VERSION in d.customer("web-mid").get("history_markers", ""), 60)
    web = WebProcess(d.env, tmp_path / "web.log", free_port(), snapshot_every_s=1)
    web.start()
    try:
        yield d, web
    finally:
        web.stop()


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
    assert status == 200 and overview["total"] == 4
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
    assert customer["trend"]["factor_changes_7d"] == {"app_installs": 10.0, "app_uninstalls": -40.0}
    assert http(web.url + "api/customers/rlo%E2%80%AEx", token=TOKEN)[0] == 400  # bidi override
    status, mid = http(web.url + "api/customers/web-mid", token=TOKEN)
    assert [m["model_version"] for m in mid["history"]["markers"]] == [NEW_VERSION]
    assert mid["model_version"] == NEW_VERSION
    filtered = {
        "": ["web-risk", "web-risk2"], "trait=plan:pro": ["web-risk"],
        "account=acme": ["web-risk2"], "trait=plan:pro&account=acme": [],
        "trait=pa%C3%ADs:Espa%C3%B1a&account=4242": ["web-risk"],
    }  # fmt: skip
    for query, expected in filtered.items():
        status, risk = http(web.url + "api/at-risk?" + query, token=TOKEN)
        assert status == 200 and sorted(c["customer_id"] for c in risk["customers"]) == expected
    assert http(web.url + "api/segments")[0] == 401
    status, found = http(web.url + "api/segments", token=TOKEN)
    assert status == 200 and list(found["dimensions"]) == ["plan", "country"]
    plans = {row["value"]: row for row in found["dimensions"]["plan"]}
    assert plans["pro"] == {
        "value": "pro", "customers": 2, "mean_score": 47.0,
        "bands": {"churn_risk": 1, "very_disengaged": 0, "somewhat_engaged": 0,
                  "highly_engaged": 0, "power_user": 1},
        "index": {"engaged": 50.0, "responsive": 0.0, "disengaged": 50.0},
    }  # fmt: skip
    assert plans["free"]["customers"] == 2 and plans["free"]["bands"]["churn_risk"] == 1


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
            account(page, web)
            invalid_ids(page, web)
            timeline(page)
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
                "very_disengaged": "0", "churn_risk": "2"}  # fmt: skip
    for band, count in expected.items():
        expect(page.locator(f'[data-count="{band}"]')).to_have_text(count)
    expect(page.locator('[data-kpi="total"] .value')).to_have_text("4")
    expect(page.locator('[data-kpi="engaged"] .value')).to_have_text("25.0%")
    expect(page.locator('[data-kpi="disengaged"] .value')).to_have_text("50.0%")
    expect(page.locator('[data-kpi="alerts"] .value')).to_have_text("2")
    expect(page.locator(".alert-row").first).to_contain_text("web-risk")
    page.screenshot(path=SHOTS / "web-overview.png", full_page=True)


def segments(page: Any) -> None:
    """The segment comparison on the overview: per plan, then per country (known data:
    web-power and web-risk on plan pro, web-mid and web-risk2 on free (free sorts first on
    the tie); neither web-risk has a country)."""
    from playwright.sync_api import expect  # noqa: PLC0415

    card = page.locator("#segments")
    expect(card.locator("#segment-table")).to_have_attribute("data-dimension", "plan")
    expect(card.locator("tbody tr")).to_have_count(2)
    expect(card.locator("tbody tr").first).to_have_attribute("data-segment", "free")
    expect(card.locator('[data-seg-customers="pro"]')).to_have_text("2")
    expect(card.locator('[data-seg-mean="pro"]')).to_have_text("47")  # (122 - 28) / 2
    expect(card.locator('[data-seg-engaged="pro"]')).to_have_text("50.0%")
    expect(card.locator('[data-seg-customers="free"]')).to_have_text("2")
    expect(card.locator('[data-seg-engaged="free"]')).to_have_text("0.0%")
    expect(card.locator('tr[data-segment="pro"] [data-mix]')).to_have_count(2)
    card.locator('button[data-dimension="country"]').click()
    expect(card.locator("#segment-table")).to_have_attribute("data-dimension", "country")
    for value, count in (("DE", "1"), ("FR", "1"), ("(none)", "2")):
        expect(card.locator(f'[data-seg-customers="{value}"]')).to_have_text(count)
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
    expect(row.locator("td[data-account]")).to_have_text("4242")
    expect(page.locator("#at-risk tbody tr")).to_have_count(2)
    page.screenshot(path=SHOTS / "web-at-risk.png", full_page=True)
    at_risk_filters(page)

    page.click('.tabs a[data-view="alerts"]')
    expect(page.locator("#alerts tbody tr")).to_have_count(2)
    expect(page.locator("#alerts tbody tr").first).to_contain_text("Churn risk entered")
    page.screenshot(path=SHOTS / "web-alerts.png", full_page=True)

    page.click('.tabs a[data-view="upsell"]')
    expect(page.locator("#upsell tbody tr")).to_have_count(1)
    expect(page.locator('#upsell tr[data-customer="web-power"]')).to_contain_text("122")
    page.screenshot(path=SHOTS / "web-upsell.png", full_page=True)


def at_risk_filters(page: Any) -> None:
    """The segment and account filters narrow the list, stay in the address (so the live
    refresh keeps them) and clear."""
    from playwright.sync_api import expect  # noqa: PLC0415

    rows = page.locator("#at-risk tbody tr")
    page.select_option("#filter-trait", "plan:free")
    expect(rows).to_have_count(1)
    expect(page.locator('#at-risk tr[data-customer="web-risk2"] td[data-account]')).to_have_text(
        "acme"
    )
    assert "trait=plan%3Afree" in page.url
    page.select_option("#filter-trait", "plan:pro")
    expect(rows).to_have_count(1)
    expect(page.locator('#at-risk tr[data-customer="web-risk"]')).to_be_visible()
    page.select_option("#filter-account", "acme")
    expect(page.locator(".empty")).to_have_text("No customer at risk matches these filters.")
    page.select_option("#filter-trait", "")
    expect(rows).to_have_count(1)
    expect(page.locator('#at-risk tr[data-customer="web-risk2"]')).to_be_visible()
    expect(page.locator("#filter-account")).to_have_value("acme")
    page.screenshot(path=SHOTS / "web-at-risk-filtered.png", full_page=True)
    page.click("#filter-clear")
    expect(rows).to_have_count(2)


def timeline(page: Any) -> None:
    """The score timeline of a customer scored by two model versions: a line at every band
    boundary with the band's name and bound, and the model-version marker."""
    from playwright.sync_api import expect  # noqa: PLC0415

    page.fill("#search-input", "web-mid")
    page.press("#search-input", "Enter")
    expect(page.locator("#customer-id")).to_have_text("web-mid")
    chart = page.locator("#timeline svg.timeline")
    expect(chart).to_be_visible()
    expect(chart.locator("[data-band-line]")).to_have_count(4)
    for band, bound in (("churn_risk", "0"), ("very_disengaged", "40"),
                        ("somewhat_engaged", "70"), ("highly_engaged", "100")):  # fmt: skip
        expect(chart.locator(f'[data-band-line="{band}"] text')).to_have_text(bound)
        expect(chart.locator(f'[data-band-label="{band}"]')).to_have_text(
            band.replace("_", " ").capitalize()
        )
    marker = chart.locator(f'[data-model-version="{NEW_VERSION}"]')
    expect(marker).to_have_count(1)
    expect(marker.locator("text")).to_have_text(f"model {NEW_VERSION}")
    expect(chart.locator(".score-points circle").first).to_be_attached()
    expect(chart.locator(".x-label")).to_have_count(5)
    box = chart.bounding_box()
    assert box is not None and box["width"] > 900 and box["height"] > 200  # laptop-readable
    page.screenshot(path=SHOTS / "web-customer-timeline.png", full_page=True)


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
    expect(page.locator('[data-change="app_uninstalls"]')).to_have_text(f"{MINUS}40")
    expect(page.locator('[data-change="app_installs"]')).to_have_text("+10")
    expect(page.locator('[data-change="regularity"]')).to_have_text("—")
    expect(page.locator("#timeline [data-band-line]")).to_have_count(4)
    page.screenshot(path=SHOTS / "web-customer.png", full_page=True)
    # Live: new events show up without a reload (8 conversions: -28 + 80).
    for n in range(8):
        deployment.send("clickstream", "web-risk", event("web-risk", "conversion", 100 + n))
    deployment.flush()
    expect(page.locator("#customer-score")).to_have_text("52", timeout=30_000)
    expect(page.locator(".customer-head .pill")).to_have_text("Somewhat engaged")


def accounts_model(tmp: Path, version: str) -> str:
    """The default model with accounts on (web-risk is account 4242's only user) and segment
    dimensions plan and country, as ``version``."""
    doc = yaml.safe_load(DEFAULT_MODEL.read_text())
    doc["accounts"] = {"aggregate": "mean"}
    doc["segments"] = {"dimensions": ["plan", "country"]}
    doc["version"] = version
    path = tmp / f"accounts-model-{version}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return str(path)


def account(page: Any, web: WebProcess) -> None:
    """The customer's account link opens the account view: score, band, its user and its
    churn-risk alert (web-risk fell to -28 while alone in account 4242); then the list."""
    from playwright.sync_api import expect  # noqa: PLC0415

    status, view = http(web.url + "api/accounts/4242", token=TOKEN)
    assert status == 200 and view["users"] == 1 and view["score"] == 52
    assert [a["type"] for a in view["alerts"]] == ["account_churn_risk"]
    assert http(web.url + "api/accounts/nobody", token=TOKEN)[0] == 404
    assert http(web.url + "api/accounts/a%00b", token=TOKEN)[0] == 400
    page.click("#customer-account")
    expect(page.locator("#account-id")).to_have_text("4242")
    expect(page.locator("#account-score")).to_have_text("52")
    expect(page.locator("#account-users")).to_have_text("1 user")
    expect(page.locator(".customer-head .pill")).to_have_text("Somewhat engaged")
    expect(page.locator('#account-users-table tr[data-customer="web-risk"]')).to_contain_text("52")
    expect(page.locator("#account-alerts .alert-item")).to_have_count(1)
    expect(page.locator("#account-alerts .alert-item")).to_contain_text("Account churn risk")
    expect(page.locator("#account-history")).to_contain_text("One point so far (52)")
    page.screenshot(path=SHOTS / "web-account.png", full_page=True)
    page.click('.tabs a[data-view="accounts"]')
    at_risk = page.locator("#accounts tr[data-account]")  # acme (web-risk2 at -28), not 4242
    expect(at_risk).to_have_count(1)
    expect(page.locator('#accounts tr[data-account="acme"]')).to_contain_text("-28")
    page.click('#account-bands [data-band="somewhat_engaged"]')
    expect(page.locator('#accounts tr[data-account="4242"]')).to_contain_text("52")
    page.screenshot(path=SHOTS / "web-accounts.png", full_page=True)


def invalid_ids(page: Any, web: WebProcess) -> None:
    """An id the API would refuse (400) is refused by the page itself, never requested."""
    from urllib.parse import quote  # noqa: PLC0415

    from playwright.sync_api import expect  # noqa: PLC0415

    asked: list[str] = []
    page.on("request", lambda request: asked.append(request.url))
    for kind, text in (("customer", "This is not a valid customer id."),
                       ("account", "This is not a valid account id.")):  # fmt: skip
        for bad in ("rlo\u202ex", "zw\u200bsp", "bom\ufeff", "soft\u00adhy"):
            page.goto(f"{web.url}#/{kind}/{quote(bad)}")
            expect(page.locator("main")).to_contain_text(text)
    refused = [url for url in asked if "/api/customers/" in url or "/api/accounts/" in url]
    assert refused == [], refused
    assert http(web.url + "api/id-rule", token=TOKEN)[1]["max_length"] == 128


def log_out(page: Any, web: WebProcess) -> None:
    from playwright.sync_api import expect  # noqa: PLC0415

    page.click(".logout button")
    expect(page).to_have_url(web.url + "login")
    page.goto(web.url)
    expect(page).to_have_url(web.url + "login")
