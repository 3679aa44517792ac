"""In-process cost of each endpoint, and a cProfile of the ones asked for.

    .venv/bin/python benchmarks/profile_endpoints.py [--requests 1000] [--profile b,c] [--sql]

Same endpoint specs and seeding as ``run.py``, on a temporary SQLite database, but no HTTP
server and no load generator: every request goes straight into Django's WSGI handler in
this process, one after another. ``µs/req`` therefore counts Django, DRF and the view
only (no gunicorn, no TCP, no second worker): the floor under what ``run.py`` measures.
``SQL/req`` counts one request's statements (``--sql`` prints them); ``us in lock`` is
the mean time per request inside write transactions (``BEGIN IMMEDIATE`` to the end of
the commit), which the workers of one SQLite database take turns at. ``--endpoints j``
adds the scale check's B5 lookup; ``--broker-url memory://`` profiles (d) as (e) runs it.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import os
import pstats
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import endpoints as endpoint_specs
from benchmarks.endpoints import PENDING_LOOKUP, Endpoint
from benchmarks.server import site_env

ROUNDS = 5


def _environ(method: str, path: str, headers: dict[str, str], body: bytes) -> dict[str, Any]:
    path, _, query = path.partition("?")
    env: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "SCRIPT_NAME": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        "HTTP_HOST": "127.0.0.1:8000",
    }
    for name, value in headers.items():
        key = name.upper().replace("-", "_")
        if key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            env[key] = value
        else:
            env[f"HTTP_{key}"] = value
    if body:
        env["CONTENT_LENGTH"] = str(len(body))
    return env


def _requests(endpoint: Endpoint, context: dict[str, str], items: Iterable[str] | None):
    """Yields one WSGI environ per request."""
    headers = endpoint.render_headers(context)
    path = endpoint.default_path(context)
    if items is None:
        body = (endpoint.render_body(context) or "").encode()
        while True:
            yield _environ(endpoint.method, path, headers, body)
    for consumable in items:
        item = endpoint.render_item(context, consumable)
        if endpoint.item_in_path(context):
            item_path, _, text = item.partition("\t")
        else:
            item_path, text = path, item
        yield _environ(endpoint.method, item_path, headers, text.encode())


def _call(app: Callable[..., Any], environ: dict[str, Any]) -> str:
    status: list[str] = []

    def start_response(s: str, h: list[tuple[str, str]], exc_info: Any = None) -> None:
        status.append(s)

    result = app(environ, start_response)
    try:
        for _chunk in result:
            pass
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    return status[0]


def _statements(app: Callable[..., Any], environ: dict[str, Any]) -> list[str]:
    """The SQL statements one request runs (BEGIN/COMMIT included when Django sends them)."""
    from django.db import connection

    seen: list[str] = []

    def record(execute: Callable[..., Any], sql: str, params: Any, many: bool, ctx: Any) -> Any:
        seen.append(" ".join(str(sql).split()))
        return execute(sql, params, many, ctx)

    with connection.execute_wrapper(record):
        _call(app, environ)
    return seen


@contextlib.contextmanager
def _write_lock_timer() -> Iterator[list[float]]:
    """Seconds spent inside write transactions, appended per transaction: from
    ``BEGIN IMMEDIATE`` (SQLite takes the database's one write lock there) to the end of
    the commit. Requests of all workers queue for that lock, so 1e6 / µs-per-request in
    it is the most any number of workers can serve on SQLite."""
    from django.db import connection

    held: list[float] = []
    began: list[float] = []

    def record(execute: Callable[..., Any], sql: str, params: Any, many: bool, ctx: Any) -> Any:
        if str(sql).startswith("BEGIN"):
            began.append(time.perf_counter())
        return execute(sql, params, many, ctx)

    original = connection._commit

    def commit() -> None:
        try:
            original()
        finally:
            if began:
                held.append(time.perf_counter() - began.pop())

    connection._commit = commit  # type: ignore[method-assign]
    try:
        with connection.execute_wrapper(record):
            yield held
    finally:
        del connection._commit


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--requests", type=int, default=1000, help="requests per round (5 rounds)")
    p.add_argument("--profile", default="", help="comma-separated endpoint keys to cProfile")
    p.add_argument("--top", type=int, default=30, help="lines of each profile")
    p.add_argument(
        "--endpoints",
        help="comma-separated keys (default: all); j is the scale check's B5 lookup",
    )
    p.add_argument("--sql", action="store_true", help="print the SQL of one request of each")
    p.add_argument(
        "--broker-url",
        help="Celery publishes to this broker instead of running tasks eagerly (e.g.\n"
        "memory:// or redis://127.0.0.1:6379/0); only for (d): (f) needs eager sends",
    )
    args = p.parse_args(argv)
    keys = {k.strip() for k in (args.endpoints or "").split(",") if k.strip()}
    extra = [PENDING_LOOKUP] if PENDING_LOOKUP.key in keys else []
    keys.discard(PENDING_LOOKUP.key)
    # In process there is no broker server: its endpoints are the eager ones again.
    selected = [
        e
        for e in endpoint_specs.select(",".join(keys) if keys else args.endpoints)
        if e.server == "main"
    ] + extra
    to_profile = {k.strip() for k in args.profile.split(",") if k.strip()}

    workdir = Path(tempfile.mkdtemp(prefix="authdevice-profile-"))
    try:
        os.environ.update(
            site_env(
                db_path=workdir / "profile.sqlite3",
                secret_key=secrets.token_urlsafe(50),
                issuer="http://127.0.0.1:8000",
            )
        )
        os.environ["DEBUG"] = "0"
        if args.broker_url:
            os.environ["CELERY_BROKER_URL"] = args.broker_url
        from benchmarks import seeder

        seeder._django()
        from django.core.wsgi import get_wsgi_application

        context = seeder.setup()
        if extra:
            seeder.scale_fill(1000)  # the scale user's 200 events, one of them pending
        app = get_wsgi_application()
        n = args.requests
        print(
            f"{'endpoint':<24} {'us/req (median of 5)':>20}  {'SQL/req':>7}  "
            f"{'us in lock':>12}  status"
        )
        for endpoint in selected:
            items: list[str] | None = None
            if endpoint.consumable is not None:
                path = workdir / f"{endpoint.consumable}.txt"
                with path.open("w") as out:
                    seeder.PRODUCERS[endpoint.consumable](n * (ROUNDS + 3) + 400, out)
                items = path.read_text().splitlines()
            stream = _requests(endpoint, context, items)
            for _ in range(min(100, n)):  # warm-up
                _call(app, next(stream))
            per_round = []
            statuses: set[str] = set()
            with _write_lock_timer() as held:
                for _ in range(ROUNDS):
                    t0 = time.perf_counter()
                    for _ in range(n):
                        statuses.add(_call(app, next(stream)))
                    per_round.append((time.perf_counter() - t0) / n * 1e6)
            lock = sum(held) / (n * ROUNDS) * 1e6
            statements = _statements(app, next(stream))
            print(
                f"({endpoint.key}) {endpoint.name:<20} {statistics.median(per_round):>20.0f}  "
                f"{len(statements):>7}  {lock:>12.0f}  {', '.join(sorted(statuses))}"
            )
            if args.sql:
                for sql in statements:
                    print(f"    {sql[:160]}")
            if endpoint.key in to_profile:
                profiler = cProfile.Profile()
                profiler.enable()
                for _ in range(n):
                    _call(app, next(stream))
                profiler.disable()
                for order in ("tottime", "cumulative"):
                    buf = io.StringIO()
                    stats = pstats.Stats(profiler, stream=buf).strip_dirs().sort_stats(order)
                    stats.print_stats(args.top)
                    print(f"\n--- ({endpoint.key}) {endpoint.name}: {n} requests, by {order} ---")
                    print(buf.getvalue().split("\n", 4)[-1].rstrip())
                print()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
