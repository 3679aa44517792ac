"""Trusted-device races over HTTP, on a real PostgreSQL server (reference/security.md C01,
C02, D02 adapted to Cotter's QR enrolment, B01 under concurrency).

Run: AUTHDEVICE_TEST_DB=postgres .venv/bin/python -m pytest -m postgres <this file>"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from rest_framework.test import APIClient

from authdevice.flows import devices as device_flows
from authdevice.flows import events as event_flows
from authdevice.models import AuthEvent, RefreshToken, TrustedDevice
from tests.concurrency import race
from tests.devicekit import Phone, now_ts
from tests.test_v0_events import login_body, qr_body, respond_body
from tests.test_v0_users import headers

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _require_postgres(settings):
    if connection.vendor != "postgresql":
        pytest.fail("race tests must run on PostgreSQL (AUTHDEVICE_TEST_DB=postgres)")
    settings.AUTHDEVICE_MAX_OUTSTANDING_EVENTS = 1000
    settings.AUTHDEVICE_MAX_REQUESTS_SINCE_SUCCESS = 1000
    settings.AUTHDEVICE_NOTIFY_DEVICE_CHANGES = False


def http_post(app: Any, url: str, body: dict[str, Any]) -> Callable[[], tuple[int, Any]]:
    def call() -> tuple[int, Any]:
        response = APIClient().post(url, body, format="json", **headers(app))
        return response.status_code, response.json()

    return call


def http_get(app: Any, url: str) -> Callable[[], tuple[int, Any]]:
    def call() -> tuple[int, Any]:
        response = APIClient().get(url, **headers(app))
        return response.status_code, response.json()

    return call


@pytest.fixture
def uid(identity):
    return identity.client_user_id


@pytest.fixture
def phones(identity, application):
    pair = Phone.new("rn"), Phone.new("ios")
    for phone in pair:
        device_flows.enrol_device(
            identity=identity,
            public_key=phone.public_key,
            algorithm=phone.algorithm,
            application=application,
        )
    return pair


def new_pending(identity: Any, application: Any, ts: str) -> dict[str, Any]:
    row = event_flows.create_pending_event(
        identity=identity, application=application, event="LOGIN", client_timestamp=ts
    )
    # Devices sign the pending event's own (server-chosen) timestamp, as the SDKs do.
    return {
        "ID": row.pk,
        "event": "LOGIN",
        "ip": "",
        "location": "",
        "timestamp": row.client_timestamp,
    }


def test_c01_approve_vs_reject_exactly_one_terminal_state(identity, application, uid, phones):
    approver, rejecter = phones
    base = int(now_ts())
    for round_ in range(20):
        event = new_pending(identity, application, str(base - round_))
        url = f"/api/v0/event/respond/{event['ID']}"
        results = race(
            http_post(application, url, respond_body(application, uid, approver, event, True)),
            http_post(application, url, respond_body(application, uid, rejecter, event, False)),
        )
        statuses = sorted(status for status, _ in results)
        assert statuses == [200, 409], results
        winner = next(body for status, body in results if status == 200)
        row = AuthEvent.objects.get(pk=event["ID"])
        assert row.state == ("approved" if winner["approved"] else "rejected")
        # Tokens iff approved: two pollers at once, at most one set, none if rejected.
        polls = race(
            http_get(application, f"/api/v0/event/get/{event['ID']}?oauth_token=true"),
            http_get(application, f"/api/v0/event/get/{event['ID']}?oauth_token=true"),
        )
        handed = [body for status, body in polls if status == 200 and "oauth_token" in body]
        assert len(handed) == (1 if row.state == "approved" else 0), polls
        row.refresh_from_db()
        if row.state == "approved":
            assert RefreshToken.objects.filter(family=row.token_family).count() == 1
        else:
            assert row.token_family is None and row.tokens_handed_out_at is None


def test_c02_double_approve_mints_one_token_set(identity, application, uid, phones):
    a, b = phones
    base = int(now_ts())
    before = RefreshToken.objects.count()
    for round_ in range(10):
        event = new_pending(identity, application, str(base - round_))
        url = f"/api/v0/event/respond/{event['ID']}"
        results = race(
            http_post(application, url, respond_body(application, uid, a, event)),
            http_post(application, url, respond_body(application, uid, b, event)),
        )
        assert sorted(status for status, _ in results) == [200, 409], results
        polls = race(
            *[
                http_get(application, f"/api/v0/event/get/{event['ID']}?oauth_token=true")
                for _ in range(4)
            ]
        )
        assert all(status == 200 for status, _ in polls), polls
        assert sum("oauth_token" in body for _, body in polls) == 1
    assert RefreshToken.objects.count() == before + 10


def test_d02_double_qr_redemption_enrols_one_device(identity, application, uid, phones):
    a, b = phones
    base = int(now_ts())
    for round_ in range(10):
        newcomer = Phone.new("rn")
        ts_a, ts_b = str(base - 2 * round_), str(base - 2 * round_ - 1)
        results = race(
            http_post(
                application, "/api/v0/event/create", qr_body(application, uid, a, newcomer, ts_a)
            ),
            http_post(
                application, "/api/v0/event/create", qr_body(application, uid, b, newcomer, ts_b)
            ),
        )
        statuses = Counter(status for status, _ in results)
        assert set(statuses) <= {200, 409} and statuses[200] >= 1, results
        fingerprint = device_flows.parse_key(newcomer.public_key).fingerprint
        assert TrustedDevice.objects.filter(fingerprint=fingerprint).count() == 1


def test_b01_concurrent_replays_of_one_signed_login(identity, application, uid, phones):
    a, _ = phones
    body = login_body(application, uid, a)
    results = race(
        *[http_post(application, "/api/v0/event/create?oauth_token=true", body) for _ in range(8)]
    )
    statuses = Counter(status for status, _ in results)
    assert statuses == Counter({200: 1, 400: 7}), results
    assert all(body["type"] == "replayed" for status, body in results if status == 400)
    assert AuthEvent.objects.filter(event="LOGIN", state="approved").count() == 1
