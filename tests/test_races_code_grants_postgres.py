"""Races of the native two-step code sign-in on a real PostgreSQL server: one right code
sent ten times at once is granted once; one grant exchanged ten times at once signs in
once, and the losers count as replays (the winner's tokens are revoked, RFC 6749 4.1.2).

Run: ``AUTHDEVICE_TEST_DB=postgres .venv/bin/python -m pytest -m postgres <this file>``.
"""

from __future__ import annotations

import json
import secrets
from collections import Counter
from typing import Any

import pytest
from django.core.cache import cache
from django.db import connection
from django.test import Client

from authdevice.channels import locmem
from authdevice.flows import codes
from authdevice.flows import tokens as token_flows
from authdevice.flows.pkce import s256
from authdevice.models import AuthEvent, Challenge, RefreshToken
from tests.concurrency import hammer

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _require_postgres(settings):
    if connection.vendor != "postgresql":
        pytest.fail("race tests must run on PostgreSQL (AUTHDEVICE_TEST_DB=postgres)")
    settings.AUTHDEVICE_CHANNELS = {"EMAIL": "authdevice.channels.locmem.LocmemBackend"}
    cache.clear()
    locmem.outbox.clear()
    # The first signing key exists already, as after any first sign-in.
    token_flows.keyring.signer()


def _post(url: str, body: dict[str, Any], application: Any) -> int:
    return (
        Client(raise_request_exception=False)
        .post(
            url,
            data=json.dumps(body),
            content_type="application/json",
            HTTP_API_KEY_ID=application.api_key_id,
        )
        .status_code
    )


def _started(application: Any) -> tuple[codes.StartedChallenge, str, str]:
    verifier = secrets.token_urlsafe(48)
    started = codes.start_challenge(
        identifier="alice@example.com", application=application, code_challenge=s256(verifier)
    )
    return started, locmem.outbox[-1].context["code"], verifier


def test_ten_concurrent_right_codes_are_granted_once(application, user):
    started, code, _ = _started(application)
    body = {
        "challenge_id": str(started.challenge.pk),
        "challenge_secret": started.binding,
        "code": code,
    }
    outcomes = hammer(lambda: _post("/api/v1/auth/code/verify", body, application), 10)
    assert Counter(outcomes) == Counter({200: 1, 400: 9}), outcomes
    challenge = Challenge.objects.get()
    assert challenge.state == Challenge.State.GRANTED and challenge.grant_hash


def test_ten_concurrent_exchanges_sign_in_once(application, user):
    started, code, verifier = _started(application)
    granted = codes.verify_code_or_grant(
        challenge_id=started.challenge.pk,
        binding=started.binding,
        code=code,
        application=application,
    )
    assert isinstance(granted, codes.Granted)
    body = {
        "challenge_id": str(started.challenge.pk),
        "authorization_code": granted.authorization_code,
        "code_verifier": verifier,
    }
    outcomes = hammer(lambda: _post("/api/v1/auth/code/token", body, application), 10)
    assert Counter(outcomes) == Counter({200: 1, 400: 9}), outcomes
    assert AuthEvent.objects.filter(event=AuthEvent.Kind.LOGIN).count() == 1
    # The losers were replays: the one token set issued is revoked.
    assert RefreshToken.objects.count() == 1
    assert not RefreshToken.objects.filter(revoked_at__isnull=True).exists()
    assert Challenge.objects.get().state == Challenge.State.VERIFIED
