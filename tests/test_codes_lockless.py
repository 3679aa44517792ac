"""Code verify and get_identity read without row locks: single use rests on the
conditional UPDATEs of ``Challenge.objects`` and ``AuthorizationCode.objects``."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.core import mail
from django.core.cache import cache
from django.utils import timezone

from authdevice.api.v1.codes import _plain_verify_input
from authdevice.api.v1.serializers import CodeVerifySerializer
from authdevice.flows import codes
from authdevice.models import Challenge
from tests.concurrency import hammer

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _mail(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    cache.clear()


def sent_code() -> str:
    return re.search(r"\b(\d{6})\b", mail.outbox[-1].body).group(1)


def test_a_code_checked_before_a_resend_cannot_consume_the_new_one():
    started = codes.start_challenge(identifier="a@example.com")
    stale = Challenge.objects.for_verify(started.challenge.pk)
    codes.resend_challenge(challenge_id=started.challenge.pk, binding=started.binding)
    # The old code was right for version 1; the challenge is now version 2.
    assert not Challenge.objects.consume(stale.pk, stale.version, 1, timezone.now())
    assert not Challenge.objects.count_wrong_code(stale.pk, stale.version, 5)
    row = Challenge.objects.get()
    assert row.state == "pending" and row.attempts == 0 and row.version == 2


def test_wrong_codes_are_counted_atomically_and_kill_at_the_limit():
    started = codes.start_challenge(identifier="a@example.com")
    pk, version = started.challenge.pk, started.challenge.version
    for expected in (1, 2):
        assert Challenge.objects.count_wrong_code(pk, version, 3)
        assert Challenge.objects.get().attempts == expected
    assert Challenge.objects.count_wrong_code(pk, version, 3)
    assert Challenge.objects.get().state == "dead"
    assert not Challenge.objects.count_wrong_code(pk, version, 3)
    assert not Challenge.objects.consume(pk, version, 1, timezone.now())


def test_consume_has_one_winner():
    started = codes.start_challenge(identifier="a@example.com")
    signed = codes.verify_code(
        challenge_id=started.challenge.pk, binding=started.binding, code=sent_code()
    )
    assert signed.challenge.state == "verified"
    ch = started.challenge
    assert not Challenge.objects.consume(ch.pk, ch.version, signed.identity.pk, timezone.now())


def test_unknown_identifier_is_not_prefetched_but_signs_up():
    started = codes.start_challenge(identifier="new@example.com")
    assert Challenge.objects.for_verify(started.challenge.pk).sign_in is None
    signed = codes.verify_code(
        challenge_id=started.challenge.pk, binding=started.binding, code=sent_code()
    )
    assert signed.created
    again = codes.start_challenge(identifier="new@example.com")
    identifier, device = Challenge.objects.for_verify(again.challenge.pk).sign_in
    assert identifier.pk == signed.identifier.pk and device.pk == signed.device.pk
    assert identifier.identity.user.pk == signed.user.pk


def test_out_of_range_challenge_ids_are_not_found():
    for value in (2**63, -(2**63) - 1, 10**30):
        with pytest.raises(codes.ChallengeNotFound):
            codes.verify_code(challenge_id=value, binding="x", code="123456")


BODIES: list[Any] = [
    {"challenge_id": 5, "challenge_secret": "s", "code": "123456"},
    {"challenge_id": "0000000000000005", "challenge_secret": " s ", "code": " 12 34 56 "},
    {"challenge_id": "5", "challenge_secret": "s" * 128, "code": "1" * 32},
    {"challenge_id": 2**63 - 1, "challenge_secret": "s", "code": "\t123456\n", "x": 1},
]
REFUSED: list[Any] = [
    [],
    "x",
    {},
    {"challenge_id": True, "challenge_secret": "s", "code": "1"},
    {"challenge_id": 0, "challenge_secret": "s", "code": "1"},
    {"challenge_id": 2**63, "challenge_secret": "s", "code": "1"},
    {"challenge_id": 1.0, "challenge_secret": "s", "code": "1"},
    {"challenge_id": "\u0661", "challenge_secret": "s", "code": "1"},
    {"challenge_id": 1, "challenge_secret": "", "code": "1"},
    {"challenge_id": 1, "challenge_secret": "s" * 129, "code": "1"},
    {"challenge_id": 1, "challenge_secret": "s\x00", "code": "1"},
    {"challenge_id": 1, "challenge_secret": "é", "code": "1"},
    {"challenge_id": 1, "challenge_secret": None, "code": "1"},
    {"challenge_id": 1, "challenge_secret": "s", "code": "   "},
    {"challenge_id": 1, "challenge_secret": "s", "code": "1" * 33},
    {"challenge_id": 1, "challenge_secret": "s", "code": 123456},
    {"challenge_id": 1, "challenge_secret": "s", "code": "1\x00"},
]


@pytest.mark.parametrize("body", BODIES)
def test_plain_input_is_exactly_what_the_serializer_accepts(body):
    serializer = CodeVerifySerializer(data=body)
    assert serializer.is_valid(), serializer.errors
    data = serializer.validated_data
    expected = (data["challenge_id"], data["challenge_secret"], data["code"])
    assert _plain_verify_input(body) == expected


@pytest.mark.parametrize("body", REFUSED)
def test_anything_else_goes_to_the_serializer(body):
    # None: the view then validates with the serializer, which words the error.
    assert _plain_verify_input(body) is None


@pytest.mark.postgres
def test_concurrent_right_codes_have_one_winner():
    from collections import Counter

    from django.db import connection

    from authdevice.models import Application, AuthEvent, RefreshToken

    if connection.vendor != "postgresql":
        pytest.fail("race tests must run on PostgreSQL (AUTHDEVICE_TEST_DB=postgres)")
    application = Application.objects.create(name="race")
    first = codes.start_challenge(identifier="a@example.com", application=application)
    codes.verify_code(
        challenge_id=first.challenge.pk, binding=first.binding, code=sent_code()
    )  # a known user from here on: the lean path
    started = codes.start_challenge(identifier="a@example.com", application=application)
    code = sent_code()

    def attempt() -> str:
        codes.verify_code(
            challenge_id=started.challenge.pk,
            binding=started.binding,
            code=code,
            application=application,
            issue_tokens=True,
        )
        return "signed in"

    outcomes = ["invalid" if isinstance(r, codes.InvalidCode) else r for r in hammer(attempt, 10)]
    assert Counter(outcomes) == {"signed in": 1, "invalid": 9}, outcomes
    assert RefreshToken.objects.count() == 1
    assert AuthEvent.objects.filter(event="LOGIN").count() == 2
