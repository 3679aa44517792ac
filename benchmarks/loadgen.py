"""Load generators: ``wrk`` with ``wrk_request.lua`` when installed, else Python processes.

Both take a :class:`Load` and return a :class:`LoadResult`. Every run is bounded by time
(``duration``) and by count (``max_requests``), and only ever targets 127.0.0.1. One-use
request bodies (``items``) are split into one contiguous block per wrk thread or Python
worker; each is sent at most once, and the ones not sent come back as ``unused``.
"""

from __future__ import annotations

import http.client
import json
import math
import multiprocessing as mp
import os
import queue
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

LUA_SCRIPT = Path(__file__).with_name("wrk_request.lua")
LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class Load:
    base_url: str
    method: str
    path: str
    headers: dict[str, str]
    body: str | None
    items: list[str] | None
    """One request per item ("BODY" or "PATH<TAB>BODY"), each used at most once."""
    duration: float
    connections: int
    threads: int
    max_requests: int
    timeout: float = 5.0

    def __post_init__(self) -> None:
        host = urlsplit(self.base_url).hostname
        if host != LOOPBACK:
            raise ValueError(f"the load generator only targets {LOOPBACK}, not {host!r}")
        if self.duration <= 0 or self.max_requests <= 0 or self.connections <= 0:
            raise ValueError("duration, max_requests and connections must be positive")


@dataclass
class LoadResult:
    tool: str
    requests: int
    duration: float
    latency_ms: dict[str, float]
    errors: dict[str, int]
    exhausted: bool = False
    unused: list[str] = field(default_factory=list, repr=False)
    extra: dict[str, Any] = field(default_factory=dict)
    """Measured on the side (e.g. broker connections opened during the run)."""

    @property
    def rps(self) -> float:
        return self.requests / self.duration if self.duration > 0 else 0.0

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "tool": self.tool,
            "requests": self.requests,
            "duration_s": round(self.duration, 3),
            "rps": round(self.rps, 1),
            "latency_ms": self.latency_ms,
            "errors": self.errors,
            "exhausted": self.exhausted,
            **self.extra,
        }


def _blocks(n: int, parts: int) -> list[tuple[int, int]]:
    """The contiguous ``[start, end)`` block of each part (same split as the Lua script)."""
    size = math.ceil(n / parts) if parts else 0
    return [(min(n, i * size), min(n, (i + 1) * size)) for i in range(parts)]


def wrk_path() -> str | None:
    return shutil.which("wrk")


def wrk_version() -> str | None:
    exe = wrk_path()
    if exe is None:
        return None
    out = subprocess.run([exe, "-v"], capture_output=True, text=True, timeout=10, check=False)
    text = (out.stdout + out.stderr).strip().splitlines()
    return " ".join(text[0].split()[:2]) if text else "wrk"  # "wrk debian/4.1.0-3+b2"


def run_wrk(load: Load, workdir: Path) -> LoadResult:
    exe = wrk_path()
    if exe is None:
        raise RuntimeError("wrk is not installed")
    threads = max(1, min(load.threads, load.connections))
    seconds = max(1, round(load.duration))  # wrk takes whole seconds
    with tempfile.NamedTemporaryFile(
        "w", dir=workdir, prefix="wrk-", suffix=".txt", delete=False
    ) as fh:
        if load.items is not None:
            mode = "each"
            fh.write("".join(f"{item}\n" for item in load.items))
        elif load.body is not None:
            mode = "static"
            fh.write(load.body + "\n")
        else:
            mode = "none"
        data_file = fh.name
    cmd = [exe, "-t", str(threads), "-c", str(load.connections), "-d", f"{seconds}s"]
    cmd += ["--timeout", f"{max(1, round(load.timeout))}s", "-s", str(LUA_SCRIPT)]
    for name, value in load.headers.items():
        cmd += ["-H", f"{name}: {value}"]
    cmd += [load.base_url, "--", load.method, load.path, str(load.max_requests), mode]
    cmd += [data_file, str(threads)]
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=seconds + load.timeout + 30, check=False
        )
    finally:
        os.unlink(data_file)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("BENCHJSON ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {proc.stderr.strip() or proc.stdout}")
    data = json.loads(line.removeprefix("BENCHJSON "))
    unused: list[str] = []
    exhausted = False
    if load.items is not None:
        per_thread = {t["id"]: t for t in data["threads"]}
        for i, (start, end) in enumerate(_blocks(len(load.items), threads)):
            t = per_thread.get(i, {"consumed": end - start, "exhausted": False})
            unused.extend(load.items[min(end, start + int(t["consumed"])) : end])
            exhausted = exhausted or bool(t["exhausted"])
    lat = data["latency_us"]
    return LoadResult(
        tool="wrk",
        requests=int(data["requests"]),
        duration=data["duration_us"] / 1e6,
        latency_ms={k: round(float(lat[k]) / 1000, 3) for k in ("p50", "p90", "p99", "mean")},
        errors={k: int(v) for k, v in data["errors"].items()},
        exhausted=exhausted,
        unused=unused,
    )


# --- Python fallback: one process per connection, keep-alive http.client ---------------


def _py_worker(
    load: Load, items: list[str] | None, go: Any, out: Any, index: int
) -> None:  # pragma: no cover - runs in a child process
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops us
    url = urlsplit(load.base_url)
    host, port = url.hostname or LOOPBACK, url.port or 80
    body = load.body.encode() if load.body is not None else None
    errors = {"connect": 0, "read": 0, "write": 0, "status": 0, "timeout": 0}
    latencies: list[float] = []
    consumed = 0
    exhausted = False
    conn = http.client.HTTPConnection(host, port, timeout=load.timeout)
    try:
        conn.connect()
    except OSError:
        errors["connect"] += 1
    go.wait(30)
    started = time.monotonic()
    deadline = started + load.duration
    limit = math.ceil(load.max_requests / load.connections)
    clock = time.perf_counter
    attempts = 0
    while attempts < limit and time.monotonic() < deadline:
        attempts += 1
        path = load.path
        if items is not None:
            if consumed >= len(items):
                exhausted = True
                break
            line = items[consumed]
            consumed += 1
            if "\t" in line:
                path, _, text = line.partition("\t")
            else:
                text = line
            body = text.encode()
        t0 = clock()
        try:
            conn.request(load.method, path, body=body, headers=load.headers)
            resp = conn.getresponse()
            resp.read()
        except TimeoutError:
            errors["timeout"] += 1
            conn.close()
            continue
        except (OSError, http.client.HTTPException):
            errors["read"] += 1
            conn.close()
            continue
        latencies.append(clock() - t0)
        if not 200 <= resp.status < 400:
            errors["status"] += 1
    ended = time.monotonic()
    conn.close()
    out.put(
        {
            "index": index,
            "started": started,
            "ended": ended,
            "latencies": latencies,
            "errors": errors,
            "consumed": consumed,
            "exhausted": exhausted,
        }
    )


def _percentile(sorted_values: list[float], pct: float) -> float:
    if not sorted_values:
        return 0.0
    rank = min(len(sorted_values) - 1, max(0, math.ceil(pct / 100 * len(sorted_values)) - 1))
    return sorted_values[rank]


def run_python(load: Load, workdir: Path) -> LoadResult:
    ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
    workers = load.connections
    blocks = _blocks(len(load.items), workers) if load.items is not None else None
    go = ctx.Event()
    out = ctx.Queue()
    procs = []
    for i in range(workers):
        items = load.items[blocks[i][0] : blocks[i][1]] if blocks and load.items else None
        proc = ctx.Process(target=_py_worker, args=(load, items, go, out, i), daemon=True)
        proc.start()
        procs.append(proc)
    results: list[dict[str, Any]] = []
    try:
        time.sleep(0.2)  # let every worker connect
        go.set()
        deadline = time.monotonic() + load.duration + load.timeout + 30
        while len(results) < workers:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                results.append(out.get(timeout=remaining))
            except queue.Empty:
                break
    finally:
        for proc in procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.terminate()
                proc.join(timeout=5)
    if len(results) < workers:
        raise RuntimeError(f"only {len(results)} of {workers} load workers reported")
    latencies = sorted(x for r in results for x in r["latencies"])
    errors = {k: sum(r["errors"][k] for r in results) for k in results[0]["errors"]}
    elapsed = max(r["ended"] for r in results) - min(r["started"] for r in results)
    unused: list[str] = []
    if load.items is not None and blocks is not None:
        by_index = {r["index"]: r for r in results}
        for i, (start, end) in enumerate(blocks):
            unused.extend(load.items[min(end, start + by_index[i]["consumed"]) : end])
    mean = sum(latencies) / len(latencies) if latencies else 0.0
    return LoadResult(
        tool="python",
        requests=len(latencies),
        duration=elapsed,
        latency_ms={
            "p50": round(_percentile(latencies, 50) * 1000, 3),
            "p90": round(_percentile(latencies, 90) * 1000, 3),
            "p99": round(_percentile(latencies, 99) * 1000, 3),
            "mean": round(mean * 1000, 3),
        },
        errors=errors,
        exhausted=any(r["exhausted"] for r in results),
        unused=unused,
    )


def run(load: Load, workdir: Path, tool: str) -> LoadResult:
    if tool == "wrk":
        return run_wrk(load, workdir)
    if tool == "python":
        return run_python(load, workdir)
    raise ValueError(f"unknown load generator {tool!r}")
