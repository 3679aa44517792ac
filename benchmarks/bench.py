"""The benchmark protocol (docs: benchmarks/README.md).

1. A temporary SQLite database (WAL, from project/settings.py) is migrated and seeded by
   ``benchmarks.seeder``: one application, one user, one access token.
2. The example site starts under gunicorn (``-c project/gunicorn.conf.py``, sync workers)
   on a free 127.0.0.1 port, and every endpoint gets one sanity request.
3. Every endpoint gets a warm-up run, then ``rounds`` interleaved rounds
   (round 1: a, b, c; round 2: a, b, c; ...). One-use credentials (refresh tokens) are
   issued between runs, never during one, sized from the rate measured so far.
4. Per endpoint: median requests/s over the rounds, median p50/p99, ratio to the baseline.
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

from . import endpoints as endpoint_specs
from . import loadgen
from .endpoints import BASELINE, Endpoint
from .report import Summary, busy, load_average, machine_info, summarise, table
from .server import Gunicorn, Seeder, free_port, request, site_env

RESULTS = Path(__file__).resolve().parent / "results" / "latest.json"
WORKERS = 2
SAFETY = 1.3  # one-use credentials per run: measured rate x duration x SAFETY (+ SLACK)
SLACK = 200


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
        default=300_000,
        help="upper bound of one-use credentials issued per benchmark (default 300000)",
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
    return args


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


class Bench:
    """One benchmark: a server, a seeder, and a pool of fresh one-use credentials per kind."""

    def __init__(
        self,
        args: argparse.Namespace,
        tool: str,
        server: Gunicorn,
        seeder: Seeder,
        context: dict[str, str],
        workdir: Path,
    ) -> None:
        self.args = args
        self.tool = tool
        self.server = server
        self.seeder = seeder
        self.context = context
        self.workdir = workdir
        self.pools: dict[str, deque[str]] = {}
        self.issued = 0
        self.best_rps: dict[str, float] = {}

    # -- one-use credentials ------------------------------------------------------------

    def ensure(self, kind: str, count: int) -> None:
        pool = self.pools.setdefault(kind, deque())
        missing = count - len(pool)
        if missing <= 0:
            return
        if self.issued + missing > self.args.max_consumables:
            raise RuntimeError(
                f"would issue more than --max-consumables={self.args.max_consumables} "
                f"one-use credentials; lower --duration/--rounds or raise the bound"
            )
        out = self.workdir / f"{kind}-{self.issued}.txt"
        reply = self.seeder.call(cmd="produce", kind=kind, count=missing, out=str(out))
        pool.extend(line for line in out.read_text().splitlines() if line)
        out.unlink()
        self.issued += missing
        log(f"issued {missing} x {kind} in {reply['seconds']:.1f} s (pool {len(pool)})")

    def take(self, kind: str, count: int) -> list[str]:
        self.ensure(kind, count)
        pool = self.pools[kind]
        return [pool.popleft() for _ in range(count)]

    def give_back(self, kind: str, unused: list[str]) -> None:
        """Never-sent credentials are still fresh; they go first next time."""
        self.pools[kind].extendleft(reversed(unused))

    def need(self, endpoint: Endpoint, duration: float) -> int:
        rate = self.best_rps.get(endpoint.key) or self.best_rps.get(BASELINE) or 2000.0
        n = math.ceil(rate * duration * SAFETY) + SLACK
        return min(n, self.args.max_requests)

    # -- requests -----------------------------------------------------------------------

    def sanity(self, endpoint: Endpoint) -> None:
        """One request before any timing: the endpoint answers as expected."""
        headers = endpoint.render_headers(self.context)
        path = endpoint.default_path(self.context)
        body = endpoint.render_body(self.context) if endpoint.consumable is None else None
        if endpoint.consumable is not None:
            item = endpoint.render_item(self.context, self.take(endpoint.consumable, 1)[0])
            if endpoint.consumable_in_path:
                path, _, body = item.partition("\t")
            else:
                body = item
        status, raw = request(self.server.base_url, endpoint.method, path, headers, body)
        ok = status == endpoint.expect_status
        if ok and endpoint.expect_json_key:
            try:
                ok = endpoint.expect_json_key in json.loads(raw)
            except ValueError:
                ok = False
        if not ok:
            raise RuntimeError(
                f"sanity check of ({endpoint.key}) {endpoint.method} {path}: "
                f"HTTP {status} {raw[:300]!r}"
            )

    def run(self, endpoint: Endpoint, duration: int) -> loadgen.LoadResult:
        items: list[str] | None = None
        if endpoint.consumable is not None:
            credentials = self.take(endpoint.consumable, self.need(endpoint, duration))
            items = [endpoint.render_item(self.context, c) for c in credentials]
        load = loadgen.Load(
            base_url=self.server.base_url,
            method=endpoint.method,
            path=endpoint.default_path(self.context),
            headers=endpoint.render_headers(self.context),
            body=endpoint.render_body(self.context) if endpoint.consumable is None else None,
            items=items,
            duration=duration,
            connections=self.args.connections,
            threads=self.args.threads,
            max_requests=self.args.max_requests,
        )
        result = loadgen.run(load, self.workdir, self.tool)
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
        log(
            f"{label} ({endpoint.key}) {endpoint.name}: {result.rps:,.0f} rps, "
            f"p50 {result.latency_ms['p50']:.2f} ms{errors}"
        )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        selected = endpoint_specs.select(args.endpoints)
    except ValueError as exc:
        log(str(exc))
        return 1
    tool = args.loadgen
    if tool == "auto":
        tool = "wrk" if loadgen.wrk_path() else "python"
    elif tool == "wrk" and not loadgen.wrk_path():
        log("wrk is not installed (apt-get install wrk), use --loadgen python")
        return 1
    machine = machine_info(tool, loadgen.wrk_version() if tool == "wrk" else "http.client")
    settings = {
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
    log(
        f"{tool}, {args.rounds} rounds x {args.duration} s, -c{args.connections}, "
        f"nproc={machine['nproc']}, {machine['cpu_model']}"
    )
    summaries = [Summary(e) for e in selected]
    # Ctrl-C and SIGTERM both end in ``finally`` (which stops gunicorn), even when the
    # shell started us with SIGINT ignored (background jobs of non-interactive shells).
    previous = {
        signal.SIGTERM: signal.signal(signal.SIGTERM, _raise_interrupt),
        signal.SIGINT: signal.signal(signal.SIGINT, signal.default_int_handler),
    }
    workdir = Path(tempfile.mkdtemp(prefix="authdevice-bench-"))
    server_log = (workdir / "gunicorn.log").open("w")
    seeder_log = (workdir / "seeder.log").open("w")
    server: Gunicorn | None = None
    seeder: Seeder | None = None
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
        seeder = Seeder(env, seeder_log)
        context = seeder.call(cmd="setup")["context"]
        log(f"database {workdir / 'bench.sqlite3'} migrated and seeded")
        server = Gunicorn(env, port, args.workers, server_log)
        server.wait_ready(selected[0].default_path(context))
        log(f"gunicorn ({args.workers} sync workers) answers on {server.base_url}")
        bench = Bench(args, tool, server, seeder, context, workdir)
        for endpoint in selected:
            bench.sanity(endpoint)
        if args.warmup:
            for summary in summaries:
                summary.warmup = bench.run(summary.endpoint, args.warmup)
                log(f"warm-up ({summary.endpoint.key}): {summary.warmup.rps:,.0f} rps")
        for n in range(1, args.rounds + 1):
            for summary in summaries:
                bench.timed(summary.endpoint, summary, f"round {n}/{args.rounds}")
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    except Exception as exc:  # noqa: BLE001 - any failure: report it, stop the server
        failed = True
        log(f"failed: {type(exc).__name__}: {exc}")
        return 1
    finally:
        if server is not None:
            server.stop()
        if seeder is not None:
            seeder.close()
        server_log.close()
        seeder_log.close()
        if failed:
            for name in ("gunicorn.log", "seeder.log"):
                text = (workdir / name).read_text(errors="replace").strip()
                if text:
                    log(f"--- {name} (last lines) ---\n" + "\n".join(text.splitlines()[-25:]))
        if args.keep:
            log(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
        for signum, handler in previous.items():
            signal.signal(signum, handler)

    machine["loadavg_end"] = load_average()
    summarise(summaries, BASELINE)
    result = {
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "wall_seconds": round(time.monotonic() - started, 1),
        "machine": {**machine, "busy": busy(machine)},
        "settings": settings,
        "one_use_credentials_issued": bench.issued if bench else 0,
        "endpoints": [s.as_dict() for s in summaries],
    }
    text = table(summaries, machine, settings)
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
    missed = any(s.verdict == "FAIL" for s in summaries) or any(s.errors for s in summaries)
    return 2 if args.strict and missed else 0
