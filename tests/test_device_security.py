"""reference/security.md B01-B06 and C01-C06, C08-C11, adapted to Cotter's v0 protocol.

Cotter has no server challenge: freshness is a timestamp window plus a replay cache keyed by
the signed message (never by signature bytes). Number matching (C07) and poll secrets are
the native protocol's (api/v1); here event ids are random and tokens go out once.
"""

from __future__ import annotations

import base64
import itertools
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from django.contrib.auth import get_user_model
from django.utils import timezone

from authdevice.flows.identities import add_identifier, identity_for_user
from authdevice.flows.tokens import verify_access_token
from authdevice.models import AuthEvent, RefreshToken, TrustedDevice
from tests.devicekit import Phone, login_message, now_ts
from tests.test_v0_events import (
    get,
    login_body,
    pending_body,
    post,
    qr_body,
    respond_body,
)
from tests.test_v0_users import bearer, cotter_error, enrol

pytestmark = pytest.mark.django_db

P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
CREATE = "/api/v0/event/create?oauth_token=true"
PENDING = "/api/v0/event/create_pending"


@pytest.fixture
def uid(identity):
    return identity.client_user_id


@pytest.fixture
def phone(api, application, identity):
    device = Phone.new("rn")
    assert enrol(api, application, identity, device).status_code == 200
    return device


@pytest.fixture
def bob(db):
    user = get_user_model().objects.create_user(username="bob")
    add_identifier(user, "EMAIL", "bob@example.com", verified=True)
    return user.authdevice_identity


def create_pending(api: Any, app: Any, uid: str, **kw: Any) -> dict[str, Any]:
    response = post(api, app, PENDING, pending_body(app, uid, **kw))
    assert response.status_code == 200, response.content
    return response.json()


def respond(api: Any, app: Any, event: dict, body: dict) -> Any:
    return post(api, app, f"/api/v0/event/respond/{event['ID']}", body)


# --------------------------------------------------------------------------- B01


def test_b01_timestamp_window_and_replay(api, application, uid, phone):
    now = int(now_ts())
    # A few seconds beyond the 300 s window: the server's clock ticks between here and there.
    for skew in (-305, 305, -86400, 86400):
        ts = str(now + skew)
        response = post(api, application, CREATE, login_body(application, uid, phone, ts=ts))
        cotter_error(response, 400, "stale_timestamp")
    body = login_body(application, uid, phone, ts=str(now - 200))
    assert post(api, application, CREATE, body).status_code == 200
    # The very same body again, at once or later in the window: a replay.
    cotter_error(post(api, application, CREATE, body), 400, "replayed")
    cotter_error(post(api, application, "/api/v0/event/create", body), 400, "replayed")
    assert AuthEvent.objects.filter(event="LOGIN", state="approved").count() == 1


def test_b01_window_is_configurable(api, application, uid, phone, settings):
    settings.AUTHDEVICE_DEVICE_TIMESTAMP_WINDOW = 10
    ts = str(int(now_ts()) - 60)
    response = post(api, application, CREATE, login_body(application, uid, phone, ts=ts))
    cotter_error(response, 400, "stale_timestamp")


def test_b01_window_follows_the_server_clock(api, application, uid, phone):
    ts = now_ts()
    body = login_body(application, uid, phone, ts=ts)
    with time_machine.travel(timezone.now() + timedelta(minutes=6)):
        cotter_error(post(api, application, CREATE, body), 400, "stale_timestamp")
    assert post(api, application, CREATE, body).status_code == 200


# --------------------------------------------------------------------------- B02


def test_b02_a_signature_serves_exactly_one_message(
    api, application, other_application, identity, uid, phone, bob
):
    ts = now_ts()
    key = application.api_key_id
    wrong_messages = {
        "event": login_message(uid, key, "TRANSACTION", ts),
        "timestamp": login_message(uid, key, "LOGIN", str(int(ts) - 1)),
        "decision": login_message(uid, key, "LOGIN", ts, "false"),
        "user": login_message(bob.client_user_id, key, "LOGIN", ts),
        "api key": login_message(uid, other_application.api_key_id, "LOGIN", ts),
        "qr": login_message(uid, key, "ENROLL_NEW_TRUSTED_DEVICE", ts) + Phone.new().public_key,
    }
    body = login_body(application, uid, phone, ts=ts)
    for field, message in wrong_messages.items():
        response = post(api, application, CREATE, {**body, "code": phone.sign(message)})
        assert response.status_code == 401, field
        cotter_error(response, 401, "bad_signature")
    # A login signature is no QR enrolment (that signs the new key too).
    newcomer = Phone.new()
    qr = qr_body(application, uid, phone, newcomer, ts=ts)
    qr["code"] = phone.sign(login_message(uid, key, "ENROLL_NEW_TRUSTED_DEVICE", ts))
    cotter_error(post(api, application, "/api/v0/event/create", qr), 401, "bad_signature")
    assert not TrustedDevice.objects.filter(public_key=newcomer.public_key).exists()
    # A QR signature is no login.
    qr = qr_body(application, uid, phone, newcomer, ts=ts)
    as_login = {**login_body(application, uid, phone, ts=ts), "code": qr["code"]}
    as_login["event"] = "ENROLL_NEW_TRUSTED_DEVICE"
    cotter_error(post(api, application, CREATE, as_login), 401, "bad_signature")


def test_b02_a_reject_signature_is_no_approval(api, application, uid, phone):
    event = create_pending(api, application, uid)
    reject = respond_body(application, uid, phone, event, approved=False)
    forged = {**reject, "approved": True}
    cotter_error(respond(api, application, event, forged), 401, "bad_signature")
    assert AuthEvent.objects.get(pk=event["ID"]).state == "pending"


# --------------------------------------------------------------------------- B03


def test_b03_high_s_twin_is_a_replay(api, application, identity, uid):
    phone = Phone.new("ios")
    enrol(api, application, identity, phone)
    ts = now_ts()
    message = login_message(uid, application.api_key_id, "LOGIN", ts)
    body = login_body(application, uid, phone, ts=ts)
    r, s = decode_dss_signature(base64.b64decode(body["code"]))
    twin = encode_dss_signature(r, P256_ORDER - s)
    # The twin is a valid signature too (ECDSA malleability)...
    phone.private.public_key().verify(twin, message.encode(), ec.ECDSA(hashes.SHA256()))  # type: ignore[attr-defined]
    assert post(api, application, CREATE, body).status_code == 200
    # ...but the replay cache is keyed by the message, so it is refused.
    twin_body = {**body, "code": base64.b64encode(twin).decode()}
    cotter_error(post(api, application, CREATE, twin_body), 400, "replayed")
    assert RefreshToken.objects.filter(auth_method="TRUSTED_DEVICE").count() == 1


# --------------------------------------------------------------------------- B04


def _der_for(message: str) -> str:
    other = ec.generate_private_key(ec.SECP256R1())
    return base64.b64encode(other.sign(message.encode(), ec.ECDSA(hashes.SHA256()))).decode()


def test_b04_algorithm_pinned_and_malformed_signatures_refused(api, application, uid, phone):
    ts = now_ts()
    message = login_message(uid, application.api_key_id, "LOGIN", ts)
    body = login_body(application, uid, phone, ts=ts)
    good = base64.b64decode(body["code"])
    bad_codes = {
        "der-from-ec": _der_for(message),
        "der-claiming-ec": _der_for(message),
        "all-zero": base64.b64encode(bytes(64)).decode(),
        "truncated": base64.b64encode(good[:63]).decode(),
        "extended": base64.b64encode(good + b"\x00").decode(),
        "empty": "",
        "not-base64": "!!!!",
        "huge": "A" * 5000,
        "number": 12345,
        "null": None,
        "list": [body["code"]],
    }
    for name, code in bad_codes.items():
        payload = {**body, "code": code}
        if name == "der-claiming-ec":
            payload["algorithm"] = "EC"  # the body cannot re-pick the enrolled algorithm
        response = post(api, application, CREATE, payload)
        assert response.status_code == 401, (name, response.content)
        cotter_error(response, 401, "bad_signature")
    assert post(api, application, CREATE, body).status_code == 200


def test_b04_ec_device_refuses_raw_and_zero_signatures(api, application, identity, uid):
    phone = Phone.new("ios")
    enrol(api, application, identity, phone)
    ts = now_ts()
    body = login_body(application, uid, phone, ts=ts, algorithm=False)
    r, s = decode_dss_signature(base64.b64decode(body["code"]))
    raw = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    for code in (
        base64.b64encode(raw).decode(),  # raw R||S where DER is specified
        base64.b64encode(encode_dss_signature(0, 0)).decode(),  # "psychic signature"
        base64.b64encode(encode_dss_signature(r, 0)).decode(),
        base64.b64encode(encode_dss_signature(P256_ORDER + r, s)).decode(),
    ):
        cotter_error(post(api, application, CREATE, {**body, "code": code}), 401, "bad_signature")
    assert post(api, application, CREATE, body).status_code == 200


# --------------------------------------------------------------------------- B05


def test_b05_removed_device_fails_on_the_very_next_request(api, application, identity, uid):
    phone = Phone.new("rn")
    enrol(api, application, identity, phone)
    assert post(api, application, CREATE, login_body(application, uid, phone)).status_code == 200
    enrol(api, application, identity, phone, enrolled=False)
    cotter_error(
        post(api, application, CREATE, login_body(application, uid, phone)),
        401,
        "device_not_trusted",
    )


def test_b05_another_users_device_looks_like_an_unknown_one(
    api, application, identity, uid, phone, bob
):
    bobs = Phone.new("rn")
    assert enrol(api, application, bob, bobs).status_code == 200
    cross = cotter_error(post(api, application, CREATE, login_body(application, uid, bobs)), 401)
    unknown = cotter_error(
        post(api, application, CREATE, login_body(application, uid, Phone.new("rn"))), 401
    )
    assert cross == unknown


# --------------------------------------------------------------------------- B06


def test_b06_enrolment_needs_proof_and_keys_stay_unique(api, application, identity, bob):
    phone = Phone.new("ios")
    cotter_error(enrol(api, application, identity, phone, auth=False), 401)
    assert enrol(api, application, identity, phone).status_code == 200
    # Unknown-key-share: Bob cannot bind Alice's key to his account.
    cotter_error(enrol(api, application, bob, phone), 409, "public_key_taken")
    assert TrustedDevice.objects.get().user == identity.user


# --------------------------------------------------------------------------- C01, C02


def test_c01_c02_first_decision_wins_and_tokens_go_out_once(api, application, identity, uid):
    a, b = Phone.new("rn"), Phone.new("ios")
    enrol(api, application, identity, a)
    enrol(api, application, identity, b)
    event = create_pending(api, application, uid)
    assert (
        respond(api, application, event, respond_body(application, uid, a, event)).status_code
        == 200
    )
    for phone, approved in ((a, False), (b, True), (b, False)):
        late = respond(
            api, application, event, respond_body(application, uid, phone, event, approved)
        )
        cotter_error(late, 409, "already_decided")
    assert AuthEvent.objects.get(pk=event["ID"]).state == "approved"
    polls = [
        get(api, application, f"/api/v0/event/get/{event['ID']}?oauth_token=true").json()
        for _ in range(3)
    ]
    assert sum("oauth_token" in p for p in polls) == 1
    assert "oauth_token" in polls[0]
    row = AuthEvent.objects.get(pk=event["ID"])
    assert RefreshToken.objects.filter(family=row.token_family).count() == 1


# --------------------------------------------------------------------------- C03


def test_c03_approval_after_expiry_fails_and_never_yields_tokens(api, application, uid, phone):
    event = create_pending(api, application, uid)
    body = respond_body(application, uid, phone, event)
    with time_machine.travel(timezone.now() + timedelta(seconds=181)):
        cotter_error(respond(api, application, event, body), 409, "already_decided")
        poll = get(api, application, f"/api/v0/event/get/{event['ID']}?oauth_token=true").json()
        assert (poll["new"], poll["approved"]) == (False, False) and "oauth_token" not in poll
    assert AuthEvent.objects.get(pk=event["ID"]).token_family is None


# --------------------------------------------------------------------------- C04


def test_c04_revoked_device_cannot_approve_but_another_can(api, application, identity, uid):
    revoked, active = Phone.new("rn"), Phone.new("android")
    enrol(api, application, identity, revoked)
    enrol(api, application, identity, active)
    enrol(api, application, identity, revoked, enrolled=False)
    event = create_pending(api, application, uid)
    cotter_error(
        respond(api, application, event, respond_body(application, uid, revoked, event)),
        401,
        "device_not_trusted",
    )
    assert AuthEvent.objects.get(pk=event["ID"]).state == "pending"
    ok = respond(api, application, event, respond_body(application, uid, active, event))
    assert ok.status_code == 200 and ok.json()["approved"] is True


# --------------------------------------------------------------------------- C05


def test_c05_other_users_device_gets_a_plain_404(api, application, identity, uid, phone, bob):
    bobs = Phone.new("rn")
    enrol(api, application, bob, bobs)
    event = create_pending(api, application, uid)
    as_bob = respond_body(application, bob.client_user_id, bobs, event)
    foreign = respond(api, application, event, as_bob)
    missing = post(api, application, f"/api/v0/event/respond/{event['ID'] ^ 1}", as_bob)
    assert foreign.status_code == missing.status_code == 404
    assert foreign.content == missing.content
    # Bob's key with Alice's id is simply not a trusted device of hers.
    with_alice_id = respond_body(application, uid, bobs, event)
    cotter_error(respond(api, application, event, with_alice_id), 401, "device_not_trusted")
    assert AuthEvent.objects.get(pk=event["ID"]).state == "pending"
    # Bob's trusted device never sees Alice's requests.
    assert get(api, application, f"/api/v0/event/new/{bob.client_user_id}").content == b"null"


def test_c05_event_ids_are_random_and_javascript_safe(api, application, db):
    ids = []
    for i in range(12):
        identity = identity_for_user(get_user_model().objects.create_user(username=f"user{i}"))
        ids.append(create_pending(api, application, identity.client_user_id)["ID"])
    assert all(0 < i < 2**53 for i in ids)
    assert len(set(ids)) == len(ids)
    gaps = {b - a for a, b in itertools.pairwise(sorted(ids))}
    assert gaps != {1}
    assert max(ids) > 2**32  # not a small counter


# --------------------------------------------------------------------------- C06


def test_c06_requester_cannot_approve_itself(api, application, identity, uid, phone):
    event = create_pending(api, application, uid)
    approve = respond_body(application, uid, phone, event)
    # A bearer token (or the API key alone) is no signature.
    cotter_error(respond(api, application, event, {**approve, "code": ""}), 401, "bad_signature")
    response = post(
        api,
        application,
        f"/api/v0/event/respond/{event['ID']}",
        {**approve, "code": None, "public_key": None},
        **bearer(identity, application),
    )
    cotter_error(response, 401, "device_not_trusted")
    # The requester's own (untrusted) key does not count either.
    requester = Phone.new("rn")
    cotter_error(
        respond(api, application, event, respond_body(application, uid, requester, event)),
        401,
        "device_not_trusted",
    )
    assert AuthEvent.objects.get(pk=event["ID"]).state == "pending"


def test_c06_an_old_approval_cannot_be_replayed_onto_a_new_request(api, application, uid, phone):
    ts = now_ts()
    first = create_pending(api, application, uid, ts=ts)
    approval = respond_body(application, uid, phone, first)
    assert respond(api, application, first, approval).status_code == 200
    # An attacker asks again with the same event name and timestamp, then replays. The
    # server chooses pending timestamps and never reuses one the device already signed,
    # so the old signature does not even verify.
    second = create_pending(api, application, uid, ts=ts)
    assert second["timestamp"] != first["timestamp"]
    cotter_error(respond(api, application, second, approval), 401, "bad_signature")
    assert AuthEvent.objects.get(pk=second["ID"]).state == "pending"
    # With another timestamp the old signature does not verify at all.
    third = create_pending(api, application, uid, ts=str(int(ts) - 5))
    cotter_error(respond(api, application, third, approval), 401, "bad_signature")


# --------------------------------------------------------------------------- C08


def test_c08_pending_requests_are_rate_limited(api, application, uid, phone):
    for i in range(3):
        create_pending(api, application, uid, ts=str(int(now_ts()) - 60 + i))
    limited = post(api, application, PENDING, pending_body(application, uid))
    cotter_error(limited, 429, "rate_limited")
    assert int(limited["Retry-After"]) > 0
    assert AuthEvent.objects.filter(state="pending").count() == 3


def test_c08_total_requests_since_last_success_are_capped(api, application, uid, phone):
    created = 0
    ts = int(now_ts()) - 60
    while True:
        ts += 1
        response = post(api, application, PENDING, pending_body(application, uid, ts=str(ts)))
        if response.status_code == 429:
            break
        assert response.status_code == 200, response.content
        created += 1
        event = response.json()
        reject = respond_body(application, uid, phone, event, approved=False)
        assert respond(api, application, event, reject).status_code == 200
        assert created <= 10
    assert created == 10
    # A successful sign-in resets the count.
    assert post(api, application, CREATE, login_body(application, uid, phone)).status_code == 200
    assert post(api, application, PENDING, pending_body(application, uid)).status_code == 200


# --------------------------------------------------------------------------- C09, C10


def test_c09_approver_sees_server_derived_ip(api, application, uid, phone):
    spoofed = {**pending_body(application, uid), "ip": "198.51.100.1"}
    post(
        api,
        application,
        PENDING,
        spoofed,
        REMOTE_ADDR="203.0.113.9",
        HTTP_X_FORWARDED_FOR="192.0.2.1",
    )
    newest = get(api, application, f"/api/v0/event/new/{uid}").json()
    assert newest["ip"] == "203.0.113.9"
    row = AuthEvent.objects.get(pk=newest["ID"])
    assert row.ip == "203.0.113.9" and row.reported_ip == "198.51.100.1"


def test_c10_tokens_once_for_the_requesting_application(
    api, application, other_application, identity, uid, phone
):
    event = create_pending(api, application, uid)
    respond(api, application, event, respond_body(application, uid, phone, event))
    cotter_error(
        get(api, other_application, f"/api/v0/event/get/{event['ID']}?oauth_token=true"), 404
    )
    first = get(api, application, f"/api/v0/event/get/{event['ID']}?oauth_token=true").json()
    claims = verify_access_token(first["oauth_token"]["access_token"])
    assert claims["aud"] == application.api_key_id
    assert claims["sub"] == str(identity.public_id)
    assert claims["authentication_method"] == "TRUSTED_DEVICE"
    second = get(api, application, f"/api/v0/event/get/{event['ID']}?oauth_token=true").json()
    assert second["approved"] is True and "oauth_token" not in second


# --------------------------------------------------------------------------- C11


@pytest.mark.parametrize("ending", ["approve", "reject", "expire"])
def test_c11_terminal_states_are_immutable_and_tokens_iff_approved(
    api, application, identity, uid, ending
):
    a, b = Phone.new("rn"), Phone.new("ios")
    enrol(api, application, identity, a)
    enrol(api, application, identity, b)
    event = create_pending(api, application, uid)
    url = f"/api/v0/event/get/{event['ID']}?oauth_token=true"
    travel = timedelta(0)
    if ending == "expire":
        travel = timedelta(seconds=200)
    else:
        body = respond_body(application, uid, a, event, approved=ending == "approve")
        assert respond(api, application, event, body).status_code == 200
    with time_machine.travel(timezone.now() + travel):
        tokens_seen = 0
        for phone, approved in ((a, True), (b, True), (b, False), (a, False)):
            body = respond_body(application, uid, phone, event, approved)
            assert respond(api, application, event, body).status_code == 409
            poll = get(api, application, url).json()
            tokens_seen += "oauth_token" in poll
            assert poll["new"] is False
            assert poll["approved"] is (ending == "approve")
    assert tokens_seen == (1 if ending == "approve" else 0)
    row = AuthEvent.objects.get(pk=event["ID"])
    assert (row.token_family is not None) is (ending == "approve")
    # An expired row may still read "pending" until the tidy-up task runs; its effective
    # state is what counts (checked through the polls above).
    expected = {"approve": {"approved"}, "reject": {"rejected"}, "expire": {"pending", "expired"}}
    assert row.state in expected[ending]


def test_every_event_endpoint_answers_bad_api_keys_with_401(api, uid):
    for method, url in (
        ("post", "/api/v0/event/create"),
        ("post", "/api/v0/event/create_pending"),
        ("post", "/api/v0/event/respond/1"),
        ("get", "/api/v0/event/get/1"),
        ("get", f"/api/v0/event/new/{uid}"),
        ("get", f"/api/v0/event/new?client_user_id={uid}"),
    ):
        for key in ({}, {"HTTP_API_KEY_ID": "unknown"}, {"HTTP_API_KEY_ID": "x\x00"}):
            response = getattr(api, method)(url, **key)
            cotter_error(response, 401, "invalid_client")
