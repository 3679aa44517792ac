"""The native protocol's flows: challenges, domain separation, number matching, polling,
QR binding (security.md B01-B03, C03, C05-C07, C10, C11, D01, D02, D04)."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from authdevice.crypto.devicekeys import parse_public_key
from authdevice.flows import native
from authdevice.flows.devices import BadSignature, enrol_device
from authdevice.flows.events import AlreadyDecided, EventNotFound
from authdevice.models import AuthEvent, TrustedDevice
from tests.devicekit import Browser

pytestmark = pytest.mark.django_db


@pytest.fixture
def browser():
    return Browser()


@pytest.fixture
def device(identity, application, browser):
    return enrol_device(
        identity=identity, public_key=browser.public_key, algorithm="EC", application=application
    )


def sign_decision(browser, device, event, approve=True):
    ch = native.approval_challenge(device, event)
    decision = "approve" if approve else "reject"
    sig = browser.sign(
        native.signed_message("approve", ch.value, event_id=event.pk, decision=decision)
    )
    return ch.value, sig


def test_enrolment_needs_proof_of_possession(identity, browser):
    ch = native.enrolment_challenge(identity)
    fingerprint = parse_public_key(browser.public_key, "EC").fingerprint
    other = Browser()
    with pytest.raises(BadSignature):
        native.enrol_with_proof(
            identity=identity,
            public_key=browser.public_key,
            algorithm="EC",
            challenge=ch.value,
            signature=other.sign(native.signed_message("enrol", ch.value, extra=fingerprint)),
        )
    ch2 = native.enrolment_challenge(identity)
    device = native.enrol_with_proof(
        identity=identity,
        public_key=browser.public_key,
        algorithm="EC",
        challenge=ch2.value,
        signature=browser.sign(native.signed_message("enrol", ch2.value, extra=fingerprint)),
    )
    assert device.is_active and device.fingerprint == fingerprint


def test_login_challenge_is_single_use_and_domain_separated(device, browser, application):
    ch = native.login_challenge(device)
    assert len(ch.value) >= 43
    # A signature for another purpose does not log in.
    with pytest.raises(BadSignature):
        native.device_login(
            device=device,
            challenge=ch.value,
            signature=browser.sign(native.signed_message("enrol", ch.value)),
        )
    ch = native.login_challenge(device)
    sig = browser.sign(native.signed_message("login", ch.value))
    result = native.device_login(
        device=device, challenge=ch.value, signature=sig, application=application
    )
    assert result.tokens is not None
    with pytest.raises(native.ChallengeInvalid):
        native.device_login(
            device=device, challenge=ch.value, signature=sig, application=application
        )
    late = native.login_challenge(device)
    with time_machine.travel(timezone.now() + timedelta(seconds=121)):
        with pytest.raises(native.ChallengeInvalid):
            native.device_login(
                device=device,
                challenge=late.value,
                signature=browser.sign(native.signed_message("login", late.value)),
            )


def test_approval_with_number_matching(identity, application, device, browser):
    req = native.start_approval(identity=identity, application=application)
    assert len(req.match_code) == 6
    assert native.poll(req.event.pk, req.poll_secret).status == "authorization_pending"
    assert native.poll(req.event.pk, req.poll_secret).status == "slow_down"
    with pytest.raises(EventNotFound):
        native.poll(req.event.pk, "not-the-secret")
    assert [e.pk for e in native.pending_for(identity)] == [req.event.pk]
    wrong = "000000" if req.match_code != "000000" else "111111"
    ch, sig = sign_decision(browser, device, req.event)
    with pytest.raises(native.WrongNumber):
        native.decide(
            event_id=req.event.pk,
            device=device,
            challenge=ch,
            signature=sig,
            approve=True,
            match_code=wrong,
        )
    ch, sig = sign_decision(browser, device, req.event)
    native.decide(
        event_id=req.event.pk,
        device=device,
        challenge=ch,
        signature=sig,
        approve=True,
        match_code=req.match_code,
    )
    with time_machine.travel(timezone.now() + timedelta(seconds=10)):
        first = native.poll(req.event.pk, req.poll_secret)
        assert first.status == "approved" and first.tokens is not None
        again = native.poll(req.event.pk, req.poll_secret)
        assert again.status == "approved" and again.tokens is None


def test_three_wrong_numbers_cancel(identity, application, device, browser):
    req = native.start_approval(identity=identity, application=application)
    wrong = "000000" if req.match_code != "000000" else "111111"
    for _ in range(3):
        ch, sig = sign_decision(browser, device, req.event)
        with pytest.raises(native.WrongNumber):
            native.decide(
                event_id=req.event.pk,
                device=device,
                challenge=ch,
                signature=sig,
                approve=True,
                match_code=wrong,
            )
    assert AuthEvent.objects.get(pk=req.event.pk).state == "rejected"
    assert (
        native.poll(req.event.pk, req.poll_secret, enforce_interval=False).status == "access_denied"
    )
    with pytest.raises((AlreadyDecided, native.ChallengeInvalid)):
        ch, sig = sign_decision(browser, device, req.event)
        native.decide(
            event_id=req.event.pk,
            device=device,
            challenge=ch,
            signature=sig,
            approve=True,
            match_code=req.match_code,
        )


def test_reject_signature_cannot_approve(identity, application, device, browser):
    req = native.start_approval(identity=identity, application=application)
    ch = native.approval_challenge(device, req.event)
    reject_sig = browser.sign(
        native.signed_message("approve", ch.value, event_id=req.event.pk, decision="reject")
    )
    with pytest.raises(BadSignature):
        native.decide(
            event_id=req.event.pk,
            device=device,
            challenge=ch.value,
            signature=reject_sig,
            approve=True,
            match_code=req.match_code,
        )


def test_expired_request(identity, application, device, browser):
    req = native.start_approval(identity=identity, application=application)
    with time_machine.travel(timezone.now() + timedelta(seconds=181)):
        assert native.poll(req.event.pk, req.poll_secret).status == "expired_token"
        ch, sig = sign_decision(browser, device, req.event)
        with pytest.raises(AlreadyDecided):
            native.decide(
                event_id=req.event.pk,
                device=device,
                challenge=ch,
                signature=sig,
                approve=True,
                match_code=req.match_code,
            )


def test_qr_binding(identity):
    started = native.start_binding(identity)
    assert len(started.code) >= 24  # 144 bits, base64url
    newcomer = Browser()
    fingerprint = parse_public_key(newcomer.public_key, "EC").fingerprint
    binding, device, compare = native.redeem_binding(
        code=started.code,
        public_key=newcomer.public_key,
        algorithm="EC",
        signature=newcomer.sign(native.signed_message("bind", started.code, extra=fingerprint)),
    )
    assert not device.is_active and len(compare) == 6
    with pytest.raises(native.BindingInvalid):  # single use
        native.redeem_binding(
            code=started.code,
            public_key=Browser().public_key,
            algorithm="EC",
            signature="x",
        )
    with pytest.raises(native.BindingInvalid):
        native.confirm_binding(
            binding_id=binding.pk,
            identity=identity,
            comparison="000000" if compare != "000000" else "111111",
        )
    confirmed = native.confirm_binding(binding_id=binding.pk, identity=identity, comparison=compare)
    assert TrustedDevice.objects.get(pk=confirmed.pk).is_active


@pytest.mark.django_db(transaction=True)
def test_unknown_identifiers_get_a_request_that_polls_the_same(identity, application, device):
    """A request for an identifier nobody owns is a real row, as every request is: it polls,
    paces and expires like a real one, names no user, and no device ever sees it."""
    from django.core.cache import cache

    cache.clear()
    real = native.start_approval_for_identifier(
        identifier="alice@example.com", application=application
    )
    fake = native.start_approval_for_identifier(
        identifier="nobody@example.com", application=application
    )
    assert real.event.pk and fake.event.pk and len(real.poll_secret) == len(fake.poll_secret)
    assert len(real.match_code) == len(fake.match_code) == 6
    # Celery is eager here: the resolution ran when each INSERT committed.
    real_row = AuthEvent.objects.get(pk=real.event.pk)
    fake_row = AuthEvent.objects.get(pk=fake.event.pk)
    assert real_row.user_id == identity.user_id and real_row.signature
    assert real_row.client_timestamp and "unresolved" not in real_row.details
    assert fake_row.user_id is None and not fake_row.signature
    assert fake_row.details == {
        "identifier": "n…@example.com",  # nobody's address is not kept in clear
        "kind": "EMAIL",
        "unresolved": native.UNRESOLVED_UNKNOWN,
    }
    assert [e.pk for e in native.pending_for(identity)] == [real.event.pk]
    for started in (real, fake):
        assert native.poll(started.event.pk, started.poll_secret).status == (
            "authorization_pending"
        )
        assert native.poll(started.event.pk, started.poll_secret).status == "slow_down"
        with pytest.raises(EventNotFound):
            native.poll(started.event.pk, started.poll_secret[:-2] + "AA")
    with time_machine.travel(timezone.now() + timedelta(seconds=181)):
        assert native.poll(fake.event.pk, fake.poll_secret).status == "expired_token"
        assert native.poll(real.event.pk, real.poll_secret).status == "expired_token"
    from authdevice.flows.ratelimit import RateLimited

    for who in ("alice@example.com", "nobody@example.com"):
        for _ in range(2):
            native.start_approval_for_identifier(identifier=who, application=application)
        with pytest.raises(RateLimited):
            native.start_approval_for_identifier(identifier=who, application=application)
