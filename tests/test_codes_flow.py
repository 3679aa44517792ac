"""The code/link domain flows, door-independent (security.md A, J)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.core import mail
from django.utils import timezone

from authdevice.flows import codes
from authdevice.flows.ratelimit import RateLimited
from authdevice.models import AuthEvent, Challenge, Identifier, IdentifierDevice

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _mail(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    from django.core.cache import cache

    cache.clear()


def sent_code(index=-1):
    body = mail.outbox[index].body
    return re.search(r"\b(\d{6})\b", body).group(1)


def sent_link(index=-1):
    return re.search(r"(http\S+/signin/link/\S+/)", mail.outbox[index].body).group(1)


def test_code_round_trip_creates_user_once():
    started = codes.start_challenge(identifier="New@Example.com")
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["new@example.com"]
    code = sent_code()
    row = Challenge.objects.get()
    assert code not in row.code_hash and row.code_hash and len(row.code_hash) == 64
    signed = codes.verify_code(challenge_id=row.pk, binding=started.binding, code=code)
    assert signed.created and signed.user.email == "new@example.com"
    assert Identifier.objects.get().verified_at is not None
    assert IdentifierDevice.objects.get().user == signed.user
    assert AuthEvent.objects.filter(event="LOGIN", state="approved", method="OTP").count() == 1
    # Single use.
    with pytest.raises(codes.InvalidCode):
        codes.verify_code(challenge_id=row.pk, binding=started.binding, code=code)
    # Later sign-ins reach the same user.
    again = codes.start_challenge(identifier="new@example.com")
    signed2 = codes.verify_code(
        challenge_id=again.challenge.pk, binding=again.binding, code=sent_code()
    )
    assert not signed2.created and signed2.user == signed.user
    assert get_user_model().objects.count() == 1


def test_wrong_codes_kill_the_challenge_not_the_account(settings):
    started = codes.start_challenge(identifier="a@example.com")
    code = sent_code()
    wrong = "000000" if code != "000000" else "111111"
    for _ in range(
        settings.AUTHDEVICE_CODE_MAX_ATTEMPTS
        if hasattr(settings, "AUTHDEVICE_CODE_MAX_ATTEMPTS")
        else 5
    ):
        with pytest.raises(codes.InvalidCode):
            codes.verify_code(
                challenge_id=started.challenge.pk, binding=started.binding, code=wrong
            )
    with pytest.raises(codes.InvalidCode):
        codes.verify_code(challenge_id=started.challenge.pk, binding=started.binding, code=code)
    assert Challenge.objects.get().state == "dead"
    fresh = codes.start_challenge(identifier="a@example.com")
    codes.verify_code(challenge_id=fresh.challenge.pk, binding=fresh.binding, code=sent_code())


def test_binding_and_expiry():
    started = codes.start_challenge(identifier="a@example.com")
    code = sent_code()
    with pytest.raises(codes.ChallengeNotFound):
        codes.verify_code(challenge_id=started.challenge.pk, binding="other-browser", code=code)
    with time_machine.travel(timezone.now() + timedelta(seconds=301)):
        with pytest.raises(codes.InvalidCode):
            codes.verify_code(challenge_id=started.challenge.pk, binding=started.binding, code=code)


def test_resend_replaces_code_and_keeps_failure_count(settings):
    settings.AUTHDEVICE_IDENTIFIER_FAILURE_LIMIT = 6
    started = codes.start_challenge(identifier="a@example.com")
    first = sent_code()
    for _ in range(4):
        with pytest.raises(codes.InvalidCode):
            codes.verify_code(
                challenge_id=started.challenge.pk,
                binding=started.binding,
                code="999999" if first != "999999" else "888888",
            )
    codes.resend_challenge(challenge_id=started.challenge.pk, binding=started.binding)
    second = sent_code()
    assert len(mail.outbox) == 2
    with pytest.raises(codes.InvalidCode):
        if first == second:
            raise codes.InvalidCode()
        codes.verify_code(challenge_id=started.challenge.pk, binding=started.binding, code=first)
    with pytest.raises(codes.InvalidCode):
        codes.verify_code(challenge_id=started.challenge.pk, binding=started.binding, code="123")
    # 6 failures for this identifier: even the right code is throttled now.
    with pytest.raises(RateLimited):
        codes.verify_code(challenge_id=started.challenge.pk, binding=started.binding, code=second)


def test_send_limits_per_identifier_and_same_answer_for_unknown():
    for _ in range(5):
        codes.start_challenge(identifier="who@example.com")
    with pytest.raises(RateLimited) as exc:
        codes.start_challenge(identifier="who@example.com")
    assert 0 < exc.value.retry_after <= 300


def test_magic_link_get_is_safe_and_post_signs_in():
    started = codes.start_challenge(identifier="a@example.com", method="MAGIC_LINK")
    url = sent_link()
    token = url.rstrip("/").rsplit("/", 1)[1]
    assert codes.preview_link(token).pk == started.challenge.pk
    assert codes.preview_link(token).state == "pending"  # preview changed nothing
    with pytest.raises(codes.ConfirmationRequired):
        codes.verify_link(token=token, binding=None)
    signed = codes.verify_link(token=token, binding=started.binding)
    assert signed.auth_method == "MAGIC_LINK"
    with pytest.raises(codes.InvalidCode):
        codes.verify_link(token=token, binding=started.binding)
    assert url.startswith("http://127.0.0.1:8000/")


def test_rollback_sends_nothing():
    from django.db import transaction

    with pytest.raises(RuntimeError):
        with transaction.atomic():
            codes.start_challenge(identifier="a@example.com")
            raise RuntimeError("boom")
    assert mail.outbox == [] and Challenge.objects.count() == 0


def test_lifetime_is_clamped_and_a_code_works_until_its_last_second(settings):
    """security.md A03: at most 10 minutes whatever the setting; valid at ttl-1 s, not at
    ttl+1 s, for codes and for links."""
    settings.AUTHDEVICE_CHALLENGE_LIFETIME = 3600
    start = timezone.now()
    with time_machine.travel(start, tick=False) as clock:
        started = codes.start_challenge(identifier="a@example.com")
        code = sent_code()
        row = Challenge.objects.get()
        assert row.expires_at - row.created_at == timedelta(seconds=600)
        clock.shift(599)
        codes.verify_code(challenge_id=row.pk, binding=started.binding, code=code)
        linked = codes.start_challenge(identifier="b@example.com", method="MAGIC_LINK")
        token = sent_link().rstrip("/").rsplit("/", 1)[-1]
        assert codes.preview_link(token) is not None
        clock.shift(601)
        assert codes.preview_link(token) is None
        with pytest.raises(codes.InvalidCode):
            codes.verify_link(token=token, binding=linked.binding)
