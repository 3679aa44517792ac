"""The benchmark protocol (docs: benchmarks/README.md).

1. A temporary SQLite database (WAL, from project/settings.py) is migrated and seeded by
   ``benchmarks.seeder``: one application, one user, one access token.
2. The example site starts under gunicorn (``-c project/gunicorn.conf.py``, sync workers)
   on a free 127.0.0.1 port (Celery eager); when a selected endpoint needs it, a second
   gunicorn serves the same site and database with Celery publishing to a broker. Every
   endpoint gets one sanity request.
3. Every endpoint gets a warm-up run, then ``rounds`` interleaved rounds
   (round 1: a, b, c, ...; round 2: a, b, c, ...). One-use credentials (refresh tokens,
   codes, signed device messages, ...) are issued between runs, never during one, sized
   from the rate measured so far.
4. Per endpoint: median requests/s over the rounds, median p50/p99, ratio to the baseline.

``--scale`` runs the scale check of ``benchmarks/scale.py`` instead.
"""

from __future__ import annotations

import argparse
import json
import math
import secrets
import shutil
import signal
import sys
import tempfile
import time
from collections import deque
from pathlib import Path
from types import FrameType
from typing import Any

from . import endpoints as endpoint_specs
from . import loadgen
from .endpoints import BASELINE, Endpoint
from .report import (
    CpuSnapshot,
    Summary,
    busy,
    load_average,
    machine_info,
    other_cpu,
    summarise,
    table,
)
from .server import Gunicorn, RedisServer, Seeder, free_port, request, site_env

RESULTS = Path(__file__).resolve().parent / "results" / "latest.json"
WORKERS = 2
SAFETY = 1.3  # one-use credentials per run: measured rate x duration x SAFETY (+ SLACK)
SLACK = 200
PRIOR = 0.3  # before an endpoint's first run: its rate guessed as PRIOR x the baseline's
BROKER_SERVER = "broker"  # Endpoint.server of the endpoints served with a real broker


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--duration", type=int, help="seconds per timed run (default 5; quick 1)")
    p.add_argument("--rounds", type=int, help="interleaved rounds (default 5; quick 1)")
    p.add_argument("--warmup", type=int, help="warm-up seconds per endpoint (default 2; quick 1)")
    p.add_argument("--connections", type=int, default=8, help="concurrent connections (8)")
    p.add_argument("--threads", type=int, default=1, help="wrk threads (default 1)")
    p.add_argument(
        "--workers", type=int, default=WORKERS, help="gunicorn sync workers (protocol: 2)"
    )
    p.add_argument(
        "--max-requests",
        type=int,
        default=200_000,
        help="upper bound of requests per run (default 200000)",
    )
    p.add_argument(
        "--max-consumables",
        type=int,
        default=600_000,
        help="upper bound of one-use credentials issued per benchmark (default 600000)",
    )
    p.add_argument(
        "--quick", action="store_true", help="smoke test: 1 round of 1 s runs, 1 s warm-up"
    )
    p.add_argument("--json", action="store_true", help="print the JSON result on stdout")
    p.add_argument(
        "--loadgen", choices=("auto", "wrk", "python"), default="auto", help="default: wrk if found"
    )
    p.add_argument("--endpoints", help="comma-separated keys, e.g. a,c (the baseline is added)")
    p.add_argument("--output", type=Path, default=RESULTS, help=f"JSON file (default {RESULTS})")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory")
    p.add_argument(
        "--strict", action="store_true", help="exit 2 when a target fails or requests error"
    )
    p.add_argument(
        "--broker",
        choices=("auto", "redis", "memory"),
        default="auto",
        help="broker of the 'broker' server (e): redis-server on loopback, or kombu's\n"
        "in-process memory:// transport (default: redis if redis-server is installed)",
    )
    p.add_argument(
        "--scale",
        action="store_true",
        help="run the scale check instead: the pending-event lookup (B5) with\n"
        "--scale-base and with --scale-rows auth events in the table",
    )
    p.add_argument("--scale-rows", type=int, default=1_000_000, help="big table (default 1000000)")
    p.add_argument("--scale-base", type=int, default=1_000, help="small table (default 1000)")
    args = p.parse_args(argv)
    defaults = (1, 1, 1) if args.quick else (5, 5, 2)
    for name, default in zip(("duration", "rounds", "warmup"), defaults, strict=True):
        if getattr(args, name) is None:
            setattr(args, name, default)
    for name in ("duration", "rounds", "connections", "threads", "workers", "max_requests"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.warmup < 0:
        p.error("--warmup must not be negative")
    if args.scale and not 0 < args.scale_base < args.scale_rows <= 5_000_000:
        p.error("the scale check needs 0 < --scale-base < --scale-rows <= 5000000")
    return args


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


class Bench:
    """One benchmark: servers, a seeder, and a pool of fresh one-use credentials per kind."""

    def __init__(
        self,
        args: argparse.Namespace,
        tool: str,
        servers: dict[str, Gunicorn],
        seeder: Seeder | None,
        contexts: dict[str, dict[str, str]],
        workdir: Path,
        redis: RedisServer | None = None,
    ) -> None:
        self.args = args
        self.tool = tool
        self.servers = servers
        self.seeder = seeder
        self.contexts = contexts
        self.workdir = workdir
        self.redis = redis
        # Pooled credentials with the monotonic time they were issued.
        self.pools: dict[str, deque[tuple[float, str]]] = {}
        self.issued = 0
        self.dropped = 0
        self.best_rps: dict[str, float] = {}

    def context(self, endpoint: Endpoint) -> dict[str, str]:
        return self.contexts[endpoint.server]

    # -- one-use credentials ------------------------------------------------------------

    def _drop_stale(self, kind: str, ttl: float | None) -> None:
        """Credentials past their usable life (expired codes, timestamps about to leave the
        window) are dropped, never sent."""
        pool = self.pools.setdefault(kind, deque())
        if ttl is None or not pool:
            return
        cutoff = time.monotonic() - ttl
        fresh = deque(entry for entry in pool if entry[0] >= cutoff)
        if len(fresh) < len(pool):
            log(f"dropped {len(pool) - len(fresh)} x {kind} older than {ttl:.0f} s")
            self.dropped += len(pool) - len(fresh)
            self.pools[kind] = fresh

    def ensure(self, kind: str, count: int, ttl: float | None = None) -> None:
        self._drop_stale(kind, ttl)
        pool = self.pools[kind]
        missing = count - len(pool)
        if missing <= 0:
            return
        if self.issued + missing > self.args.max_consumables:
            raise RuntimeError(
                f"would issue more than --max-consumables={self.args.max_consumables} "
                f"one-use credentials; lower --duration/--rounds or raise the bound"
            )
        if self.seeder is None:
            raise RuntimeError(f"no seeder to issue {kind}")
        out = self.workdir / f"{kind}-{self.issued}.txt"
        reply = self.seeder.call(cmd="produce", kind=kind, count=missing, out=str(out))
        issued_at = time.monotonic()
        pool.extend((issued_at, line) for line in out.read_text().splitlines() if line)
        out.unlink()
        self.issued += missing
        log(f"issued {missing} x {kind} in {reply['seconds']:.1f} s (pool {len(pool)})")

    def take(self, kind: str, count: int, ttl: float | None = None) -> list[tuple[float, str]]:
        self.ensure(kind, count, ttl)
        pool = self.pools[kind]
        return [pool.popleft() for _ in range(count)]

    def give_back(self, kind: str, unused: list[tuple[float, str]]) -> None:
        """Never-sent credentials are still fresh; they go first next time."""
        self.pools[kind].extendleft(reversed(unused))

    def need(self, endpoint: Endpoint, duration: float) -> int:
        """Credentials for one run: the endpoint's best rate so far x duration x SAFETY
        (+ SLACK). Before its first run (the warm-up) the guess is PRIOR x the baseline's
        rate; a warm-up that runs out only understates the warm-up."""
        rate = self.best_rps.get(endpoint.key) or PRIOR * (self.best_rps.get(BASELINE) or 2000.0)
        n = math.ceil(rate * duration * SAFETY) + SLACK
        return min(n, self.args.max_requests)

    # -- requests -----------------------------------------------------------------------

    def sanity(self, endpoint: Endpoint) -> None:
        """One request before any timing: the endpoint answers as expected."""
        context = self.context(endpoint)
        headers = endpoint.render_headers(context)
        path = endpoint.default_path(context)
        body = endpoint.render_body(context) if endpoint.consumable is None else None
        if endpoint.consumable is not None:
            _, credential = self.take(endpoint.consumable, 1, endpoint.consumable_ttl)[0]
            item = endpoint.render_item(context, credential)
            if endpoint.item_in_path(context):
                path, _, body = item.partition("\t")
            else:
                body = item
        base_url = self.servers[endpoint.server].base_url
        status, raw = request(base_url, endpoint.method, path, headers, body)
        ok = status == endpoint.expect_status
        if ok and endpoint.expect_json_key:
            try:
                ok = endpoint.expect_json_key in json.loads(raw)
            except (ValueError, TypeError):
                ok = False
        if not ok:
            raise RuntimeError(
                f"sanity check of ({endpoint.key}) {endpoint.method} {path}: "
                f"HTTP {status} {raw[:300]!r}"
            )

    def run(self, endpoint: Endpoint, duration: int) -> loadgen.LoadResult:
        context = self.context(endpoint)
        items: list[str] | None = None
        credentials: list[tuple[float, str]] = []
        if endpoint.consumable is not None:
            credentials = self.take(
                endpoint.consumable, self.need(endpoint, duration), endpoint.consumable_ttl
            )
            items = [endpoint.render_item(context, c) for _, c in credentials]
        load = loadgen.Load(
            base_url=self.servers[endpoint.server].base_url,
            method=endpoint.method,
            path=endpoint.default_path(context),
            headers=endpoint.render_headers(context),
            body=endpoint.render_body(context) if endpoint.consumable is None else None,
            items=items,
            duration=duration,
            connections=self.args.connections,
            threads=self.args.threads,
            max_requests=self.args.max_requests,
        )
        watch = self.redis if endpoint.server == BROKER_SERVER else None
        if watch is not None:  # our own short connections: before the count, or counted
            queued = watch.queued()
            received = watch.connections_received()
        result = loadgen.run(load, self.workdir, self.tool)
        if watch is not None:
            # The INFO connection that reads the count is itself one of those counted.
            result.extra["broker_connections"] = watch.connections_received() - received - 1
            result.extra["broker_messages"] = watch.queued() - queued
        if endpoint.consumable is not None and items is not None:
            # ``unused`` holds rendered items; map them back to their credentials.
            by_item = dict(zip(items, credentials, strict=True))
            self.give_back(endpoint.consumable, [by_item[i] for i in result.unused])
        rate = result.rps * (2 if result.exhausted else 1)
        self.best_rps[endpoint.key] = max(self.best_rps.get(endpoint.key, 0.0), rate)
        return result

    def timed(self, endpoint: Endpoint, summary: Summary, label: str) -> None:
        result = self.run(endpoint, self.args.duration)
        if result.exhausted:  # the rate was understated: once more with a bigger pool
            log(f"({endpoint.key}) ran out of one-use credentials; repeating the run")
            summary.retries += 1
            result = self.run(endpoint, self.args.duration)
        summary.runs.append(result)
        errors = f", {result.error_count} errors {result.errors}" if result.error_count else ""
        extra = "".join(f", {k} {v}" for k, v in result.extra.items())
        log(
            f"{label} ({endpoint.key}) {endpoint.name}: {result.rps:,.0f} rps, "
            f"p50 {result.latency_ms['p50']:.2f} ms{extra}{errors}"
        )

    def rounds(self, summaries: list[Summary]) -> None:
        """Warm-up runs, then the interleaved rounds."""
        if self.args.warmup:
            for summary in summaries:
                summary.warmup = self.run(summary.endpoint, self.args.warmup)
                log(f"warm-up ({summary.endpoint.key}): {summary.warmup.rps:,.0f} rps")
        for n in range(1, self.args.rounds + 1):
            for summary in summaries:
                self.timed(summary.endpoint, summary, f"round {n}/{self.args.rounds}")


def resolve_tool(args: argparse.Namespace) -> str | None:
    tool = args.loadgen
    if tool == "auto":
        return "wrk" if loadgen.wrk_path() else "python"
    if tool == "wrk" and not loadgen.wrk_path():
        log("wrk is not installed (apt-get install wrk), use --loadgen python")
        return None
    return tool


def resolve_broker(args: argparse.Namespace) -> str | None:
    if args.broker == "auto":
        return "redis" if shutil.which("redis-server") else "memory"
    if args.broker == "redis" and not shutil.which("redis-server"):
        log("redis-server is not installed, use --broker memory")
        return None
    return args.broker


def run_settings(args: argparse.Namespace, tool: str) -> dict[str, Any]:
    return {
        "workers": args.workers,
        "threads": args.threads if tool == "wrk" else args.connections,
        "connections": args.connections,
        "rounds": args.rounds,
        "duration": args.duration,
        "warmup": args.warmup,
        "max_requests": args.max_requests,
        "baseline": BASELINE,
        "quick": args.quick,
    }


def install_signal_handlers() -> dict[signal.Signals, Any]:
    """Ctrl-C and SIGTERM both end in ``finally`` (which stops the servers), even when the
    shell started us with SIGINT ignored (background jobs of non-interactive shells)."""
    return {
        signal.SIGTERM: signal.signal(signal.SIGTERM, _raise_interrupt),
        signal.SIGINT: signal.signal(signal.SIGINT, signal.default_int_handler),
    }


def restore_signal_handlers(previous: dict[signal.Signals, Any]) -> None:
    for signum, handler in previous.items():
        signal.signal(signum, handler)


def dump_logs(workdir: Path) -> None:
    for path in sorted(workdir.glob("*.log")):
        text = path.read_text(errors="replace").strip()
        if text:
            log(f"--- {path.name} (last lines) ---\n" + "\n".join(text.splitlines()[-25:]))


def tear_down(
    *,
    stop: list[Any],
    logs: dict[str, Any],
    failed: bool,
    workdir: Path,
    keep: bool,
    previous: dict[signal.Signals, Any],
) -> None:
    """Stop what a run started (each object's ``stop`` or ``close``, in order), keep the
    server logs on failure or with ``--keep``, and give back the signal handlers."""
    for item in stop:
        if item is not None:
            (item.stop if hasattr(item, "stop") else item.close)()
    for fh in logs.values():
        fh.close()
    if failed:
        dump_logs(workdir)
    if keep:
        log(f"kept {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    restore_signal_handlers(previous)


def write_result(args: argparse.Namespace, result: dict[str, Any], text: str) -> None:
    try:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(result, indent=2) + "\n")
    except OSError as exc:
        log(f"could not write {args.output}: {exc}")
    if args.json:
        print(text, file=sys.stderr)
        print(json.dumps(result, indent=2))
    else:
        print(text)
        print(f"\nJSON: {args.output}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    tool = resolve_tool(args)
    if tool is None:
        return 1
    if args.scale:
        from .scale import run_scale

        return run_scale(args, tool)
    try:
        selected = endpoint_specs.select(args.endpoints)
    except ValueError as exc:
        log(str(exc))
        return 1
    broker = None
    if any(e.server == BROKER_SERVER for e in selected):
        broker = resolve_broker(args)
        if broker is None:
            return 1
    machine = machine_info(tool, loadgen.wrk_version() if tool == "wrk" else "http.client")
    settings = run_settings(args, tool)
    settings["broker"] = broker
    log(
        f"{tool}, {args.rounds} rounds x {args.duration} s, -c{args.connections}, "
        f"nproc={machine['nproc']}, {machine['cpu_model']}, load {machine['loadavg_start']}"
    )
    summaries = [Summary(e) for e in selected]
    cpu_start = CpuSnapshot.take()
    previous = install_signal_handlers()
    workdir = Path(tempfile.mkdtemp(prefix="authdevice-bench-"))
    logs = {name: (workdir / f"{name}.log").open("w") for name in ("gunicorn", "seeder")}
    servers: dict[str, Gunicorn] = {}
    seeder: Seeder | None = None
    redis: RedisServer | None = None
    bench: Bench | None = None
    failed = False
    started = time.monotonic()
    try:
        port = free_port()
        env = site_env(
            db_path=workdir / "bench.sqlite3",
            secret_key=secrets.token_urlsafe(50),
            issuer=f"http://127.0.0.1:{port}",
        )
        seeder = Seeder(env, logs["seeder"])
        context = seeder.call(cmd="setup")["context"]
        log(f"database {workdir / 'bench.sqlite3'} migrated and seeded")
        servers["main"] = Gunicorn(env, port, args.workers, logs["gunicorn"])
        if broker is not None:
            if broker == "redis":
                logs["redis"] = (workdir / "redis.log").open("w")
                redis = RedisServer(workdir, logs["redis"])
                broker_url = redis.url
            else:
                broker_url = "memory://"
            logs["gunicorn-broker"] = (workdir / "gunicorn-broker.log").open("w")
            broker_env = {**env, "CELERY_BROKER_URL": broker_url}
            servers[BROKER_SERVER] = Gunicorn(
                broker_env, free_port(), args.workers, logs["gunicorn-broker"]
            )
            settings["broker_url"] = broker_url
        for name, server in servers.items():
            server.wait_ready(selected[0].default_path(context))
            log(f"gunicorn {name} ({args.workers} sync workers) answers on {server.base_url}")
        contexts = {name: context for name in servers}
        bench = Bench(args, tool, servers, seeder, contexts, workdir, redis)
        for endpoint in selected:
            bench.sanity(endpoint)
        bench.rounds(summaries)
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    except Exception as exc:  # noqa: BLE001 - any failure: report it, stop the server
        failed = True
        log(f"failed: {type(exc).__name__}: {exc}")
        return 1
    finally:
        tear_down(
            stop=[*servers.values(), seeder, redis],
            logs=logs,
            failed=failed,
            workdir=workdir,
            keep=args.keep,
            previous=previous,
        )

    machine["loadavg_end"] = load_average()
    machine["cpu_during_run"] = other_cpu(cpu_start, CpuSnapshot.take())
    summarise(summaries, BASELINE)
    result = {
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "wall_seconds": round(time.monotonic() - started, 1),
        "machine": {**machine, "busy": busy(machine)},
        "settings": settings,
        "one_use_credentials_issued": bench.issued if bench else 0,
        "one_use_credentials_dropped": bench.dropped if bench else 0,
        "endpoints": [s.as_dict() for s in summaries],
    }
    text = table(summaries, machine, settings)
    write_result(args, result, text)
    missed = any(s.verdict == "FAIL" for s in summaries) or any(s.errors for s in summaries)
    return 2 if args.strict and missed else 0
