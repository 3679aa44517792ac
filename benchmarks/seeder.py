"""Seeds the benchmark database; runs as a child process of ``benchmarks/run.py``.

``python -m benchmarks.seeder`` with the same environment as the server (DATABASE_URL,
SECRET_KEY, AUTHDEVICE_ISSUER, the lifted rate limits). It reads one JSON command per line
on stdin and answers one JSON line on stdout:

* ``{"cmd": "setup"}``: migrate, create an application (with a redirect URL), a user with
  a verified email and one token set. Answers the template context of the endpoint specs
  (``api_key_id``, ``access_token``, ``redirect_url``, ...).
* ``{"cmd": "produce", "kind": K, "count": N, "out": PATH}``: write N fresh one-use
  credentials of kind K to PATH, one per line (see :data:`PRODUCERS`).
* ``{"cmd": "scale_fill", "rows": N}``: grow the auth event table to N rows (scale check).
* ``{"cmd": "time_pending", "calls": N, "rounds": R}``: in-process µs per call of
  ``newest_pending_event`` for the scale user, and the query plan.
* ``{"cmd": "quit"}``.

It stays alive for the whole run so the harness can top up one-use credentials between
timed runs (never during one), sized from the rate it has measured.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import secrets
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

BATCH = 500  # credentials per transaction
MAX_COUNT = 1_000_000
MAX_SCALE_ROWS = 5_000_000
SCALE_BATCH = 5_000  # bulk_create batches (Django splits them into statements itself)
SCALE_ORM_ROWS = 20_000  # written with bulk_create; more are copied with executemany
SCALE_COPY_BATCH = 50_000
SCALE_STATES = ["approved"] * 7 + ["rejected", "expired", "pending"]
REDIRECT_URL = "http://127.0.0.1/benchmark/callback"
LOCMEM_CHANNEL = "authdevice.channels.locmem.LocmemBackend"
# Device sign-in: every credential signs a timestamp in [now - PAST, now + FUTURE] (the
# server accepts +-300 s), so each one stays valid for 300 - PAST seconds at least.
LOGIN_PAST = 40
LOGIN_FUTURE = 290
LOGIN_DEVICES = 16  # enrolled up front; more are enrolled when a pool needs them
RESPOND_USERS = 16
PENDING_LIFETIME = timedelta(seconds=600)
# Pending events to approve carry made-up client timestamps from here on, far from any
# real timestamp, so no approval collides with a sign-in signature in the replay cache.
RESPOND_TIMESTAMP_BASE = 1_600_000_000

_state: dict[str, Any] = {}


def _django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.settings")
    import django

    django.setup()


def setup() -> dict[str, Any]:
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import transaction

    from authdevice.flows.applications import create_application
    from authdevice.flows.identities import add_identifier
    from authdevice.flows.tokens import issue_token_set

    call_command("migrate", verbosity=0, interactive=False)
    email = "bench@example.com"
    with transaction.atomic():
        app, _secret = create_application(name="benchmark", redirect_urls=[REDIRECT_URL])
        user = get_user_model().objects.create_user(username="bench", email=email)
        identifier = add_identifier(user, "EMAIL", email, verified=True)
        identity = user.authdevice_identity
        tokens = issue_token_set(
            identity=identity, application=app, auth_method="OTP", identifier=email
        )
    _state.update(
        application=app,
        identity=identity,
        identifier=email,
        identifier_row=identifier,
        nonce=secrets.token_hex(4),
        counter=itertools.count(),
    )
    return {
        "api_key_id": app.api_key_id,
        "access_token": tokens.access_token,
        "identifier": email,
        "redirect_url": REDIRECT_URL,
        "scale_user_id": str(identity.public_id),
    }


def _line(fields: dict[str, Any]) -> str:
    return json.dumps(fields, separators=(",", ":")) + "\n"


def produce_refresh_tokens(count: int, out: TextIO) -> None:
    """Refresh tokens from ``count`` separate sign-ins (one family each), never used."""
    from django.db import transaction

    from authdevice.flows.tokens import issue_token_set

    app, identity, email = _state["application"], _state["identity"], _state["identifier"]
    done = 0
    while done < count:
        n = min(BATCH, count - done)
        with transaction.atomic():
            lines = [
                issue_token_set(
                    identity=identity, application=app, auth_method="OTP", identifier=email
                ).refresh_token
                for _ in range(n)
            ]
        out.write("".join(f"{line}\n" for line in lines))
        done += n


def produce_identifiers(count: int, out: TextIO) -> None:
    """Email addresses never used before (code requests: one challenge each)."""
    nonce, counter = _state["nonce"], _state["counter"]
    out.write("".join(f"bench-{nonce}-{next(counter)}@example.com\n" for _ in range(count)))


def _started_challenges(count: int, pkce: bool) -> Iterator[tuple[Any, str, str]]:
    """``(started, code, verifier)`` of ``count`` pending challenges for the seeded user,
    started by ``start_challenge`` through the application (with ``pkce``, each with the
    S256 challenge of its own verifier), the code read back from the locmem outbox (codes
    are only ever sent, stored as an HMAC)."""
    from django.db import transaction
    from django.test import override_settings

    from authdevice.channels import locmem
    from authdevice.flows.codes import _code_hash, start_challenge
    from authdevice.flows.pkce import s256

    app, email = _state["application"], _state["identifier"]
    channels = {"EMAIL": LOCMEM_CHANNEL, "SMS": None, "WHATSAPP": None}
    done = 0
    with override_settings(AUTHDEVICE_CHANNELS=channels):
        while done < count:
            n = min(BATCH, count - done)
            locmem.outbox.clear()
            verifiers = [secrets.token_urlsafe(32) if pkce else "" for _ in range(n)]
            with transaction.atomic():  # the sends run (eagerly) when this commits
                started = [
                    start_challenge(
                        identifier=email,
                        application=app,
                        code_challenge=s256(verifier) if verifier else "",
                    )
                    for verifier in verifiers
                ]
            if len(locmem.outbox) != n:
                raise RuntimeError(f"{len(locmem.outbox)} messages in the outbox, not {n}")
            for s, message, verifier in zip(started, locmem.outbox, verifiers, strict=True):
                code = message.context["code"]
                if _code_hash(code, s.challenge) != s.challenge.code_hash:
                    raise RuntimeError("outbox messages out of order")
                yield s, code, verifier
            done += n
    locmem.outbox.clear()


def _challenge_line(started: Any, code: str) -> str:
    from authdevice.api.v1.serializers import ChallengeIdField

    return _line(
        {
            "challenge_id": ChallengeIdField().to_representation(started.challenge.pk),
            "challenge_secret": started.binding,
            "code": code,
        }
    )


def produce_code_challenges(count: int, out: TextIO) -> None:
    """Pending one-step challenges (no ``code_challenge``): a right code signs in.
    One line: ``{challenge_id, challenge_secret, code}``."""
    for started, code, _ in _started_challenges(count, pkce=False):
        out.write(_challenge_line(started, code))


def produce_pkce_code_challenges(count: int, out: TextIO) -> None:
    """Pending challenges started with a ``code_challenge``: a right code answers with
    an authorization code. The same line as :func:`produce_code_challenges`."""
    for started, code, _ in _started_challenges(count, pkce=True):
        out.write(_challenge_line(started, code))


def produce_code_grants(count: int, out: TextIO) -> None:
    """Authorization codes of the native two-step sign-in: PKCE challenges whose right
    code was checked by ``verify_code_or_grant``. One line:
    ``{challenge_id, authorization_code, code_verifier}``."""
    from authdevice.api.v1.serializers import ChallengeIdField
    from authdevice.flows.codes import Granted, verify_code_or_grant

    app = _state["application"]
    for started, code, verifier in _started_challenges(count, pkce=True):
        granted = verify_code_or_grant(
            challenge_id=started.challenge.pk,
            binding=started.binding,
            code=code,
            application=app,
        )
        if not isinstance(granted, Granted):
            raise RuntimeError("a PKCE challenge signed in without a grant")
        out.write(
            _line(
                {
                    "challenge_id": ChallengeIdField().to_representation(started.challenge.pk),
                    "authorization_code": granted.authorization_code,
                    "code_verifier": verifier,
                }
            )
        )


def produce_authorization_codes(count: int, out: TextIO) -> None:
    """Authorization codes as the hosted page mints them after a sign-in, each with its
    own S256 challenge; one line: ``{challenge_id, authorization_code, code_verifier}``."""
    from django.db import transaction

    from authdevice.flows.pkce import create_authorization_code, s256

    app, identity, row = _state["application"], _state["identity"], _state["identifier_row"]
    done = 0
    while done < count:
        n = min(BATCH, count - done)
        with transaction.atomic():
            for _ in range(n):
                verifier = secrets.token_urlsafe(32)
                code_row, code = create_authorization_code(
                    application=app,
                    identity=identity,
                    identifier=row,
                    auth_method="OTP",
                    redirect_url=REDIRECT_URL,
                    code_challenge=s256(verifier),
                )
                out.write(
                    _line(
                        {
                            "challenge_id": code_row.pk,
                            "authorization_code": code,
                            "code_verifier": verifier,
                        }
                    )
                )
        done += n


@dataclass
class Phone:
    """A user with one enrolled Ed25519 trusted device (the React Native SDK's keys)."""

    uid: str
    private: Any
    public_key: str
    used: set[int] = field(default_factory=set)

    def sign(self, message: str) -> str:
        return base64.b64encode(self.private.sign(message.encode())).decode()


def _new_phone(prefix: str) -> Phone:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519
    from django.contrib.auth import get_user_model
    from django.db import transaction

    from authdevice.flows.devices import enrol_device
    from authdevice.flows.identities import add_identifier

    n = next(_state["counter"])
    email = f"{prefix}-{_state['nonce']}-{n}@example.com"
    private = ed25519.Ed25519PrivateKey.generate()
    raw = private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    public_key = base64.b64encode(raw).decode()
    with transaction.atomic():
        user = get_user_model().objects.create_user(username=email, email=email)
        add_identifier(user, "EMAIL", email, verified=True)
        identity = user.authdevice_identity
        enrol_device(
            identity=identity,
            public_key=public_key,
            algorithm="ED25519",
            name="benchmark phone",
            device_type="benchmark",
            application=_state["application"],
        )
    return Phone(uid=str(identity.public_id), private=private, public_key=public_key)


def _phones(kind: str, minimum: int) -> list[Phone]:
    phones: list[Phone] = _state.setdefault(kind, [])
    while len(phones) < minimum:
        phones.append(_new_phone(kind))
    return phones


def _login_credentials(now: int) -> Iterator[dict[str, Any]]:
    """Fresh (device, timestamp) pairs, round-robin over the devices; each pair is signed
    once (the server accepts a (device, message) pair once)."""
    from authdevice.flows.devices import login_message

    key = _state["application"].api_key_id
    phones = _phones("login", LOGIN_DEVICES)
    for ts in range(now - LOGIN_PAST, now + LOGIN_FUTURE + 1):
        for phone in phones:
            if ts in phone.used:
                continue
            phone.used.add(ts)
            yield {
                "uid": phone.uid,
                "timestamp": str(ts),
                "signature": phone.sign(login_message(phone.uid, key, "LOGIN", str(ts))),
                "public_key": phone.public_key,
            }


def produce_device_logins(count: int, out: TextIO) -> None:
    """Signed trusted-device sign-ins (Cotter B1), spread over enough enrolled devices that
    every (device, timestamp) pair is new and every timestamp is inside the server's window
    for at least 300 - LOGIN_PAST seconds."""
    now = int(time.time())
    window = range(now - LOGIN_PAST, now + LOGIN_FUTURE + 1)
    phones = _phones("login", LOGIN_DEVICES)
    free = sum(len(window) - sum(1 for ts in p.used if ts in window) for p in phones)
    if free < count:  # one more device per window's worth of missing signatures
        _phones("login", len(phones) + -(-(count - free) // len(window)))
    written = 0
    for fields in _login_credentials(now):
        out.write(_line(fields))
        written += 1
        if written == count:
            break
    if written < count:
        raise RuntimeError(f"only {written} of {count} device sign-ins could be signed")


def produce_pending_events(count: int, out: TextIO) -> None:
    """Pending sign-in events of RESPOND_USERS users, each with a distinct client timestamp
    (the approver signs it), and the device's approval of each, signed.

    They are written with ``new_event_row``, the row ``create_pending_event`` writes:
    that flow's push-bombing limits (3 outstanding, 10 an hour) and its one server-chosen
    timestamp per user per second would make thousands of them impossible to seed."""
    from django.db import transaction
    from django.utils import timezone

    from authdevice.flows.devices import login_message
    from authdevice.flows.events import new_event_row
    from authdevice.models import AuthEvent, UserIdentity

    app = _state["application"]
    phones = _phones("respond", RESPOND_USERS)
    identities = {
        str(i.public_id): i
        for i in UserIdentity.objects.select_related("user").filter(
            public_id__in=[p.uid for p in phones]
        )
    }
    stamps: itertools.count[int] = _state.setdefault(
        "respond_ts", itertools.count(RESPOND_TIMESTAMP_BASE)
    )
    done = 0
    while done < count:
        n = min(BATCH, count - done)
        with transaction.atomic():
            expires = timezone.now() + PENDING_LIFETIME
            for i in range(n):
                phone = phones[(done + i) % len(phones)]
                ts = str(next(stamps))
                row = new_event_row(
                    identity=identities[phone.uid],
                    application=app,
                    event="LOGIN",
                    state=AuthEvent.State.PENDING,
                    client_timestamp=ts,
                    reported_ip="127.0.0.1",
                    reported_location="benchmark",
                    expires_at=expires,
                )
                message = login_message(phone.uid, app.api_key_id, "LOGIN", ts, "true")
                out.write(
                    _line(
                        {
                            "event_id": row.pk,
                            "uid": phone.uid,
                            "timestamp": ts,
                            "signature": phone.sign(message),
                            "public_key": phone.public_key,
                        }
                    )
                )
        done += n


#: One-use credential kinds an :class:`~benchmarks.endpoints.Endpoint` may consume.
PRODUCERS: dict[str, Callable[[int, TextIO], None]] = {
    "refresh_token": produce_refresh_tokens,
    "new_identifier": produce_identifiers,
    "code_challenge": produce_code_challenges,
    "pkce_code_challenge": produce_pkce_code_challenges,
    "code_grant": produce_code_grants,
    "authorization_code": produce_authorization_codes,
    "device_login": produce_device_logins,
    "pending_event": produce_pending_events,
}


# --- scale check: the pending-event lookup with a big event table --------------------


def _scale_event(user_id: int, k: int, when: datetime, app: Any) -> Any:
    """The k-th other user's event: 70 % approved, 10 % rejected, 10 % expired, 10 %
    pending (of those, most past their expiry but never tidied up)."""
    from authdevice.models import AuthEvent

    return AuthEvent(
        user_id=user_id,
        application=app,
        event="LOGIN",
        method="TRUSTED_DEVICE",
        state=SCALE_STATES[k % len(SCALE_STATES)],
        ip="127.0.0.1",
        client_timestamp=str(int(when.timestamp())),
        expires_at=when + timedelta(seconds=180 if k % 20 else 10**6),
        created_at=when,
        updated_at=when,
    )


def scale_fill(rows: int) -> dict[str, Any]:
    """Grow ``authdevice_authevent`` to ``rows`` rows.

    The scale user (the seeded one) gets the same 200 events at every size, one of them
    pending and unexpired (the answer); the others belong to 2,000 other users, spread
    over 90 days. The first SCALE_ORM_ROWS others are written with ``bulk_create`` in
    batches; past that, ``bulk_create`` costs about 0.3 ms a row in Python (a million rows
    would take minutes), so further rows are copies of an ORM-written row with new id,
    user, state and times, inserted with ``executemany`` (same columns, same encoding).
    No ANALYZE: Django never runs it, so the planner sees what a deployment's would."""
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction
    from django.utils import timezone

    from authdevice.models import AuthEvent

    if not 0 < rows <= MAX_SCALE_ROWS:
        raise ValueError(f"rows out of range: {rows}")
    app, identity = _state["application"], _state["identity"]
    user_model = get_user_model()
    started = time.perf_counter()
    own = 200
    others = max(0, rows - AuthEvent.objects.count() - own)
    nonce = _state["nonce"]
    with transaction.atomic():
        users = user_model.objects.bulk_create(
            [user_model(username=f"scale-{nonce}-{i}") for i in range(2000)], batch_size=1000
        )
    user_ids = [u.pk for u in users]
    now = timezone.now()
    rng = secrets.SystemRandom()
    horizon = 90 * 86400
    created_at = AuthEvent._meta.get_field("created_at")
    created_at.auto_now_add = False  # keep the created_at we set (in this process only)
    try:
        orm_rows = min(others, SCALE_ORM_ROWS)
        for first in range(0, orm_rows, SCALE_BATCH):
            batch = [
                _scale_event(
                    user_ids[k % len(user_ids)],
                    k,
                    now - timedelta(seconds=rng.randrange(horizon)),
                    app,
                )
                for k in range(first, min(orm_rows, first + SCALE_BATCH))
            ]
            with transaction.atomic():
                AuthEvent.objects.bulk_create(batch)
        mine = [
            AuthEvent(
                user_id=identity.user_id,
                application=app,
                event="SCALE",
                method="TRUSTED_DEVICE",
                state=SCALE_STATES[i % len(SCALE_STATES)],
                client_timestamp="0",
                expires_at=now - timedelta(days=1) + timedelta(minutes=i),
                created_at=now - timedelta(days=2) + timedelta(minutes=i),
                updated_at=now,
            )
            for i in range(own - 1)
        ]
        mine.append(
            AuthEvent(
                user_id=identity.user_id,
                application=app,
                event="SCALE",
                method="TRUSTED_DEVICE",
                state="pending",
                client_timestamp=str(int(now.timestamp())),
                expires_at=now + timedelta(hours=6),
                created_at=now - timedelta(hours=1),
                updated_at=now,
            )
        )
        with transaction.atomic():
            AuthEvent.objects.bulk_create(mine)
    finally:
        created_at.auto_now_add = True
    copied = _copy_events(others - orm_rows, user_ids, now, rng, horizon)
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return {
        "rows": AuthEvent.objects.count(),
        "orm_rows": orm_rows + own,
        "copied_rows": copied,
        "fill_seconds": time.perf_counter() - started,
    }


def _copy_events(
    count: int, user_ids: list[int], now: datetime, rng: secrets.SystemRandom, horizon: int
) -> int:
    """``count`` more events of the other users, copied from an ORM-written one."""
    from django.db import connection, transaction

    from authdevice.models import AuthEvent

    if count <= 0:
        return 0
    template = AuthEvent.objects.exclude(event="SCALE").filter(user_id__in=user_ids).first()
    if template is None:
        raise RuntimeError("no ORM-written event to copy")
    table = AuthEvent._meta.db_table
    fields = AuthEvent._meta.concrete_fields
    columns = [f.column for f in fields]
    names = ", ".join(connection.ops.quote_name(c) for c in columns)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {names} FROM {table} WHERE id = %s", [template.pk])
        base = list(cursor.fetchone())
    at = {c: i for i, c in enumerate(columns)}
    naive_now = timezone_naive_utc(now)
    # OR IGNORE: a random 53-bit id colliding (p ~ 1e-4 at a million rows) skips a row.
    values = ", ".join(["%s"] * len(columns))
    sql = f"INSERT OR IGNORE INTO {table} ({names}) VALUES ({values})"
    done = 0
    while done < count:
        n = min(SCALE_COPY_BATCH, count - done)
        batch = []
        for k in range(done, done + n):
            row = base.copy()
            when = naive_now - timedelta(seconds=rng.randrange(horizon), microseconds=k % 999983)
            row[at["id"]] = rng.randrange(1, 2**53)
            row[at["user_id"]] = user_ids[k % len(user_ids)]
            row[at["state"]] = SCALE_STATES[k % len(SCALE_STATES)]
            row[at["client_timestamp"]] = str(int(when.timestamp()))
            row[at["created_at"]] = str(when)
            row[at["updated_at"]] = str(when)
            row[at["expires_at"]] = str(when + timedelta(seconds=180 if k % 20 else 10**6))
            batch.append(row)
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.executemany(sql, batch)
        done += n
    return done


def timezone_naive_utc(value: datetime) -> datetime:
    """How Django's SQLite backend stores an aware datetime (naive UTC, ``str()``)."""
    from django.utils import timezone

    return timezone.make_naive(value, UTC) if timezone.is_aware(value) else value


def time_pending(calls: int, rounds: int) -> dict[str, Any]:
    """µs per call of ``newest_pending_event`` for the scale user (median of ``rounds``)."""
    from django.db import connection

    from authdevice.flows.events import newest_pending_event
    from authdevice.models import AuthEvent

    app, identity = _state["application"], _state["identity"]
    found = newest_pending_event(identity, app)
    if found is None or found.event != "SCALE":
        raise RuntimeError("the scale user has no pending event")
    for _ in range(min(200, calls)):
        newest_pending_event(identity, app)
    per_round = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(calls):
            newest_pending_event(identity, app)
        per_round.append((time.perf_counter() - t0) / calls * 1e6)
    # The plan of the same query as newest_pending_event's (user, state, expiry, app).
    same = AuthEvent.objects.filter(
        user_id=identity.user_id, state="pending", expires_at__gt=found.created_at, application=app
    ).order_by("-created_at")[:1]
    sql, params = same.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN QUERY PLAN " + sql, params)
        plan = [str(row[-1]) for row in cursor.fetchall()]
    return {
        "us_per_call": statistics.median(per_round),
        "rounds_us": [round(x, 1) for x in per_round],
        "rows": AuthEvent.objects.count(),
        "plan": plan,
    }


def handle(command: dict[str, Any]) -> dict[str, Any]:
    from django.db import connections

    started = time.perf_counter()
    try:
        if command["cmd"] == "setup":
            reply: dict[str, Any] = {"context": setup()}
        elif command["cmd"] == "produce":
            kind, count = command["kind"], int(command["count"])
            if kind not in PRODUCERS:
                raise ValueError(f"no producer for {kind!r}")
            if not 0 < count <= MAX_COUNT:
                raise ValueError(f"count out of range: {count}")
            with Path(command["out"]).open("w") as out:
                PRODUCERS[kind](count, out)
            reply = {"count": count}
        elif command["cmd"] == "scale_fill":
            reply = scale_fill(int(command["rows"]))
        elif command["cmd"] == "time_pending":
            reply = time_pending(int(command["calls"]), int(command["rounds"]))
        else:
            raise ValueError(f"unknown command {command['cmd']!r}")
    finally:
        connections.close_all()
    reply["ok"] = True
    reply["seconds"] = round(time.perf_counter() - started, 3)
    return reply


def main() -> int:
    # Answers go to the real stdout; anything Django or the app prints goes to stderr.
    answers = sys.stdout
    sys.stdout = sys.stderr
    _django()
    for line in sys.stdin:
        if not line.strip():
            continue
        command = json.loads(line)
        if command.get("cmd") == "quit":
            break
        try:
            reply = handle(command)
        except Exception as exc:  # noqa: BLE001 - reported to the harness, which stops
            reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        answers.write(json.dumps(reply) + "\n")
        answers.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
