"""Wrong codes per email/phone: delays that grow, not a lockout (security.md J02, A04,
A05), and django-otp's interface under the same rules."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import time_machine
from django.core import mail
from django.core.cache import cache, caches
from django.utils import timezone

from authdevice.conf import app_settings
from authdevice.flows import codes
from authdevice.flows.ratelimit import RateLimited
from authdevice.models import Challenge, IdentifierDevice

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _setup(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.AUTHDEVICE_IDENTIFIER_FAILURE_LIMIT = 3
    settings.AUTHDEVICE_IDENTIFIER_FAILURE_DELAY = 30
    settings.AUTHDEVICE_IDENTIFIER_FAILURE_WINDOW = 3600
    settings.AUTHDEVICE_SEND_LIMIT_PER_IDENTIFIER = 100
    cache.clear()
    yield
    cache.clear()


def sent_code() -> str:
    return re.search(r"\b(\d{6})\b", mail.outbox[-1].body).group(1)


def wrong(code: str) -> str:
    return "000000" if code != "000000" else "111111"


def start(identifier: str = "victim@example.com") -> tuple[codes.StartedChallenge, str]:
    started = codes.start_challenge(identifier=identifier)
    return started, sent_code()


def verify(started: codes.StartedChallenge, code: str) -> codes.SignedIn:
    return codes.verify_code(challenge_id=started.challenge.pk, binding=started.binding, code=code)


def retry_after(started: codes.StartedChallenge, code: str) -> int:
    with pytest.raises(RateLimited) as exc:
        verify(started, code)
    return exc.value.retry_after


def test_delays_start_at_the_limit_and_double_up_to_the_window(settings, user):
    settings.AUTHDEVICE_IDENTIFIER_FAILURE_WINDOW = 200
    with time_machine.travel(timezone.now(), tick=False) as clock:
        started, code = start()
        for _ in range(2):
            with pytest.raises(codes.InvalidCode):
                verify(started, wrong(code))
        # Below the limit nothing waits: the right code would still work.
        assert codes.check_state("victim@example.com") == (2, 0)
        with pytest.raises(codes.InvalidCode):
            verify(started, wrong(code))  # the 3rd: the limit
        # That wrong code killed its challenge and started a 30 s delay, for every
        # challenge of the address.
        assert Challenge.objects.get(pk=started.challenge.pk).state == Challenge.State.DEAD
        other, other_code = start()
        assert retry_after(other, other_code) == 30
        clock.shift(31)
        with pytest.raises(codes.InvalidCode):
            verify(other, wrong(other_code))
        assert retry_after(other, other_code) == 60
        clock.shift(61)
        third, third_code = start()
        with pytest.raises(codes.InvalidCode):
            verify(third, wrong(third_code))
        assert retry_after(third, third_code) == 120
        clock.shift(121)
        fourth, fourth_code = start()
        with pytest.raises(codes.InvalidCode):
            verify(fourth, wrong(fourth_code))
        assert retry_after(fourth, fourth_code) == 200  # 240, capped by the window


def test_the_owner_signs_in_after_the_delay_and_success_resets_the_count(user):
    with time_machine.travel(timezone.now(), tick=False) as clock:
        attacker, code = start("alice@example.com")
        for _ in range(3):
            with pytest.raises(codes.InvalidCode):
                verify(attacker, wrong(code))
        clock.shift(30)
        owner, owner_code = start("alice@example.com")
        signed = verify(owner, owner_code)
        assert signed.user == user
        assert codes.check_state("alice@example.com") == (0, 0)


def test_other_addresses_are_not_delayed(user):
    started, code = start()
    for _ in range(3):
        with pytest.raises(codes.InvalidCode):
            verify(started, wrong(code))
    other, other_code = start("alice@example.com")
    assert verify(other, other_code).user == user


def test_failure_store_down_fails_closed(monkeypatch):
    started, code = start()

    def down(*args, **kwargs):
        raise ConnectionError("cache down")

    monkeypatch.setattr(caches["default"], "get_many", down)
    with pytest.raises(codes.ratelimit.RateLimitUnavailable):
        verify(started, code)
    assert Challenge.objects.get(pk=started.challenge.pk).state == Challenge.State.PENDING


# ---------------------------------------------------------------- purposes (A05)


def _device(identity, identifier) -> IdentifierDevice:
    device, _ = IdentifierDevice.objects.get_or_create(
        identifier=identifier, defaults={"user": identity.user, "name": "mail", "confirmed": True}
    )
    return device


def test_a_check_code_never_signs_in_and_a_sign_in_code_never_answers_a_check(identity):
    identifier = identity.identifiers.get()
    device = _device(identity, identifier)
    message = device.generate_challenge()
    assert "@example.com" in str(message) and len(mail.outbox) == 1
    # Worded as a verification, never as a sign-in.
    sent = mail.outbox[0]
    assert "verification code" in sent.subject.lower() and "sign-in" not in sent.subject
    assert "verification code" in sent.body and "sign-in" not in sent.body
    html = sent.alternatives[0][0] if sent.alternatives else ""
    assert "verification code" in html and "sign-in" not in html
    check = Challenge.objects.get()
    assert check.purpose == codes.OTP_CHECK
    check_code = sent_code()
    # The check's code at sign-in: refused, and the check still pending.
    with pytest.raises(codes.ChallengeNotFound):  # its binding was never handed out
        codes.verify_code(challenge_id=check.pk, binding="", code=check_code)
    started, sign_in_code = start(identifier.value)
    assert device.verify_token(sign_in_code) is False or sign_in_code == check_code
    assert Challenge.objects.get(pk=started.challenge.pk).state == Challenge.State.PENDING
    # Both still work for what they were sent for, once.
    assert device.verify_token(check_code) is True
    assert device.verify_token(check_code) is False
    assert verify(started, sign_in_code).identity == identity


def test_purpose_is_checked_at_verify_even_with_the_binding(identity):
    identifier = identity.identifiers.get()
    started = codes.start_challenge(identifier=identifier.value, purpose=codes.OTP_CHECK)
    with pytest.raises(codes.InvalidCode):
        verify(started, sent_code())


# ------------------------------------------------------------ django-otp interface


def test_verify_token_counts_wrong_codes_and_kills_the_challenge(identity, settings):
    settings.AUTHDEVICE_IDENTIFIER_FAILURE_LIMIT = 20
    identifier = identity.identifiers.get()
    device = _device(identity, identifier)
    device.generate_challenge()
    code = sent_code()
    for _ in range(app_settings.CODE_MAX_ATTEMPTS):
        assert device.verify_token(wrong(code)) is False
    check = Challenge.objects.get()
    assert check.state == Challenge.State.DEAD
    assert check.attempts == app_settings.CODE_MAX_ATTEMPTS
    assert device.verify_token(code) is False
    assert codes.check_state(identifier.value)[0] == app_settings.CODE_MAX_ATTEMPTS


def test_verify_token_waits_after_the_identifier_limit(identity):
    from django_otp.models import VerifyNotAllowed

    identifier = identity.identifiers.get()
    device = _device(identity, identifier)
    with time_machine.travel(timezone.now(), tick=False) as clock:
        device.generate_challenge()
        code = sent_code()
        for _ in range(3):
            assert device.verify_token(wrong(code)) is False
        allowed, data = device.verify_is_allowed()
        assert allowed is False
        assert data["reason"] == VerifyNotAllowed.N_FAILED_ATTEMPTS
        assert data["failure_count"] == 3
        assert data["locked_until"] == timezone.now() + timedelta(seconds=30)
        device.generate_challenge()
        fresh = sent_code()
        assert device.verify_token(fresh) is False  # still waiting
        clock.shift(31)
        assert device.verify_is_allowed() == (True, None)
        assert device.verify_token(fresh) is True
        assert codes.check_state(identifier.value) == (0, 0)


def test_full_width_digits_are_the_code(user):
    started, code = start("alice@example.com")
    full_width = "".join(chr(0xFF10 + int(d)) for d in code)
    assert verify(started, f" {full_width[:3]}\u3000{full_width[3:]} ").user == user
