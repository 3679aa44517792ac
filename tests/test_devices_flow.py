"""Trusted-device flows (door-independent): enrolment, signed sign-in, pending approval,
QR enrolment, removal."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from authdevice.flows import devices, events
from authdevice.flows.tokens import refresh_token_set, verify_access_token
from authdevice.models import AuthEvent, RefreshToken, TrustedDevice
from tests.devicekit import Phone, login_message, now_ts

pytestmark = pytest.mark.django_db


@pytest.fixture
def uid(identity):
    return identity.client_user_id


def enrol(identity, application, phone):
    return devices.enrol_device(
        identity=identity,
        public_key=phone.public_key,
        algorithm=phone.algorithm,
        application=application,
    )


@pytest.mark.parametrize("kind", ["rn", "ios", "android", "rsa"])
def test_sign_in_with_each_key_type(identity, application, uid, kind):
    phone = Phone.new(kind)
    device = enrol(identity, application, phone)
    assert device.algorithm == phone.algorithm and "\n" not in device.public_key
    ts = now_ts()
    result = devices.sign_in_with_device(
        identity=identity,
        uid=uid,
        application=application,
        event="LOGIN",
        timestamp=ts,
        public_key=phone.public_key,
        signature=phone.sign(login_message(uid, application.api_key_id, "LOGIN", ts)),
    )
    assert result.event.state == "approved"
    claims = verify_access_token(result.tokens.access_token)
    assert claims["authentication_method"] == "TRUSTED_DEVICE"
    assert RefreshToken.objects.get().device == device
    # The same signed request again is a replay.
    with pytest.raises(devices.Replayed):
        devices.sign_in_with_device(
            identity=identity,
            uid=uid,
            application=application,
            event="LOGIN",
            timestamp=ts,
            public_key=phone.public_key,
            signature=phone.sign(login_message(uid, application.api_key_id, "LOGIN", ts)),
        )


def test_bad_signature_stale_timestamp_and_unknown_device(identity, application, uid):
    phone = Phone.new()
    enrol(identity, application, phone)
    ts = now_ts()
    kwargs = dict(
        identity=identity,
        uid=uid,
        application=application,
        event="LOGIN",
        public_key=phone.public_key,
    )
    with pytest.raises(devices.BadSignature):
        devices.sign_in_with_device(
            timestamp=ts,
            signature=phone.sign(login_message(uid, application.api_key_id, "LOGOUT", ts)),
            **kwargs,
        )
    old = str(int(ts) - 301)
    with pytest.raises(devices.StaleTimestamp):
        devices.sign_in_with_device(
            timestamp=old,
            signature=phone.sign(login_message(uid, application.api_key_id, "LOGIN", old)),
            **kwargs,
        )
    stranger = Phone.new()
    with pytest.raises(devices.DeviceNotTrusted):
        devices.sign_in_with_device(
            identity=identity,
            uid=uid,
            application=application,
            event="LOGIN",
            timestamp=ts,
            public_key=stranger.public_key,
            signature=stranger.sign(login_message(uid, application.api_key_id, "LOGIN", ts)),
        )


def test_keys_are_unique_across_users(identity, application, other_application):
    from django.contrib.auth import get_user_model

    from authdevice.flows.identities import identity_for_user

    phone = Phone.new("ios")
    enrol(identity, application, phone)
    assert enrol(identity, application, phone) == TrustedDevice.objects.get()  # idempotent
    bob = identity_for_user(get_user_model().objects.create_user(username="bob"))
    with pytest.raises(devices.DeviceKeyTaken):
        enrol(bob, application, phone)


def test_pending_event_approved_hands_tokens_once(identity, application, uid):
    phone = Phone.new()
    enrol(identity, application, phone)
    pending = events.create_pending_event(
        identity=identity, application=application, event="LOGIN", client_timestamp=now_ts()
    )
    assert pending.state == "pending" and pending.pk < 2**53
    assert events.newest_pending_event(identity) == pending
    assert events.hand_out_tokens(pending) is None
    decision = events.respond_to_event(
        event=pending,
        identity=identity,
        uid=uid,
        application=application,
        approved=True,
        public_key=phone.public_key,
        signature=phone.sign(
            login_message(uid, application.api_key_id, "LOGIN", pending.client_timestamp)
        ),
    )
    assert decision.event.state == "approved"
    assert events.newest_pending_event(identity) is None
    tokens = events.hand_out_tokens(AuthEvent.objects.get(pk=pending.pk))
    assert tokens is not None and verify_access_token(tokens.access_token)["sub"] == str(
        identity.public_id
    )
    assert events.hand_out_tokens(AuthEvent.objects.get(pk=pending.pk)) is None


def test_rejected_and_expired_events_never_yield_tokens(identity, application, uid):
    phone = Phone.new()
    enrol(identity, application, phone)
    rejected = events.create_pending_event(
        identity=identity, application=application, event="LOGIN", client_timestamp=now_ts()
    )
    events.respond_to_event(
        event=rejected,
        identity=identity,
        uid=uid,
        application=application,
        approved=False,
        public_key=phone.public_key,
        signature=phone.sign(
            login_message(uid, application.api_key_id, "LOGIN", rejected.client_timestamp, "false")
        ),
    )
    assert AuthEvent.objects.get(pk=rejected.pk).state == "rejected"
    assert events.hand_out_tokens(AuthEvent.objects.get(pk=rejected.pk)) is None
    expiring = events.create_pending_event(
        identity=identity, application=application, event="LOGIN", client_timestamp=now_ts()
    )
    with time_machine.travel(timezone.now() + timedelta(seconds=181)):
        assert events.effective_state(expiring) == "expired"
        assert events.newest_pending_event(identity) is None
        with pytest.raises(events.AlreadyDecided):
            events.respond_to_event(
                event=expiring,
                identity=identity,
                uid=uid,
                application=application,
                approved=True,
                public_key=phone.public_key,
                signature=phone.sign(
                    login_message(uid, application.api_key_id, "LOGIN", expiring.client_timestamp)
                ),
            )
        assert events.expire_events() == 1
    assert events.hand_out_tokens(AuthEvent.objects.get(pk=expiring.pk)) is None


def test_push_bombing_limits(identity, application):
    for i in range(3):
        events.create_pending_event(
            identity=identity, application=application, event="LOGIN", client_timestamp=now_ts()
        )
    from authdevice.flows.ratelimit import RateLimited

    with pytest.raises(RateLimited):
        events.create_pending_event(
            identity=identity, application=application, event="LOGIN", client_timestamp=now_ts()
        )


def test_qr_enrolment_and_removal_revokes_sessions(
    identity, application, uid, mailoutbox, settings
):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    trusted, newcomer = Phone.new(), Phone.new("ios")
    device_a = enrol(identity, application, trusted)
    ts = now_ts()
    message = (
        login_message(uid, application.api_key_id, "ENROLL_NEW_TRUSTED_DEVICE", ts)
        + newcomer.public_key
    )
    event, device_b = devices.enrol_from_qr(
        identity=identity,
        uid=uid,
        application=application,
        timestamp=ts,
        public_key=trusted.public_key,
        signature=trusted.sign(message),
        new_public_key=newcomer.public_key,
        new_algorithm="ECDSA",
        name="iPhone",
    )
    assert (
        event.state == "approved" and device_b.algorithm == "EC" and device_b.user == identity.user
    )
    # B signs in; then A removes B: B's signatures and sessions die at once.
    ts2 = now_ts()
    signed = devices.sign_in_with_device(
        identity=identity,
        uid=uid,
        application=application,
        event="LOGIN",
        timestamp=ts2,
        public_key=newcomer.public_key,
        signature=newcomer.sign(login_message(uid, application.api_key_id, "LOGIN", ts2)),
    )
    assert devices.remove_device(device_b, actor="alice", reason="lost")
    assert not devices.remove_device(device_b)
    from authdevice.flows.errors import InvalidGrant

    with pytest.raises(InvalidGrant):
        refresh_token_set(signed.tokens.refresh_token, api_key_id=application.api_key_id)
    with pytest.raises(devices.DeviceNotTrusted):
        devices.sign_in_with_device(
            identity=identity,
            uid=uid,
            application=application,
            event="LOGIN",
            timestamp=now_ts(),
            public_key=newcomer.public_key,
            signature="x",
        )
    assert device_a.revoked_at is None
    assert AuthEvent.objects.filter(event="DEVICE_REMOVED").count() == 1


def test_pending_requests_need_a_current_timestamp(identity, application):
    with pytest.raises(devices.StaleTimestamp):
        events.create_pending_event(
            identity=identity,
            application=application,
            event="LOGIN",
            client_timestamp=str(int(now_ts()) - 86400),
        )
