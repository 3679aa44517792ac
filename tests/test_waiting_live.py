"""Waiting for an approval across real processes: the example site under uvicorn (2
workers, the waiting endpoints) and gunicorn (2 workers, the approving POSTs) on
127.0.0.1, sharing one SQLite file; with Redis pub/sub and without it (database re-check).

A long-poll (``?wait=``), a server-sent-events stream and Cotter's
``GET /api/v0/event/get/<id>?wait=`` each learn of an approval and of a rejection made by
another process. No timing is asserted: only that the waiter returns the decided status.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.devicekit import Browser, Phone, login_message, now_ts
from tests.live import CELERY_WORKER, PY, ROOT, site_env
from tests.services import free_port, require, wait_for_port

pytestmark = pytest.mark.slow

TIMEOUT = 40  # seconds: every HTTP call and every wait in this module is bounded
WAIT = 20  # the long-polls' ?wait=; the approval comes long before

SETUP_USER = """
import json, os
from django.contrib.auth import get_user_model
from authdevice.flows.devices import enrol_device
from authdevice.flows.identities import add_identifier
user = get_user_model().objects.create_user(username="alice", email="alice@example.com")
add_identifier(user, "EMAIL", "alice@example.com", verified=True)
identity = user.authdevice_identity
enrol_device(identity=identity, public_key=os.environ["T_BROWSER_KEY"], algorithm="EC")
enrol_device(identity=identity, public_key=os.environ["T_PHONE_KEY"], algorithm="ED25519")
print(json.dumps({"public_id": str(identity.public_id)}))
"""


@dataclass
class Servers:
    asgi: str  # uvicorn: the waiting endpoints
    wsgi: str  # gunicorn: everything else
    origin: str
    api_key_id: str
    public_id: str
    browser: Browser
    phone: Phone
    logs: list[Path]

    @property
    def handle(self) -> str:
        import hashlib

        return hashlib.sha256(self.browser.public_key.encode()).hexdigest()

    def headers(self, **extra: str) -> dict[str, str]:
        return {"API_KEY_ID": self.api_key_id, **extra}


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # the group this test started
        proc.wait(timeout=5)


@contextlib.contextmanager
def running_site(redis_url: str | None) -> Iterator[Servers]:
    tmp = Path(tempfile.mkdtemp(prefix="authdevice-waiting-"))
    asgi_port, wsgi_port = free_port(), free_port()
    origin = f"http://127.0.0.1:{wsgi_port}"
    browser, phone = Browser(), Phone.new("rn")
    overrides = {
        "AUTHDEVICE_ISSUER": origin,
        "AUTHDEVICE_MAX_OUTSTANDING_EVENTS": "50",
        "AUTHDEVICE_MAX_REQUESTS_SINCE_SUCCESS": "100",
        "AUTHDEVICE_NOTIFY_DEVICE_CHANGES": "0",
        "AUTHDEVICE_POLL_INTERVAL": "1",
        "T_BROWSER_KEY": browser.public_key,
        "T_PHONE_KEY": phone.public_key,
    }
    if redis_url:
        overrides |= {"AUTHDEVICE_REDIS_URL": redis_url, "REDIS_URL": redis_url}
    env = site_env(tmp, **overrides)
    if not redis_url:
        env.pop("AUTHDEVICE_REDIS_URL", None)

    def manage(*args: str) -> str:
        return subprocess.run(
            [PY, "manage.py", *args],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
            text=True,
            timeout=120,
        ).stdout

    manage("migrate", "--noinput")
    created = json.loads(manage("authdevice_create_application", "--name", "Live", "--json"))
    user = json.loads(manage("shell", "-c", SETUP_USER).strip().splitlines()[-1])
    commands = {
        "gunicorn": [
            PY,
            "-m",
            "gunicorn",
            "-c",
            "project/gunicorn.conf.py",
            "--bind",
            f"127.0.0.1:{wsgi_port}",
            "--workers",
            "2",
            "project.wsgi:application",
        ],
        "uvicorn": [
            PY,
            "-m",
            "uvicorn",
            "project.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(asgi_port),
            "--workers",
            "2",
            "--lifespan",
            "off",
            "--timeout-graceful-shutdown",
            "3",
        ],
    }
    if redis_url:
        # Celery publishes to Redis here: a real worker finds the owner of each approval
        # request (native.resolve_approval), as in production.
        commands["celery"] = CELERY_WORKER
    procs: list[subprocess.Popen[bytes]] = []
    logs: list[Path] = []
    try:
        for name, cmd in commands.items():
            log = tmp / f"{name}.log"
            logs.append(log)
            with open(log, "wb") as out:
                procs.append(
                    subprocess.Popen(
                        cmd,
                        cwd=ROOT,
                        env=env,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )
        wait_for_port(wsgi_port, timeout=30, proc=procs[0])
        wait_for_port(asgi_port, timeout=30, proc=procs[1])
        yield Servers(
            asgi=f"http://127.0.0.1:{asgi_port}",
            wsgi=f"http://127.0.0.1:{wsgi_port}",
            origin=origin,
            api_key_id=created["api_key_id"],
            public_id=user["public_id"],
            browser=browser,
            phone=phone,
            logs=logs,
        )
    finally:
        for proc in procs:
            _stop(proc)


@pytest.fixture(
    scope="module",
    params=[pytest.param("redis", marks=pytest.mark.redis), "database"],
)
def site(request: pytest.FixtureRequest) -> Iterator[Servers]:
    redis_url = require("redis") if request.param == "redis" else None
    with running_site(redis_url) as servers:
        yield servers


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(max_workers=2) as executor:
        yield executor


# -- the native protocol --------------------------------------------------------------------------


def signed(site: Servers, purpose: str, challenge: str, event_id: str, decision: str) -> bytes:
    parts = [purpose, site.origin, challenge, str(int(event_id)), decision, ""]
    return b"authdevice/v1\x00" + b"\x00".join(p.encode() for p in parts)


def start(site: Servers) -> dict[str, Any]:
    response = requests.post(
        f"{site.wsgi}/api/v1/approvals",
        json={"identifier": "alice@example.com"},
        headers=site.headers(),
        timeout=TIMEOUT,
    )
    assert response.status_code == 201, response.text
    return response.json()


def decide(site: Servers, started: dict[str, Any], approve: bool) -> None:
    """The trusted device approves or rejects, through gunicorn (another process)."""
    event_id = started["event_id"]
    # With Redis, a worker hands the request to the devices: a device sees it a moment
    # after the requester got its answer (as a device polling its pending list would).
    deadline = time.monotonic() + TIMEOUT
    while True:
        challenge = requests.post(
            f"{site.wsgi}/api/v1/approvals/{event_id}/challenge",
            json={"device": site.handle},
            headers=site.headers(),
            timeout=TIMEOUT,
        )
        if challenge.status_code != 404 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert challenge.status_code == 200, challenge.text
    value = challenge.json()["challenge"]
    decision = "approve" if approve else "reject"
    response = requests.post(
        f"{site.wsgi}/api/v1/approvals/{event_id}/decision",
        json={
            "device": site.handle,
            "challenge": value,
            "signature": site.browser.sign(signed(site, "approve", value, event_id, decision)),
            "approve": approve,
            "match_code": started["match_code"],
        },
        headers=site.headers(),
        timeout=TIMEOUT,
    )
    assert response.status_code == 200, response.text


def long_poll(site: Servers, started: dict[str, Any]) -> requests.Response:
    return requests.get(
        f"{site.asgi}/api/v1/approvals/{started['event_id']}?wait={WAIT}",
        headers=site.headers(**{"X-Poll-Secret": started["poll_secret"]}),
        timeout=TIMEOUT,
    )


def park() -> None:
    """Give the waiter a moment to park (correctness does not depend on it: waiters
    subscribe, then re-check, so an early decision is seen too)."""
    time.sleep(0.3)


def test_long_poll_learns_of_an_approval(site, pool):
    started = start(site)
    waiter = pool.submit(long_poll, site, started)
    park()
    decide(site, started, approve=True)
    response = waiter.result(timeout=TIMEOUT)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "approved" and body["access_token"]
    # Collected once: the plain poll on gunicorn now says approved, without tokens.
    again = requests.get(
        f"{site.wsgi}/api/v1/approvals/{started['event_id']}",
        headers=site.headers(**{"X-Poll-Secret": started["poll_secret"]}),
        timeout=TIMEOUT,
    )
    assert again.status_code == 200 and "access_token" not in again.json()


def test_long_poll_learns_of_a_rejection(site, pool):
    started = start(site)
    waiter = pool.submit(long_poll, site, started)
    park()
    decide(site, started, approve=False)
    response = waiter.result(timeout=TIMEOUT)
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "access_denied"


def read_events(response: requests.Response) -> Iterator[dict[str, Any]]:
    for line in response.iter_lines(decode_unicode=True):
        if line and line.startswith("data: "):
            yield json.loads(line[len("data: ") :])


@pytest.mark.parametrize(("approve", "outcome"), [(True, "approved"), (False, "access_denied")])
def test_event_stream_learns_of_the_decision(site, approve, outcome):
    started = start(site)
    with requests.get(
        f"{site.asgi}/api/v1/approvals/{started['event_id']}",
        headers=site.headers(
            **{"X-Poll-Secret": started["poll_secret"], "Accept": "text/event-stream"}
        ),
        stream=True,
        timeout=(5, TIMEOUT),
    ) as response:
        assert response.status_code == 200
        assert response.headers["Content-Type"].startswith("text/event-stream")
        events = read_events(response)
        assert next(events) == {"status": "authorization_pending"}
        decide(site, started, approve=approve)
        assert next(events) == {"status": outcome}
        assert list(events) == []  # the stream ends once decided
    collect = requests.get(
        f"{site.wsgi}/api/v1/approvals/{started['event_id']}",
        headers=site.headers(**{"X-Poll-Secret": started["poll_secret"]}),
        timeout=TIMEOUT,
    )
    if approve:
        assert collect.status_code == 200 and collect.json()["access_token"]
    else:
        assert collect.status_code == 400 and collect.json()["error"] == "access_denied"


def test_waiting_endpoints_refuse_strangers_at_once(site):
    started = start(site)
    for headers in (
        site.headers(**{"X-Poll-Secret": "wrong"}),
        site.headers(**{"X-Poll-Secret": "wrong", "Accept": "text/event-stream"}),
    ):
        response = requests.get(
            f"{site.asgi}/api/v1/approvals/{started['event_id']}?wait={WAIT}",
            headers=headers,
            timeout=TIMEOUT,
        )
        assert response.status_code == 404
        assert response.json()["error"] == "event_not_found"


# -- Cotter's v0 event poll with ?wait= -----------------------------------------------------------


def v0_pending(site: Servers) -> dict[str, Any]:
    body = {
        "user_id": site.public_id,
        "issuer": site.api_key_id,
        "event": "LOGIN",
        "timestamp": now_ts(),
        "method": "TRUSTED_DEVICE",
    }
    response = requests.post(
        f"{site.wsgi}/api/v0/event/create_pending",
        json=body,
        headers=site.headers(),
        timeout=TIMEOUT,
    )
    assert response.status_code == 200, response.text
    return response.json()


def v0_respond(site: Servers, event: dict[str, Any], approved: bool) -> None:
    flag = "true" if approved else "false"
    message = login_message(site.public_id, site.api_key_id, "LOGIN", event["timestamp"], flag)
    response = requests.post(
        f"{site.wsgi}/api/v0/event/respond/{event['ID']}",
        json={
            "user_id": site.public_id,
            "issuer": site.api_key_id,
            "event": "LOGIN",
            "timestamp": now_ts(),
            "method": "TRUSTED_DEVICE",
            "approved": approved,
            "public_key": site.phone.public_key,
            "code": site.phone.sign(message),
        },
        headers=site.headers(),
        timeout=TIMEOUT,
    )
    assert response.status_code == 200, response.text


def v0_wait(site: Servers, event: dict[str, Any]) -> requests.Response:
    return requests.get(
        f"{site.asgi}/api/v0/event/get/{event['ID']}?oauth_token=true&wait={WAIT}",
        headers=site.headers(),
        timeout=TIMEOUT,
    )


@pytest.mark.parametrize("approved", [True, False])
def test_cotter_event_poll_waits_for_the_decision(site, pool, approved):
    event = v0_pending(site)
    assert event["new"] is True
    waiter = pool.submit(v0_wait, site, event)
    park()
    v0_respond(site, event, approved)
    response = waiter.result(timeout=TIMEOUT)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["ID"] == event["ID"] and body["new"] is False
    assert body["approved"] is approved
    assert ("oauth_token" in body) is approved
    # Without ?wait= the same endpoint is the plain Cotter poll (gunicorn or uvicorn alike).
    plain = requests.get(
        f"{site.wsgi}/api/v0/event/get/{event['ID']}", headers=site.headers(), timeout=TIMEOUT
    )
    assert plain.status_code == 200 and plain.json()["approved"] is approved
