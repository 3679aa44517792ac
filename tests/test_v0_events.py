"""Cotter group B over HTTP (reference/cotter-api.md §1.4 Event, §1.5 B1-B6, §1.8, §2.2,
§4.1, §4.2): signed sign-in, pending requests, respond, poll, QR enrolment."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import pytest
import time_machine
from django.utils import timezone

from authdevice.flows import events as event_flows
from authdevice.flows.tokens import verify_access_token
from authdevice.models import AuthEvent, RefreshToken, TrustedDevice
from tests.devicekit import Phone, login_message, now_ts
from tests.test_v0_users import (
    TOKEN_KEYS,
    bearer,
    cotter_error,
    double_b64,
    enrol,
    headers,
)

pytestmark = pytest.mark.django_db

EVENT_KEYS = {
    "ID",
    "CreatedAt",
    "UpdatedAt",
    "DeletedAt",
    "user_id",
    "client_user_id",
    "issuer",
    "event",
    "ip",
    "location",
    "timestamp",
    "method",
    "new",
    "approved",
    "signature",
}


# --------------------------------------------------------------------------- helpers


def login_body(
    app: Any,
    uid: str,
    phone: Phone,
    *,
    event: str = "LOGIN",
    ts: str | None = None,
    uid_field: str = "client_user_id",
    algorithm: bool = True,
) -> dict[str, Any]:
    ts = ts or now_ts()
    body: dict[str, Any] = {
        uid_field: uid,
        "issuer": app.api_key_id,
        "event": event,
        "ip": "unknown",
        "location": "unknown",
        "timestamp": ts,
        "method": "TRUSTED_DEVICE",
        "code": phone.sign(login_message(uid, app.api_key_id, event, ts)),
        "approved": True,
        "public_key": phone.public_key,
    }
    if algorithm:  # iOS sends no algorithm on events
        body["algorithm"] = phone.algorithm
    return body


def pending_body(app: Any, uid: str, *, event: str = "LOGIN", ts: str | None = None) -> dict:
    return {
        "client_user_id": uid,
        "issuer": app.api_key_id,
        "event": event,
        "ip": "unknown",
        "location": "unknown",
        "timestamp": ts or now_ts(),
        "method": "TRUSTED_DEVICE",
    }


def respond_body(
    app: Any, uid: str, phone: Phone, pending: dict[str, Any], approved: bool = True
) -> dict[str, Any]:
    """What RN's approveEvent sends: the pending event's fields copied, signed."""
    decision = "true" if approved else "false"
    return {
        "client_user_id": uid,
        "issuer": app.api_key_id,
        "event": pending["event"],
        "ip": pending["ip"],
        "location": pending["location"],
        "timestamp": pending["timestamp"],
        "method": "TRUSTED_DEVICE",
        "code": phone.sign(
            login_message(uid, app.api_key_id, pending["event"], pending["timestamp"], decision)
        ),
        "approved": approved,
        "public_key": phone.public_key,
        "algorithm": phone.algorithm,
    }


def qr_body(app: Any, uid: str, trusted: Phone, newcomer: Phone, ts: str | None = None) -> dict:
    ts = ts or now_ts()
    message = (
        login_message(uid, app.api_key_id, "ENROLL_NEW_TRUSTED_DEVICE", ts) + newcomer.public_key
    )
    return {
        "client_user_id": uid,
        "issuer": app.api_key_id,
        "event": "ENROLL_NEW_TRUSTED_DEVICE",
        "ip": "unknown",
        "location": "unknown",
        "timestamp": ts,
        "method": "TRUSTED_DEVICE",
        "code": trusted.sign(message),
        "approved": True,
        "public_key": trusted.public_key,
        "algorithm": trusted.algorithm,
        "register_new_device": True,
        "new_device_public_key": newcomer.public_key,
        "device_type": "TestMaker",
        "device_name": "testdev 1.0",
        "new_device_algorithm": newcomer.algorithm if newcomer.kind == "rn" else "ECDSA",
    }


def assert_event(data: dict[str, Any], *, new: bool, approved: bool) -> None:
    assert set(data) >= EVENT_KEYS, data
    assert isinstance(data["ID"], int) and not isinstance(data["ID"], bool)
    assert 0 < data["ID"] < 2**53
    assert isinstance(data["timestamp"], str)
    assert data["new"] is new and data["approved"] is approved
    for key in ("client_user_id", "issuer", "event", "ip", "location", "timestamp", "method"):
        assert isinstance(data[key], str), key  # iOS: non-optional, never null


def post(api: Any, app: Any, url: str, body: Any, **extra: str) -> Any:
    return api.post(url, body, format="json", **headers(app, **extra))


def get(api: Any, app: Any, url: str, **extra: str) -> Any:
    return api.get(url, **headers(app, **extra))


@pytest.fixture
def uid(identity):
    return identity.client_user_id


@pytest.fixture
def phone(api, application, identity):
    device = Phone.new("rn")
    assert enrol(api, application, identity, device).status_code == 200
    return device


# --------------------------------------------------------------------------- §1.8


def test_worked_exchange_of_the_reference(api, application):
    """Reference §1.8 replayed with real signatures: RN user ``cot-uid-1`` created with a
    client user id, device A enrolled, A signs in, B asks, A approves, B collects its
    tokens once, A enrols B from B's QR code, B is then trusted."""
    created = post(
        api,
        application,
        "/api/v0/user/create",
        {"client_user_id": "cot-uid-1", "identifiers": ["cot@example.com"]},
    )
    assert created.status_code == 200, created.content
    from authdevice.models import UserIdentity

    identity = UserIdentity.objects.get(client_user_id="cot-uid-1")
    key = application.api_key_id
    a, b = Phone.new("rn"), Phone.new("rn")

    # device A: enrol (RN with userID set -> A5), with tokens
    put = api.put(
        "/api/v0/user/cot-uid-1?oauth_token=true",
        {
            "method": "TRUSTED_DEVICE",
            "enrolled": True,
            "code": a.public_key,
            "algorithm": "ED25519",
            "device_name": "testdev 1.0",
            "device_type": "TestMaker",
        },
        format="json",
        **headers(application, **bearer(identity, application)),
    )
    assert put.status_code == 200, put.content
    assert put.json()["enrolled"] == ["TRUSTED_DEVICE"]
    assert put.json()["oauth_token"]["auth_method"] == "TRUSTED_DEVICE"

    # device A: am I trusted?
    enc_a = double_b64(a.public_key, style="rn")
    check = get(api, application, f"/api/v0/user/enrolled/cot-uid-1/TRUSTED_DEVICE/{enc_a}")
    assert check.json() == {"enrolled": True, "method": "TRUSTED_DEVICE"}

    # device A: login (signed, auto-approved)
    ts = now_ts()
    body = login_body(application, "cot-uid-1", a, ts=ts)
    assert (
        login_message("cot-uid-1", key, "LOGIN", ts) == f"cot-uid-1{key}LOGIN{ts}TRUSTED_DEVICEtrue"
    )
    login = post(api, application, "/api/v0/event/create?oauth_token=true", body)
    assert login.status_code == 200, login.content
    data = login.json()
    assert_event(data, new=False, approved=True)
    assert (data["client_user_id"], data["issuer"], data["event"], data["timestamp"]) == (
        "cot-uid-1",
        key,
        "LOGIN",
        ts,
    )
    assert data["method"] == "TRUSTED_DEVICE" and data["location"] == "unknown"
    assert set(data["oauth_token"]) == TOKEN_KEYS
    assert data["oauth_token"]["auth_method"] == "TRUSTED_DEVICE"
    assert verify_access_token(data["oauth_token"]["access_token"])["sub"] == str(
        identity.public_id
    )

    # device B (untrusted): request, then poll
    ts_b = str(int(ts) + 1)
    pending = post(
        api,
        application,
        "/api/v0/event/create_pending",
        pending_body(application, "cot-uid-1", ts=ts_b),
    )
    assert pending.status_code == 200, pending.content
    assert_event(pending.json(), new=True, approved=False)
    event_id = pending.json()["ID"]
    poll = get(api, application, f"/api/v0/event/get/{event_id}?oauth_token=true")
    assert_event(poll.json(), new=True, approved=False)
    assert "oauth_token" not in poll.json()

    # device A: discover and approve
    newest = get(api, application, "/api/v0/event/new/cot-uid-1")
    assert newest.json()["ID"] == event_id
    assert_event(newest.json(), new=True, approved=False)
    respond = post(
        api,
        application,
        f"/api/v0/event/respond/{event_id}",
        respond_body(application, "cot-uid-1", a, newest.json()),
    )
    assert respond.status_code == 200, respond.content
    assert_event(respond.json(), new=False, approved=True)
    assert respond.json()["ID"] == event_id
    assert get(api, application, "/api/v0/event/new/cot-uid-1").content == b"null"

    # device B's next poll: its tokens, once
    collected = get(api, application, f"/api/v0/event/get/{event_id}?oauth_token=true")
    assert_event(collected.json(), new=False, approved=True)
    tokens = collected.json()["oauth_token"]
    assert set(tokens) == TOKEN_KEYS and tokens["auth_method"] == "TRUSTED_DEVICE"
    assert verify_access_token(tokens["access_token"])["sub"] == str(identity.public_id)
    later = get(api, application, f"/api/v0/event/get/{event_id}?oauth_token=true")
    assert later.json()["approved"] is True and "oauth_token" not in later.json()

    # device A: enrol device B from B's QR code
    qr = f"{b.public_key}:ED25519:{key}:cot-uid-1:{ts_b}"
    new_key = qr.split(":")[0]
    assert new_key == b.public_key
    enrol_b = post(
        api, application, "/api/v0/event/create", qr_body(application, "cot-uid-1", a, b)
    )
    assert enrol_b.status_code == 200, enrol_b.content
    assert_event(enrol_b.json(), new=False, approved=True)
    assert enrol_b.json()["event"] == "ENROLL_NEW_TRUSTED_DEVICE"
    # device B's poll of the enrolled check now says yes
    enc_b = double_b64(b.public_key, style="rn")
    check_b = get(api, application, f"/api/v0/user/enrolled/cot-uid-1/TRUSTED_DEVICE/{enc_b}")
    assert check_b.json() == {"enrolled": True, "method": "TRUSTED_DEVICE"}
    device_b = TrustedDevice.objects.get(public_key=b.public_key)
    assert (device_b.name, device_b.device_type, device_b.algorithm) == (
        "testdev 1.0",
        "TestMaker",
        "ED25519",
    )
    # ...and B can sign in by itself now.
    signed_b = post(
        api, application, "/api/v0/event/create", login_body(application, "cot-uid-1", b)
    )
    assert signed_b.status_code == 200 and "oauth_token" not in signed_b.json()


# --------------------------------------------------------------------------- B1


@pytest.mark.parametrize("kind", ["rn", "ios", "android", "rsa"])
def test_b1_signed_sign_in_with_every_sdk_encoding(api, application, identity, uid, kind):
    phone = Phone.new(kind)
    assert enrol(api, application, identity, phone).status_code == 200
    # iOS and Android send no algorithm on events: the stored one is used.
    body = login_body(application, uid, phone, algorithm=kind == "rn")
    if kind == "android":
        assert body["code"].endswith("\n") and "\n" in body["code"][:-1]  # wrapped at 76
    response = post(api, application, "/api/v0/event/create?oauth_token=true", body)
    assert response.status_code == 200, response.content
    assert_event(response.json(), new=False, approved=True)
    assert response.json()["oauth_token"]["auth_method"] == "TRUSTED_DEVICE"
    row = RefreshToken.objects.get(
        pk=int(response.json()["oauth_token"]["refresh_token"].split(":")[0])
    )
    assert row.device == TrustedDevice.objects.get()
    assert TrustedDevice.objects.get().last_used_at is not None


def test_b1_flutter_sends_user_id(api, application, identity, phone):
    uid = str(identity.public_id)
    body = login_body(application, uid, phone, uid_field="user_id", event="LOGIN_WITH_DEVICE")
    response = post(api, application, "/api/v0/event/create?oauth_token=true", body)
    assert response.status_code == 200, response.content
    assert response.json()["event"] == "LOGIN_WITH_DEVICE"
    assert response.json()["user_id"] == uid


def test_b1_without_oauth_token_query_has_no_tokens(api, application, uid, phone):
    response = post(api, application, "/api/v0/event/create", login_body(application, uid, phone))
    assert response.status_code == 200 and "oauth_token" not in response.json()


def test_b1_failures_are_clear_4xx(api, application, uid, phone, other_application):
    url = "/api/v0/event/create?oauth_token=true"
    body = login_body(application, uid, phone)
    cotter_error(post(api, application, url, {**body, "code": "AAAA"}), 401, "bad_signature")
    cotter_error(
        post(api, application, url, {**body, "public_key": Phone.new().public_key}),
        401,
        "device_not_trusted",
    )
    cotter_error(post(api, application, url, {**body, "issuer": "other"}), 400, "invalid_issuer")
    cotter_error(post(api, application, url, {**body, "method": "PIN"}), 400)
    cotter_error(post(api, application, url, {**body, "approved": False}), 400)
    cotter_error(post(api, application, url, {**body, "client_user_id": "nobody"}), 404)
    cotter_error(post(api, application, url, {**body, "timestamp": "12ab"}), 400)
    # The right body at another application (its key is not in the signed string).
    cotter_error(
        post(api, other_application, url, {**body, "issuer": other_application.api_key_id}),
        401,
        "bad_signature",
    )
    assert post(api, application, url, body).status_code == 200
    assert not AuthEvent.objects.filter(event="LOGIN", state="approved").count() > 1


@pytest.mark.parametrize(
    "body",
    [
        {},
        [],
        "x",
        {"client_user_id": None},
        {"client_user_id": ["a"]},
        {"client_user_id": "u", "issuer": None},
        {"event": {"a": 1}},
        {"timestamp": 1.5},
        {"timestamp": True},
        {"code": 5},
        {"public_key": ["x"]},
        {"register_new_device": "yes"},
        {"register_new_device": True, "new_device_public_key": 5},
        {"register_new_device": True, "new_device_public_key": "x", "new_device_algorithm": 5},
        {"ip": {"x": 1}},
        {"location": 7.5},
        {"event": "x" * 41},
        {"event": "LOG\nIN"},
        {"device_name": ["x"], "register_new_device": True},
    ],
)
def test_b1_bad_input_never_500(api, application, uid, phone, body):
    base = login_body(application, uid, phone)
    payload = {**base, **body} if isinstance(body, dict) and body else body
    response = post(api, application, "/api/v0/event/create", payload)
    assert 400 <= response.status_code < 500, (response.status_code, response.content)
    assert set(response.json()) == {"msg", "type"}


# --------------------------------------------------------------------------- B2-B6


def test_b2_b4_poll_pending_then_rejected_never_yields_tokens(api, application, uid, phone):
    pending = post(api, application, "/api/v0/event/create_pending", pending_body(application, uid))
    data = pending.json()
    assert_event(data, new=True, approved=False)
    assert data["signature"]
    reject = post(
        api,
        application,
        f"/api/v0/event/respond/{data['ID']}",
        respond_body(application, uid, phone, data, approved=False),
    )
    assert reject.status_code == 200, reject.content
    assert_event(reject.json(), new=False, approved=False)
    for _ in range(3):
        poll = get(api, application, f"/api/v0/event/get/{data['ID']}?oauth_token=true")
        assert_event(poll.json(), new=False, approved=False)
        assert "oauth_token" not in poll.json()
    assert AuthEvent.objects.get(pk=data["ID"]).state == "rejected"
    assert AuthEvent.objects.get(pk=data["ID"]).token_family is None


def test_b4_expired_reads_not_new_not_approved_and_never_yields_tokens(
    api, application, uid, phone
):
    data = post(
        api, application, "/api/v0/event/create_pending", pending_body(application, uid)
    ).json()
    with time_machine.travel(timezone.now() + timedelta(seconds=181)):
        poll = get(api, application, f"/api/v0/event/get/{data['ID']}?oauth_token=true")
        assert_event(poll.json(), new=False, approved=False)
        assert get(api, application, f"/api/v0/event/new/{uid}").content == b"null"
        late = post(
            api,
            application,
            f"/api/v0/event/respond/{data['ID']}",
            respond_body(application, uid, phone, data),
        )
        cotter_error(late, 409, "already_decided")
        event_flows.expire_events()
        poll = get(api, application, f"/api/v0/event/get/{data['ID']}?oauth_token=true")
        assert_event(poll.json(), new=False, approved=False)
        assert "oauth_token" not in poll.json()


def test_b4_only_with_oauth_token_query_hands_tokens_out(api, application, uid, phone):
    data = post(
        api, application, "/api/v0/event/create_pending", pending_body(application, uid)
    ).json()
    post(
        api,
        application,
        f"/api/v0/event/respond/{data['ID']}",
        respond_body(application, uid, phone, data),
    )
    plain = get(api, application, f"/api/v0/event/get/{data['ID']}")
    assert plain.json()["approved"] is True and "oauth_token" not in plain.json()
    assert AuthEvent.objects.get(pk=data["ID"]).tokens_handed_out_at is None
    with_tokens = get(api, application, f"/api/v0/event/get/{data['ID']}?oauth_token=true")
    assert with_tokens.json()["oauth_token"]["auth_method"] == "TRUSTED_DEVICE"


def test_b4_unknown_foreign_or_malformed_ids_are_404(
    api, application, other_application, uid, phone
):
    data = post(
        api, application, "/api/v0/event/create_pending", pending_body(application, uid)
    ).json()
    bodies = []
    for event_id in ("1", "0", "-5", "abc", str(2**53), str(2**70), "1e3", str(data["ID"] + 1)):
        response = get(api, application, f"/api/v0/event/get/{event_id}")
        bodies.append(cotter_error(response, 404, "event_not_found"))
    foreign = get(api, other_application, f"/api/v0/event/get/{data['ID']}")
    bodies.append(cotter_error(foreign, 404, "event_not_found"))
    assert len({str(b) for b in bodies}) == 1


def test_b4_qr_enrolment_event_never_hands_out_tokens(api, application, uid, phone):
    newcomer = Phone.new("ios")
    before = RefreshToken.objects.count()
    enrolled = post(
        api, application, "/api/v0/event/create", qr_body(application, uid, phone, newcomer)
    ).json()
    poll = get(api, application, f"/api/v0/event/get/{enrolled['ID']}?oauth_token=true")
    assert poll.json()["approved"] is True and "oauth_token" not in poll.json()
    assert RefreshToken.objects.count() == before
    signed = post(
        api,
        application,
        "/api/v0/event/create?oauth_token=true",
        login_body(application, uid, phone),
    ).json()
    again = get(api, application, f"/api/v0/event/get/{signed['ID']}?oauth_token=true")
    assert "oauth_token" not in again.json()  # a signed sign-in's tokens went out with it
    assert RefreshToken.objects.count() == before + 1


def test_flow_hand_out_tokens_refuses_events_that_were_never_pending(api, application, uid, phone):
    newcomer = Phone.new("rn")
    enrolled = post(
        api, application, "/api/v0/event/create", qr_body(application, uid, phone, newcomer)
    ).json()
    assert event_flows.hand_out_tokens(AuthEvent.objects.get(pk=enrolled["ID"])) is None


def test_b5_b6_newest_pending_or_null(api, application, other_application, identity, uid, phone):
    assert get(api, application, f"/api/v0/event/new/{uid}").content == b"null"
    newest = get(api, application, f"/api/v0/event/new/{uid}")
    assert newest["Content-Type"] == "application/json" and newest.json() is None
    first = post(
        api, application, "/api/v0/event/create_pending", pending_body(application, uid)
    ).json()
    second = post(
        api, application, "/api/v0/event/create_pending", pending_body(application, uid)
    ).json()
    assert first["ID"] != second["ID"]
    by_client_id = get(api, application, f"/api/v0/event/new/{uid}").json()
    by_public_id = get(api, application, f"/api/v0/event/new/{identity.public_id}").json()
    flutter = get(api, application, f"/api/v0/event/new?cotter_user_id={identity.public_id}")
    by_query = get(api, application, f"/api/v0/event/new?client_user_id={uid}").json()
    assert by_client_id["ID"] == by_public_id["ID"] == flutter.json()["ID"] == by_query["ID"]
    assert by_client_id["ID"] == second["ID"]
    assert_event(by_client_id, new=True, approved=False)
    # Through another application: nothing to answer there.
    assert get(api, other_application, f"/api/v0/event/new/{uid}").content == b"null"
    cotter_error(get(api, application, "/api/v0/event/new/nobody"), 404)
    cotter_error(get(api, application, "/api/v0/event/new"), 400)


def test_b2_needs_a_known_user_and_method(api, application, uid):
    url = "/api/v0/event/create_pending"
    cotter_error(post(api, application, url, pending_body(application, "nobody")), 404)
    body = pending_body(application, uid)
    cotter_error(post(api, application, url, {**body, "issuer": "x"}), 400, "invalid_issuer")
    cotter_error(post(api, application, url, {**body, "method": "PIN"}), 400)
    cotter_error(post(api, application, url, {**body, "timestamp": None}), 400)
    cotter_error(post(api, application, url, {**body, "event": ""}), 400)
    assert not AuthEvent.objects.exists()


def test_b3_flutter_dismissed_prompt_changes_nothing(api, application, uid, phone):
    data = post(
        api, application, "/api/v0/event/create_pending", pending_body(application, uid)
    ).json()
    body = {**respond_body(application, uid, phone, data), "approved": None}
    cotter_error(post(api, application, f"/api/v0/event/respond/{data['ID']}", body), 400)
    assert AuthEvent.objects.get(pk=data["ID"]).state == "pending"


def test_b3_uses_the_stored_event_and_timestamp(api, application, uid, phone):
    data = post(
        api, application, "/api/v0/event/create_pending", pending_body(application, uid)
    ).json()
    # Body fields that disagree with the stored event do not matter; the signature does.
    body = {**respond_body(application, uid, phone, data), "event": "OTHER", "timestamp": "1"}
    response = post(api, application, f"/api/v0/event/respond/{data['ID']}", body)
    assert response.status_code == 200, response.content
    assert response.json()["event"] == "LOGIN"
    assert response.json()["timestamp"] == data["timestamp"]


def test_event_ip_is_what_the_server_saw(api, application, uid, phone):
    body = {**pending_body(application, uid), "ip": "1.2.3.4", "location": "Orinda"}
    created = post(
        api, application, "/api/v0/event/create_pending", body, REMOTE_ADDR="203.0.113.7"
    ).json()
    assert created["ip"] == "203.0.113.7" and created["location"] == "Orinda"
    row = AuthEvent.objects.get(pk=created["ID"])
    assert (row.ip, row.reported_ip) == ("203.0.113.7", "1.2.3.4")


def test_b5_finds_the_newest_request_of_this_application(
    api, application, other_application, uid, phone
):
    mine = post(
        api, application, "/api/v0/event/create_pending", pending_body(application, uid)
    ).json()
    post(
        api,
        other_application,
        "/api/v0/event/create_pending",
        pending_body(other_application, uid),
    )
    assert get(api, application, f"/api/v0/event/new/{uid}").json()["ID"] == mine["ID"]


def test_b2_refuses_a_timestamp_outside_the_window(api, application, uid):
    old = str(int(now_ts()) - 86400)
    response = post(
        api, application, "/api/v0/event/create_pending", pending_body(application, uid, ts=old)
    )
    cotter_error(response, 400, "stale_timestamp")


def test_two_requests_in_one_second_can_both_be_approved(api, application, uid, phone):
    """Each pending request carries its own server timestamp, which the approver signs:
    two in the same second used to share it, and approving the first burned the second."""
    with time_machine.travel(timezone.now(), tick=False):
        first = post(
            api, application, "/api/v0/event/create_pending", pending_body(application, uid)
        ).json()
        second = post(
            api, application, "/api/v0/event/create_pending", pending_body(application, uid)
        ).json()
        assert first["timestamp"] != second["timestamp"]
        for pending in (first, second):
            answer = post(
                api,
                application,
                f"/api/v0/event/respond/{pending['ID']}",
                respond_body(application, uid, phone, pending),
            )
            assert answer.status_code == 200, answer.content


@pytest.mark.parametrize("spelling", [" {}", "{} ", "+{}", "0{}", "{}\u0660"])
def test_event_ids_are_plain_digits(api, application, uid, spelling):
    pending = post(api, application, "/api/v0/event/create_pending", pending_body(application, uid))
    event_id = pending.json()["ID"]
    assert get(api, application, f"/api/v0/event/get/{event_id}").status_code == 200
    odd = get(api, application, "/api/v0/event/get/" + quote(spelling.format(event_id)))
    assert odd.status_code == 404


@pytest.mark.parametrize("field", ["ip", "location", "event", "client_user_id"])
def test_lone_surrogates_in_a_body_are_400(api, application, uid, field):
    body = json.dumps({**pending_body(application, uid), field: "x\ud800"})
    response = api.generic(
        "POST",
        "/api/v0/event/create_pending",
        body,
        content_type="application/json",
        **headers(application),
    )
    assert response.status_code == 400, response.content
    assert response.json()["type"] == "invalid_json"
