"""Trusted-device boundaries found by the 2026-12-05 review (security.md C07, C10, D03,
L02): native approval requests stay behind their poll secret and number; adding a device
needs a recent sign-in on every door; a disabled account signs in nowhere."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from authdevice.flows import tokens as token_flows
from authdevice.models import AuthEvent, TrustedDevice
from tests.devicekit import Phone
from tests.test_api_v1_devices import (
    Api,
    Browser,
    decide,
    enrol,
    login_challenge,
    message,
    ok,
    poll,
    start,
)
from tests.test_v0_events import login_body, respond_body
from tests.test_v0_users import enrol as v0_enrol
from tests.test_v0_users import enrol_body, headers

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _setup(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.AUTHDEVICE_GEOLOCATION_BACKEND = None
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def v1(application) -> Api:
    return Api(Client(raise_request_exception=False), application)


def test_cotter_doors_never_see_a_native_approval_request(v1, application, token_set):
    """C10: the v0 API hands event ids to anyone with the public key; a native request
    (poll secret, number matching) must not be listed, read, waited on or collected there."""
    alice = v1.as_user(token_set.access_token)
    device = Browser()
    handle = enrol(alice, device)
    started = start(v1, "alice@example.com")
    attacker = Client(raise_request_exception=False)
    h = {"HTTP_API_KEY_ID": application.api_key_id}
    user = attacker.get("/api/v0/user", {"identifier": "alice@example.com"}, **h).json()
    newest = attacker.get(f"/api/v0/event/new/{user['ID']}", **h)
    assert (newest.json() or {}).get("ID") != int(started["event_id"])
    ok(decide(v1, handle, device, started["event_id"], match_code=started["match_code"]))
    event_id = started["event_id"]
    stolen = attacker.get(f"/api/v0/event/get/{event_id}?oauth_token=true", **h)
    assert stolen.status_code == 404
    assert "access_token" not in stolen.content.decode()
    # The requester, with its poll secret, gets the tokens.
    assert ok(poll(v1, started))["access_token"]


def test_a_cotter_device_cannot_answer_a_native_request_without_its_number(
    v1, application, identity, token_set
):
    """C07: number matching cannot be skipped by answering through /api/v0/event/respond."""
    alice = v1.as_user(token_set.access_token)
    enrol(alice, Browser())
    cotter_phone = Phone.new("rn")
    api = APIClient()
    assert v0_enrol(api, application, identity, cotter_phone).status_code == 200
    started = start(v1, "alice@example.com")
    h = {"HTTP_API_KEY_ID": application.api_key_id}
    uid = identity.client_user_id
    event = AuthEvent.objects.get(pk=int(started["event_id"]))
    pending = {
        "ID": event.pk,
        "event": event.event,
        "timestamp": event.client_timestamp,
        "ip": "",
        "location": "",
    }
    body = respond_body(application, uid, cotter_phone, pending, approved=True)
    answered = api.post(f"/api/v0/event/respond/{event.pk}", body, format="json", **h)
    assert answered.status_code == 404
    assert AuthEvent.objects.get(pk=event.pk).state == AuthEvent.State.PENDING


def _stale_access_token(identity, application, *, days: int = 30) -> str:
    old = token_flows.issue_token_set(
        identity=identity,
        application=application,
        auth_method="OTP",
        auth_time=timezone.now() - timedelta(days=days),
    )
    # A refresh keeps the sign-in's auth_time: a month of daily refreshes looks the same.
    return token_flows.refresh_token_set(
        old.refresh_token, api_key_id=application.api_key_id
    ).access_token


def test_adding_a_device_through_the_apis_needs_a_recent_sign_in(v1, identity, application):
    """D03: a stolen old session or refresh token cannot add the thief's key."""
    stale = v1.as_user(_stale_access_token(identity, application))
    refused = stale.post("/devices/enrol/challenge")
    assert refused.status_code == 403
    assert refused.json()["error"] == "reauthentication_required"
    assert stale.post("/bindings").status_code == 403
    api = APIClient()
    phone = Phone.new("rn")
    v0 = api.put(
        f"/api/v0/user/{identity.client_user_id}",
        enrol_body(phone),
        format="json",
        **headers(
            application,
            HTTP_AUTHORIZATION=f"Bearer {_stale_access_token(identity, application)}",
        ),
    )
    assert v0.status_code == 403, v0.content
    assert not TrustedDevice.objects.filter(user=identity.user).exists()
    # A fresh sign-in may.
    fresh = token_flows.issue_token_set(
        identity=identity, application=application, auth_method="OTP"
    )
    enrol(v1.as_user(fresh.access_token), Browser())
    assert TrustedDevice.objects.filter(user=identity.user, confirmed=True).count() == 1


def test_a_disabled_account_signs_in_with_no_device(v1, application, identity, token_set):
    """L02: after staff switch the user off, no door mints tokens for them."""
    alice = v1.as_user(token_set.access_token)
    native_key = Browser()
    handle = enrol(alice, native_key)
    cotter_phone = Phone.new("rn")
    api = APIClient()
    assert v0_enrol(api, application, identity, cotter_phone).status_code == 200
    h = {"HTTP_API_KEY_ID": application.api_key_id}
    uid = identity.client_user_id
    pending = api.post(
        "/api/v0/event/create_pending",
        {
            "client_user_id": uid,
            "issuer": application.api_key_id,
            "event": "LOGIN",
            "ip": "",
            "location": "",
            "timestamp": str(int(time.time())),
            "method": "TRUSTED_DEVICE",
        },
        format="json",
        **h,
    ).json()
    body = respond_body(application, uid, cotter_phone, pending, approved=True)
    assert (
        api.post(f"/api/v0/event/respond/{pending['ID']}", body, format="json", **h).status_code
        == 200
    )
    user = identity.user
    user.is_active = False
    user.save()

    signed = api.post(
        "/api/v0/event/create?oauth_token=true",
        login_body(application, uid, cotter_phone, ts=str(int(time.time()) - 5)),
        format="json",
        **h,
    )
    assert signed.status_code == 403, signed.content
    assert "access_token" not in signed.content.decode()
    challenge = login_challenge(v1, handle)
    native = v1.post(
        "/devices/login",
        {
            "device": handle,
            "challenge": challenge,
            "signature": native_key.sign(message("login", challenge)),
        },
    )
    assert native.status_code == 403 and native.json()["error"] == "account_disabled"
    polled = api.get(f"/api/v0/event/get/{pending['ID']}?oauth_token=true", **h)
    assert "oauth_token" not in polled.json() or not polled.json()["oauth_token"]
    # Nor a new device (with its first tokens) on an access token issued before.
    enrolled = api.put(
        f"/api/v0/user/{uid}?oauth_token=true",
        enrol_body(Phone.new("ios")),
        format="json",
        **headers(application, HTTP_AUTHORIZATION=f"Bearer {token_set.access_token}"),
    )
    assert enrolled.status_code == 403, enrolled.content
    assert "access_token" not in enrolled.content.decode()


def _answers(v1: Api, started: dict, n: int = 3) -> list[tuple[int, dict]]:
    out = []
    for _ in range(n):
        response = poll(v1, started)
        out.append((response.status_code, response.json()))
    return out


def test_a_decoy_request_is_paced_exactly_like_a_real_one(v1, token_set):
    """J03: polling too soon gets slow_down and a longer interval (RFC 8628) whether or not
    the identifier has an account with a trusted device."""
    enrol(v1.as_user(token_set.access_token), Browser())
    real = _answers(v1, start(v1, "alice@example.com"))
    decoy = _answers(v1, start(v1, "nobody@example.com"))
    assert real == decoy
    assert [body.get("error") for _, body in real] == [
        "authorization_pending",
        "slow_down",
        "slow_down",
    ]


@pytest.mark.parametrize(
    "spellings",
    [
        ["alice@example.com", "ALICE@example.com", " alice@example.com", "Alice@Example.COM"],
        ["nobody@example.com", "NOBODY@example.com", " nobody@example.com", "Nobody@Example.COM"],
        ["+14155552671", "+1 415 555 2671", "+1 (415) 555-2671", "+1-415-555-2671"],
    ],
)
def test_the_push_bombing_budget_is_per_address_however_it_is_spelled(v1, token_set, spellings):
    """J03: known and unknown identifiers reach 429 at the same request."""
    enrol(v1.as_user(token_set.access_token), Browser())
    codes = [v1.post("/approvals", {"identifier": s}).status_code for s in spellings]
    assert codes == [201, 201, 201, 429]


def test_device_pages_refuse_odd_bodies_without_a_500():
    browser = Client(raise_request_exception=False)
    for url in ("/signin/device/challenge/", "/signin/device/"):
        surrogate = browser.generic(
            "POST", url, json.dumps({"handle": "\ud800" * 64}), content_type="application/json"
        )
        assert 400 <= surrogate.status_code < 500, (url, surrogate.status_code)
        multipart = browser.post(url, {"handle": "x"})  # multipart/form-data
        assert 400 <= multipart.status_code < 500, (url, multipart.status_code)
        nested = browser.generic("POST", url, "[" * 100_000, content_type="application/json")
        assert 400 <= nested.status_code < 500, (url, nested.status_code)
