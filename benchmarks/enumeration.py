"""Does the time of an answer tell whether an account exists? (security.md J03)

    .venv/bin/python benchmarks/enumeration.py [--samples 200] [--doors code,approval,...]

Each door that takes an identifier from anybody is asked, in process (Django's WSGI
handler, no network to blur the difference), about three kinds of identifier: an account
with a trusted device, an account without one, and no account. The samples are
interleaved (one of each kind per round, in a shuffled order), so drift of the machine
falls on all three alike. For each door and each pair of kinds it prints the medians and
a two-sided Mann-Whitney U test; J03 asks for p >= 0.01 and medians within 5 ms. The exit
status is 1 if any pair fails.

The site is the example site's settings on a temporary SQLite database, with Celery
publishing to an in-memory broker as production publishes to Redis (the sends and the
resolution of approval requests run in a worker, never in the request); the rate limits
are lifted, not switched off. Polls of approval requests are timed after the worker's
part has run (``native.resolve_approval``), as an outsider polling would find them.
``tests/test_enumeration_paths.py`` asserts the cause, deterministically: the same SQL
statements, cache calls and answers for all three kinds.
"""

from __future__ import annotations

import argparse
import gc
import math
import os
import random
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.server import site_env

KINDS = ("device", "no device", "unknown")
IDENTIFIERS = {
    "device": "alice@example.com",
    "no device": "carol@example.com",
    "unknown": "nobody@example.com",
}
#: J03's bounds.
ALPHA = 0.01
MAX_MEDIAN_GAP_MS = 5.0


def mann_whitney_u(a: list[float], b: list[float]) -> float:
    """Two-sided p-value of the Mann-Whitney U test (normal approximation with tie
    correction and continuity correction; fine for the sample sizes used here)."""
    n1, n2 = len(a), len(b)
    pooled = sorted([(v, 0) for v in a] + [(v, 1) for v in b])
    ranks = [0.0] * len(pooled)
    ties = 0.0
    i = 0
    while i < len(pooled):
        j = i
        while j + 1 < len(pooled) and pooled[j + 1][0] == pooled[i][0]:
            j += 1
        rank = (i + j) / 2 + 1
        for k in range(i, j + 1):
            ranks[k] = rank
        t = j - i + 1
        ties += t**3 - t
        i = j + 1
    r1 = sum(r for r, (_, group) in zip(ranks, pooled, strict=True) if group == 0)
    u1 = r1 - n1 * (n1 + 1) / 2
    mu = n1 * n2 / 2
    n = n1 + n2
    sigma = math.sqrt(n1 * n2 / 12 * ((n + 1) - ties / (n * (n - 1))))
    if sigma == 0:
        return 1.0
    z = (abs(u1 - mu) - 0.5) / sigma
    return math.erfc(max(z, 0.0) / math.sqrt(2))


@dataclass
class Door:
    name: str
    #: Makes one request about ``identifier`` and returns its status code.
    ask: Callable[[str], int]
    #: Work between samples that is not timed (None: nothing).
    prepare: Callable[[str], Any] | None = None


def _doors(context: dict[str, Any]) -> dict[str, Door]:
    import json

    from django.test import Client

    from authdevice.flows import native

    api = Client(HTTP_API_KEY_ID=context["api_key_id"])
    page = Client()  # CSRF checks are the test client's to skip; the middleware still runs

    def post(path: str, body: dict[str, Any]) -> Any:
        return api.post(path, data=json.dumps(body), content_type="application/json")

    def code(identifier: str) -> int:
        return post("/api/v1/auth/code", {"identifier": identifier}).status_code

    def approval(identifier: str) -> int:
        return post("/api/v1/approvals", {"identifier": identifier}).status_code

    def page_code(identifier: str) -> int:
        return page.post("/signin/", {"identifier": identifier}).status_code

    def page_approval(identifier: str) -> int:
        return page.post("/signin/approve/", {"identifier": identifier, "next": ""}).status_code

    started: dict[str, dict[str, Any]] = {}

    def start_to_poll(identifier: str) -> None:
        body = post("/api/v1/approvals", {"identifier": identifier}).json()
        native.resolve_approval(int(body["event_id"]))  # the worker's part, done
        started[identifier] = body

    def poll(identifier: str) -> int:
        body = started[identifier]
        return api.get(
            f"/api/v1/approvals/{body['event_id']}", HTTP_X_POLL_SECRET=body["poll_secret"]
        ).status_code

    return {
        "code": Door("POST /api/v1/auth/code", code),
        "approval": Door("POST /api/v1/approvals", approval),
        "poll": Door("GET /api/v1/approvals/<id> (first poll)", poll, start_to_poll),
        "page-code": Door("POST /signin/ (code)", page_code),
        "page-approval": Door("POST /signin/approve/", page_approval),
    }


def _seed() -> dict[str, Any]:
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from authdevice.flows.applications import create_application
    from authdevice.flows.devices import enrol_device
    from authdevice.flows.identities import add_identifier
    from tests.devicekit import Browser

    call_command("migrate", verbosity=0, interactive=False)
    app, _secret = create_application(name="enumeration", redirect_urls=[])
    users = {}
    for kind in ("device", "no device"):
        email = IDENTIFIERS[kind]
        user = get_user_model().objects.create_user(username=email.split("@")[0], email=email)
        add_identifier(user, "EMAIL", email, verified=True)
        users[kind] = user
    enrol_device(
        identity=users["device"].authdevice_identity,
        public_key=Browser().public_key,
        algorithm="EC",
        application=app,
    )
    return {"api_key_id": app.api_key_id}


def measure(door: Door, samples: int, warm_up: int = 20) -> dict[str, list[float]]:
    """Seconds per request for each kind, interleaved in shuffled rounds."""
    from django.core.cache import cache

    times: dict[str, list[float]] = {kind: [] for kind in KINDS}
    rng = random.Random(0)
    for round_ in range(warm_up + samples):
        order = list(KINDS)
        rng.shuffle(order)
        for kind in order:
            identifier = IDENTIFIERS[kind]
            if door.prepare is not None:
                door.prepare(identifier)
            cache.clear()  # every request starts from the same limiter state
            # ... and the same heap: work done untimed (``prepare``, which in production
            # runs in a worker process) must not leave a collection to the timed request.
            gc.collect()
            began = time.perf_counter()
            status = door.ask(identifier)
            elapsed = time.perf_counter() - began
            if status >= 500 or status == 429:
                raise SystemExit(f"{door.name}: {kind} answered {status}")
            if round_ >= warm_up:
                times[kind].append(elapsed)
    return times


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--samples", type=int, default=200, help="timed requests per kind and door")
    p.add_argument(
        "--doors",
        default="code,approval,poll,page-code,page-approval",
        help="comma-separated: code, approval, poll, page-code, page-approval",
    )
    args = p.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="authdevice-enumeration-"))
    try:
        os.environ.update(
            site_env(
                db_path=workdir / "enumeration.sqlite3",
                secret_key=secrets.token_urlsafe(50),
                issuer="http://testserver",
            )
        )
        os.environ.update(
            DEBUG="0",
            ALLOWED_HOSTS="testserver",
            CELERY_BROKER_URL="memory://",
            AUTHDEVICE_MAX_OUTSTANDING_EVENTS="1000000000",
            AUTHDEVICE_MAX_REQUESTS_SINCE_SUCCESS="1000000000",
            AUTHDEVICE_GEOLOCATION_BACKEND="",
        )
        from benchmarks import seeder

        seeder._django()
        context = _seed()
        doors = _doors(context)
        failed = False
        print(
            f"{'door':<40} {'kinds compared':<22} {'median µs':>20} {'Δ µs':>7} "
            f"{'p (Mann-Whitney)':>17}  verdict"
        )
        for key in [k.strip() for k in args.doors.split(",") if k.strip()]:
            door = doors[key]
            times = measure(door, args.samples)
            medians = {kind: statistics.median(v) * 1e6 for kind, v in times.items()}
            for a, b in (("device", "unknown"), ("no device", "unknown"), ("device", "no device")):
                p_value = mann_whitney_u(times[a], times[b])
                gap = medians[a] - medians[b]
                same = p_value >= ALPHA and abs(gap) < MAX_MEDIAN_GAP_MS * 1000
                failed |= not same
                print(
                    f"{door.name:<40} {a + ' / ' + b:<22} "
                    f"{medians[a]:>9.0f} /{medians[b]:>8.0f} {gap:>+7.0f} {p_value:>17.3f}  "
                    f"{'same' if same else 'DIFFERENT'}"
                )
        print(
            f"\n{args.samples} interleaved samples per kind; J03: p >= {ALPHA} and medians "
            f"within {MAX_MEDIAN_GAP_MS:.0f} ms."
        )
        return 1 if failed else 0
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
