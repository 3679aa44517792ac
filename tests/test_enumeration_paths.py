"""security.md J03, by construction: the doors that take an identifier from anybody run the
same SQL statements, make the same cache and broker calls, and give the same answer,
whether the identifier has an account, has one without a trusted device, or has none.

Equal work is what makes equal time: the statements and calls are compared exactly here
(deterministic), and ``benchmarks/enumeration.py`` measures the time itself (interleaved
samples and a Mann-Whitney U test, as J03 asks) where wall clocks belong. Celery publishes
to an in-memory broker, as production publishes to Redis: the sends and the approval
request's resolution run in a worker, not in the request.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import connection
from django.test import Client

from authdevice.flows import native
from authdevice.flows.devices import enrol_device
from authdevice.flows.identities import add_identifier
from authdevice.models import AuthEvent, Challenge
from tests.devicekit import Browser

pytestmark = pytest.mark.django_db(transaction=True)

WITH_DEVICE, NO_DEVICE, UNKNOWN = "alice@example.com", "carol@example.com", "nobody@example.com"
WHO = (WITH_DEVICE, NO_DEVICE, UNKNOWN)
#: The first request of a process fills caches (the application, compiled SQL): made
#: before the compared ones, for an address nobody compares.
WARM_UP = "warm-up@example.com"


@pytest.fixture(autouse=True)
def _setup(settings, identity, application) -> Iterator[None]:
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.AUTHDEVICE_GEOLOCATION_BACKEND = None
    enrol_device(
        identity=identity,
        public_key=Browser().public_key,
        algorithm="EC",
        application=application,
    )
    carol = get_user_model().objects.create_user(username="carol", email=NO_DEVICE)
    add_identifier(carol, "EMAIL", NO_DEVICE, verified=True)
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def broker(celery_broker) -> Any:
    app = celery_broker("memory://")
    with app.connection_for_write() as conn:
        conn.default_channel.queue_purge("celery")
    return app


def published(app: Any) -> list[str]:
    """Names of the tasks waiting in the in-memory broker (and empties it)."""
    names = []
    with app.connection_for_write() as conn:
        queue = conn.SimpleQueue("celery")
        while True:
            try:
                message = queue.get(block=False)
            except queue.Empty:
                break
            names.append(message.headers["task"])
            message.ack()
        queue.close()
    return names


class CacheCalls:
    """The calls one request makes on the rate-limit cache, by method name."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def __enter__(self) -> CacheCalls:
        from django.core.cache import caches

        from authdevice.conf import app_settings

        store = caches[app_settings.RATELIMIT_CACHE]
        self._patched = []
        for name in ("get", "get_many", "set", "add", "incr", "delete", "set_many", "touch"):
            original = getattr(store, name)

            def wrapper(*args: Any, _original: Any = original, _name: str = name, **kw: Any):
                self.calls.append(_name)
                return _original(*args, **kw)

            self._patched.append((store, name))
            setattr(store, name, wrapper)
        return self

    def __exit__(self, *exc: object) -> None:
        for store, name in self._patched:
            delattr(store, name)


def traced(call: Callable[[], Any]) -> tuple[Any, list[str], list[str]]:
    """The response, the SQL statements (text, no parameters) and the cache calls."""
    statements: list[str] = []

    def record(execute: Callable[..., Any], sql: str, params: Any, many: bool, ctx: Any) -> Any:
        statements.append(" ".join(str(sql).split()))
        return execute(sql, params, many, ctx)

    with CacheCalls() as calls, connection.execute_wrapper(record):
        response = call()
    return response, statements, calls.calls


def masked(body: bytes, values: dict[str, Any]) -> str:
    """The body with its per-request random values replaced by their names and lengths."""
    text = body.decode()
    for key, value in values.items():
        if isinstance(value, str | int) and str(value):
            text = text.replace(json.dumps(value), f"<{key}:{len(str(value))}>")
    return text


def api(application: Any) -> Client:
    return Client(HTTP_API_KEY_ID=application.api_key_id)


def post_json(client: Client, path: str, body: dict[str, Any]) -> Any:
    return client.post(path, data=json.dumps(body), content_type="application/json")


#: Headers whose values are per request (compared by the masks and lengths instead) or
#: carry the current second (``Expires`` of a no-store page): names compared, not values.
VARYING_HEADERS = {"Set-Cookie", "Location", "Expires", "Date", "Last-Modified"}


def headers(response: Any) -> list[tuple[str, str]]:
    return sorted((k, "" if k in VARYING_HEADERS else v) for k, v in response.items())


def assert_alike(answers: dict[str, tuple[Any, list[str], list[str]]], mask: Callable) -> None:
    first = next(iter(answers.values()))
    for who, (response, statements, calls) in answers.items():
        assert response.status_code == first[0].status_code, who
        assert statements == first[1], who
        assert calls == first[2], who
        assert headers(response) == headers(first[0]), who
        assert len(response.content) == len(first[0].content), who
        assert mask(response) == mask(first[0]), who


@pytest.mark.parametrize(
    "extra", [{}, {"code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"}]
)
def test_code_request_is_the_same_work_for_everyone(broker, application, extra):
    client = api(application)
    post_json(client, "/api/v1/auth/code", {"identifier": WARM_UP, **extra})
    answers = {
        who: traced(
            lambda who=who: post_json(client, "/api/v1/auth/code", {"identifier": who, **extra})
        )
        for who in WHO
    }
    assert_alike(answers, lambda r: masked(r.content, r.json()))
    assert answers[UNKNOWN][1], "no statement was traced"
    assert published(broker) == ["authdevice.send_challenge"] * 4
    assert Challenge.objects.count() == 4


def test_approval_request_is_the_same_work_for_everyone(broker, application, identity):
    client = api(application)
    warm = post_json(client, "/api/v1/approvals", {"identifier": WARM_UP}).json()
    client.get(f"/api/v1/approvals/{warm['event_id']}", HTTP_X_POLL_SECRET=warm["poll_secret"])
    published(broker)
    answers = {
        who: traced(lambda who=who: post_json(client, "/api/v1/approvals", {"identifier": who}))
        for who in WHO
    }
    assert {r.status_code for r, _, _ in answers.values()} == {201}
    assert_alike(answers, lambda r: masked(r.content, r.json()))
    # One INSERT and nothing that reads a user, an identifier or a device.
    statements = answers[UNKNOWN][1]
    assert len([s for s in statements if s.startswith("INSERT")]) == 1
    assert not any(re.search(r"identifier|trusteddevice|auth_user", s) for s in statements)
    assert published(broker) == ["authdevice.resolve_approval_request"] * 3

    # The worker's part: only the owner with a trusted device gets the request.
    started = {who: r.json() for who, (r, _, _) in answers.items()}
    outcomes = {who: native.resolve_approval(int(s["event_id"])) for who, s in started.items()}
    assert outcomes == {
        WITH_DEVICE: "resolved",
        NO_DEVICE: native.UNRESOLVED_NO_DEVICE,
        UNKNOWN: native.UNRESOLVED_UNKNOWN,
    }
    assert [e.pk for e in native.pending_for(identity)] == [int(started[WITH_DEVICE]["event_id"])]
    # A late or repeated delivery changes nothing.
    assert native.resolve_approval(int(started[WITH_DEVICE]["event_id"])) == "gone"

    # Polling: the same row read and the same pacing UPDATE for all three.
    polls = {
        who: traced(
            lambda s=s: client.get(
                f"/api/v1/approvals/{s['event_id']}", HTTP_X_POLL_SECRET=s["poll_secret"]
            )
        )
        for who, s in started.items()
    }
    assert {r.json()["error"] for r, _, _ in polls.values()} == {"authorization_pending"}
    assert_alike(polls, lambda r: r.content.decode())


def test_approval_page_is_the_same_work_for_everyone(broker):
    def start(who: str) -> Any:
        client = Client(enforce_csrf_checks=True)
        page = client.get("/signin/")
        token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page.content)
        assert token
        return traced(
            lambda: client.post(
                "/signin/approve/",
                {"identifier": who, "next": "", "csrfmiddlewaretoken": token.group(1).decode()},
            )
        )

    start(WARM_UP)
    published(broker)
    answers = {who: start(who) for who in WHO}
    assert {r.status_code for r, _, _ in answers.values()} == {303}
    assert_alike(answers, lambda r: re.sub(r"flow=[\w-]+", "flow=", r["Location"]))
    assert published(broker) == ["authdevice.resolve_approval_request"] * 3
    assert AuthEvent.objects.filter(user__isnull=True).count() == 4


def test_a_broker_outage_answers_503_for_everyone(celery_broker, application):
    from tests.services import free_port

    celery_broker(f"redis://127.0.0.1:{free_port()}/0")
    client = api(application)
    for who in WHO:
        response = post_json(client, "/api/v1/approvals", {"identifier": who})
        assert response.status_code == 503, response.content
        assert response.json() == {
            "error": "temporarily_unavailable",
            "message": "Sign-in approval is unavailable right now. Please try again in a minute.",
        }
    # The requests it could not hand over are ended, not left pending.
    requests = AuthEvent.objects.filter(event="LOGIN")
    assert requests.count() == 3
    assert set(requests.values_list("state", flat=True)) == {"expired"}
