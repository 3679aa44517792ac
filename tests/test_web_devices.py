"""Trusted devices on the web pages (issue 5): this browser as a trusted device, sign in with
it, approve a sign-in from another browser with number matching, device management and
adding a device by QR code (security.md C07, C09, C11, D01-D05, K01-K06).

CSRF is enforced (``Client(enforce_csrf_checks=True)``); the page script's JSON calls are
played with ``tests.devicekit.Browser`` (WebCrypto's P-256 key and raw R||S signatures).
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
import time_machine
from asgiref.sync import async_to_sync
from django.contrib.auth import SESSION_KEY as AUTH_SESSION_KEY
from django.contrib.auth import get_user_model
from django.core import mail
from django.core.cache import cache
from django.test import AsyncClient, Client
from django.utils import timezone
from django_otp import DEVICE_ID_SESSION_KEY

from authdevice.conf import app_settings
from authdevice.crypto.devicekeys import parse_public_key
from authdevice.flows import native
from authdevice.flows.devices import remove_device
from authdevice.flows.identities import add_identifier
from authdevice.models import AuthEvent, DeviceBinding, TrustedDevice
from authdevice.web import devices as web_devices
from tests.devicekit import Browser

pytestmark = pytest.mark.django_db(transaction=True)

DEVICES, APPROVALS, SIGNIN = "/devices/", "/devices/approve/", "/signin/"
APPROVE_START, FINISH = "/signin/approve/", "/signin/approve/finish/"
XSS = "<img src=x onerror=alert(1)>"
CHROME_UA = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36"
)


@pytest.fixture(autouse=True)
def _clean(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.AUTHDEVICE_GEOLOCATION_BACKEND = None
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def other_user(db):
    user = get_user_model().objects.create_user(username="bob", email="bob@example.com")
    add_identifier(user, "EMAIL", "bob@example.com", verified=True)
    return user


def signed_in(user: Any) -> Client:
    client = Client(enforce_csrf_checks=True, HTTP_USER_AGENT=CHROME_UA)
    client.force_login(user)
    return client


def csrf(client: Client, url: str = DEVICES) -> str:
    response = client.get(url, follow=True)
    match = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', response.content)
    assert match, response.content[:500]
    return match.group(1).decode()


def post_json(client: Client, url: str, body: dict[str, Any], token: str, **extra: Any) -> Any:
    return client.post(
        url, data=json.dumps(body), content_type="application/json", HTTP_X_CSRFTOKEN=token, **extra
    )


def handle_of(browser: Browser) -> str:
    return parse_public_key(browser.public_key, "EC").fingerprint


def enrol(client: Client, browser: Browser, name: str = "Laptop") -> TrustedDevice:
    token = csrf(client)
    ch = post_json(client, "/devices/enrol/challenge/", {}, token)
    assert ch.status_code == 200, ch.content
    body = ch.json()
    assert body["origin"] == app_settings.base_url
    signature = browser.sign(
        native.signed_message("enrol", body["challenge"], extra=handle_of(browser))
    )
    done = post_json(
        client,
        "/devices/enrol/",
        {
            "public_key": browser.public_key,
            "challenge": body["challenge"],
            "signature": signature,
            "name": name,
        },
        token,
    )
    assert done.status_code == 200, done.content
    assert done.json()["handle"] == handle_of(browser)
    return TrustedDevice.objects.get(fingerprint=handle_of(browser))


def start_approval(client: Client, identifier: str = "alice@example.com") -> tuple[str, str]:
    """The sign-in page's "Approve from my device": returns (flow id, the number shown)."""
    token = csrf(client, SIGNIN)
    response = client.post(
        APPROVE_START, {"identifier": identifier, "next": "", "csrfmiddlewaretoken": token}
    )
    assert response.status_code == 303, response.content
    flow = re.search(r"flow=([\w-]+)", response["Location"]).group(1)
    page = client.get(response["Location"])
    assert page.status_code == 200
    number = re.search(rb"data-ad-number[^>]*>(\d+)<", page.content).group(1).decode()
    return flow, number


def decide(
    client: Client,
    browser: Browser,
    event_id: int | str,
    decision: str = "approve",
    number: str = "",
) -> Any:
    token = csrf(client, APPROVALS)
    handle = handle_of(browser)
    ch = post_json(
        client, "/devices/approve/challenge/", {"event": str(event_id), "handle": handle}, token
    )
    if ch.status_code != 200:
        return ch
    body = ch.json()
    signature = browser.sign(
        native.signed_message(
            "approve", body["challenge"], event_id=body["event"], decision=decision
        )
    )
    return post_json(
        client,
        "/devices/approve/decide/",
        {
            "event": body["event"],
            "handle": handle,
            "challenge": body["challenge"],
            "signature": signature,
            "decision": decision,
            "match_code": number,
        },
        token,
    )


def waiting_status(client: Client, flow: str) -> str:
    response = client.get(f"/signin/approval/status?flow={flow}&wait=0")
    assert response.status_code == 200, response.content
    assert "no-store" in response["Cache-Control"]
    return response.json()["status"]


def pending_event(user: Any) -> AuthEvent:
    return AuthEvent.objects.get(user=user, state="pending")


def standalone(number: str, content: bytes) -> bool:
    return re.search(rb"(?<!\d)" + number.encode() + rb"(?!\d)", content) is not None


# -- headers, CSP, CSRF (K01, K04-K06) ----------------------------------------------------


def assert_script_page(response) -> None:
    csp = response["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "script-src 'none'" not in csp
    assert "connect-src 'self'" in csp and "require-trusted-types-for 'script'" in csp
    assert "frame-ancestors 'none'" in csp and "object-src 'none'" in csp
    assert "base-uri 'none'" in csp
    assert response["X-Frame-Options"] == "DENY"
    assert "no-store" in response["Cache-Control"]
    assert response["Referrer-Policy"] == "no-referrer"
    body = response.content.decode()
    # Scripts are files from this site only: no inline script, no inline handler.
    assert re.findall(r"<script\b[^>]*>", body) == [
        '<script src="/static/authdevice/device.js" defer>'
    ]
    assert not re.search(r"\son[a-z]+=", body)


def test_pages_have_strict_headers_and_only_the_static_script(user):
    client = signed_in(user)
    for url in (DEVICES, APPROVALS):
        response = client.get(url)
        assert response.status_code == 200
        assert_script_page(response)
    signin = Client().get(SIGNIN)
    assert_script_page(signin)
    assert b"Sign in with this device" in signin.content
    assert b'formaction="/signin/approve/"' in signin.content


def test_hosted_app_page_keeps_scripts_off(application):
    from tests.test_web_pages import assert_auth_headers

    query = (
        f"api_key={application.api_key_id}&redirect_url=http://localhost:18555&type=EMAIL"
        "&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    )
    page = Client().get(f"/app?{query}")
    assert page.status_code == 200
    assert_auth_headers(page)
    assert "script-src 'none'" in page["Content-Security-Policy"]
    assert b"device.js" not in page.content and b"Approve from my device" not in page.content


def test_static_script_is_served_and_dependency_free():
    from django.contrib.staticfiles import finders

    path = finders.find("authdevice/device.js")
    source = open(path, encoding="utf-8").read()
    # The private key is generated non-extractable; only the public key is exported.
    assert re.search(r'generateKey\(\s*\{ name: "ECDSA", namedCurve: "P-256" \},\s*false,', source)
    assert re.findall(r'exportKey\("(\w+)", (\w+\.\w+)\)', source) == [("spki", "pair.publicKey")]
    assert "innerHTML" not in source and "eval(" not in source and "import " not in source


def test_anonymous_visitors_are_sent_to_sign_in():
    client = Client(enforce_csrf_checks=True)
    for url in (DEVICES, APPROVALS, "/devices/add/1/", "/devices/1/remove/"):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/signin/?next=")
    token = csrf(client, SIGNIN)
    response = post_json(client, "/devices/enrol/challenge/", {}, token)
    assert response.status_code == 401 and response.json()["error"] == "login_required"


def test_state_changes_need_csrf(user):
    client = signed_in(user)
    browser = Browser()
    device = enrol(client, browser)
    # No token, a wrong token, or a cross-site Origin: 403 and nothing changes (K01).
    assert post_json(client, "/devices/enrol/challenge/", {}, "").status_code == 403
    assert post_json(client, "/devices/enrol/challenge/", {}, "x" * 64).status_code == 403
    token = csrf(client)
    evil = post_json(client, "/devices/enrol/challenge/", {}, token, HTTP_ORIGIN="https://evil.io")
    assert evil.status_code == 403
    assert client.post(f"/devices/{device.pk}/remove/").status_code == 403
    assert client.post(f"/devices/{device.pk}/rename/", {"name": "x"}).status_code == 403
    assert client.post("/devices/add/").status_code == 403
    anonymous = Client(enforce_csrf_checks=True)
    assert anonymous.post(APPROVE_START, {"identifier": "alice@example.com"}).status_code == 403
    assert (
        post_json(
            anonymous, "/signin/device/challenge/", {"handle": device.fingerprint}, ""
        ).status_code
        == 403
    )
    device.refresh_from_db()
    assert device.is_active and device.name == "Laptop"
    assert not DeviceBinding.objects.exists() and not AuthEvent.objects.filter(state="pending")
    # Removing needs a POST: GET only asks.
    assert client.get(f"/devices/{device.pk}/remove/").status_code == 200
    device.refresh_from_db()
    assert device.is_active


# -- this browser as a trusted device ------------------------------------------------------


def test_enrol_this_browser_needs_proof_of_possession_and_notifies(user):
    client = signed_in(user)
    browser = Browser()
    token = csrf(client)
    challenge = post_json(client, "/devices/enrol/challenge/", {}, token).json()["challenge"]
    forged = Browser().sign(native.signed_message("enrol", challenge, extra=handle_of(browser)))
    response = post_json(
        client,
        "/devices/enrol/",
        {"public_key": browser.public_key, "challenge": challenge, "signature": forged},
        token,
    )
    assert response.status_code == 401 and response.json()["error"] == "bad_signature"
    assert not TrustedDevice.objects.exists()

    device = enrol(client, browser, name="  My   laptop\u0000 ")
    assert device.is_active and device.user == user
    assert device.name == "My laptop" and device.device_type == "Web browser"
    # D05: a notice over an independent channel.
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["alice@example.com"]
    page = client.get(DEVICES)
    assert b"My laptop" in page.content
    assert device.fingerprint.encode() in page.content  # data-devices: the page marks it


def test_enrolment_needs_a_recent_sign_in(user):
    client = signed_in(user)
    token = csrf(client)
    with time_machine.travel(
        timezone.now() + timedelta(seconds=app_settings.REAUTHENTICATION_SECONDS + 1)
    ):
        stale = post_json(client, "/devices/enrol/challenge/", {}, token)
        assert stale.status_code == 401 and stale.json()["error"] == "reauth_required"
        page = client.get(DEVICES)
        assert b"sign in again before you add a device" in page.content
        qr = client.post("/devices/add/", {"csrfmiddlewaretoken": token})
        assert qr.status_code == 401 and not DeviceBinding.objects.exists()
    assert post_json(client, "/devices/enrol/challenge/", {}, token).status_code == 200


def test_sign_in_with_this_device_needs_no_code(user):
    browser = Browser()
    device = enrol(signed_in(user), browser)
    client = Client(enforce_csrf_checks=True)
    token = csrf(client, SIGNIN)
    before = client.cookies["sessionid"].value if "sessionid" in client.cookies else ""
    ch = post_json(client, "/signin/device/challenge/", {"handle": device.fingerprint}, token)
    assert ch.status_code == 200
    body = ch.json()
    # A signature for another purpose does not sign in.
    wrong = browser.sign(native.signed_message("enrol", body["challenge"]))
    bad = post_json(
        client,
        "/signin/device/",
        {"handle": device.fingerprint, "challenge": body["challenge"], "signature": wrong},
        token,
    )
    assert bad.status_code == 401 and AUTH_SESSION_KEY not in client.session
    ch = post_json(
        client, "/signin/device/challenge/", {"handle": device.fingerprint}, token
    ).json()
    signature = browser.sign(native.signed_message("login", ch["challenge"]))
    done = post_json(
        client,
        "/signin/device/",
        {
            "handle": device.fingerprint,
            "challenge": ch["challenge"],
            "signature": signature,
            "next": "//evil.io",
        },
        token,
    )
    assert done.status_code == 200 and done.json() == {"redirect": "/signin/done/"}
    assert client.session[AUTH_SESSION_KEY] == str(user.pk)
    assert client.session[DEVICE_ID_SESSION_KEY] == device.persistent_id
    assert client.cookies["sessionid"].value != before  # K03: rotated
    # The challenge was single use (and the CSRF token rotated with the session).
    again = post_json(
        client,
        "/signin/device/",
        {"handle": device.fingerprint, "challenge": ch["challenge"], "signature": signature},
        csrf(client, SIGNIN),
    )
    assert again.status_code == 400


def test_login_challenges_are_rate_limited(user):
    device = enrol(signed_in(user), Browser())
    answers = []
    for n in range(40):
        client = Client(enforce_csrf_checks=True, REMOTE_ADDR=f"192.0.2.{n + 1}")
        token = csrf(client, SIGNIN)
        answers.append(
            post_json(client, "/signin/device/challenge/", {"handle": device.fingerprint}, token)
        )
    codes = {r.status_code for r in answers}
    assert codes == {200, 429} and answers[-1].json()["error"] == "rate_limited"
    assert "Retry-After" in answers[-1]


def test_a_removed_device_cannot_sign_in(user):
    browser = Browser()
    device = enrol(signed_in(user), browser)
    remove_device(device, actor="test")
    client = Client(enforce_csrf_checks=True)
    token = csrf(client, SIGNIN)
    response = post_json(client, "/signin/device/challenge/", {"handle": device.fingerprint}, token)
    assert response.status_code == 404 and response.json()["error"] == "unknown_device"
    unknown = post_json(client, "/signin/device/challenge/", {"handle": "0" * 64}, token)
    assert unknown.status_code == 404


# -- approve from my device: number matching (C07, C09, C11) --------------------------------


def test_approval_signs_the_waiting_browser_in_once(user):
    phone = Browser()
    approver = signed_in(user)
    enrol(approver, phone)
    waiter = Client(enforce_csrf_checks=True, HTTP_USER_AGENT=CHROME_UA, REMOTE_ADDR="203.0.113.9")
    flow, number = start_approval(waiter)
    assert len(number) == app_settings.MATCH_CODE_LENGTH
    event = pending_event(user)
    assert waiting_status(waiter, flow) == "authorization_pending"

    page = approver.get(APPROVALS)
    body = page.content
    assert b"Sign-in from Chrome 126 on Windows" in body
    assert b"203.0.113.9" in body and CHROME_UA.encode() in body
    assert not standalone(number, body)  # the number lives only on the requesting screen
    assert str(event.pk).encode() in body

    response = decide(approver, phone, event.pk, number=number)
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "approved"
    assert waiting_status(waiter, flow) == "approved"

    before = waiter.cookies["sessionid"].value
    token = csrf(waiter, f"{APPROVE_START}?flow={flow}")
    done = waiter.post(FINISH, {"flow": flow, "csrfmiddlewaretoken": token})
    assert done.status_code == 303 and done["Location"] == "/signin/done/"
    assert waiter.session[AUTH_SESSION_KEY] == str(user.pk)
    assert waiter.cookies["sessionid"].value != before
    # Once: the flow is gone, and the event cannot sign in another browser.
    token = csrf(waiter, SIGNIN)
    assert waiter.post(FINISH, {"flow": flow, "csrfmiddlewaretoken": token}).status_code == 303
    event.refresh_from_db()
    assert not native.claim_session(event)


def test_an_approval_nobody_finished_in_time_signs_nobody_in(user):
    """The waiting browser has until the request expires (or HANDOUT_GRACE after a late
    approval) to finish; later the approval is spent for nothing."""
    import time_machine
    from django.utils import timezone

    phone = Browser()
    approver = signed_in(user)
    enrol(approver, phone)
    waiter = Client(enforce_csrf_checks=True)
    flow, number = start_approval(waiter)
    pending_event_id = pending_event(user).pk
    assert decide(approver, phone, pending_event_id, number=number).status_code == 200
    with time_machine.travel(
        timezone.now() + timedelta(seconds=app_settings.PENDING_EVENT_LIFETIME)
    ):
        assert waiting_status(waiter, flow) == "expired_token"
        token = csrf(waiter, f"{APPROVE_START}?flow={flow}")
        response = waiter.post(FINISH, {"flow": flow, "csrfmiddlewaretoken": token})
        assert response.status_code == 400
        assert AUTH_SESSION_KEY not in waiter.session
    assert AuthEvent.objects.get(pk=pending_event_id).tokens_handed_out_at is None


def test_finish_before_approval_signs_nobody_in(user):
    enrol(signed_in(user), Browser())
    waiter = Client(enforce_csrf_checks=True)
    flow, _number = start_approval(waiter)
    token = csrf(waiter, f"{APPROVE_START}?flow={flow}")
    response = waiter.post(FINISH, {"flow": flow, "csrfmiddlewaretoken": token})
    assert response.status_code == 409 and b"Not approved yet" in response.content
    assert AUTH_SESSION_KEY not in waiter.session


def test_three_wrong_numbers_refuse_the_request(user):
    phone = Browser()
    approver = signed_in(user)
    enrol(approver, phone)
    waiter = Client(enforce_csrf_checks=True)
    flow, number = start_approval(waiter)
    event = pending_event(user)
    wrong = f"{(int(number) + 1) % 10 ** len(number):0{len(number)}d}"
    first = decide(approver, phone, event.pk, number=wrong)
    assert first.status_code == 400 and first.json()["error"] == "wrong_number"
    assert "2 tries left" in first.json()["message"]
    assert decide(approver, phone, event.pk, number="").json()["error"] == "wrong_number"
    third = decide(approver, phone, event.pk, number=wrong)
    assert third.status_code == 400 and third.json()["error"] == "cancelled"
    assert waiting_status(waiter, flow) == "access_denied"
    # Even the right number cannot approve it now.
    late = decide(approver, phone, event.pk, number=number)
    assert late.status_code == 409
    page = waiter.get(f"{APPROVE_START}?flow={flow}")
    assert b'data-state="access_denied"' in page.content
    assert b"Send me a code instead" in page.content


def test_this_wasnt_me_refuses_and_sends_a_security_notice(user):
    phone = Browser()
    approver = signed_in(user)
    enrol(approver, phone)
    mail.outbox.clear()
    waiter = Client(enforce_csrf_checks=True, REMOTE_ADDR="198.51.100.7")
    flow, _number = start_approval(waiter)
    event = pending_event(user)
    response = decide(approver, phone, event.pk, decision="reject")
    assert response.status_code == 200 and response.json()["status"] == "rejected"
    assert waiting_status(waiter, flow) == "access_denied"
    assert len(mail.outbox) == 1
    notice = mail.outbox[0]
    assert notice.to == ["alice@example.com"] and "198.51.100.7" in notice.body
    token = csrf(waiter, f"{APPROVE_START}?flow={flow}")
    finish = waiter.post(FINISH, {"flow": flow, "csrfmiddlewaretoken": token})
    assert finish.status_code == 400 and AUTH_SESSION_KEY not in waiter.session


def test_expired_request(user):
    phone = Browser()
    approver = signed_in(user)
    enrol(approver, phone)
    waiter = Client(enforce_csrf_checks=True)
    flow, number = start_approval(waiter)
    event = pending_event(user)
    AuthEvent.objects.filter(pk=event.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert waiting_status(waiter, flow) == "expired_token"
    page = waiter.get(f"{APPROVE_START}?flow={flow}")
    assert b'data-state="expired_token"' in page.content
    assert decide(approver, phone, event.pk, number=number).status_code == 409
    assert b"No sign-in is waiting" in approver.get(APPROVALS).content


def test_unknown_identifier_gets_the_same_waiting_page():
    waiter = Client(enforce_csrf_checks=True)
    flow, number = start_approval(waiter, "nobody@example.com")
    assert len(number) == app_settings.MATCH_CODE_LENGTH
    assert waiting_status(waiter, flow) == "authorization_pending"
    # A real row, as for everyone (the same statements), that names nobody.
    (row,) = AuthEvent.objects.all()
    assert row.user_id is None and row.details["unresolved"] == "unknown_identifier"


def test_approval_requests_are_rate_limited_per_identifier(user):
    enrol(signed_in(user), Browser())
    for _ in range(app_settings.MAX_OUTSTANDING_EVENTS):
        start_approval(Client(enforce_csrf_checks=True))
    client = Client(enforce_csrf_checks=True)
    token = csrf(client, SIGNIN)
    response = client.post(
        APPROVE_START, {"identifier": "alice@example.com", "csrfmiddlewaretoken": token}
    )
    assert response.status_code == 429 and "Retry-After" in response
    assert b"Too many attempts" in response.content


def test_waiting_endpoints_need_the_flow_of_this_browser(user):
    enrol(signed_in(user), Browser())
    waiter = Client(enforce_csrf_checks=True)
    flow, _number = start_approval(waiter)
    stranger = Client()
    assert stranger.get(f"/signin/approval/status?flow={flow}").status_code == 404
    assert (
        async_to_sync(AsyncClient().get)(f"/signin/approval/events?flow={flow}").status_code == 404
    )
    # Under WSGI the stream would be buffered: the page is told to long-poll instead.
    wsgi = waiter.get(f"/signin/approval/events?flow={flow}")
    assert wsgi.status_code == 503 and wsgi.json()["error"] == "use_long_poll"
    page = stranger.get(f"{APPROVE_START}?flow={flow}")
    assert page.status_code == 200 and b"data-ad-number" not in page.content


def test_server_sent_events_deliver_the_decision(user):
    phone = Browser()
    approver = signed_in(user)
    enrol(approver, phone)
    waiter = Client(enforce_csrf_checks=True)
    flow, number = start_approval(waiter)
    event = pending_event(user)
    assert decide(approver, phone, event.pk, number=number).status_code == 200

    async def stream() -> tuple[int, str, bytes]:
        client = AsyncClient()
        client.cookies = waiter.cookies
        response = await client.get(f"/signin/approval/events?flow={flow}")
        chunks = [chunk async for chunk in response.streaming_content]
        return response.status_code, response["Content-Type"], b"".join(chunks)

    status, content_type, body = async_to_sync(stream)()
    assert status == 200 and content_type.startswith("text/event-stream")
    assert body == b'event: status\ndata: {"status":"approved"}\n\n'


# -- the approval page: escaping and context (C09) ----------------------------------------


class FakeGeo:
    def locate(self, ip: str) -> str:
        return f"Near {ip} <b>bold</b>"


def test_attacker_chosen_text_is_escaped(user, settings):
    settings.AUTHDEVICE_GEOLOCATION_BACKEND = "tests.test_web_devices.FakeGeo"
    phone = Browser()
    approver = signed_in(user)
    device = enrol(approver, phone, name=XSS)
    hostile_ua = '<script>alert(1)</script>"><img src=x onerror=alert(2)> Firefox/120.0'
    waiter = Client(enforce_csrf_checks=True, HTTP_USER_AGENT=hostile_ua, REMOTE_ADDR="192.0.2.1")
    # A body field cannot override what the server saw (C09).
    token = csrf(waiter, SIGNIN)
    waiter.post(
        APPROVE_START,
        {
            "identifier": "alice@example.com",
            "csrfmiddlewaretoken": token,
            "ip": "10.9.9.9",
            "user_agent": "Trusted",
        },
        HTTP_X_FORWARDED_FOR="10.8.8.8",
    )
    page = approver.get(APPROVALS).content.decode()
    assert "<script>alert(1)" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "Near 192.0.2.1 &lt;b&gt;bold&lt;/b&gt;" in page
    assert "10.9.9.9" not in page and "10.8.8.8" not in page
    assert "Sign-in from Firefox 120" in page
    for url in (DEVICES, f"/devices/{device.pk}/remove/"):
        body = approver.get(url).content.decode()
        assert XSS not in body and "&lt;img src=x onerror=alert(1)&gt;" in body


def test_a_failing_geolocation_backend_does_not_break_the_page(user, settings):
    settings.AUTHDEVICE_GEOLOCATION_BACKEND = "tests.test_web_devices.no_such_backend"
    approver = signed_in(user)
    enrol(approver, Browser())
    start_approval(Client(enforce_csrf_checks=True))
    page = approver.get(APPROVALS)
    assert page.status_code == 200 and b"Approximate place" not in page.content


@pytest.mark.parametrize(
    ("agent", "expected"),
    [
        (CHROME_UA, "Chrome 126 on Windows"),
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
            "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
            "Safari 17 on iOS 17.5",
        ),
        (
            "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
            "Firefox 128 on Linux",
        ),
        (
            "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/126.0.0.0 Mobile Safari/537.36",
            "Chrome 126 on Android 14",
        ),
        (
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like "
            "Gecko) Chrome/126.0.0.0 Safari/537.36 Edg/126.0.0.0",
            "Edge 126 on macOS",
        ),
        ("curl/8.5.0", "curl 8"),
        ("", "Unknown browser"),
    ],
)
def test_user_agent_description(agent, expected):
    assert web_devices.describe_user_agent(agent) == expected


# -- permissions: another user's devices, events and bindings are 404 ----------------------


def test_another_users_things_are_not_found(user, other_user):
    alice_phone, bob_phone = Browser(), Browser()
    alice = signed_in(user)
    alice_device = enrol(alice, alice_phone)
    bob = signed_in(other_user)
    bob_device = enrol(bob, bob_phone)
    start_approval(Client(enforce_csrf_checks=True))
    event = pending_event(user)
    binding = native.start_binding(user.authdevice_identity).binding
    token = csrf(bob)

    assert bob.get(f"/devices/{alice_device.pk}/remove/").status_code == 404
    removed = bob.post(f"/devices/{alice_device.pk}/remove/", {"csrfmiddlewaretoken": token})
    renamed = bob.post(
        f"/devices/{alice_device.pk}/rename/", {"name": "mine", "csrfmiddlewaretoken": token}
    )
    assert removed.status_code == 404 and renamed.status_code == 404
    assert bob.get(f"/devices/add/{binding.pk}/").status_code == 404
    assert bob.get(f"/devices/add/{binding.pk}/status/").status_code == 404
    assert (
        bob.post(f"/devices/add/{binding.pk}/confirm/", {"csrfmiddlewaretoken": token}).status_code
        == 404
    )
    assert (
        bob.post(f"/devices/add/{binding.pk}/cancel/", {"csrfmiddlewaretoken": token}).status_code
        == 404
    )
    # Bob's own device cannot act on Alice's event, and he cannot use Alice's device key.
    assert decide(bob, bob_phone, event.pk, number="000000").status_code == 404
    assert decide(bob, alice_phone, event.pk, number="000000").status_code == 404
    assert str(event.pk).encode() not in bob.get(APPROVALS).content
    alice_device.refresh_from_db()
    assert alice_device.is_active and alice_device.name == "Laptop"
    assert bob_device.is_active
    event.refresh_from_db()
    assert event.state == "pending" and event.match_attempts == 0


# -- device management --------------------------------------------------------------------


def test_rename_and_remove(user):
    phone = Browser()
    client = signed_in(user)
    device = enrol(client, phone)
    token = csrf(client)
    renamed = client.post(
        f"/devices/{device.pk}/rename/", {"name": "Work laptop", "csrfmiddlewaretoken": token}
    )
    assert renamed.status_code == 303 and renamed["Location"] == "/devices/?done=renamed"
    device.refresh_from_db()
    assert device.name == "Work laptop"
    empty = client.post(
        f"/devices/{device.pk}/rename/", {"name": " ", "csrfmiddlewaretoken": token}
    )
    assert empty.status_code == 400 and b"Enter a name for the device." in empty.content

    start_approval(Client(enforce_csrf_checks=True))
    event = pending_event(user)
    confirm = client.get(f"/devices/{device.pk}/remove/")
    assert b"This is the browser you are using now" in confirm.content
    mail.outbox.clear()
    gone = client.post(f"/devices/{device.pk}/remove/", {"csrfmiddlewaretoken": token})
    assert gone.status_code == 303 and gone["Location"] == "/devices/?done=removed"
    device.refresh_from_db()
    assert device.revoked_at is not None and device.revoked_by == "alice"
    assert len(mail.outbox) == 1  # "a device was removed"
    # Its approvals are refused from now on.
    refused = decide(client, phone, event.pk, number="123456")
    assert refused.status_code == 401 and refused.json()["error"] == "device_not_trusted"
    assert b"The device was removed" in client.get("/devices/?done=removed").content


# -- adding a device by QR code (D01-D05) ---------------------------------------------------


def test_add_a_device_by_qr_code(user):
    client = signed_in(user)
    enrol(client, Browser())
    mail.outbox.clear()
    token = csrf(client)
    page = client.post("/devices/add/", {"csrfmiddlewaretoken": token})
    assert page.status_code == 200
    assert "no-store" in page["Cache-Control"] and page["Referrer-Policy"] == "no-referrer"
    body = page.content.decode()
    link = re.search(r"data-ad-short-link>([^<]+)<", body).group(1)
    # D01: the QR holds this server's origin and the single-use code, nothing else.
    assert re.fullmatch(re.escape(app_settings.base_url) + r"/d/[A-Za-z0-9_-]{24,}", link)
    code = link.rsplit("/", 1)[1]
    assert len(code) * 6 // 8 >= 14  # at least 112 bits
    assert web_devices.qr_svg(link) in body
    binding = DeviceBinding.objects.get()
    assert binding.user == user and not mail.outbox  # the code is never emailed

    new = Client(enforce_csrf_checks=True, HTTP_USER_AGENT=CHROME_UA)
    landing = new.get(urlsplit(link).path)
    assert landing.status_code == 200 and b"a\xe2\x80\xa6@example.com" in landing.content
    assert_script_page(landing)
    binding.refresh_from_db()
    assert binding.redeemed_at is None  # GET changes nothing (link scanners)
    assert client.get(f"/devices/add/{binding.pk}/status/").json() == {"state": "waiting"}

    tablet = Browser()
    new_token = csrf(new, urlsplit(link).path)
    signature = tablet.sign(native.signed_message("bind", code, extra=handle_of(tablet)))
    redeemed = post_json(
        new,
        f"/d/{code}/redeem",
        {"public_key": tablet.public_key, "signature": signature, "name": "Tablet"},
        new_token,
    )
    assert redeemed.status_code == 200, redeemed.content
    comparison = redeemed.json()["comparison"]
    assert re.fullmatch(r"\d{6}", comparison)
    # D02: single use.
    again = post_json(
        new,
        f"/d/{code}/redeem",
        {"public_key": Browser().public_key, "signature": signature},
        new_token,
    )
    assert again.status_code == 400 and again.json()["error"] == "invalid_binding"
    assert new.get(urlsplit(link).path).status_code == 404
    # D04: unconfirmed, the new device cannot sign in...
    device = TrustedDevice.objects.get(fingerprint=handle_of(tablet))
    assert not device.is_active
    anon = Client(enforce_csrf_checks=True)
    anon_token = csrf(anon, SIGNIN)
    assert (
        post_json(
            anon, "/signin/device/challenge/", {"handle": device.fingerprint}, anon_token
        ).status_code
        == 404
    )
    # ...until the initiating side confirms after comparing the same code.
    assert client.get(f"/devices/add/{binding.pk}/status/").json() == {"state": "redeemed"}
    compare_page = client.get(f"/devices/add/{binding.pk}/")
    assert f"data-ad-comparison>{comparison}<".encode() in compare_page.content
    assert b"Tablet" in compare_page.content
    wrong = client.post(
        f"/devices/add/{binding.pk}/confirm/",
        {
            "comparison": "000000" if comparison != "000000" else "111111",
            "csrfmiddlewaretoken": token,
        },
    )
    assert wrong.status_code == 400
    confirmed = client.post(
        f"/devices/add/{binding.pk}/confirm/",
        {"comparison": comparison, "csrfmiddlewaretoken": token},
    )
    assert confirmed.status_code == 303 and confirmed["Location"] == "/devices/?done=confirmed"
    device.refresh_from_db()
    assert device.is_active
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["alice@example.com"]  # D05
    assert (
        post_json(
            anon, "/signin/device/challenge/", {"handle": device.fingerprint}, anon_token
        ).status_code
        == 200
    )


def test_cancel_adding_a_device(user):
    client = signed_in(user)
    started = native.start_binding(user.authdevice_identity)
    tablet = Browser()
    _binding, device, _comparison = native.redeem_binding(
        code=started.code,
        public_key=tablet.public_key,
        algorithm="EC",
        signature=tablet.sign(native.signed_message("bind", started.code, extra=handle_of(tablet))),
    )
    token = csrf(client)
    response = client.post(
        f"/devices/add/{started.binding.pk}/cancel/", {"csrfmiddlewaretoken": token}
    )
    assert response.status_code == 303 and response["Location"] == "/devices/?done=cancelled"
    assert not TrustedDevice.objects.filter(pk=device.pk).exists()
    # The unconfirmed device is gone; the binding stays as the record of the refusal.
    page = client.get(f"/devices/add/{started.binding.pk}/")
    assert page.status_code == 200 and b"Not added" in page.content
    assert client.get(f"/devices/add/{started.binding.pk}/status/").json() == {"state": "cancelled"}


def test_expired_binding_code(user):
    client = signed_in(user)
    started = native.start_binding(user.authdevice_identity)
    with time_machine.travel(started.binding.expires_at + timedelta(seconds=1)):
        assert Client().get(f"/d/{started.code}").status_code == 404
        assert client.get(f"/devices/add/{started.binding.pk}/status/").json() == {
            "state": "expired"
        }
