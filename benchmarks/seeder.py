"""Seeds the benchmark database; runs as a child process of ``benchmarks/run.py``.

``python -m benchmarks.seeder`` with the same environment as the server (DATABASE_URL,
SECRET_KEY, AUTHDEVICE_ISSUER). It reads one JSON command per line on stdin and answers
one JSON line on stdout:

* ``{"cmd": "setup"}``: migrate, create an application, a user with a verified email and
  one token set. Answers the template context of the endpoint specs
  (``api_key_id``, ``access_token``, ...).
* ``{"cmd": "produce", "kind": K, "count": N, "out": PATH}``: write N fresh one-use
  credentials of kind K to PATH, one per line (see :data:`PRODUCERS`).
* ``{"cmd": "quit"}``.

It stays alive for the whole run so the harness can top up one-use credentials between
timed runs (never during one), sized from the rate it has measured.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

BATCH = 500  # credentials per transaction
MAX_COUNT = 1_000_000

_state: dict[str, Any] = {}


def _django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
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
        app, _secret = create_application(name="benchmark")
        user = get_user_model().objects.create_user(username="bench", email=email)
        add_identifier(user, "EMAIL", email, verified=True)
        identity = user.authdevice_identity
        tokens = issue_token_set(
            identity=identity, application=app, auth_method="OTP", identifier=email
        )
    _state.update(application=app, identity=identity, identifier=email)
    return {
        "api_key_id": app.api_key_id,
        "access_token": tokens.access_token,
        "identifier": email,
    }


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


#: One-use credential kinds an :class:`~benchmarks.endpoints.Endpoint` may consume.
PRODUCERS: dict[str, Callable[[int, TextIO], None]] = {
    "refresh_token": produce_refresh_tokens,
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
