"""The server-rendered sign-in pages (issue 3; security.md A02-A10, H11, H12, J01, K01-K06).

CSRF is enforced (``Client(enforce_csrf_checks=True)``): every POST carries the token from
the page, as a browser would.
"""

from __future__ import annotations

import html
import re
import time
from datetime import timedelta
from html.parser import HTMLParser
from importlib import import_module
from urllib.parse import urlsplit

import pytest
import time_machine
from django.conf import settings as django_settings
from django.contrib.auth import SESSION_KEY as AUTH_SESSION_KEY
from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session
from django.core import mail
from django.core.cache import cache
from django.core.cache.backends.base import BaseCache
from django.test import Client
from django.utils import timezone
from django_otp import DEVICE_ID_SESSION_KEY

from authdevice.channels import locmem
from authdevice.conf import app_settings
from authdevice.flows import codes
from authdevice.models import AuthEvent, Challenge, IdentifierDevice
from authdevice.web import presession

pytestmark = pytest.mark.django_db(transaction=True)

SIGNIN, CODE, RESEND, DONE, SIGNOUT = (
    "/signin/",
    "/signin/code/",
    "/signin/resend/",
    "/signin/done/",
    "/signout/",
)
V12 = [
    "//evil.io",
    "/\\evil.io",
    "\\/evil.io",
    "https:evil.io",
    "/%2F%2Fevil.io",
    "/%09/evil.io",
    "https://evil.io",
    "https://app.example.com.evil.io",
    "https://app.example.com@evil.io",
    "javascript:alert(1)",
    "data:text/html,x",
    "/\t/evil.io",
]


@pytest.fixture(autouse=True)
def _clean(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    cache.clear()
    locmem.outbox.clear()
    yield
    cache.clear()


@pytest.fixture
def browser():
    return Client(enforce_csrf_checks=True)


def csrf(client: Client, url: str = SIGNIN) -> str:
    """Load a page like a browser and return its CSRF form token."""
    response = client.get(url, follow=True)
    match = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', response.content)
    assert match, response.content
    return match.group(1).decode()


def sent_code(index: int = -1) -> str:
    return re.search(r"\b(\d{6})\b", mail.outbox[index].body).group(1)


def sent_link_path(index: int = -1) -> str:
    url = re.search(r"(http\S+/signin/link/\S+/)", mail.outbox[index].body).group(1)
    return urlsplit(url).path


def other_than(code: str) -> str:
    return "000000" if code != "000000" else "111111"


def start(client: Client, identifier: str = "ann@example.com", **extra: str):
    """Submit the sign-in form; returns the response (303 to the code page on success)."""
    token = csrf(client, SIGNIN + (f"?next={extra['next']}" if "next" in extra else ""))
    data = {"identifier": identifier, "method": "OTP", "csrfmiddlewaretoken": token, **extra}
    return client.post(SIGNIN, data)


def flow_of(response) -> str:
    return re.search(r"flow=([\w-]+)", response["Location"]).group(1)


def submit_code(client: Client, flow: str, code: str):
    token = csrf(client, f"{CODE}?flow={flow}")
    return client.post(CODE, {"flow": flow, "code": code, "csrfmiddlewaretoken": token})


def sign_in(client: Client, identifier: str = "ann@example.com", **extra: str):
    started = start(client, identifier, **extra)
    assert started.status_code == 303, started.content
    return submit_code(client, flow_of(started), sent_code())


def is_same_origin_path(location: str) -> bool:
    parts = urlsplit(location)
    return (
        location.startswith("/")
        and not location.startswith("//")
        and not parts.scheme
        and not parts.netloc
        and "\\" not in location
        and not any(ch.isspace() or ord(ch) < 32 for ch in location)
    )


class _Assets(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name in ("src", "href", "action") and value is not None:
                self.urls.append(value)


def assert_auth_headers(response, *, sensitive: bool = True) -> None:
    assert response["X-Frame-Options"] == "DENY"
    csp = response["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp and "default-src 'self'" in csp
    assert "object-src 'none'" in csp and "base-uri 'none'" in csp
    if sensitive:
        assert "no-store" in response["Cache-Control"]
        assert response["Referrer-Policy"] == "no-referrer"
    if response.get("Content-Type", "").startswith("text/html") and response.content:
        parser = _Assets()
        parser.feed(response.content.decode())
        # A09: no third-party src/href on token-bearing pages.
        assert all(
            u in ("", "data:,") or (u.startswith("/") and not u.startswith("//"))
            for u in parser.urls
        ), parser.urls


# -- sign in by code ---------------------------------------------------------------------


def test_sign_in_by_code_logs_in_rotates_the_session_and_verifies_otp(browser):
    page = browser.get(SIGNIN)
    assert page.status_code == 200
    form_html = page.content.decode()
    assert 'for="id_identifier"' in form_html and "autofocus" in form_html
    started = start(browser)
    assert started.status_code == 303  # never 307/308 after a credential POST (H12)
    assert started["Location"].startswith(CODE + "?flow=")
    pre_key = browser.session.session_key
    assert pre_key and AUTH_SESSION_KEY not in browser.session
    code_page = browser.get(started["Location"])
    body = code_page.content.decode()
    assert code_page.status_code == 200 and "a…@example.com" in body
    assert 'autocomplete="one-time-code"' in body and 'inputmode="numeric"' in body
    assert f'action="{RESEND}"' in body and "Use a different address" in body

    done = submit_code(browser, flow_of(started), sent_code())
    assert done.status_code == 303 and done["Location"] == DONE
    user = get_user_model().objects.get(email="ann@example.com")
    session = browser.session
    assert session[AUTH_SESSION_KEY] == str(user.pk)
    # K03: a new session key; the pre-session key is dead server-side.
    assert session.session_key != pre_key
    engine = import_module(django_settings.SESSION_ENGINE)
    assert not engine.SessionStore().exists(pre_key)
    # K02: the pre-session entry did not survive into the signed-in session.
    assert not session.get(presession.SESSION_KEY)
    # django-otp: the session is verified by the identifier's device.
    device = IdentifierDevice.objects.get(user=user)
    assert session[DEVICE_ID_SESSION_KEY] == device.persistent_id
    landing = browser.get(DONE)
    assert landing.status_code == 200 and b"ann@example.com" in landing.content
    assert landing.wsgi_request.user.is_verified()


def test_known_and_unknown_addresses_get_the_same_answer(browser, user):
    known = start(browser, "alice@example.com")
    unknown = start(Client(enforce_csrf_checks=True), "nobody@example.com")
    assert known.status_code == unknown.status_code == 303
    assert re.sub(r"flow=[\w-]+", "", known["Location"]) == re.sub(
        r"flow=[\w-]+", "", unknown["Location"]
    )
    # ...and the known address signs in to its existing user.
    response = submit_code(browser, flow_of(known), sent_code(0))
    assert response.status_code == 303
    assert browser.session[AUTH_SESSION_KEY] == str(user.pk)


def test_wrong_code_is_refused_with_an_accessible_error(browser):
    started = start(browser)
    code = sent_code()
    response = submit_code(browser, flow_of(started), other_than(code))
    assert response.status_code == 400
    body = response.content.decode()
    assert "That code is not right or has expired" in body
    assert 'aria-invalid="true"' in body and 'aria-describedby="id_code_error"' in body
    assert 'id="id_code_error"' in body
    assert AUTH_SESSION_KEY not in browser.session
    assert Challenge.objects.get().attempts == 1
    assert submit_code(browser, flow_of(started), code).status_code == 303


def test_five_wrong_codes_kill_the_challenge(browser):
    started = start(browser)
    code = sent_code()
    for _ in range(5):
        assert submit_code(browser, flow_of(started), other_than(code)).status_code == 400
    assert submit_code(browser, flow_of(started), code).status_code == 400
    assert Challenge.objects.get().state == "dead"
    # The account is not locked: a new sign-in works.
    assert sign_in(browser).status_code == 303


def test_expired_code_is_refused(browser):
    started = start(browser)
    code = sent_code()
    with time_machine.travel(timezone.now() + timedelta(seconds=301)):
        response = submit_code(browser, flow_of(started), code)
    assert response.status_code == 400
    assert b"not right or has expired" in response.content
    assert AUTH_SESSION_KEY not in browser.session


def test_code_from_another_browser_is_refused(browser):
    """A05/K02: the flow (challenge id + binding) lives in the pre-session of the browser
    that asked; another cookie jar cannot use it, even with the right code."""
    started = start(browser)
    attacker = Client(enforce_csrf_checks=True)
    response = submit_code(attacker, flow_of(started), sent_code())
    assert response.status_code == 400
    assert b"has expired. Please start again" in response.content
    assert AUTH_SESSION_KEY not in attacker.session
    assert Challenge.objects.get().state == "pending"


def test_resend_replaces_the_code(browser):
    started = start(browser)
    flow = flow_of(started)
    first = sent_code()
    token = csrf(browser, started["Location"])
    resent = browser.post(RESEND, {"flow": flow, "csrfmiddlewaretoken": token})
    assert resent.status_code == 303 and "sent=1" in resent["Location"]
    notice = browser.get(resent["Location"])
    assert b"We sent a new code" in notice.content and b'role="status"' in notice.content
    assert len(mail.outbox) == 2
    second = sent_code()
    if first != second:
        assert submit_code(browser, flow, first).status_code == 400
    assert submit_code(browser, flow, second).status_code == 303


def test_resend_limit_gives_a_friendly_429(browser, settings):
    settings.AUTHDEVICE_CODE_MAX_RESENDS = 1
    started = start(browser)
    flow = flow_of(started)
    token = csrf(browser, started["Location"])
    assert browser.post(RESEND, {"flow": flow, "csrfmiddlewaretoken": token}).status_code == 303
    response = browser.post(RESEND, {"flow": flow, "csrfmiddlewaretoken": token})
    assert response.status_code == 429 and int(response["Retry-After"]) > 0
    assert b"You have asked for too many codes" in response.content


def early_in_a_send_window() -> time_machine.travel:
    """10 s into the next fixed rate-limit window: the requests of a test share a window."""
    window = int(app_settings.SEND_WINDOW)
    return time_machine.travel((int(time.time()) // window + 1) * window + 10, tick=True)


def test_send_rate_limit_shows_a_message_with_429_and_retry_after(browser, settings):
    settings.AUTHDEVICE_SEND_LIMIT_PER_IDENTIFIER = 2
    with early_in_a_send_window():
        assert start(browser).status_code == 303
        assert start(browser).status_code == 303
        response = start(browser)
    assert response.status_code == 429
    retry_after = int(response["Retry-After"])
    assert 0 < retry_after <= 300
    minutes = -(-retry_after // 60)
    unit = "minute" if minutes == 1 else "minutes"
    expected = f"Too many attempts. Try again in {minutes} {unit}."
    assert expected in response.content.decode()
    assert b'role="alert"' in response.content
    assert_auth_headers(response)
    assert len(mail.outbox) == 2


def test_verification_throttle_shows_429(browser, settings):
    settings.AUTHDEVICE_IDENTIFIER_FAILURE_LIMIT = 2
    started = start(browser)
    code = sent_code()
    for _ in range(2):
        assert submit_code(browser, flow_of(started), other_than(code)).status_code == 400
    response = submit_code(browser, flow_of(started), code)
    assert response.status_code == 429 and 0 < int(response["Retry-After"]) <= 30
    # The first delay (AUTHDEVICE_IDENTIFIER_FAILURE_DELAY, 30 s), rounded up to a minute.
    assert b"Too many attempts. Try again in 1 minute." in response.content


def test_delivery_outage_answers_at_once_with_503(browser, monkeypatch, settings):
    from kombu.exceptions import OperationalError

    settings.CELERY_TASK_ALWAYS_EAGER = False  # a broker, and it is down

    from authdevice import tasks

    def broker_down(*args, **kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr(tasks.send_challenge, "publish", broker_down)
    response = start(browser)
    assert response.status_code == 503
    assert b"We cannot send messages right now" in response.content
    assert Challenge.objects.get().state == "dead"


def test_invalid_identifier_is_a_field_error(browser):
    response = start(browser, "not an address")
    assert response.status_code == 400
    body = response.content.decode()
    assert "Enter a valid email address or phone number." in body
    assert 'aria-invalid="true"' in body
    assert 'aria-describedby="id_identifier_hint id_identifier_error"' in body
    assert 'value="not an address"' in body
    assert Challenge.objects.count() == 0


def test_phone_channel_choice_when_more_than_one(browser, settings):
    settings.AUTHDEVICE_CHANNELS = {
        "EMAIL": "authdevice.channels.email.EmailBackend",
        "SMS": "authdevice.channels.locmem.LocmemBackend",
        "WHATSAPP": "authdevice.channels.locmem.LocmemBackend",
    }
    page = browser.get(SIGNIN).content.decode()
    assert 'name="channel" value="SMS"' in page and 'name="channel" value="WHATSAPP"' in page
    started = start(browser, "+1 415 555 2671", channel="WHATSAPP")
    assert started.status_code == 303
    assert [m.channel for m in locmem.outbox] == ["WHATSAPP"]
    masked = codes.mask_identifier("+14155552671")
    assert masked.endswith("2671") and "•" in masked
    assert masked in browser.get(started["Location"]).content.decode()
    code = locmem.outbox[-1].context["code"]
    assert submit_code(browser, flow_of(started), code).status_code == 303
    # An email address ignores the phone channel choice.
    assert (
        start(Client(enforce_csrf_checks=True), "b@example.com", channel="SMS").status_code == 303
    )
    assert mail.outbox[-1].to == ["b@example.com"]


def test_single_phone_channel_shows_no_choice(browser, settings):
    settings.AUTHDEVICE_CHANNELS = {
        "EMAIL": "authdevice.channels.email.EmailBackend",
        "SMS": "authdevice.channels.locmem.LocmemBackend",
    }
    assert b'name="channel"' not in browser.get(SIGNIN).content


def test_code_page_without_a_sign_in_goes_back_to_the_form(browser):
    response = browser.get(CODE)
    assert response.status_code == 302 and response["Location"] == SIGNIN
    assert browser.get(CODE + "?flow=nope").status_code == 302


# -- magic links -------------------------------------------------------------------------------


def start_link(client: Client, identifier: str = "ann@example.com"):
    response = start(client, identifier, method="MAGIC_LINK")
    assert response.status_code == 303
    return response


def test_link_in_the_same_browser_needs_no_confirmation(browser):
    started = start_link(browser)
    waiting = browser.get(started["Location"]).content.decode()
    assert "Check your messages" in waiting and "Send a new link" in waiting
    path = sent_link_path()
    page = browser.get(path)
    body = page.content.decode()
    assert (
        page.status_code == 200 and "Continue to sign in as <strong>a…@example.com</strong>" in body
    )
    assert 'type="checkbox"' not in body
    assert_auth_headers(page)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', body).group(1)
    response = browser.post(path, {"csrfmiddlewaretoken": token})
    assert response.status_code == 303 and response["Location"] == DONE
    assert AuthEvent.objects.filter(event="LOGIN", method="MAGIC_LINK").count() == 1
    assert browser.session[DEVICE_ID_SESSION_KEY]
    # A02: single use; a second POST is refused and signs nobody in.
    again = Client(enforce_csrf_checks=True)
    token = csrf(again, SIGNIN)
    replay = again.post(path, {"csrfmiddlewaretoken": token, "confirm": "on"})
    assert replay.status_code == 400 and b"not valid or has expired" in replay.content
    assert AUTH_SESSION_KEY not in again.session


def test_link_in_another_browser_names_the_account_and_needs_confirmation(browser):
    start_link(browser)
    path = sent_link_path()
    other = Client(enforce_csrf_checks=True)
    page = other.get(path)
    body = page.content.decode()
    assert page.status_code == 200
    assert "different browser" in body and "a…@example.com" in body
    assert 'type="checkbox"' in body and "ann@example.com" not in body
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', body).group(1)
    refused = other.post(path, {"csrfmiddlewaretoken": token})
    assert refused.status_code == 409
    assert b"Tick the box" in refused.content and b'aria-invalid="true"' in refused.content
    assert Challenge.objects.get().state == "pending" and AUTH_SESSION_KEY not in other.session
    confirmed = other.post(path, {"csrfmiddlewaretoken": token, "confirm": "on"})
    assert confirmed.status_code == 303 and confirmed["Location"] == DONE
    assert other.session[AUTH_SESSION_KEY]
    # The browser that asked was not signed in by it.
    assert AUTH_SESSION_KEY not in browser.session


def test_link_get_and_head_change_nothing(browser):
    """A07: mail scanners GET/HEAD every link: no session, no state change."""
    start_link(browser)
    path = sent_link_path()
    scanner = Client(enforce_csrf_checks=True)
    sessions = Session.objects.count()
    head = scanner.head(path)
    get = scanner.get(path)
    assert head.status_code == get.status_code == 200
    for response in (head, get):
        assert django_settings.SESSION_COOKIE_NAME not in response.cookies
    assert django_settings.SESSION_COOKIE_NAME not in scanner.cookies
    assert Session.objects.count() == sessions
    challenge = Challenge.objects.get()
    assert challenge.state == "pending" and challenge.verified_at is None
    assert not AuthEvent.objects.filter(event="LOGIN").exists()
    # The person can still use it.
    token = csrf(browser, path)
    assert browser.post(path, {"csrfmiddlewaretoken": token}).status_code == 303


def test_garbage_link_is_a_friendly_400(browser):
    response = browser.get("/signin/link/" + "x" * 43 + "/")
    assert response.status_code == 400 and b"not valid or has expired" in response.content
    assert_auth_headers(response)


def test_the_code_in_a_link_message_also_works(browser):
    started = start_link(browser)
    assert submit_code(browser, flow_of(started), sent_code()).status_code == 303


# -- CSRF, sign-out, headers, redirects ----------------------------------------------------------


def test_every_form_post_needs_the_csrf_token(browser):
    started = start(browser)
    flow = flow_of(started)
    start_link(Client(enforce_csrf_checks=True), "b@example.com")
    link_path = sent_link_path()
    for url, data in [
        (SIGNIN, {"identifier": "c@example.com"}),
        (CODE, {"flow": flow, "code": sent_code(0)}),
        (RESEND, {"flow": flow}),
        (link_path, {"confirm": "on"}),
        (SIGNOUT, {}),
        ("/app/cancel/", {"flow": "x"}),
    ]:
        assert browser.post(url, data).status_code == 403, url
        wrong = browser.post(url, {**data, "csrfmiddlewaretoken": "x" * 64})
        assert wrong.status_code == 403, url
    assert len(mail.outbox) == 2 and AUTH_SESSION_KEY not in browser.session
    assert not AuthEvent.objects.filter(event="LOGIN").exists()


def test_cross_origin_post_is_refused_even_with_the_token(browser):
    token = csrf(browser)
    data = {"identifier": "ann@example.com", "csrfmiddlewaretoken": token}
    assert browser.post(SIGNIN, data, HTTP_ORIGIN="https://evil.example").status_code == 403
    # no-referrer pages make browsers send "Origin: null": accepted only when Fetch
    # Metadata says the form came from this very origin.
    assert (
        browser.post(SIGNIN, data, HTTP_ORIGIN="null", HTTP_SEC_FETCH_SITE="cross-site").status_code
        == 403
    )
    assert (
        browser.post(SIGNIN, data, HTTP_ORIGIN="null", HTTP_SEC_FETCH_SITE="same-site").status_code
        == 403
    )
    assert browser.post(SIGNIN, data, HTTP_ORIGIN="null").status_code == 403
    assert Challenge.objects.count() == 0
    ok = browser.post(SIGNIN, data, HTTP_ORIGIN="null", HTTP_SEC_FETCH_SITE="same-origin")
    assert ok.status_code == 303
    assert browser.post(SIGNIN, data, HTTP_ORIGIN="http://testserver").status_code == 303


def test_sign_out_needs_a_post(browser):
    sign_in(browser)
    page = browser.get(SIGNOUT)
    assert page.status_code == 200 and b'method="post"' in page.content
    assert AUTH_SESSION_KEY in browser.session  # GET changed nothing
    signed_in_key = browser.session.session_key
    token = csrf(browser, SIGNOUT)
    response = browser.post(SIGNOUT, {"csrfmiddlewaretoken": token})
    assert response.status_code == 303 and response["Location"] == SIGNIN
    assert AUTH_SESSION_KEY not in browser.session
    engine = import_module(django_settings.SESSION_ENGINE)
    assert not engine.SessionStore().exists(signed_in_key)
    assert browser.get(DONE).status_code == 302


def test_headers_on_every_authentication_page(browser):
    pages = [browser.get(SIGNIN)]
    started = start(browser, method="MAGIC_LINK")
    pages += [started, browser.get(started["Location"]), browser.get(sent_link_path())]
    pages.append(submit_code(browser, flow_of(started), other_than(sent_code())))
    pages += [browser.get(SIGNOUT), browser.get("/app")]
    sign_in(Client(enforce_csrf_checks=True))
    for response in pages:
        assert_auth_headers(response)
    signed_in = Client()
    signed_in.force_login(get_user_model().objects.get())
    assert_auth_headers(signed_in.get(DONE))


def test_safe_next_is_followed(browser):
    response = sign_in(browser, next="/admin/?x=1")
    assert response.status_code == 303 and response["Location"] == "/admin/?x=1"
    assert browser.get(DONE + "?next=/signout/")["Location"] == "/signout/"


@pytest.mark.parametrize("payload", V12)
def test_open_redirect_payloads_end_on_a_same_origin_path(browser, payload):
    """H11 / V12 on sign-in (next kept across the flow), the landing page and sign-out."""
    page = browser.get(SIGNIN, {"next": payload}).content.decode()
    kept = re.search(r'name="next" value="([^"]*)"', page).group(1)
    assert kept == "" or is_same_origin_path(html.unescape(kept))
    response = sign_in(browser, next=payload)
    assert response.status_code == 303 and is_same_origin_path(response["Location"])
    assert response["Location"] in (DONE, payload)
    landing = browser.get(DONE, {"next": payload})
    assert landing.status_code == 200 or is_same_origin_path(landing["Location"])
    token = csrf(browser, SIGNOUT)
    out = browser.post(SIGNOUT, {"csrfmiddlewaretoken": token, "next": payload})
    assert out.status_code == 303 and is_same_origin_path(out["Location"])


def test_unknown_method_is_a_visible_form_error(browser):
    response = start(browser, method="PASSWORD")
    assert response.status_code == 400
    assert b'id="id_method_error"' in response.content
    assert Challenge.objects.count() == 0


def test_landing_page_needs_a_signed_in_user(browser):
    response = browser.get(DONE)
    assert response.status_code == 302
    assert response["Location"] == SIGNIN + "?next=%2Fsignin%2Fdone%2F"
    # A URL that could never be a safe ``next`` (Django would not even redirect to it) is
    # dropped rather than answered with a bare 400.
    long = browser.get(DONE, {"next": "/" + "a" * 20_000})
    assert long.status_code == 302 and long["Location"] == SIGNIN


class DownCache(BaseCache):
    """A shared cache that is unreachable (Redis down)."""

    def __init__(self, location, params):
        super().__init__(params)

    def _down(self, *args, **kwargs):
        raise ConnectionError("cache unreachable")

    add = get = set = incr = delete = _down


def test_rate_limiter_outage_fails_closed_with_a_friendly_503(browser, settings):
    settings.CACHES = {
        **settings.CACHES,
        "down": {"BACKEND": "tests.test_web_pages.DownCache"},
    }
    settings.AUTHDEVICE_RATELIMIT_CACHE = "down"
    response = start(browser)
    assert response.status_code == 503
    assert b"temporarily unavailable" in response.content
    assert Challenge.objects.count() == 0 and mail.outbox == []
