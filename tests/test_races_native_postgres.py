"""Races of the native protocol over ``/api/v1``, on a real PostgreSQL server: approve vs
reject (security.md C01: exactly one outcome, tokens iff approved) and a binding code
redeemed twice at once (D02: one device row).

Run: ``AUTHDEVICE_TEST_DB=postgres .venv/bin/python -m pytest -m postgres <this file>``.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.core.cache import cache
from django.db import connection
from django.test import Client

from authdevice.flows import native
from authdevice.models import AuthEvent, RefreshToken, TrustedDevice
from tests.concurrency import race
from tests.devicekit import Browser

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

ROUNDS = 40


@pytest.fixture(autouse=True)
def _require_postgres(settings):
    if connection.vendor != "postgresql":
        pytest.fail("race tests must run on PostgreSQL (AUTHDEVICE_TEST_DB=postgres)")
    settings.AUTHDEVICE_MAX_OUTSTANDING_EVENTS = 10_000
    settings.AUTHDEVICE_MAX_REQUESTS_SINCE_SUCCESS = 10_000
    settings.AUTHDEVICE_NOTIFY_DEVICE_CHANGES = False
    cache.clear()


def origin() -> str:
    return django_settings.AUTHDEVICE_ISSUER.rstrip("/")


def message(purpose: str, challenge: str, event_id: str = "", decision: str = "", extra: str = ""):
    parts = [purpose, origin(), challenge, str(int(event_id)) if event_id else "", decision, extra]
    return b"authdevice/v1\x00" + b"\x00".join(p.encode() for p in parts)


def handle_of(device: Browser) -> str:
    return hashlib.sha256(device.public_key.encode()).hexdigest()


def post(application: Any, path: str, body: Any) -> tuple[int, dict[str, Any]]:
    response = Client(raise_request_exception=False).post(
        f"/api/v1{path}",
        data=json.dumps(body),
        content_type="application/json",
        HTTP_API_KEY_ID=application.api_key_id,
    )
    return response.status_code, response.json()


def test_approve_and_reject_at_once_have_exactly_one_outcome(identity, application):
    from authdevice.flows.devices import enrol_device

    approver, rejecter = Browser(), Browser()
    for device in (approver, rejecter):
        enrol_device(identity=identity, public_key=device.public_key, algorithm="EC")
    outcomes: Counter[str] = Counter()
    for _ in range(ROUNDS):
        status, started = post(application, "/approvals", {"identifier": "alice@example.com"})
        assert status == 201, started
        event_id = started["event_id"]

        def decision(device: Browser, approve: bool) -> dict[str, Any]:
            status, body = post(
                application, f"/approvals/{event_id}/challenge", {"device": handle_of(device)}
            )
            assert status == 200, body
            challenge = body["challenge"]
            verdict = "approve" if approve else "reject"
            return {
                "device": handle_of(device),
                "challenge": challenge,
                "signature": device.sign(message("approve", challenge, event_id, verdict)),
                "approve": approve,
                "match_code": started["match_code"],
            }

        bodies = [decision(approver, True), decision(rejecter, False)]
        results = race(
            *[(lambda b=b: post(application, f"/approvals/{event_id}/decision", b)) for b in bodies]
        )
        assert not [r for r in results if isinstance(r, Exception)], results
        statuses = sorted(status for status, _ in results)
        assert statuses == [200, 409], results
        loser = next(body for status, body in results if status == 409)
        assert loser["error"] == "already_decided"
        winner = next(body for status, body in results if status == 200)
        row = AuthEvent.objects.get(pk=int(event_id))
        assert row.state == winner["status"].replace("access_denied", "rejected")
        outcomes[row.state] += 1
        # Tokens exist iff approved: the requester's poll collects them (once) or never.
        poll = native.poll(int(event_id), started["poll_secret"], enforce_interval=False)
        if row.state == AuthEvent.State.APPROVED:
            assert poll.status == "approved" and poll.tokens is not None
        else:
            assert poll.status == "access_denied" and poll.tokens is None
        row.refresh_from_db()
        assert (row.token_family is not None) == (row.state == AuthEvent.State.APPROVED)
    families = AuthEvent.objects.exclude(token_family=None).values_list("token_family", flat=True)
    assert RefreshToken.objects.filter(family__in=list(families)).count() == outcomes["approved"]
    assert sum(outcomes.values()) == ROUNDS


def test_a_binding_code_redeemed_twice_at_once_enrols_one_device(identity, application):
    for _ in range(ROUNDS):
        started = native.start_binding(identity)
        newcomers = [Browser(), Browser()]
        bodies = [
            {
                "code": started.code,
                "public_key": device.public_key,
                "algorithm": "EC",
                "signature": device.sign(message("bind", started.code, extra=handle_of(device))),
            }
            for device in newcomers
        ]
        results = race(*[(lambda b=b: post(application, "/bindings/redeem", b)) for b in bodies])
        assert not [r for r in results if isinstance(r, Exception)], results
        assert sorted(status for status, _ in results) == [201, 400], results
        loser = next(body for status, body in results if status == 400)
        assert loser["error"] == "invalid_binding"
        created = TrustedDevice.objects.filter(binding__pk=started.binding.pk)
        assert created.count() == 1
        assert created.get().fingerprint in {handle_of(d) for d in newcomers}
    assert TrustedDevice.objects.filter(user=identity.user).count() == ROUNDS
