"""``/api/v1/auth/code`` (request, resend, verify): the native JSON door onto the code
flows (security.md A, I05, J01-J05)."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.apps import apps
from django.core import mail
from django.core.cache import cache
from django.db import transaction
from django.test import Client
from django.utils import timezone

from authdevice.channels import locmem
from authdevice.flows import tokens as token_flows
from authdevice.models import Challenge, Identifier
from tests.services import free_port

pytestmark = pytest.mark.django_db(transaction=True)

REQUEST = "/api/v1/auth/code"
RESEND = "/api/v1/auth/code/resend"
VERIFY = "/api/v1/auth/code/verify"


@pytest.fixture(autouse=True)
def _setup(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.AUTHDEVICE_CHANNELS = {
        "EMAIL": "authdevice.channels.email.EmailBackend",
        "SMS": "authdevice.channels.locmem.LocmemBackend",
        "WHATSAPP": "authdevice.channels.locmem.LocmemBackend",
    }
    cache.clear()
    locmem.outbox.clear()
    yield
    cache.clear()
    locmem.outbox.clear()


@pytest.fixture
def client() -> Client:
    return Client(raise_request_exception=False)


def post(client: Client, url: str, body: Any, application: Any = None, **extra: Any):
    if application is not None:
        extra.setdefault("HTTP_API_KEY_ID", application.api_key_id)
    return client.post(url, data=json.dumps(body), content_type="application/json", **extra)


def sent_code(index: int = -1) -> str:
    return re.search(r"\b(\d{6})\b", mail.outbox[index].body).group(1)


def other_code(code: str) -> str:
    return "000000" if code != "000000" else "111111"


def assert_error(response, status: int, code: str | None = None) -> dict[str, str]:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    data = response.json()
    assert set(data) == {"error", "message"}, data
    assert isinstance(data["message"], str) and data["message"]
    if code is not None:
        assert data["error"] == code, data
    return data


def start(client: Client, application: Any, identifier: str = "new@example.com", **body: Any):
    response = post(client, REQUEST, {"identifier": identifier, **body}, application)
    assert response.status_code == 202, response.content
    return response.json()


# --------------------------------------------------------------------------- round trips


def test_request_and_verify_round_trip(client, application):
    response = post(client, REQUEST, {"identifier": "  New@Example.com "}, application)
    assert response.status_code == 202, response.content
    assert "no-store" in response["Cache-Control"] and response["Pragma"] == "no-cache"
    started = response.json()
    assert set(started) == {"challenge_id", "challenge_secret", "expires_in", "channel"}
    assert re.fullmatch(r"\d{16}", started["challenge_id"])
    assert len(started["challenge_secret"]) >= 43
    assert started["expires_in"] == 300 and started["channel"] == "EMAIL"
    assert [m.to for m in mail.outbox] == [["new@example.com"]]
    assert Challenge.objects.get().application_id == application.pk

    body = {**started, "code": sent_code()}
    body.pop("expires_in"), body.pop("channel")
    response = post(client, VERIFY, body, application)
    assert response.status_code == 200, response.content
    assert "no-store" in response["Cache-Control"] and response["Pragma"] == "no-cache"
    data = response.json()
    assert set(data) == {
        "access_token",
        "id_token",
        "refresh_token",
        "expires_in",
        "token_type",
        "auth_method",
        "user",
    }
    assert data["auth_method"] == "OTP" and data["token_type"] == "Bearer"
    claims = token_flows.verify_access_token(data["access_token"])
    assert claims["aud"] == application.api_key_id
    assert claims["sub"] == data["user"]["ID"]
    assert data["user"]["identifier"] == "new@example.com"
    assert data["user"]["issuer"] == application.api_key_id
    assert Identifier.objects.get(value="new@example.com").verified_at is not None

    # Single use.
    assert_error(post(client, VERIFY, body, application), 400, "invalid_code")


def test_numeric_challenge_id_is_accepted(client, application):
    started = start(client, application)
    body = {
        "challenge_id": int(started["challenge_id"]),
        "challenge_secret": started["challenge_secret"],
        "code": sent_code(),
    }
    assert post(client, VERIFY, body, application).status_code == 200


def test_known_user_signs_into_the_same_account(client, application, identity):
    started = start(client, application, "alice@example.com")
    body = {
        "challenge_id": started["challenge_id"],
        "challenge_secret": started["challenge_secret"],
        "code": sent_code(),
    }
    data = post(client, VERIFY, body, application).json()
    assert data["user"]["ID"] == str(identity.public_id)


def test_phone_by_sms_and_magic_link_method(client, application):
    started = start(client, application, "+1 (415) 555-2671")
    assert started["channel"] == "SMS"
    assert [(m.channel, m.to) for m in locmem.outbox] == [("SMS", "+14155552671")]
    code = locmem.outbox[0].context["code"]
    body = {
        "challenge_id": started["challenge_id"],
        "challenge_secret": started["challenge_secret"],
    }
    data = post(client, VERIFY, {**body, "code": code}, application).json()
    assert data["user"]["identifier"] == "+14155552671"

    linked = start(client, application, "link@example.com", method="MAGIC_LINK")
    assert linked["channel"] == "EMAIL"
    assert "/signin/link/" in mail.outbox[-1].body

    whatsapp = start(client, application, "+14155552671", channel="WHATSAPP")
    assert whatsapp["channel"] == "WHATSAPP"


def test_resend_replaces_the_code(client, application):
    started = start(client, application)
    first = sent_code()
    binding = {
        "challenge_id": started["challenge_id"],
        "challenge_secret": started["challenge_secret"],
    }
    response = post(client, RESEND, binding, application)
    assert response.status_code == 202, response.content
    assert "no-store" in response["Cache-Control"]
    assert response.json() == started
    assert len(mail.outbox) == 2
    second = sent_code()
    if first != second:
        assert_error(
            post(client, VERIFY, {**binding, "code": first}, application), 400, "invalid_code"
        )
    assert post(client, VERIFY, {**binding, "code": second}, application).status_code == 200


def test_resend_restarts_the_lifetime(client, application):
    started = start(client, application)
    binding = {
        "challenge_id": started["challenge_id"],
        "challenge_secret": started["challenge_secret"],
    }
    now = timezone.now()
    with time_machine.travel(now + timedelta(seconds=200)):
        response = post(client, RESEND, binding, application)
        assert response.status_code == 202 and response.json()["expires_in"] == 300
    code = sent_code()
    # 400 s after the request, 200 s after the resend: the new code is still good.
    with time_machine.travel(now + timedelta(seconds=400)):
        assert post(client, VERIFY, {**binding, "code": code}, application).status_code == 200


def test_resend_limit_is_429(client, application, settings):
    settings.AUTHDEVICE_CODE_MAX_RESENDS = 1
    started = start(client, application)
    binding = {
        "challenge_id": started["challenge_id"],
        "challenge_secret": started["challenge_secret"],
    }
    assert post(client, RESEND, binding, application).status_code == 202
    response = post(client, RESEND, binding, application)
    assert_error(response, 429, "rate_limited")
    assert int(response["Retry-After"]) > 0


# --------------------------------------------------------------------------- wrong input


def test_wrong_code_secret_or_application(client, application, other_application):
    started = start(client, application)
    code = sent_code()
    binding = {
        "challenge_id": started["challenge_id"],
        "challenge_secret": started["challenge_secret"],
    }
    assert_error(
        post(client, VERIFY, {**binding, "code": other_code(code)}, application),
        400,
        "invalid_code",
    )
    wrong_secret = {**binding, "challenge_secret": "x" * 43, "code": code}
    a = assert_error(post(client, VERIFY, wrong_secret, application), 400, "invalid_challenge")
    # Another application's key gets exactly the wrong-secret answer, and nothing is spent.
    b = assert_error(
        post(client, VERIFY, {**binding, "code": code}, other_application), 400, "invalid_challenge"
    )
    assert a == b
    assert_error(post(client, RESEND, binding, other_application), 400, "invalid_challenge")
    assert post(client, VERIFY, {**binding, "code": code}, application).status_code == 200


def test_five_wrong_codes_kill_the_challenge(client, application):
    started = start(client, application)
    code = sent_code()
    binding = {
        "challenge_id": started["challenge_id"],
        "challenge_secret": started["challenge_secret"],
    }
    for _ in range(5):
        assert_error(
            post(client, VERIFY, {**binding, "code": other_code(code)}, application),
            400,
            "invalid_code",
        )
    assert_error(post(client, VERIFY, {**binding, "code": code}, application), 400, "invalid_code")
    assert Challenge.objects.get().state == "dead"


@pytest.mark.parametrize(
    "body",
    [
        {"identifier": "a@example.com", "channel": "\ud800"},
        {"identifier": "a@example.com", "method": "\udfff"},
        {"identifier": "x\ud800@example.com"},
        {"identifier": "a@example.com", "channel": "C" * 100_000},
    ],
)
def test_input_repeated_in_an_error_is_bounded_and_encodable(client, application, body):
    # DRF's choice errors repeat the input: a lone surrogate used to crash the renderer
    # (500), and 100 KB of input came back in the message.
    response = post(client, REQUEST, body, application)
    data = assert_error(response, 400)
    assert len(data["message"]) <= 300
    assert len(response.content) < 1000


def test_identifier_failure_cap_is_429_with_retry_after(client, application, settings):
    settings.AUTHDEVICE_IDENTIFIER_FAILURE_LIMIT = 2
    started = start(client, application)
    code = sent_code()
    binding = {
        "challenge_id": started["challenge_id"],
        "challenge_secret": started["challenge_secret"],
    }
    for _ in range(2):
        post(client, VERIFY, {**binding, "code": other_code(code)}, application)
    response = post(client, VERIFY, {**binding, "code": code}, application)
    assert_error(response, 429, "rate_limited")
    assert int(response["Retry-After"]) > 0


@pytest.mark.parametrize(
    ("url", "body", "error"),
    [
        (REQUEST, {}, "invalid_request"),
        (REQUEST, {"identifier": ""}, "invalid_request"),
        (REQUEST, {"identifier": "a" * 250 + "@example.com"}, "invalid_request"),
        (REQUEST, {"identifier": "not an address"}, "invalid_identifier"),
        (REQUEST, {"identifier": "alice@example.com\u200b"}, "invalid_identifier"),
        (REQUEST, {"identifier": "alice@exam\u00adple.com"}, "invalid_identifier"),
        (REQUEST, {"identifier": "alice@[127.0.0.1]"}, "invalid_identifier"),
        (REQUEST, {"identifier": "a@example.com\x00"}, "invalid_request"),
        (REQUEST, {"identifier": ["a@example.com"]}, "invalid_request"),
        (REQUEST, {"identifier": "a@example.com", "channel": "FAX"}, "invalid_request"),
        (REQUEST, {"identifier": "a@example.com", "channel": "SMS"}, "channel_unavailable"),
        (REQUEST, {"identifier": "a@example.com", "method": "PIN"}, "invalid_request"),
        (REQUEST, [], "invalid_request"),
        (REQUEST, "a@example.com", "invalid_request"),
        (VERIFY, {"challenge_id": "1", "challenge_secret": "x"}, "invalid_request"),
        (VERIFY, {"challenge_id": "abc", "challenge_secret": "x", "code": "1"}, "invalid_request"),
        (VERIFY, {"challenge_id": True, "challenge_secret": "x", "code": "1"}, "invalid_request"),
        (VERIFY, {"challenge_id": 10**40, "challenge_secret": "x", "code": "1"}, "invalid_request"),
        (
            VERIFY,
            {"challenge_id": "9" * 5000, "challenge_secret": "x", "code": "1"},
            "invalid_request",
        ),
        (VERIFY, {"challenge_id": 1.5, "challenge_secret": "x", "code": "1"}, "invalid_request"),
        (
            VERIFY,
            {"challenge_id": 12, "challenge_secret": "x" * 500, "code": "1"},
            "invalid_request",
        ),
        (
            VERIFY,
            {"challenge_id": 12, "challenge_secret": "x", "code": "1" * 100},
            "invalid_request",
        ),
        (
            VERIFY,
            {"challenge_id": 12, "challenge_secret": "x", "code": "123456"},
            "invalid_challenge",
        ),
        (RESEND, {"challenge_id": 12}, "invalid_request"),
        (RESEND, {"challenge_id": 12, "challenge_secret": "x"}, "invalid_challenge"),
    ],
)
def test_bad_input_is_a_clear_400(client, application, url, body, error):
    assert_error(post(client, url, body, application), 400, error)
    assert mail.outbox == []


@pytest.mark.parametrize("raw", [b"{", b"\xff\xfe", b"[" * 100_000, b'{"a": NaN}'])
def test_malformed_json_is_400(client, application, raw):
    response = client.generic(
        "POST",
        REQUEST,
        raw,
        content_type="application/json",
        HTTP_API_KEY_ID=application.api_key_id,
    )
    assert_error(response, 400, "invalid_json")


@pytest.mark.parametrize(
    ("content_type", "payload"),
    [
        ("text/plain", json.dumps({"identifier": "a@example.com"})),
        ("text/plain;charset=UTF-8", json.dumps({"identifier": "a@example.com"})),
        ("application/x-www-form-urlencoded", "identifier=a%40example.com"),
        (
            "multipart/form-data; boundary=xyz",
            "--xyz\r\nContent-Disposition: form-data; "
            'name="identifier"\r\n\r\na@example.com\r\n--xyz--\r\n',
        ),
    ],
)
def test_simple_cross_site_content_types_are_415(client, application, content_type, payload):
    """security.md I05: what a cross-site form or fetch without preflight can send."""
    response = client.generic(
        "POST", REQUEST, payload, content_type=content_type, HTTP_API_KEY_ID=application.api_key_id
    )
    assert_error(response, 415, "unsupported_media_type")
    assert mail.outbox == [] and not Challenge.objects.exists()


def test_api_key_is_required(client, application):
    body = {"identifier": "a@example.com"}
    assert_error(post(client, REQUEST, body), 401, "invalid_client")
    assert_error(post(client, REQUEST, body, HTTP_API_KEY_ID="nope"), 401, "invalid_client")
    assert_error(post(client, REQUEST, body, HTTP_API_KEY_ID="a\x00b"), 401, "invalid_client")
    # Never from the query string (security.md I04).
    assert_error(post(client, f"{REQUEST}?api_key={application.api_key_id}", body), 401)
    assert mail.outbox == []


def test_other_methods_and_paths(client, application):
    assert_error(client.get(REQUEST, HTTP_API_KEY_ID=application.api_key_id), 405)
    response = client.get("/api/v1/nope")
    assert response.status_code == 404 and response.json()["error"] == "not_found"


def test_signup_closed_on_verify(client, application, settings):
    settings.AUTHDEVICE_ALLOW_SIGNUP = False
    started = start(client, application, "stranger@example.com")
    body = {
        "challenge_id": started["challenge_id"],
        "challenge_secret": started["challenge_secret"],
        "code": sent_code(),
    }
    assert_error(post(client, VERIFY, body, application), 403, "signup_closed")


# --------------------------------------------------------------------------- enumeration (J03)


def _normalised(response, started: dict[str, Any]) -> tuple[int, list, bytes]:
    body = response.content
    for key in ("challenge_id", "challenge_secret"):
        body = body.replace(started[key].encode(), b"<" + key.encode() + b">")
    # Expires carries the current second: compared by name (two requests can straddle one).
    headers = sorted((k, "" if k == "Expires" else v) for k, v in response.items())
    return response.status_code, headers, body


def test_known_and_unknown_identifiers_get_identical_answers(client, application, user):
    known = post(client, REQUEST, {"identifier": "alice@example.com"}, application)
    unknown = post(client, REQUEST, {"identifier": "nobody@example.com"}, application)
    assert known.status_code == unknown.status_code == 202
    assert known["Content-Length"] == unknown["Content-Length"]
    assert _normalised(known, known.json()) == _normalised(unknown, unknown.json())
    assert len(mail.outbox) == 2


def test_known_and_unknown_identifiers_share_the_same_limits(client, application, user):
    def until_limited(identifier: str) -> tuple[int, dict[str, Any]]:
        for n in range(1, 10):
            response = post(client, REQUEST, {"identifier": identifier}, application)
            if response.status_code == 429:
                return n, response.json()
        raise AssertionError("never limited")

    known = until_limited("alice@example.com")
    cache.clear()  # the per-IP budget is shared by both; start each from zero
    assert known == until_limited("nobody@example.com")


# --------------------------------------------------------------------------- rate limits (J01, J05)


def test_per_identifier_limit_is_429_with_retry_after(client, application):
    for _ in range(5):
        start(client, application, "who@example.com")
    response = post(client, REQUEST, {"identifier": "who@example.com"}, application)
    data = assert_error(response, 429, "rate_limited")
    assert data["message"]
    assert 0 < int(response["Retry-After"]) <= 300
    assert "no-store" in response["Cache-Control"]
    assert len(mail.outbox) == 5


def test_spoofed_forwarded_for_does_not_reset_the_ip_limit(client, application):
    for n in range(10):
        response = post(
            client,
            REQUEST,
            {"identifier": f"user{n}@example.com"},
            application,
            HTTP_X_FORWARDED_FOR=f"1.2.3.{n}",
        )
        assert response.status_code == 202, (n, response.content)
    response = post(
        client,
        REQUEST,
        {"identifier": "user99@example.com"},
        application,
        HTTP_X_FORWARDED_FOR="1.2.3.99",
    )
    assert_error(response, 429, "rate_limited")
    assert "Retry-After" in response
    # The recorded IP is the real peer, not the header.
    assert set(Challenge.objects.values_list("ip", flat=True)) == {"127.0.0.1"}


def test_forwarded_for_is_believed_from_a_trusted_proxy(client, application, settings):
    settings.AUTHDEVICE_TRUSTED_PROXIES = ("127.0.0.1/32",)
    for n in range(12):
        response = post(
            client,
            REQUEST,
            {"identifier": f"user{n}@example.com"},
            application,
            HTTP_X_FORWARDED_FOR=f"1.2.3.{n}",
        )
        assert response.status_code == 202, (n, response.content)
    assert "1.2.3.11" in set(Challenge.objects.values_list("ip", flat=True))
    # One client behind the proxy is still limited.
    for n in range(12, 30):
        response = post(
            client,
            REQUEST,
            {"identifier": f"user{n}@example.com"},
            application,
            HTTP_X_FORWARDED_FOR="9.9.9.9",
        )
        if response.status_code == 429:
            break
    assert_error(response, 429, "rate_limited")


def test_rate_limit_store_down_fails_closed(client, application, settings):
    """security.md J04: no shared counter, no sends (and no unlimited guessing)."""
    settings.CACHES = {
        **settings.CACHES,
        "broken": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{free_port()}/0",
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        },
    }
    settings.AUTHDEVICE_RATELIMIT_CACHE = "broken"
    assert_error(post(client, REQUEST, {"identifier": "a@example.com"}, application), 503)
    assert mail.outbox == [] and not Challenge.objects.exists()


# --------------------------------------------------------------------------- delivery


@pytest.fixture
def broker_down(celery_broker):
    """Celery publishes for real, to a port where nothing listens (the outside world)."""
    celery_broker(f"redis://127.0.0.1:{free_port()}/0")


def test_broker_outage_is_a_quick_503_and_sends_nothing(client, application, broker_down):
    response = post(client, REQUEST, {"identifier": "a@example.com"}, application)
    assert_error(response, 503, "delivery_unavailable")
    assert "no-store" in response["Cache-Control"]
    assert mail.outbox == []
    assert Challenge.objects.get().state == "dead"


def test_rollback_sends_nothing(client, application):
    class Boom(Exception):
        pass

    with pytest.raises(Boom), transaction.atomic():
        assert (
            post(client, REQUEST, {"identifier": "a@example.com"}, application).status_code == 202
        )
        raise Boom
    assert mail.outbox == [] and not Challenge.objects.exists()


def _database_strings() -> str:
    """Every value of every authdevice row, as text."""
    values: list[str] = []
    for model in apps.get_app_config("authdevice").get_models():
        for row in model.objects.values():
            values.extend(str(v) for v in row.values())
    return "\n".join(values)


def test_codes_and_links_never_reach_logs_or_the_database(client, application, caplog):
    caplog.set_level("DEBUG")
    started = start(client, application, method="MAGIC_LINK")
    code = sent_code()
    link_token = re.search(r"/signin/link/([^/\s]+)/", mail.outbox[-1].body).group(1)
    binding = {
        "challenge_id": started["challenge_id"],
        "challenge_secret": started["challenge_secret"],
    }
    post(client, VERIFY, {**binding, "code": other_code(code)}, application)
    assert post(client, VERIFY, {**binding, "code": code}, application).status_code == 200
    stored = _database_strings()
    for secret in (code, link_token, started["challenge_secret"]):
        assert secret not in caplog.text
    assert not re.search(rf"(?<![0-9a-f]){code}(?![0-9a-f])", stored)
    assert link_token not in stored and started["challenge_secret"] not in stored
