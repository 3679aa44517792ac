"""``run.py --scale``: does finding a user's pending event stay flat with table size?

Issue 4: "finding a user's pending event costs the same with 1,000 and with 1,000,000
events in the table (within 1.5x)". Two temporary SQLite databases are seeded alike
(``benchmarks.seeder``), then grown with ``bulk_create`` to ``--scale-base`` and
``--scale-rows`` auth events; the scale user has the same 200 events, one pending, in both.

Measured side by side:

* in process: µs per call of ``authdevice.flows.events.newest_pending_event`` (each
  database's own seeder process, rounds alternating between the two), with the query plan;
* over HTTP: ``GET /api/v0/event/new/<user_id>`` (Cotter B5) on two gunicorn servers (one
  per database, 2 sync workers each, only one loaded at a time), interleaved rounds
  ``a, B5 small, B5 big`` with the bare DRF view (a) of the small one as baseline.

The verdict: cost with the big table / cost with the small one <= 1.5 (cost = µs per
call, or 1 / requests per second), for both measurements.
"""

from __future__ import annotations

import argparse
import dataclasses
import secrets
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from . import loadgen
from .bench import (
    Bench,
    install_signal_handlers,
    log,
    run_settings,
    tear_down,
    write_result,
)
from .endpoints import BASELINE, ENDPOINTS, PENDING_LOOKUP
from .report import (
    BUSY_WARNING,
    CpuSnapshot,
    Summary,
    busy,
    load_average,
    load_line,
    machine_info,
    other_cpu,
    summarise,
)
from .server import Gunicorn, Seeder, free_port, site_env

LIMIT = 1.5  # issue 4: within 1.5x
SCALE_RESULTS = Path(__file__).resolve().parent / "results" / "scale.json"
CALLS = 2000  # in-process calls per round


def _label(rows: int) -> str:
    return f"{rows:,} rows"


def run_scale(args: argparse.Namespace, tool: str) -> int:
    if args.output == Path(__file__).resolve().parent / "results" / "latest.json":
        args.output = SCALE_RESULTS
    machine = machine_info(tool, loadgen.wrk_version() if tool == "wrk" else "http.client")
    settings = run_settings(args, tool)
    settings.update(scale_base=args.scale_base, scale_rows=args.scale_rows, limit=LIMIT)
    sizes = {"small": args.scale_base, "big": args.scale_rows}
    log(
        f"scale check: {args.scale_base:,} vs {args.scale_rows:,} auth events; {tool}, "
        f"{args.rounds} rounds x {args.duration} s; nproc={machine['nproc']}, "
        f"load {machine['loadavg_start']}"
    )
    baseline = next(e for e in ENDPOINTS if e.key == BASELINE)
    endpoints = [
        dataclasses.replace(baseline, server="small"),
        dataclasses.replace(
            PENDING_LOOKUP, key="j-small", name=f"B5, {_label(sizes['small'])}", server="small"
        ),
        dataclasses.replace(
            PENDING_LOOKUP, key="j-big", name=f"B5, {_label(sizes['big'])}", server="big"
        ),
    ]
    summaries = [Summary(e) for e in endpoints]
    cpu_start = CpuSnapshot.take()
    previous = install_signal_handlers()
    workdir = Path(tempfile.mkdtemp(prefix="authdevice-scale-"))
    logs = {name: (workdir / f"{name}.log").open("w") for name in ("seeder", "gunicorn")}
    seeders: dict[str, Seeder] = {}
    servers: dict[str, Gunicorn] = {}
    fills: dict[str, dict[str, Any]] = {}
    timings: dict[str, list[dict[str, Any]]] = {"small": [], "big": []}
    failed = False
    started = time.monotonic()
    try:
        contexts: dict[str, dict[str, str]] = {}
        envs: dict[str, dict[str, str]] = {}
        ports: dict[str, int] = {}
        for name, rows in sizes.items():
            ports[name] = free_port()
            envs[name] = site_env(
                db_path=workdir / f"{name}.sqlite3",
                secret_key=secrets.token_urlsafe(50),
                issuer=f"http://127.0.0.1:{ports[name]}",
            )
            seeders[name] = Seeder(envs[name], logs["seeder"])
            contexts[name] = seeders[name].call(cmd="setup")["context"]
            fills[name] = seeders[name].call(cmd="scale_fill", rows=rows)
            log(f"{name}: {fills[name]['rows']:,} auth events in {fills[name]['seconds']:.1f} s")
        # In process: rounds alternate between the databases.
        calls = 200 if args.quick else CALLS
        for _ in range(args.rounds):
            for name in sizes:
                timings[name].append(seeders[name].call(cmd="time_pending", calls=calls, rounds=1))
        for name in sizes:
            servers[name] = Gunicorn(envs[name], ports[name], args.workers, logs["gunicorn"])
        for name, server in servers.items():
            server.wait_ready(baseline.path)
            log(f"gunicorn {name} answers on {server.base_url}")
        bench = Bench(args, tool, servers, None, contexts, workdir)
        for endpoint in endpoints:
            bench.sanity(endpoint)
        bench.rounds(summaries)
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    except Exception as exc:  # noqa: BLE001 - any failure: report it, stop the servers
        failed = True
        log(f"failed: {type(exc).__name__}: {exc}")
        return 1
    finally:
        tear_down(
            stop=[*servers.values(), *seeders.values()],
            logs=logs,
            failed=failed,
            workdir=workdir,
            keep=args.keep,
            previous=previous,
        )

    machine["loadavg_end"] = load_average()
    machine["cpu_during_run"] = other_cpu(cpu_start, CpuSnapshot.take())
    summarise(summaries, BASELINE)
    us = {n: statistics.median(t["us_per_call"] for t in timings[n]) for n in sizes}
    rps = {n: s.median_rps for n, s in zip(sizes, summaries[1:], strict=True)}
    in_process = us["big"] / us["small"] if us["small"] else None
    http = rps["small"] / rps["big"] if rps["big"] else None
    errors = sum(s.errors for s in summaries)
    checks = {
        "in_process": _verdict(in_process),
        "http": "FAIL" if errors else _verdict(http),
    }
    result = {
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "wall_seconds": round(time.monotonic() - started, 1),
        "machine": {**machine, "busy": busy(machine)},
        "settings": settings,
        "rows": {n: fills[n]["rows"] for n in sizes},
        "fill_seconds": {n: round(fills[n]["seconds"], 1) for n in sizes},
        "orm_rows": {n: fills[n]["orm_rows"] for n in sizes},
        "in_process_us": {n: round(us[n], 1) for n in sizes},
        "in_process_rounds_us": {n: [t["rounds_us"][0] for t in timings[n]] for n in sizes},
        "query_plan": {n: timings[n][-1]["plan"] for n in sizes},
        "cost_ratio": {
            "in_process": round(in_process, 3) if in_process else None,
            "http": round(http, 3) if http else None,
        },
        "limit": LIMIT,
        "verdict": checks,
        "endpoints": [s.as_dict() for s in summaries],
    }
    text = _table(result, summaries, machine, settings, sizes)
    write_result(args, result, text)
    failed_check = "FAIL" in checks.values() or errors
    return 2 if args.strict and failed_check else 0


def _verdict(ratio: float | None) -> str:
    if ratio is None:
        return "FAIL"
    return "PASS" if ratio <= LIMIT else "FAIL"


def _table(
    result: dict[str, Any],
    summaries: list[Summary],
    machine: dict[str, Any],
    settings: dict[str, Any],
    sizes: dict[str, int],
) -> str:
    rows_small, rows_big = (result["rows"][n] for n in sizes)
    head = ("scale check", f"{rows_small:,} events", f"{rows_big:,} events", "big/small cost", "")
    base, small, big = summaries
    rows = [
        (
            "newest_pending_event, in process (us/call)",
            f"{result['in_process_us']['small']:,.1f}",
            f"{result['in_process_us']['big']:,.1f}",
            _fmt(result["cost_ratio"]["in_process"]),
            f"{result['verdict']['in_process']} (<= {LIMIT}x)",
        ),
        (
            "GET /api/v0/event/new/<user_id> (B5), median rps",
            f"{small.median_rps:,.0f}",
            f"{big.median_rps:,.0f}",
            _fmt(result["cost_ratio"]["http"]),
            f"{result['verdict']['http']} (<= {LIMIT}x)",
        ),
        (
            "  B5 p50 / p99 ms",
            f"{small.latency('p50'):.2f} / {small.latency('p99'):.2f}",
            f"{big.latency('p50'):.2f} / {big.latency('p99'):.2f}",
            "",
            "",
        ),
        (
            f"  B5 ratio to (a) hello ({base.median_rps:,.0f} rps)",
            _fmt(small.ratio),
            _fmt(big.ratio),
            "",
            "P6 target >= 0.45",
        ),
    ]
    errors = sum(s.errors for s in summaries)
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]

    def fmt(row: tuple[str, ...]) -> str:
        cells = [c.ljust(widths[0]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(row)]
        return "  ".join(cells).rstrip()

    lines = [fmt(head), fmt(tuple("-" * w for w in widths)), *(fmt(r) for r in rows)]
    plans = result["query_plan"]
    lines += [
        "",
        f"query plan ({rows_big:,} events): " + "; ".join(plans["big"]),
        f"filled in {result['fill_seconds']['small']:.1f} s and "
        f"{result['fill_seconds']['big']:.1f} s (bulk_create, then executemany copies past "
        f"{result['orm_rows']['big']:,} rows); the scale user has 200 events (1 pending) "
        "in both; no ANALYZE",
    ]
    if errors:
        lines.append(f"{errors} requests failed")
    pk = machine["packages"]
    lines += [
        f"machine: nproc={machine['nproc']}, CPU {machine['cpu_model']}, "
        f"{machine['mem_total_gib']} GiB RAM, {machine['platform']}",
        f"software: {machine['python']}, Django {pk.get('Django')}, "
        f"SQLite {machine['sqlite']} (WAL), git {machine['git']}",
        f"protocol: one gunicorn (sync x{settings['workers']}) per database, "
        f"{machine['loadgen']} -c{settings['connections']}, {settings['rounds']} rounds x "
        f"{settings['duration']} s, interleaved (a, B5 small, B5 big), after "
        f"{settings['warmup']} s warm-up; in process: {settings['rounds']} alternating rounds",
        load_line(machine),
    ]
    if busy(machine):
        lines.append(BUSY_WARNING)
    return "\n".join(lines)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"
