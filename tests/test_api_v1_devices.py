"""``/api/v1`` trusted devices over HTTP with real signatures: enrolment, device sign-in,
approval with number matching (RFC 8628 polling, ``?wait=`` and SSE in process), QR
bindings, the OpenAPI document, and security.md B01-B06, C03, C05-C11, D01, D02, D04."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import timedelta
from typing import Any

import pytest
import time_machine
import yaml
from asgiref.sync import async_to_sync
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.core import mail
from django.core.cache import cache
from django.test import AsyncClient, Client
from django.utils import timezone

from authdevice.flows import tokens as token_flows
from authdevice.flows.identities import add_identifier
from authdevice.models import AuthEvent, DeviceBinding, RefreshToken, TrustedDevice
from tests.devicekit import Browser, Phone

pytestmark = pytest.mark.django_db(transaction=True)

V1 = "/api/v1"
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
POLL_FIELDS = {"error", "message", "interval"}


@pytest.fixture(autouse=True)
def _setup(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.AUTHDEVICE_GEOLOCATION_BACKEND = None
    cache.clear()
    yield
    cache.clear()


# -- the client's side of the protocol, written from the documentation -------------------


def origin() -> str:
    return django_settings.AUTHDEVICE_ISSUER.rstrip("/")


def message(
    purpose: str,
    challenge: str,
    *,
    event_id: str = "",
    decision: str = "",
    extra: str = "",
    server: str | None = None,
) -> bytes:
    """``authdevice/v1 NUL purpose NUL origin NUL challenge NUL event NUL decision NUL extra``."""
    event = str(int(event_id)) if event_id else ""
    parts = [purpose, server if server is not None else origin(), challenge, event, decision, extra]
    return b"authdevice/v1\x00" + b"\x00".join(p.encode() for p in parts)


def handle_of(public_key_b64: str) -> str:
    """Lowercase hex SHA-256 of the key in standard padded base64 (SPKI for P-256)."""
    return hashlib.sha256(public_key_b64.encode("ascii")).hexdigest()


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Ed25519Device:
    """A native-protocol Ed25519 device (raw 32-byte key, 64-byte signatures)."""

    algorithm = "ED25519"

    def __init__(self) -> None:
        self.phone = Phone.new("rn")
        self.public_key = self.phone.public_key

    def sign(self, data: bytes) -> str:
        return b64url(self.phone.private.sign(data))  # type: ignore[attr-defined]


class Api:
    """A JSON client for /api/v1 with the API key (and optionally a bearer token)."""

    def __init__(self, client: Client, application: Any, token: str | None = None) -> None:
        self.client = client
        self.application = application
        self.token = token

    def headers(self, **extra: Any) -> dict[str, Any]:
        if self.application is not None:
            extra.setdefault("HTTP_API_KEY_ID", self.application.api_key_id)
        if self.token:
            extra.setdefault("HTTP_AUTHORIZATION", f"Bearer {self.token}")
        return extra

    def post(self, path: str, body: Any = None, **extra: Any):
        data = json.dumps(body) if body is not None else ""
        return self.client.post(
            V1 + path, data=data, content_type="application/json", **self.headers(**extra)
        )

    def get(self, path: str, **extra: Any):
        return self.client.get(V1 + path, **self.headers(**extra))

    def delete(self, path: str, **extra: Any):
        return self.client.delete(V1 + path, **self.headers(**extra))

    def as_user(self, token: str | None) -> Api:
        return Api(self.client, self.application, token)

    def anonymous(self) -> Api:
        return Api(self.client, self.application, None)


def ok(response, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.content
    assert (
        response["Cache-Control"].startswith("max-age=0") or "no-store" in response["Cache-Control"]
    )
    return response.json() if response.content else {}


def error(response, status: int, code: str | None = None, fields=frozenset({"error", "message"})):
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    data = response.json()
    assert set(data) == set(fields), data
    assert isinstance(data["message"], str) and data["message"]
    if code is not None:
        assert data["error"] == code, data
    return data


# -- fixtures ---------------------------------------------------------------------------------


@pytest.fixture
def client() -> Client:
    return Client(raise_request_exception=False)


@pytest.fixture
def api(client, application) -> Api:
    return Api(client, application)


@pytest.fixture
def alice(api, token_set) -> Api:
    return api.as_user(token_set.access_token)


def make_user(name: str, application: Any) -> tuple[Any, str]:
    user = get_user_model().objects.create_user(username=name, email=f"{name}@example.com")
    add_identifier(user, "EMAIL", f"{name}@example.com", verified=True)
    tokens = token_flows.issue_token_set(
        identity=user.authdevice_identity, application=application, auth_method="OTP"
    )
    return user, tokens.access_token


@pytest.fixture
def bob(api, application) -> Api:
    _user, token = make_user("bob", application)
    return api.as_user(token)


def enrol(user_api: Api, device: Any) -> str:
    challenge = ok(user_api.post("/devices/enrol/challenge"))["challenge"]
    handle = handle_of(device.public_key)
    body = ok(
        user_api.post(
            "/devices/enrol",
            {
                "public_key": device.public_key,
                "algorithm": device.algorithm,
                "challenge": challenge,
                "signature": device.sign(message("enrol", challenge, extra=handle)),
                "name": "Laptop",
            },
        ),
        201,
    )
    assert body["device"]["handle"] == handle
    return handle


@pytest.fixture
def browser() -> Browser:
    return Browser()


@pytest.fixture
def handle(alice, browser) -> str:
    return enrol(alice, browser)


def login_challenge(api: Api, handle: str) -> str:
    return ok(api.post("/devices/login/challenge", {"device": handle}))["challenge"]


def start(api: Api, identifier: str = "alice@example.com", **extra: Any) -> dict[str, Any]:
    return ok(api.post("/approvals", {"identifier": identifier}, **extra), 201)


def poll(api: Api, started: dict[str, Any], query: str = "", secret: str | None = None, **extra):
    return api.get(
        f"/approvals/{started['event_id']}{query}",
        HTTP_X_POLL_SECRET=started["poll_secret"] if secret is None else secret,
        **extra,
    )


def decide(
    api: Api,
    handle: str,
    device: Any,
    event_id: str,
    *,
    approve: bool = True,
    match_code: str = "",
    sign_decision: str | None = None,
) -> Any:
    challenge = ok(api.post(f"/approvals/{event_id}/challenge", {"device": handle}))["challenge"]
    decision = sign_decision or ("approve" if approve else "reject")
    signature = device.sign(message("approve", challenge, event_id=event_id, decision=decision))
    return api.post(
        f"/approvals/{event_id}/decision",
        {
            "device": handle,
            "challenge": challenge,
            "signature": signature,
            "approve": approve,
            "match_code": match_code,
        },
    )


def other_number(code: str) -> str:
    return "000000" if code != "000000" else "111111"


# -- enrolment and sign-in with this device ---------------------------------------------------


def test_enrol_then_sign_in_with_the_device(api, alice, browser, application, identity):
    handle = enrol(alice, browser)
    listed = ok(alice.get("/devices"))["devices"]
    assert [d["handle"] for d in listed] == [handle] and listed[0]["algorithm"] == "EC"
    challenge = login_challenge(api, handle)
    assert len(unb64url(challenge)) >= 16  # ≥128 bits
    body = ok(
        api.post(
            "/devices/login",
            {
                "device": handle,
                "challenge": challenge,
                "signature": browser.sign(message("login", challenge)),
            },
        )
    )
    assert body["auth_method"] == "TRUSTED_DEVICE" and body["token_type"] == "Bearer"
    claims = token_flows.verify_access_token(body["access_token"])
    assert claims["aud"] == application.api_key_id
    assert claims["sub"] == str(identity.public_id) == body["user"]["ID"]


def test_ed25519_devices_work_too(api, alice):
    phone = Ed25519Device()
    handle = enrol(alice, phone)
    challenge = login_challenge(api, handle)
    response = api.post(
        "/devices/login",
        {
            "device": handle,
            "challenge": challenge,
            "signature": phone.sign(message("login", challenge)),
        },
    )
    assert ok(response)["access_token"]


@pytest.mark.parametrize("token", [None, "not-a-jwt", "a.b.c"])
def test_acting_for_a_user_needs_a_valid_bearer_token(api, token):
    for method, path in [
        ("post", "/devices/enrol/challenge"),
        ("post", "/devices/enrol"),
        ("get", "/devices"),
        ("get", "/approvals/pending"),
        ("post", "/bindings"),
        ("get", "/bindings/1234"),
        ("post", "/bindings/1234/confirm"),
        ("post", "/bindings/1234/cancel"),
    ]:
        response = getattr(api.as_user(token), method)(path)
        error(response, 401)
        assert response["WWW-Authenticate"].startswith("Bearer")


def test_missing_or_unknown_api_key(client, token_set):
    for key in (None, "nope", "bad\x01key"):
        extra = {"HTTP_API_KEY_ID": key} if key is not None else {}
        response = client.post(
            f"{V1}/approvals",
            data=json.dumps({"identifier": "alice@example.com"}),
            content_type="application/json",
            **extra,
        )
        error(response, 401, "invalid_client")


# -- B01-B06: signatures and keys ---------------------------------------------------------------


def test_b01_login_challenge_is_single_use_and_short_lived(api, handle, browser):
    challenge = login_challenge(api, handle)
    body = {
        "device": handle,
        "challenge": challenge,
        "signature": browser.sign(message("login", challenge)),
    }
    ok(api.post("/devices/login", body))
    error(api.post("/devices/login", body), 400, "challenge_used")
    late = login_challenge(api, handle)
    with time_machine.travel(timezone.now() + timedelta(seconds=121)):
        error(
            api.post(
                "/devices/login",
                {
                    "device": handle,
                    "challenge": late,
                    "signature": browser.sign(message("login", late)),
                },
            ),
            400,
            "challenge_used",
        )


def test_b02_signed_messages_are_domain_separated(api, handle, browser):
    wrong = [
        lambda c: message("enrol", c),
        lambda c: message("approve", c),
        lambda c: message("login", c, server="https://evil.example"),
        lambda c: message("login", c, event_id="12345"),
        lambda c: message("login", c, decision="approve"),
        lambda c: message("login", c, extra=handle),
        lambda c: message("login", c)[len(b"authdevice/v1\x00") :],
    ]
    for build in wrong:
        challenge = login_challenge(api, handle)
        response = api.post(
            "/devices/login",
            {"device": handle, "challenge": challenge, "signature": browser.sign(build(challenge))},
        )
        error(response, 401, "bad_signature")


def test_b02_approval_signatures_bind_event_and_decision(api, alice, handle, browser):
    first = start(api)
    second = start(api)
    # A reject signature does not approve.
    response = decide(
        api,
        handle,
        browser,
        first["event_id"],
        match_code=first["match_code"],
        sign_decision="reject",
    )
    error(response, 401, "bad_signature")
    # A signature naming another event does not count, nor does a challenge for another event.
    challenge = ok(api.post(f"/approvals/{first['event_id']}/challenge", {"device": handle}))[
        "challenge"
    ]
    for event_id, signed_for in [
        (first["event_id"], second["event_id"]),
        (second["event_id"], second["event_id"]),
    ]:
        response = api.post(
            f"/approvals/{event_id}/decision",
            {
                "device": handle,
                "challenge": challenge,
                "signature": browser.sign(
                    message("approve", challenge, event_id=signed_for, decision="approve")
                ),
                "approve": True,
                "match_code": first["match_code"],
            },
        )
        assert response.status_code in (400, 401), response.content
        assert response.json()["error"] in ("bad_signature", "challenge_used")
    assert AuthEvent.objects.filter(state="pending").count() == 2


def test_b03_the_high_s_twin_of_a_used_signature_is_refused(api, handle, browser):
    challenge = login_challenge(api, handle)
    signature = browser.sign(message("login", challenge))
    ok(
        api.post(
            "/devices/login", {"device": handle, "challenge": challenge, "signature": signature}
        )
    )
    raw = unb64url(signature)
    r, s = int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")
    twin = b64url(r.to_bytes(32, "big") + (P256_ORDER - s).to_bytes(32, "big"))
    response = api.post(
        "/devices/login", {"device": handle, "challenge": challenge, "signature": twin}
    )
    error(response, 400, "challenge_used")


def test_b04_malformed_and_wrong_kind_signatures_are_refused(api, alice, handle, browser):
    phone = Ed25519Device()
    ed_handle = enrol(alice, phone)

    def der(challenge: str) -> str:
        sig = browser.private.sign(message("login", challenge), ec.ECDSA(hashes.SHA256()))
        return b64url(sig)

    good = browser.sign
    cases = [
        (handle, lambda c: b64url(b"\x00" * 64)),
        (handle, der),
        (handle, lambda c: b64url(unb64url(good(message("login", c)))[:63])),
        (handle, lambda c: b64url(unb64url(good(message("login", c))) + b"\x00")),
        (handle, lambda c: "!!!not base64!!!"),
        (handle, lambda c: phone.sign(message("login", c))),
        (ed_handle, lambda c: good(message("login", c))),
        (ed_handle, lambda c: b64url(b"\x00" * 64)),
    ]
    for device, sign in cases:
        challenge = login_challenge(api, device)
        response = api.post(
            "/devices/login",
            {"device": device, "challenge": challenge, "signature": sign(challenge)},
        )
        error(response, 401, "bad_signature")
    # Absurd lengths and wrong JSON types are input errors, never 500.
    challenge = login_challenge(api, handle)
    for signature in ["A" * 5000, 12345, None, ["x"], {"a": 1}]:
        response = api.post(
            "/devices/login", {"device": handle, "challenge": challenge, "signature": signature}
        )
        assert response.status_code in (400, 401), response.content


def test_b05_a_removed_device_stops_at_once(api, alice, bob, handle, browser):
    pending = login_challenge(api, handle)
    # Another user cannot remove it; the answer is the same as for a device that never was.
    unknown = "0" * 64
    assert bob.delete(f"/devices/{handle}").content == bob.delete(f"/devices/{unknown}").content
    error(bob.delete(f"/devices/{handle}"), 404, "device_not_found")
    assert alice.delete(f"/devices/{handle}").status_code == 204
    error(alice.delete(f"/devices/{handle}"), 404, "device_not_found")
    response = api.post(
        "/devices/login",
        {
            "device": handle,
            "challenge": pending,
            "signature": browser.sign(message("login", pending)),
        },
    )
    error(response, 401, "device_not_trusted")
    removed = api.post("/devices/login/challenge", {"device": handle})
    never = api.post("/devices/login/challenge", {"device": unknown})
    error(removed, 401, "device_not_trusted")
    assert removed.content == never.content
    assert ok(alice.get("/devices"))["devices"] == []


def test_b06_keys_are_validated_and_possession_is_proven(alice, bob, browser):
    def attempt(user_api: Api, public_key: str, algorithm: str, signer: Any = None):
        challenge = ok(user_api.post("/devices/enrol/challenge"))["challenge"]
        signature = (
            signer.sign(message("enrol", challenge, extra=handle_of(public_key)))
            if signer
            else b64url(b"\x01" * 64)
        )
        return user_api.post(
            "/devices/enrol",
            {
                "public_key": public_key,
                "algorithm": algorithm,
                "challenge": challenge,
                "signature": signature,
            },
        )

    good = (
        Browser()
        .private.public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    off_curve = good[:-1] + bytes([good[-1] ^ 1])
    prefix = good[: -len(b"\x04") - 64]
    infinity_bits = b"\x03\x02\x00\x00"
    algo_id = prefix[2 : 2 + 2 + prefix[3]]
    infinity = b"\x30" + bytes([len(algo_id) + len(infinity_bits)]) + algo_id + infinity_bits
    bad_keys = [
        (base64.b64encode(b"\x01" * 31).decode(), "ED25519"),
        (base64.b64encode(b"\x01" * 33).decode(), "ED25519"),
        (base64.b64encode(b"\x00" * 32).decode(), "ED25519"),  # small order
        (base64.b64encode(off_curve).decode(), "EC"),
        (base64.b64encode(infinity).decode(), "EC"),
        ("not base64 !!", "EC"),
        (browser.public_key, "ED25519"),
    ]
    for public_key, algorithm in bad_keys:
        error(attempt(alice, public_key, algorithm), 400, "invalid_public_key")
    # Without proof of possession: a signature by another key.
    error(attempt(alice, browser.public_key, "EC", Browser()), 401, "bad_signature")
    error(attempt(alice, browser.public_key, "EC", None), 401, "bad_signature")
    assert ok(attempt(alice, browser.public_key, "EC", browser), 201)
    # The same key for another user: refused.
    error(attempt(bob, browser.public_key, "EC", browser), 409, "public_key_taken")
    assert TrustedDevice.objects.count() == 1


def test_enrolment_challenge_is_bound_to_the_user(alice, bob, browser):
    challenge = ok(bob.post("/devices/enrol/challenge"))["challenge"]
    response = alice.post(
        "/devices/enrol",
        {
            "public_key": browser.public_key,
            "algorithm": "EC",
            "challenge": challenge,
            "signature": browser.sign(
                message("enrol", challenge, extra=handle_of(browser.public_key))
            ),
        },
    )
    error(response, 400, "challenge_used")


# -- approvals ----------------------------------------------------------------------------------


def test_approval_with_number_matching_end_to_end(api, alice, handle, browser, application):
    started = start(api, HTTP_USER_AGENT="Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Firefox/121.0")
    assert set(started) == {"event_id", "poll_secret", "match_code", "interval", "expires_in"}
    assert len(started["match_code"]) == 6 and started["interval"] == 2
    assert len(started["event_id"]) == 16
    error(poll(api, started), 400, "authorization_pending", POLL_FIELDS)
    slow = error(poll(api, started), 400, "slow_down", POLL_FIELDS)
    assert slow["interval"] == 7
    listed = ok(alice.get("/approvals/pending"))["requests"]
    assert [r["event_id"] for r in listed] == [started["event_id"]]
    assert listed[0]["browser"] == "Firefox 121" and listed[0]["os"] == "Linux"
    assert listed[0]["application"] == application.name
    decided = ok(
        decide(api, handle, browser, started["event_id"], match_code=started["match_code"])
    )
    assert decided == {"event_id": started["event_id"], "status": "approved"}
    assert ok(alice.get("/approvals/pending"))["requests"] == []
    first = ok(poll(api, started))
    assert first["status"] == "approved" and first["access_token"]
    claims = token_flows.verify_access_token(first["access_token"])
    assert claims["aud"] == application.api_key_id
    assert first["user"]["identifier"] == "alice@example.com"
    again = ok(poll(api, started))
    assert again == {"status": "approved", "event_id": started["event_id"]}
    # A decided request takes no more decisions.
    error(
        api.post(f"/approvals/{started['event_id']}/challenge", {"device": handle}),
        404,
        "event_not_found",
    )


def test_c03_no_approval_after_expiry(api, handle, browser):
    started = start(api)
    challenge = ok(api.post(f"/approvals/{started['event_id']}/challenge", {"device": handle}))[
        "challenge"
    ]
    body = {
        "device": handle,
        "challenge": challenge,
        "signature": browser.sign(
            message("approve", challenge, event_id=started["event_id"], decision="approve")
        ),
        "approve": True,
        "match_code": started["match_code"],
    }
    with time_machine.travel(timezone.now() + timedelta(seconds=181)):
        error(api.post(f"/approvals/{started['event_id']}/decision", body), 410, "expired")
        error(poll(api, started), 400, "expired_token", POLL_FIELDS)
        error(poll(api, started), 400, "expired_token", POLL_FIELDS)
        error(
            api.post(f"/approvals/{started['event_id']}/challenge", {"device": handle}),
            404,
            "event_not_found",
        )
    assert AuthEvent.objects.get(pk=int(started["event_id"])).tokens_handed_out_at is None


def test_c05_other_users_devices_see_and_touch_nothing(api, alice, bob, handle, browser):
    bob_device = Browser()
    bob_handle = enrol(bob, bob_device)
    started = start(api)
    assert ok(bob.get("/approvals/pending"))["requests"] == []
    foreign = api.post(f"/approvals/{started['event_id']}/challenge", {"device": bob_handle})
    missing = api.post("/approvals/1234567890123456/challenge", {"device": bob_handle})
    error(foreign, 404, "event_not_found")
    assert foreign.content == missing.content
    # A challenge of Bob's own, used on Alice's event: not found either.
    bob_started = start(api, "bob@example.com")
    challenge = ok(
        api.post(f"/approvals/{bob_started['event_id']}/challenge", {"device": bob_handle})
    )["challenge"]
    response = api.post(
        f"/approvals/{started['event_id']}/decision",
        {
            "device": bob_handle,
            "challenge": challenge,
            "signature": bob_device.sign(
                message("approve", challenge, event_id=started["event_id"], decision="approve")
            ),
            "approve": True,
            "match_code": started["match_code"],
        },
    )
    error(response, 404, "event_not_found")
    assert response.content == missing.content
    assert AuthEvent.objects.get(pk=int(started["event_id"])).state == "pending"
    assert len(started["poll_secret"]) >= 43


def test_c06_only_a_fresh_device_signature_decides(api, alice, handle, browser):
    started = start(api)
    event_id = started["event_id"]
    url = f"/approvals/{event_id}/decision"
    # Bearer token, API key, poll secret: none of them is a device signature.
    for body in [{}, {"approve": True, "match_code": started["match_code"]}]:
        for caller in (api, alice):
            error(caller.post(url, body, HTTP_X_POLL_SECRET=started["poll_secret"]), 400)
    challenge = ok(api.post(f"/approvals/{event_id}/challenge", {"device": handle}))["challenge"]
    requester = Browser()  # a key that is not enrolled, on an enrolled device's handle
    signed = message("approve", challenge, event_id=event_id, decision="approve")
    error(
        api.post(
            url,
            {
                "device": handle,
                "challenge": challenge,
                "signature": requester.sign(signed),
                "approve": True,
                "match_code": started["match_code"],
            },
        ),
        401,
        "bad_signature",
    )
    error(
        api.post(
            url,
            {
                "device": handle_of(requester.public_key),
                "challenge": challenge,
                "signature": requester.sign(signed),
                "approve": True,
                "match_code": started["match_code"],
            },
        ),
        401,
        "device_not_trusted",
    )
    # A replayed approval from an earlier request.
    earlier = start(api)
    early_challenge = ok(
        api.post(f"/approvals/{earlier['event_id']}/challenge", {"device": handle})
    )["challenge"]
    early_body = {
        "device": handle,
        "challenge": early_challenge,
        "signature": browser.sign(
            message("approve", early_challenge, event_id=earlier["event_id"], decision="approve")
        ),
        "approve": True,
        "match_code": earlier["match_code"],
    }
    ok(api.post(f"/approvals/{earlier['event_id']}/decision", early_body))
    error(api.post(url, {**early_body, "match_code": started["match_code"]}), 400, "challenge_used")
    error(
        api.post(f"/approvals/{earlier['event_id']}/decision", early_body), 409, "already_decided"
    )
    assert AuthEvent.objects.get(pk=int(event_id)).state == "pending"


def test_c07_number_matching(api, alice, handle, browser):
    started = start(api)
    listing = ok(alice.get("/approvals/pending"))
    for item in listing["requests"]:
        assert not any("match" in key for key in item)
        assert started["match_code"] not in [str(v) for v in item.values()]
    error(decide(api, handle, browser, started["event_id"]), 400, "wrong_number")
    error(
        decide(
            api,
            handle,
            browser,
            started["event_id"],
            match_code=other_number(started["match_code"]),
        ),
        400,
        "wrong_number",
    )
    assert AuthEvent.objects.get(pk=int(started["event_id"])).state == "pending"
    error(
        decide(api, handle, browser, started["event_id"], match_code=" 12 "),
        400,
        "wrong_number",
    )
    assert AuthEvent.objects.get(pk=int(started["event_id"])).state == "rejected"
    error(poll(api, started), 400, "access_denied", POLL_FIELDS)
    # Rejecting needs no number.
    second = start(api)
    assert ok(decide(api, handle, browser, second["event_id"], approve=False))["status"] == (
        "access_denied"
    )


def test_c08_push_bombing_limits(api, alice, handle, browser, settings):
    for _ in range(3):
        start(api)
    limited = api.post("/approvals", {"identifier": "alice@example.com"})
    error(limited, 429, "rate_limited")
    assert int(limited["Retry-After"]) > 0
    # The same for an identifier nobody has (no oracle).
    for _ in range(3):
        start(api, "nobody@example.com")
    assert api.post("/approvals", {"identifier": "nobody@example.com"}).status_code == 429
    # The cap on requests since the last successful sign-in; a sign-in resets it.
    cache.clear()
    AuthEvent.objects.all().delete()
    settings.AUTHDEVICE_MAX_OUTSTANDING_EVENTS = 10
    settings.AUTHDEVICE_MAX_REQUESTS_SINCE_SUCCESS = 2
    start(api)
    start(api)
    # The third gets the answer every request gets (a 429 here, which an unknown address
    # never reaches, would say "this account exists"), but no device ever sees it.
    held = start(api)
    assert len(ok(alice.get("/approvals/pending"))["requests"]) == 2
    row = AuthEvent.objects.get(pk=int(held["event_id"]))
    assert row.user_id is None and row.details["unresolved"] == "rate_limited"
    error(poll(api, held), 400, "authorization_pending", POLL_FIELDS)
    challenge = login_challenge(api, handle)
    ok(
        api.post(
            "/devices/login",
            {
                "device": handle,
                "challenge": challenge,
                "signature": browser.sign(message("login", challenge)),
            },
        )
    )
    after = start(api)
    assert AuthEvent.objects.get(pk=int(after["event_id"])).user_id == alice_user_id(api)


def alice_user_id(api: Api) -> int:
    return get_user_model().objects.get(username="alice").pk


def test_c09_the_approver_sees_what_the_server_saw(api, alice, handle, settings):
    settings.AUTHDEVICE_GEOLOCATION_BACKEND = "tests.test_api_v1_devices.fake_locate"
    ua = (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/120.0.0.0 Safari/537.36 Edg/120.0.2210.91 <img src=x onerror=alert(1)>"
    )
    response = api.post(
        "/approvals",
        {"identifier": "alice@example.com", "ip": "6.6.6.6", "user_agent": "spoofed"},
        HTTP_USER_AGENT=ua,
        HTTP_X_FORWARDED_FOR="6.6.6.6",
        REMOTE_ADDR="203.0.113.9",
    )
    started = ok(response, 201)
    (item,) = ok(alice.get("/approvals/pending"))["requests"]
    assert item["event_id"] == started["event_id"]
    assert item["ip"] == "203.0.113.9" and item["location"] == "Testville (203.0.113.9)"
    assert item["browser"] == "Edge 120" and item["os"] == "Windows"
    assert item["user_agent"] == ua
    assert 0 < item["expires_in"] <= 180 and item["created_at"].endswith("Z")


def fake_locate(ip: str) -> str:
    return f"Testville ({ip})"


@pytest.mark.parametrize(
    ("ua", "expected_browser", "system"),
    [
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 "
            "(KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1",
            "Safari 17",
            "iOS 17.1",
        ),
        (
            "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/120.0.6099.43 Mobile Safari/537.36",
            "Chrome 120",
            "Android 14",
        ),
        (
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like "
            "Gecko) Version/17.2 Safari/605.1.15",
            "Safari 17",
            "macOS",
        ),
        ("curl/8.5.0", "curl 8", ""),
        ("", "", ""),
    ],
)
def test_user_agents_are_summarised(api, alice, handle, ua, expected_browser, system):
    start(api, HTTP_USER_AGENT=ua)
    (item,) = ok(alice.get("/approvals/pending"))["requests"]
    assert (item["browser"], item["os"]) == (expected_browser, system)


def test_c10_only_the_requester_collects_the_tokens_once(
    api, client, handle, browser, other_application
):
    started = start(api)
    missing = poll(api, started, secret="")
    error(missing, 404, "event_not_found")
    secret = started["poll_secret"]
    tampered = ("B" if secret[0] == "A" else "A") + secret[1:]
    error(poll(api, started, secret=tampered), 404, "event_not_found")
    no_header = api.get(f"/approvals/{started['event_id']}")
    assert no_header.content == missing.content
    ok(decide(api, handle, browser, started["event_id"], match_code=started["match_code"]))
    other = Api(client, other_application)
    error(poll(other, started), 401, "invalid_client")
    error(poll(api, started, secret="x" * 43), 404, "event_not_found")
    first = ok(poll(api, started))
    assert first["access_token"]
    assert "access_token" not in ok(poll(api, started))
    assert "access_token" not in ok(poll(api, started, "?wait=5"))


def test_c10_tokens_not_collected_in_time_are_never_handed_out(api, handle, browser):
    """RFC 8628 3.5: until the request expires, or HANDOUT_GRACE after a late approval;
    afterwards an uncollected approval answers expired_token and opens nothing."""
    from authdevice.flows.events import HANDOUT_GRACE

    tokens_before = RefreshToken.objects.count()
    now = timezone.now()
    with time_machine.travel(now, tick=False) as traveller:
        early = start(api)
        ok(decide(api, handle, browser, early["event_id"], match_code=early["match_code"]))
        traveller.shift(timedelta(seconds=179))
        late = start(api)  # approved at its last second: it still gets the grace
        traveller.shift(timedelta(seconds=179))
        ok(decide(api, handle, browser, late["event_id"], match_code=late["match_code"]))
        traveller.shift(timedelta(seconds=HANDOUT_GRACE - 1))
        error(poll(api, early), 400, "expired_token", POLL_FIELDS)
        assert ok(poll(api, late))["access_token"]
    assert AuthEvent.objects.get(pk=int(early["event_id"])).tokens_handed_out_at is None
    assert RefreshToken.objects.count() == tokens_before + 1


def test_c11_rejection_is_final_and_notified(api, handle, browser):
    started = start(api)
    mail.outbox.clear()
    assert ok(decide(api, handle, browser, started["event_id"], approve=False))["status"] == (
        "access_denied"
    )
    for query in ("", "?wait=3"):
        error(poll(api, started, query), 400, "access_denied", POLL_FIELDS)
    error(
        api.post(f"/approvals/{started['event_id']}/challenge", {"device": handle}),
        404,
        "event_not_found",
    )
    event = AuthEvent.objects.get(pk=int(started["event_id"]))
    assert event.state == "rejected" and event.tokens_handed_out_at is None
    assert len(mail.outbox) == 1 and "alice@example.com" in mail.outbox[0].to


def test_enumeration_known_and_unknown_identifiers_look_the_same(api, handle, application):
    make_user("carol", application)  # a user without a trusted device
    known = api.post("/approvals", {"identifier": "alice@example.com"})
    unknown = api.post("/approvals", {"identifier": "nobody@example.com"})
    nodevice = api.post("/approvals", {"identifier": "carol@example.com"})
    responses = [known, unknown, nodevice]
    assert {r.status_code for r in responses} == {201}
    bodies = [r.json() for r in responses]
    assert len({tuple(sorted(b)) for b in bodies}) == 1
    for field in bodies[0]:
        assert len({len(str(b[field])) for b in bodies}) == 1, field
    assert len({len(r.content) for r in responses}) == 1
    assert len({tuple(sorted(h for h, _ in r.items())) for r in responses}) == 1
    polls = [poll(api, b) for b in bodies]
    assert {p.status_code for p in polls} == {400}
    assert len({json.dumps(sorted(p.json())) for p in polls}) == 1
    assert {p.json()["error"] for p in polls} == {"authorization_pending"}


# -- waiting in process (the live tests run real servers) -------------------------------------


def asgi_get(api: Api, path: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    """GET through Django's ASGI handler (as under uvicorn): status, headers, whole body."""

    async def go() -> tuple[int, dict[str, str], bytes]:
        response = await AsyncClient().get(
            V1 + path, headers={"API-KEY-ID": api.application.api_key_id, **headers}
        )
        if response.streaming:
            body = b"".join([chunk async for chunk in response.streaming_content])
        else:
            body = response.content
        return response.status_code, dict(response.items()), body

    return async_to_sync(go)()


def asgi_poll(api: Api, started: dict[str, Any], query: str = "", **headers: str):
    status, _headers, body = asgi_get(
        api,
        f"/approvals/{started['event_id']}{query}",
        {"X-Poll-Secret": started["poll_secret"], **headers},
    )
    return status, json.loads(body)


def test_long_poll_returns_a_decided_outcome_at_once(api, handle, browser):
    started = start(api)
    ok(decide(api, handle, browser, started["event_id"], match_code=started["match_code"]))
    status, body = asgi_poll(api, started, "?wait=20")
    assert status == 200 and body["status"] == "approved" and body["access_token"]


def test_long_poll_times_out_pending_and_a_long_wait_is_never_slow_down(api, handle, settings):
    settings.AUTHDEVICE_POLL_INTERVAL = 1
    started = start(api)
    for _ in range(2):
        status, body = asgi_poll(api, started, "?wait=1")
        assert (status, body["error"]) == (400, "authorization_pending")
        assert set(body) == POLL_FIELDS
    # Short waits are polls: they are paced like polls.
    assert asgi_poll(api, started, "?wait=0.05")[1]["error"] == "authorization_pending"
    assert asgi_poll(api, started, "?wait=0.05")[1]["error"] == "slow_down"


def test_under_wsgi_waiting_requests_answer_at_once(api, handle):
    from asgiref.sync import iscoroutinefunction

    from authdevice.api.v1.devices import approval_status

    assert not iscoroutinefunction(approval_status)

    async def in_a_loop() -> bool:
        return iscoroutinefunction(approval_status)

    assert async_to_sync(in_a_loop)()
    started = start(api)
    error(poll(api, started, "?wait=20"), 400, "authorization_pending", POLL_FIELDS)
    # It did not wait, so it is paced like any poll; an event stream gets the JSON status.
    error(poll(api, started, "?wait=20"), 400, "slow_down", POLL_FIELDS)
    response = poll(api, started, HTTP_ACCEPT="text/event-stream")
    error(response, 400, "slow_down", POLL_FIELDS)


@pytest.mark.parametrize("wait", ["abc", "-5", "nan", "inf", "1e309", "", "0"])
def test_junk_wait_values_are_plain_polls(api, handle, wait, settings):
    settings.AUTHDEVICE_MAX_WAIT = 0
    started = start(api)
    status, body = asgi_poll(api, started, f"?wait={wait}")
    assert (status, body["error"]) == (400, "authorization_pending")


def test_event_stream_reports_the_decision(api, handle, browser):
    started = start(api)
    ok(decide(api, handle, browser, started["event_id"], approve=False))
    status, headers, body = asgi_get(
        api,
        f"/approvals/{started['event_id']}",
        {"X-Poll-Secret": started["poll_secret"], "Accept": "text/event-stream"},
    )
    assert status == 200
    assert headers["Content-Type"].startswith("text/event-stream")
    assert headers["Cache-Control"] == "no-store" and headers["X-Accel-Buffering"] == "no"
    assert body.decode() == 'event: status\ndata: {"status":"access_denied"}\n\n'


def test_event_stream_refuses_strangers_in_json(api, handle):
    started = start(api)
    for secret in ("", "nope"):
        status, headers, body = asgi_get(
            api,
            f"/approvals/{started['event_id']}",
            {"X-Poll-Secret": secret, "Accept": "text/event-stream"},
        )
        assert status == 404 and headers["Content-Type"].startswith("application/json")
        assert json.loads(body)["error"] == "event_not_found"
    status, _headers, body = asgi_get(
        api.anonymous(),
        f"/approvals/{started['event_id']}?wait=5",
        {"X-Poll-Secret": started["poll_secret"], "API-KEY-ID": "unknown"},
    )
    assert status == 401 and json.loads(body)["error"] == "invalid_client"


def test_asgi_keeps_the_api_key_header_and_drops_its_dashed_twin():
    from authdevice.asgi import _headers

    assert _headers([(b"api_key_id", b"k"), (b"x_other", b"o")]) == [
        (b"api-key-id", b"k"),
        (b"x_other", b"o"),
    ]
    assert _headers([(b"api-key-id", b"evil"), (b"API_KEY_ID", b"k")]) == [(b"api-key-id", b"k")]
    assert _headers([(b"api-key-id", b"dashed")]) == [(b"api-key-id", b"dashed")]


# -- D01, D02, D04: adding a device by QR code ----------------------------------------------------


def redeem(api: Api, code: str, device: Any, name: str = "New phone"):
    return api.post(
        "/bindings/redeem",
        {
            "code": code,
            "public_key": device.public_key,
            "algorithm": device.algorithm,
            "signature": device.sign(message("bind", code, extra=handle_of(device.public_key))),
            "name": name,
        },
    )


def test_d01_the_binding_code_is_strong_and_alone(alice, identity):
    started = ok(alice.post("/bindings"), 201)
    assert set(started) == {"binding_id", "code", "origin", "expires_in"}
    assert started["origin"] == origin()
    assert len(unb64url(started["code"])) >= 14
    assert str(identity.public_id) not in json.dumps(started)
    assert 0 < started["expires_in"] <= 600
    assert mail.outbox == []  # never sent by email


def test_d02_binding_codes_are_single_use_and_short_lived(api, alice):
    started = ok(alice.post("/bindings"), 201)
    assert ok(api.post("/bindings/preview", {"code": started["code"]}))["expires_in"] > 0
    ok(redeem(api, started["code"], Browser()), 201)
    error(redeem(api, started["code"], Browser()), 400, "invalid_binding")
    error(api.post("/bindings/preview", {"code": started["code"]}), 400, "invalid_binding")
    late = ok(alice.post("/bindings"), 201)
    with time_machine.travel(timezone.now() + timedelta(seconds=181)):
        error(redeem(api, late["code"], Browser()), 400, "invalid_binding")
    for junk in ["", "x", "A" * 65, 5, None]:
        response = api.post("/bindings/preview", {"code": junk})
        assert response.status_code == 400, response.content
    # The redeeming key must sign the code.
    third = ok(alice.post("/bindings"), 201)
    newcomer = Browser()
    response = api.post(
        "/bindings/redeem",
        {
            "code": third["code"],
            "public_key": newcomer.public_key,
            "algorithm": "EC",
            "signature": Browser().sign(message("bind", third["code"])),
        },
    )
    error(response, 401, "bad_signature")
    assert TrustedDevice.objects.count() == 1


def test_d04_the_initiator_confirms_after_comparing(api, alice, bob):
    started = ok(alice.post("/bindings"), 201)
    binding_id = started["binding_id"]
    assert ok(alice.get(f"/bindings/{binding_id}"))["status"] == "waiting"
    newcomer = Browser()
    redeemed = ok(redeem(api, started["code"], newcomer, name="<b>Phone</b>"), 201)
    assert redeemed["status"] == "awaiting_confirmation" and len(redeemed["comparison_code"]) == 6
    new_handle = redeemed["device"]["handle"]
    assert new_handle == handle_of(newcomer.public_key) and not redeemed["device"]["active"]
    # Not confirmed yet: it cannot sign in.
    error(api.post("/devices/login/challenge", {"device": new_handle}), 401, "device_not_trusted")
    state = ok(alice.get(f"/bindings/{binding_id}"))
    assert state["status"] == "redeemed" and state["device"]["name"] == "<b>Phone</b>"
    error(bob.get(f"/bindings/{binding_id}"), 400, "invalid_binding")
    error(
        bob.post(
            f"/bindings/{binding_id}/confirm", {"comparison_code": redeemed["comparison_code"]}
        ),
        400,
        "invalid_binding",
    )
    error(
        alice.post(
            f"/bindings/{binding_id}/confirm",
            {"comparison_code": other_number(redeemed["comparison_code"])},
        ),
        400,
        "invalid_binding",
    )
    confirmed = ok(
        alice.post(
            f"/bindings/{binding_id}/confirm", {"comparison_code": redeemed["comparison_code"]}
        )
    )
    assert confirmed["device"]["active"] and confirmed["device"]["handle"] == new_handle
    assert ok(alice.get(f"/bindings/{binding_id}"))["status"] == "confirmed"
    challenge = login_challenge(api, new_handle)
    ok(
        api.post(
            "/devices/login",
            {
                "device": new_handle,
                "challenge": challenge,
                "signature": newcomer.sign(message("login", challenge)),
            },
        )
    )


def test_cancelling_a_binding_deletes_the_new_device(api, alice):
    started = ok(alice.post("/bindings"), 201)
    ok(redeem(api, started["code"], Browser()), 201)
    assert alice.post(f"/bindings/{started['binding_id']}/cancel").status_code == 204
    assert not TrustedDevice.objects.exists()
    # The binding stays as a record of the refusal; the code is dead and it cannot be
    # cancelled (or confirmed) again.
    assert ok(alice.get(f"/bindings/{started['binding_id']}"))["status"] == "cancelled"
    assert DeviceBinding.objects.get(pk=int(started["binding_id"])).cancelled_at is not None
    error(alice.post(f"/bindings/{started['binding_id']}/cancel"), 400, "invalid_binding")
    # Cancelled before anyone redeemed it: the code dies, the binding says so.
    unused = ok(alice.post("/bindings"), 201)
    assert alice.post(f"/bindings/{unused['binding_id']}/cancel").status_code == 204
    assert ok(alice.get(f"/bindings/{unused['binding_id']}"))["status"] == "cancelled"
    assert DeviceBinding.objects.get(pk=int(unused["binding_id"])).cancelled_at is not None
    error(redeem(api, unused["code"], Browser()), 400, "invalid_binding")


# -- bad input is a clear 4xx ---------------------------------------------------------------------


def test_bad_input_never_500(api, alice, handle, client, application):
    big = "9" * 19
    cases: list[tuple[Api, str, str, Any]] = [
        (api, "post", "/approvals", {"identifier": "x" * 300}),
        (api, "post", "/approvals", {"identifier": ["a"]}),
        (api, "post", "/approvals", {}),
        (api, "post", "/approvals", [1, 2]),
        (api, "post", "/approvals", "just a string"),
        (api, "post", "/devices/login/challenge", {"device": "Z" * 64}),
        (api, "post", "/devices/login/challenge", {"device": handle.upper()}),
        (api, "post", "/devices/login", {"device": handle, "challenge": "x", "signature": "y"}),
        (
            api,
            "post",
            "/devices/login",
            {"device": handle, "challenge": "\x00" * 30, "signature": "y"},
        ),
        (api, "post", f"/approvals/{big}/challenge", {"device": handle}),
        (api, "post", "/approvals/0/challenge", {"device": handle}),
        (
            api,
            "post",
            "/approvals/123/decision",
            {"device": handle, "challenge": "c" * 43, "signature": "s", "approve": "yes"},
        ),
        (
            api,
            "post",
            "/approvals/123/decision",
            {"device": handle, "challenge": "c" * 43, "signature": "s", "approve": True},
        ),
        (api, "get", f"/approvals/{big}", None),
        (api, "get", "/approvals/abc", None),
        (api, "get", "/approvals/99999999999999999999", None),
        (api, "get", "/approvals/12?wait=5", None),
        (
            alice,
            "post",
            "/devices/enrol",
            {"public_key": "A" * 3000, "algorithm": "EC", "challenge": "c", "signature": "s"},
        ),
        (
            alice,
            "post",
            "/devices/enrol",
            {"public_key": "AAAA", "algorithm": "DSA", "challenge": "c", "signature": "s"},
        ),
        (
            alice,
            "post",
            "/devices/enrol",
            {"public_key": "AAAA", "algorithm": "EC", "challenge": "c" * 43, "signature": "s"},
        ),
        (alice, "post", f"/bindings/{big}/confirm", {"comparison_code": "123456"}),
        (alice, "post", "/bindings/0/confirm", {"comparison_code": ["1"]}),
        (alice, "get", "/bindings/0", None),
        (alice, "delete", "/devices/" + "a" * 64, None),
        (
            api,
            "post",
            "/bindings/redeem",
            {"code": "c" * 30, "public_key": "x", "algorithm": "EC", "signature": "s"},
        ),
        (api, "put", "/approvals", {}),
        (api, "delete", "/approvals/123", None),
        (api, "post", "/approvals/123", {}),
        (api, "get", "/nothing/here", None),
    ]
    for caller, method, path, body in cases:
        if method in ("post", "put"):
            response = getattr(caller.client, method)(
                V1 + path,
                data=json.dumps(body),
                content_type="application/json",
                **caller.headers(),
            )
        else:
            response = getattr(caller, method)(path, HTTP_X_POLL_SECRET="\u2603" * 3)
        assert 400 <= response.status_code < 500, (
            method,
            path,
            response.status_code,
            response.content,
        )
        assert set(response.json()) >= {"error", "message"}, (path, response.content)
    # Not JSON: 415 (no form posts from other sites), and broken JSON: 400.
    response = client.post(
        f"{V1}/approvals", {"identifier": "a@b.c"}, HTTP_API_KEY_ID=application.api_key_id
    )
    error(response, 415, "unsupported_media_type")
    response = client.post(
        f"{V1}/approvals",
        data="{not json",
        content_type="application/json",
        HTTP_API_KEY_ID=application.api_key_id,
    )
    error(response, 400, "invalid_json")


# -- OpenAPI ----------------------------------------------------------------------------------------


EXPECTED_OPERATIONS = {
    ("post", "/api/v1/auth/code"),
    ("post", "/api/v1/auth/code/resend"),
    ("post", "/api/v1/auth/code/verify"),
    ("post", "/api/v1/auth/code/token"),
    ("get", "/api/v1/devices"),
    ("delete", "/api/v1/devices/{handle}"),
    ("post", "/api/v1/devices/enrol/challenge"),
    ("post", "/api/v1/devices/enrol"),
    ("post", "/api/v1/devices/login/challenge"),
    ("post", "/api/v1/devices/login"),
    ("post", "/api/v1/approvals"),
    ("get", "/api/v1/approvals/pending"),
    ("get", "/api/v1/approvals/{event_id}"),
    ("post", "/api/v1/approvals/{event_id}/challenge"),
    ("post", "/api/v1/approvals/{event_id}/decision"),
    ("post", "/api/v1/bindings"),
    ("post", "/api/v1/bindings/preview"),
    ("post", "/api/v1/bindings/redeem"),
    ("get", "/api/v1/bindings/{binding_id}"),
    ("post", "/api/v1/bindings/{binding_id}/confirm"),
    ("post", "/api/v1/bindings/{binding_id}/cancel"),
}


def test_openapi_schema_is_served_valid_and_complete(client):
    from drf_spectacular.validation import validate_schema

    response = client.get(f"{V1}/schema", HTTP_AUTHORIZATION="Bearer junk")
    assert response.status_code == 200
    assert "json" in response["Content-Type"]
    schema = json.loads(response.content)
    validate_schema(schema)
    operations = {(m, p) for p, ops in schema["paths"].items() for m in ops}
    assert operations == EXPECTED_OPERATIONS
    schemes = schema["components"]["securitySchemes"]
    assert schemes["apiKey"] == {"type": "apiKey", "in": "header", "name": "API_KEY_ID"}
    assert schemes["pollSecret"]["name"] == "X-Poll-Secret"
    assert schemes["bearerAuth"]["scheme"] == "bearer"
    status = schema["paths"]["/api/v1/approvals/{event_id}"]["get"]
    assert {p["name"] for p in status["parameters"]} == {"event_id", "wait"}
    assert set(status["responses"]["200"]["content"]) == {"application/json", "text/event-stream"}
    assert status["security"] == [{"apiKey": [], "pollSecret": []}]
    assert schema["paths"]["/api/v1/devices/enrol"]["post"]["security"] == [
        {"bearerAuth": [], "apiKey": []}
    ]
    listing = json.dumps(schema["components"]["schemas"]["PendingRequestOut"])
    assert "match" not in listing
    as_yaml = yaml.safe_load(client.get(f"{V1}/schema?format=yaml").content)
    assert as_yaml["paths"].keys() == schema["paths"].keys()


def test_docs_page_lists_the_operations(client):
    response = client.get(f"{V1}/docs")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/html")
    page = response.content.decode()
    for _method, path in EXPECTED_OPERATIONS:
        assert f"<code>{path}</code>" in page
    assert "<script" not in page
