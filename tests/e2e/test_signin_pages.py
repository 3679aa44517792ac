"""The sign-in pages in Chromium against pytest-django's live server (issue 3: sign in by
code, by link, wrong code, expired code, resend, rate-limit message; plus CSP and framing)."""

from __future__ import annotations

import re
import time
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import time_machine
from django.core import mail
from django.core.cache import cache
from django.utils import timezone

from authdevice.conf import app_settings
from authdevice.flows import applications as app_flows
from authdevice.models import Challenge

pytestmark = pytest.mark.django_db(transaction=True)

VERIFIER_CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"  # RFC 7636 App. B


@pytest.fixture(autouse=True)
def _site(settings, live_server):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.AUTHDEVICE_BASE_URL = live_server.url  # magic links point at the live server
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def csp_errors(page):
    """Console messages about blocked content: the pages must need no CSP exception."""
    seen: list[str] = []
    page.on(
        "console",
        lambda msg: seen.append(msg.text) if "Content Security Policy" in msg.text else None,
    )
    return seen


def sent_code(index: int = -1) -> str:
    return re.search(r"\b(\d{6})\b", mail.outbox[index].body).group(1)


def sent_link(index: int = -1) -> str:
    return re.search(r"(http\S+/signin/link/\S+/)", mail.outbox[index].body).group(1)


def other_than(code: str) -> str:
    return "000000" if code != "000000" else "111111"


def request_code(page, url: str, email: str = "ann@example.com", method: str = "OTP") -> None:
    page.goto(url)
    page.get_by_label("Email address or phone number").fill(email)
    if method == "MAGIC_LINK":
        page.get_by_label("Email me a sign-in link").check()
    page.get_by_role("button", name="Continue").click()


def test_sign_in_by_code(page, live_server, csp_errors):
    request_code(page, f"{live_server.url}/signin/")
    assert page.get_by_role("heading", name="Enter your code").is_visible()
    assert "a…@example.com" in page.inner_text("main")
    code_input = page.get_by_label("6-digit code")
    assert code_input.get_attribute("autocomplete") == "one-time-code"
    assert code_input.get_attribute("inputmode") == "numeric"
    # autofocus: typing goes straight into the code field
    page.keyboard.type(sent_code())
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{live_server.url}/signin/done/")
    assert page.get_by_role("heading", name="You are signed in").is_visible()
    assert "ann@example.com" in page.inner_text("main")
    # The stylesheet loaded under the page's own CSP (default-src 'self').
    radius = page.eval_on_selector("main", "e => getComputedStyle(e).borderTopLeftRadius")
    assert radius == "12px"
    assert csp_errors == []


def test_sign_in_by_code_goes_to_safe_next(page, live_server):
    request_code(page, f"{live_server.url}/signin/?next=/signout/")
    page.get_by_label("6-digit code").fill(sent_code())
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{live_server.url}/signout/")
    assert page.get_by_role("button", name="Sign out").is_visible()


def test_sign_in_by_link_in_the_same_browser(page, live_server, csp_errors):
    request_code(page, f"{live_server.url}/signin/", method="MAGIC_LINK")
    assert page.get_by_role("heading", name="Check your messages").is_visible()
    page.goto(sent_link())
    assert page.get_by_text("Continue to sign in as a…@example.com").is_visible()
    assert page.get_by_role("checkbox").count() == 0  # same browser: no confirmation
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{live_server.url}/signin/done/")
    assert page.get_by_role("heading", name="You are signed in").is_visible()
    assert csp_errors == []


def test_link_in_another_browser_names_the_account_and_needs_confirmation(new_context, live_server):
    asker = new_context().new_page()
    request_code(asker, f"{live_server.url}/signin/", method="MAGIC_LINK")
    other = new_context().new_page()
    other.goto(sent_link())
    assert "different browser" in other.inner_text("main")
    box = other.get_by_label("Yes, sign me in as a…@example.com on this browser.")
    # The checkbox is required: submitting without it goes nowhere.
    other.get_by_role("button", name="Sign in").click()
    assert "/signin/link/" in other.url and Challenge.objects.get().state == "pending"
    box.check()
    other.get_by_role("button", name="Sign in").click()
    other.wait_for_url(f"{live_server.url}/signin/done/")
    assert other.get_by_role("heading", name="You are signed in").is_visible()
    # The browser that asked is not signed in by someone else's click.
    asker.goto(f"{live_server.url}/signin/done/")
    assert "/signin/?next=" in asker.url


def test_wrong_code_shows_an_error_and_the_right_code_still_works(page, live_server):
    request_code(page, f"{live_server.url}/signin/")
    code = sent_code()
    page.get_by_label("6-digit code").fill(other_than(code))
    with page.expect_response(lambda r: r.request.method == "POST") as posted:
        page.get_by_role("button", name="Sign in").click()
    assert posted.value.status == 400
    alert = page.get_by_role("alert")
    assert "That code is not right or has expired" in alert.inner_text()
    assert page.get_by_label("6-digit code").get_attribute("aria-invalid") == "true"
    page.get_by_label("6-digit code").fill(code)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{live_server.url}/signin/done/")


def test_expired_code_is_refused_then_a_new_code_works(page, live_server):
    request_code(page, f"{live_server.url}/signin/")
    code = sent_code()
    Challenge.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    page.get_by_label("6-digit code").fill(code)
    page.get_by_role("button", name="Sign in").click()
    assert "not right or has expired" in page.get_by_role("alert").inner_text()
    page.get_by_role("button", name="Send a new code").click()
    assert "We sent a new code" in page.get_by_role("status").inner_text()
    assert len(mail.outbox) == 2
    page.get_by_label("6-digit code").fill(sent_code())
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{live_server.url}/signin/done/")


def test_resend_replaces_the_code(page, live_server):
    request_code(page, f"{live_server.url}/signin/")
    first = sent_code()
    page.get_by_role("button", name="Send a new code").click()
    second = sent_code()
    assert len(mail.outbox) == 2
    if first != second:  # 1 in a million they coincide
        page.get_by_label("6-digit code").fill(first)
        page.get_by_role("button", name="Sign in").click()
        assert "not right or has expired" in page.get_by_role("alert").inner_text()
    page.get_by_label("6-digit code").fill(second)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{live_server.url}/signin/done/")


def test_rate_limit_message(page, live_server, settings):
    settings.AUTHDEVICE_SEND_LIMIT_PER_IDENTIFIER = 1
    # Start 10 s into a fixed rate-limit window so both requests count in the same one.
    window = int(app_settings.SEND_WINDOW)
    with time_machine.travel((int(time.time()) // window + 1) * window + 10, tick=True):
        _rate_limited_in_browser(page, live_server)


def _rate_limited_in_browser(page, live_server) -> None:
    request_code(page, f"{live_server.url}/signin/")
    page.get_by_role("link", name="Use a different address").click()
    page.get_by_label("Email address or phone number").fill("ann@example.com")
    with page.expect_response(lambda r: r.request.method == "POST") as posted:
        page.get_by_role("button", name="Continue").click()
    assert posted.value.status == 429
    assert 0 < int(posted.value.headers["retry-after"]) <= 300
    text = page.get_by_role("alert").inner_text()
    assert re.fullmatch(r"Too many attempts\. Try again in [1-5] minutes?\.", text), text
    assert len(mail.outbox) == 1


def test_pages_cannot_be_framed(page, live_server):
    """K04: another origin (localhost vs 127.0.0.1) iframes the sign-in page: blocked.
    A static file of the same server, framed the same way, loads (the control)."""
    framer = live_server.url.replace("127.0.0.1", "localhost")
    page.route(
        f"{framer}/framer",
        lambda route: route.fulfill(
            content_type="text/html",
            body=f'<iframe id="control" src="{live_server.url}/static/authdevice/authdevice.css">'
            f'</iframe><iframe id="target" src="{live_server.url}/signin/"></iframe>',
        ),
    )
    page.goto(f"{framer}/framer", wait_until="load")
    assert "ad-body" in page.frame_locator("#control").locator("body").inner_text()
    assert page.frame_locator("#target").get_by_label("Email address or phone number").count() == 0


def test_hosted_page_hands_the_app_a_code(page, live_server, application):
    """The /app flow in a real browser, including the redirect to a loopback URL that the
    page's CSP (form-action) must allow."""
    app_flows.clear_application_cache()
    seen: list[str] = []
    page.route(
        "http://localhost:18555/**",
        lambda route: (seen.append(route.request.url), route.fulfill(body="done"))[1],
    )
    page.goto(
        f"{live_server.url}/app?api_key={application.api_key_id}"
        "&redirect_url=http%3A%2F%2Flocalhost%3A18555&type=EMAIL&auth_method=OTP"
        f"&state=s%2B1%2F2&code_challenge={VERIFIER_CHALLENGE}"
    )
    assert page.get_by_role("heading", name="Sign in to Test app").is_visible()
    page.get_by_label("Email address").fill("cli@example.com")
    page.get_by_role("button", name="Continue").click()
    page.get_by_label("6-digit code").fill(sent_code())
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("http://localhost:18555/**")
    query = parse_qs(urlsplit(seen[-1]).query)
    assert query["state"] == ["s+1/2"]
    assert set(query) == {"code", "state", "challenge_id"}
