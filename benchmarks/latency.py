"""Approval-to-notification latency (targets L1-L3 of the performance reference).

Starts the example site for real on 127.0.0.1, the way ``tests/test_waiting_live.py`` does:
uvicorn (2 workers) serves the waiting endpoints, gunicorn (2 sync workers) serves the rest,
both on one temporary SQLite file, once with Redis pub/sub and once without (database
re-check). A trusted browser device approves through gunicorn while the requester waits on
uvicorn, so waiter and approver are always different processes.

Measured, side by side in one run:

* latency from sending the approve POST (``/decision``) until the waiting client has the
  outcome: long-poll (``?wait=25``) and server-sent events, with and without Redis;
* the same for a client polling the plain status endpoint every 1 s (Cotter's SDK interval);
* capacity: N SSE waiters parked on ONE uvicorn worker, its RSS before/after, then each
  approved in turn (fan-out latency) within a time budget.

Run from the repository root::

    .venv/bin/python benchmarks/latency.py            # 50 trials, 15 polling, 1000 waiters
    .venv/bin/python benchmarks/latency.py --quick    # a smoke run (~1 minute)
    .venv/bin/python benchmarks/latency.py --json     # JSON on stdout, progress on stderr

Every loop is bounded in count and time; every server is stopped in ``finally``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import platform
import random
import resource
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from tests.devicekit import Browser, Phone  # noqa: E402
from tests.live import PY, site_env  # noqa: E402
from tests.services import ServiceUnavailable, free_port, start_redis, wait_for_port  # noqa: E402
from tests.test_waiting_live import SETUP_USER, signed  # noqa: E402

HTTP_TIMEOUT = 40.0  # every HTTP call is bounded
WAIT = 25  # the long-polls' ?wait= (the server's maximum)
POLL_INTERVAL = 1.0  # Cotter's SDK polls every second
POLL_DEADLINE = 15.0  # a polling trial gives up after this long
PARK_DEADLINE = 90.0  # parking all capacity waiters
CREATE_DEADLINE = 120.0  # creating the capacity waiters' events
RELEASE_BUDGET = 60.0  # approving the capacity waiters one after another
MAX_TRIALS, MAX_POLL_TRIALS, MAX_WAITERS = 500, 60, 5000

TARGETS_MS = {"redis_p50": 20.0, "redis_p99": 60.0, "db_p50": 40.0, "db_p99": 80.0}
TARGET_RATIO = 20.0
TARGET_KB_PER_WAITER = 100.0
TARGET_FANOUT_P99_MS = 50.0


class BenchError(RuntimeError):
    pass


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- machine ---------------------------------------------------------------------------------


def machine_info() -> dict[str, Any]:
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    nproc = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "nproc": nproc or 1,
        "cpu": model,
        "loadavg": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "other_test_runs": _other_test_runs(),
    }


def _other_test_runs() -> int:
    """Processes that look like another test suite or benchmark (noise on a shared box)."""
    count, me = 0, os.getpid()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        with contextlib.suppress(OSError):
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
            if b"pytest" in cmd or b"playwright" in cmd or b"benchmarks/run.py" in cmd:
                count += 1
    return count


def busy_warning(info: dict[str, Any]) -> str | None:
    load1 = info["loadavg"][0]
    reasons = []
    if load1 > 0.5 * info["nproc"]:
        reasons.append(f"load average {load1} on {info['nproc']} CPUs")
    if info["other_test_runs"]:
        reasons.append(f"{info['other_test_runs']} other test/benchmark processes running")
    if not reasons:
        return None
    return "WARNING: machine busy (" + "; ".join(reasons) + "): the numbers are noisy."


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise BenchError(f"no VmRSS for pid {pid}")


def raise_fd_limit(wanted: int) -> None:
    """Parked waiters hold one socket each, in this process and in the server (which
    inherits the limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


# -- the site --------------------------------------------------------------------------------


@dataclass
class Site:
    label: str
    env: dict[str, str]
    tmp: Path
    wsgi: str
    origin: str
    api_key_id: str
    browser: Browser
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def handle(self) -> str:
        return hashlib.sha256(self.browser.public_key.encode()).hexdigest()

    def headers(self, **extra: str) -> dict[str, str]:
        return {"API_KEY_ID": self.api_key_id, **extra}

    def spawn(self, name: str, cmd: list[str], port: int) -> subprocess.Popen[bytes]:
        with open(self.tmp / f"{name}.log", "ab") as out:
            proc = subprocess.Popen(
                cmd,
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.procs.append(proc)
        wait_for_port(port, timeout=30, proc=proc)
        return proc

    def uvicorn(self, workers: int) -> tuple[str, subprocess.Popen[bytes]]:
        port = free_port()
        cmd = [PY, "-m", "uvicorn", "project.asgi:application", "--host", "127.0.0.1"]
        cmd += ["--port", str(port), "--workers", str(workers), "--lifespan", "off"]
        cmd += ["--timeout-graceful-shutdown", "3", "--no-access-log"]
        proc = self.spawn(f"uvicorn-{workers}w-{port}", cmd, port)
        return f"http://127.0.0.1:{port}", proc

    def stop(self, proc: subprocess.Popen[bytes]) -> None:
        stop_process(proc)
        with contextlib.suppress(ValueError):
            self.procs.remove(proc)


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # the session this script started
        proc.wait(timeout=5)


@contextlib.contextmanager
def running_site(label: str, redis_url: str | None) -> Iterator[Site]:
    """Migrate a fresh SQLite file, create an application and a user with a trusted
    browser device, start gunicorn (2 workers). uvicorn is started by the caller."""
    tmp = Path(tempfile.mkdtemp(prefix=f"authdevice-latency-{label}-"))
    wsgi_port = free_port()
    origin = f"http://127.0.0.1:{wsgi_port}"
    browser, phone = Browser(), Phone.new("rn")
    overrides = {
        "AUTHDEVICE_ISSUER": origin,
        # The benchmark starts thousands of approvals for one user: lift the
        # push-bombing limits (they are tested elsewhere).
        "AUTHDEVICE_MAX_OUTSTANDING_EVENTS": "1000000",
        "AUTHDEVICE_MAX_REQUESTS_SINCE_SUCCESS": "1000000",
        "AUTHDEVICE_NOTIFY_DEVICE_CHANGES": "0",
        "AUTHDEVICE_POLL_INTERVAL": "1",
        "LOG_LEVEL": "WARNING",
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
    created = json.loads(manage("authdevice_create_application", "--name", "Bench", "--json"))
    manage("shell", "-c", SETUP_USER)
    site = Site(
        label, env, tmp, f"http://127.0.0.1:{wsgi_port}", origin, created["api_key_id"], browser
    )
    try:
        cmd = [PY, "-m", "gunicorn", "-c", "project/gunicorn.conf.py"]
        cmd += ["--bind", f"127.0.0.1:{wsgi_port}", "--workers", "2", "project.wsgi:application"]
        site.spawn("gunicorn", cmd, wsgi_port)
        yield site
    finally:
        for proc in list(site.procs):
            site.stop(proc)


# -- one approval ----------------------------------------------------------------------------


@dataclass
class Sample:
    latency: float  # seconds from sending the approve POST to the waiter having the outcome
    approve_rtt: float  # the approve POST's own round trip


async def start_approval(client: httpx.AsyncClient, site: Site) -> dict[str, Any]:
    response = await client.post(
        f"{site.wsgi}/api/v1/approvals",
        json={"identifier": "alice@example.com"},
        headers=site.headers(),
    )
    if response.status_code != 201:
        raise BenchError(f"start: {response.status_code} {response.text[:200]}")
    return response.json()


async def approve(
    client: httpx.AsyncClient, site: Site, started: dict[str, Any]
) -> tuple[float, float]:
    """The trusted device approves through gunicorn. Returns (time the approve POST was
    sent, its round trip); the challenge and the signature come before the clock starts."""
    event_id = started["event_id"]
    base = f"{site.wsgi}/api/v1/approvals/{event_id}"
    response = await client.post(
        f"{base}/challenge", json={"device": site.handle}, headers=site.headers()
    )
    if response.status_code != 200:
        raise BenchError(f"challenge: {response.status_code} {response.text[:200]}")
    challenge = response.json()["challenge"]
    body = {
        "device": site.handle,
        "challenge": challenge,
        "signature": site.browser.sign(signed(site, "approve", challenge, event_id, "approve")),  # type: ignore[arg-type]
        "approve": True,
        "match_code": started["match_code"],
    }
    sent = time.perf_counter()
    response = await client.post(f"{base}/decision", json=body, headers=site.headers())
    rtt = time.perf_counter() - sent
    if response.status_code != 200:
        raise BenchError(f"decision: {response.status_code} {response.text[:200]}")
    return sent, rtt


def poll_headers(site: Site, started: dict[str, Any], **extra: str) -> dict[str, str]:
    return site.headers(**{"X-Poll-Secret": started["poll_secret"], **extra})


async def sse_waiter(
    client: httpx.AsyncClient,
    asgi: str,
    site: Site,
    started: dict[str, Any],
    parked: asyncio.Event,
) -> float:
    """Hold the event stream; set ``parked`` on the first (pending) event; return the time
    the decisive event arrived."""
    url = f"{asgi}/api/v1/approvals/{started['event_id']}"
    headers = poll_headers(site, started, Accept="text/event-stream")
    async with client.stream("GET", url, headers=headers) as response:
        if response.status_code != 200:
            raise BenchError(f"stream: {response.status_code}")
        async for line in response.aiter_lines():
            if not line.startswith("data: "):
                continue
            status = json.loads(line[len("data: ") :])["status"]
            if status == "authorization_pending":
                parked.set()
                continue
            arrived = time.perf_counter()
            if status != "approved":
                raise BenchError(f"stream said {status}")
            return arrived
    raise BenchError("stream ended without a decision")


async def until_parked(task: asyncio.Task[float], parked: asyncio.Event, timeout: float) -> None:
    flag = asyncio.ensure_future(parked.wait())
    try:
        done, _ = await asyncio.wait(
            {task, flag}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
        )
    finally:
        flag.cancel()
    if task in done:
        task.result()  # raises the waiter's error
        raise BenchError("waiter returned before the approval")
    if flag not in done:
        raise BenchError("waiter did not park in time")


async def trial_long_poll(client: httpx.AsyncClient, site: Site, asgi: str) -> Sample:
    started = await start_approval(client, site)

    async def waiter() -> float:
        response = await client.get(
            f"{asgi}/api/v1/approvals/{started['event_id']}?wait={WAIT}",
            headers=poll_headers(site, started),
        )
        arrived = time.perf_counter()
        if response.status_code != 200 or response.json().get("status") != "approved":
            raise BenchError(f"long-poll: {response.status_code} {response.text[:200]}")
        return arrived

    task = asyncio.create_task(waiter())
    try:
        await asyncio.sleep(random.uniform(0.05, 0.15))  # park, random phase
        if task.done():
            task.result()
            raise BenchError("long-poll returned before the approval")
        sent, rtt = await approve(client, site, started)
        arrived = await asyncio.wait_for(task, HTTP_TIMEOUT)
        return Sample(arrived - sent, rtt)
    finally:
        task.cancel()


async def trial_sse(client: httpx.AsyncClient, site: Site, asgi: str) -> Sample:
    started = await start_approval(client, site)
    parked = asyncio.Event()
    task = asyncio.create_task(sse_waiter(client, asgi, site, started, parked))
    try:
        await until_parked(task, parked, timeout=10)
        await asyncio.sleep(random.uniform(0.05, 0.15))
        sent, rtt = await approve(client, site, started)
        arrived = await asyncio.wait_for(task, HTTP_TIMEOUT)
        return Sample(arrived - sent, rtt)
    finally:
        task.cancel()


async def trial_polling(client: httpx.AsyncClient, site: Site, asgi: str) -> Sample:
    """A client polling the plain status endpoint (gunicorn) every second; the approval
    lands at a random phase of its schedule."""
    del asgi  # plain polling never touches the ASGI server
    started = await start_approval(client, site)
    url = f"{site.wsgi}/api/v1/approvals/{started['event_id']}"

    async def poller() -> float:
        begin = time.perf_counter()
        for k in range(1, int(POLL_DEADLINE / POLL_INTERVAL) + 1):
            response = await client.get(url, headers=poll_headers(site, started))
            if response.status_code == 200 and response.json().get("status") == "approved":
                return time.perf_counter()
            await asyncio.sleep(max(0.0, begin + k * POLL_INTERVAL - time.perf_counter()))
        raise BenchError("poller never saw the approval")

    task = asyncio.create_task(poller())
    try:
        await asyncio.sleep(random.uniform(1.0, 2.0))
        sent, rtt = await approve(client, site, started)
        arrived = await asyncio.wait_for(task, POLL_DEADLINE + HTTP_TIMEOUT)
        return Sample(arrived - sent, rtt)
    finally:
        task.cancel()


Trial = Callable[[httpx.AsyncClient, Site, str], Awaitable[Sample]]


@dataclass
class Series:
    name: str
    samples: list[Sample] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    note: str = ""

    def stats(self) -> dict[str, Any]:
        ms = sorted(s.latency * 1000 for s in self.samples)
        rtt = sorted(s.approve_rtt * 1000 for s in self.samples)
        out: dict[str, Any] = {"name": self.name, "n": len(ms), "errors": len(self.errors)}
        for label, q in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99)):
            out[label] = percentile(ms, q)
        out["max"] = ms[-1] if ms else None
        out["approve_rtt_p50"] = percentile(rtt, 0.5)
        if self.note:
            out["note"] = self.note
        return out


def percentile(values: list[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default) of sorted values."""
    if not values:
        return None
    pos = (len(values) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (pos - lo)


async def run_series(
    name: str, trial: Trial, site: Site, asgi: str, n: int, deadline: float
) -> Series:
    series = Series(name)
    limits = httpx.Limits(max_connections=20, max_keepalive_connections=10)
    async with httpx.AsyncClient(timeout=HTTP_TIMEOUT, limits=limits) as client:
        for _ in range(0 if trial is trial_polling else 2):  # warm-up, not counted
            with contextlib.suppress(BenchError, httpx.HTTPError, TimeoutError):
                await trial(client, site, asgi)
        for i in range(n):
            if time.monotonic() > deadline:
                series.note = f"time budget reached after {i} of {n} trials"
                break
            try:
                series.samples.append(await trial(client, site, asgi))
            except (BenchError, httpx.HTTPError, TimeoutError) as exc:
                series.errors.append(f"{type(exc).__name__}: {exc}")
                if len(series.errors) >= max(3, n // 5):
                    series.note = f"stopped after {len(series.errors)} errors"
                    break
    stats = series.stats()
    log(f"  {name}: n={stats['n']} p50={fmt(stats['p50'])} p99={fmt(stats['p99'])} ms")
    for error in series.errors[:3]:
        log(f"    error: {error}")
    return series


# -- capacity --------------------------------------------------------------------------------


async def capacity(site: Site, waiters: int) -> dict[str, Any]:
    """Park ``waiters`` SSE streams on ONE uvicorn worker; RSS before and after; then
    approve them one after another (two at a time) within RELEASE_BUDGET, and close the
    rest."""
    asgi, proc = site.uvicorn(workers=1)
    result: dict[str, Any] = {"waiters_requested": waiters, "mode": "SSE, Redis pub/sub"}
    try:
        async with httpx.AsyncClient(timeout=HTTP_TIMEOUT) as client:
            for _ in range(5):  # warm the worker up: imports, thread pool, Redis client
                with contextlib.suppress(BenchError, httpx.HTTPError, TimeoutError):
                    await trial_sse(client, site, asgi)
            await asyncio.sleep(0.5)
            result["rss_idle_kb"] = rss_kb(proc.pid)

            log(f"  creating {waiters} approval requests ...")
            began = time.monotonic()
            started: list[dict[str, Any]] = []
            gate = asyncio.Semaphore(8)

            async def create() -> None:
                async with gate:
                    if time.monotonic() - began < CREATE_DEADLINE:
                        started.append(await start_approval(client, site))

            await asyncio.gather(*(create() for _ in range(waiters)), return_exceptions=True)
            result["create_s"] = round(time.monotonic() - began, 1)
            if len(started) < waiters:
                result["note"] = f"only {len(started)} requests created in time"

            rss_before = rss_kb(proc.pid)
            result["rss_before_kb"] = rss_before
            log(f"  parking {len(started)} SSE waiters on one worker (pid {proc.pid}) ...")
            limits = httpx.Limits(max_connections=len(started) + 10, max_keepalive_connections=0)
            timeout = httpx.Timeout(HTTP_TIMEOUT, read=PARK_DEADLINE + RELEASE_BUDGET + 30)
            async with httpx.AsyncClient(timeout=timeout, limits=limits) as streams:
                opening = asyncio.Semaphore(64)
                flags = [asyncio.Event() for _ in started]

                async def hold(i: int) -> float:
                    inner = asyncio.Event()
                    async with opening:  # at most 64 streams opening at once
                        task = asyncio.ensure_future(
                            sse_waiter(streams, asgi, site, started[i], inner)
                        )
                        try:
                            await until_parked(task, inner, timeout=PARK_DEADLINE)
                        except BaseException:
                            task.cancel()
                            raise
                    flags[i].set()
                    return await task

                tasks = [asyncio.create_task(hold(i)) for i in range(len(started))]
                try:
                    t_park = time.monotonic()
                    while time.monotonic() - t_park < PARK_DEADLINE:
                        parked = sum(f.is_set() for f in flags)
                        failed = sum(t.done() for t in tasks)
                        if parked + failed >= len(tasks):
                            break
                        await asyncio.sleep(0.2)
                    parked = sum(
                        f.is_set() and not t.done() for f, t in zip(flags, tasks, strict=True)
                    )
                    result["park_s"] = round(time.monotonic() - t_park, 1)
                    await asyncio.sleep(1.0)  # let the worker settle
                    rss_after = rss_kb(proc.pid)
                    result |= {"parked": parked, "rss_after_kb": rss_after}
                    result["kb_per_waiter"] = (
                        round((rss_after - rss_before) / parked, 1) if parked else None
                    )
                    log(
                        f"  parked {parked}: RSS {rss_before / 1024:.1f} -> "
                        f"{rss_after / 1024:.1f} MB, {fmt(result['kb_per_waiter'])} KB/waiter"
                    )
                    result["fanout"] = await release(client, site, started, tasks)
                finally:
                    for task in tasks:
                        task.cancel()
                    await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        site.stop(proc)
    return result


async def release(
    client: httpx.AsyncClient,
    site: Site,
    started: list[dict[str, Any]],
    tasks: list[asyncio.Task[float]],
) -> dict[str, Any]:
    """Approve the parked waiters one after another (two approvers), each waiter's
    latency from its approve POST; whatever is left at the budget is closed."""
    # Newest first: a device's challenge endpoint only offers its 20 newest pending requests.
    queue = list(reversed(range(len(started))))
    latencies: list[float] = []
    errors = 0
    began = time.monotonic()

    async def approver() -> None:
        nonlocal errors
        while queue and time.monotonic() - began < RELEASE_BUDGET:
            i = queue.pop(0)
            if tasks[i].done():
                continue
            try:
                sent, _ = await approve(client, site, started[i])
                arrived = await asyncio.wait_for(asyncio.shield(tasks[i]), 10)
                latencies.append((arrived - sent) * 1000)
            except (BenchError, httpx.HTTPError, TimeoutError) as exc:
                errors += 1
                if errors <= 3:
                    log(f"    fan-out error: {type(exc).__name__}: {exc}")

    await asyncio.gather(approver(), approver())
    latencies.sort()
    out = {
        "approved": len(latencies),
        "errors": errors,
        "p50": percentile(latencies, 0.5),
        "p99": percentile(latencies, 0.99),
        "max": latencies[-1] if latencies else None,
        "seconds": round(time.monotonic() - began, 1),
    }
    log(
        f"  fan-out: approved {len(latencies)} in {out['seconds']} s ({errors} errors), "
        f"p99 {fmt(out['p99'])} ms"
    )
    return out


# -- report ----------------------------------------------------------------------------------


def fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def verdicts(results: dict[str, Any]) -> list[dict[str, Any]]:
    stats = {s["name"]: s for s in results["series"]}
    poll = stats.get("redis: 1 s polling", {}).get("p50")
    checks: list[dict[str, Any]] = []

    def check(target: str, value: float | None, ok: bool | None, shown: str) -> None:
        verdict = "n/a" if value is None or ok is None else ("PASS" if ok else "FAIL")
        checks.append({"target": target, "value": shown, "verdict": verdict})

    for mech in ("long-poll", "SSE"):
        r = stats.get(f"redis: {mech}", {})
        d = stats.get(f"no redis: {mech}", {})
        p50, p99 = r.get("p50"), r.get("p99")
        check(f"L1 Redis {mech} p50 <= 20 ms", p50, p50 is not None and p50 <= 20, fmt(p50))
        check(f"L1 Redis {mech} p99 <= 60 ms", p99, p99 is not None and p99 <= 60, fmt(p99))
        ratio = poll / p50 if poll and p50 else None
        check(
            f"L1 Redis {mech} p50 >= 20x lower than 1 s polling",
            ratio,
            ratio is not None and ratio >= TARGET_RATIO,
            f"{fmt(ratio)}x",
        )
        p50, p99 = d.get("p50"), d.get("p99")
        check(f"L2 no Redis {mech} p50 <= 40 ms", p50, p50 is not None and p50 <= 40, fmt(p50))
        check(f"L2 no Redis {mech} p99 <= 80 ms", p99, p99 is not None and p99 <= 80, fmt(p99))
    cap = results.get("capacity") or {}
    kb = cap.get("kb_per_waiter")
    parked = cap.get("parked", 0)
    check(
        f"L3 {parked} parked waiters on 1 worker <= 100 KB each",
        kb,
        kb is not None and kb <= TARGET_KB_PER_WAITER and parked >= cap.get("waiters_requested", 0),
        f"{fmt(kb)} KB",
    )
    fan = (cap.get("fanout") or {}).get("p99")
    check("L3 approving them in turn: p99 <= 50 ms", fan, fan is not None and fan <= 50, fmt(fan))
    return checks


def report(results: dict[str, Any]) -> str:
    info = results["machine"]
    lines = [
        f"machine: {info['nproc']} CPUs, {info['cpu']}, load average "
        f"{' '.join(map(str, info['loadavg']))} at start, "
        f"{' '.join(map(str, results['loadavg_end']))} at end; Python {info['python']}",
    ]
    if results.get("busy"):
        lines.append(results["busy"])
    lines += [
        "",
        "Approval -> waiting client has the outcome (ms); waiter on uvicorn x2, approver on gunicorn x2",
        "",
        "| mechanism | N | p50 | p90 | p99 | max | approve POST p50 |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for s in results["series"]:
        name = s["name"] + (f" ({s['errors']} errors)" if s["errors"] else "")
        lines.append(
            f"| {name} | {s['n']} | {fmt(s['p50'])} | {fmt(s['p90'])} | {fmt(s['p99'])} "
            f"| {fmt(s['max'])} | {fmt(s['approve_rtt_p50'])} |"
        )
    cap = results.get("capacity")
    if cap:
        lines += ["", f"Capacity ({cap['mode']}, one uvicorn worker):"]
        if "error" in cap:
            lines.append(f"  failed: {cap['error']}")
        else:
            fan = cap.get("fanout") or {}
            lines.append(
                f"  {cap.get('parked', 0)} of {cap['waiters_requested']} parked; RSS "
                f"{fmt(cap.get('rss_before_kb', 0) / 1024)} -> "
                f"{fmt(cap.get('rss_after_kb', 0) / 1024)} MB "
                f"(idle {fmt(cap.get('rss_idle_kb', 0) / 1024)} MB): "
                f"{fmt(cap.get('kb_per_waiter'))} KB per waiter (target <= 100)"
            )
            lines.append(
                f"  released by approving in turn: {fan.get('approved', 0)} approved in "
                f"{fan.get('seconds')} s, p50 {fmt(fan.get('p50'))} / p99 {fmt(fan.get('p99'))}"
                f" / max {fmt(fan.get('max'))} ms"
            )
            if fan.get("approved", 0) + fan.get("errors", 0) < cap.get("parked", 0):
                lines.append(
                    f"  (release budget {RELEASE_BUDGET:.0f} s reached; the rest were closed)"
                )
        if cap.get("note"):
            lines.append(f"  note: {cap['note']}")
    lines += ["", "| target | measured | verdict |", "|---|---:|---|"]
    for c in results["verdicts"]:
        lines.append(f"| {c['target']} | {c['value']} | {c['verdict']} |")
    for s in results["series"]:
        if s.get("note"):
            lines.append(f"note ({s['name']}): {s['note']}")
    return "\n".join(lines)


# -- main ------------------------------------------------------------------------------------


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    info = machine_info()
    busy = busy_warning(info)
    log(
        f"machine: {info['nproc']} CPUs, {info['cpu']}, load {info['loadavg']}"
        + (f"\n{busy}" if busy else "")
    )
    deadline = time.monotonic() + args.budget
    results: dict[str, Any] = {"machine": info, "busy": busy, "series": [], "args": vars(args)}
    try:
        redis_url: str | None = start_redis()
    except (ServiceUnavailable, OSError) as exc:
        log(f"Redis unavailable ({exc}): the Redis rows are skipped")
        redis_url = None

    plans: list[tuple[str, str | None, list[tuple[str, Trial, int]]]] = []
    if redis_url:
        plans.append(
            (
                "redis",
                redis_url,
                [
                    ("long-poll", trial_long_poll, args.trials),
                    ("SSE", trial_sse, args.trials),
                    ("1 s polling", trial_polling, args.poll_trials),
                ],
            )
        )
    plans.append(
        (
            "no redis",
            None,
            [("long-poll", trial_long_poll, args.trials), ("SSE", trial_sse, args.trials)],
        )
    )
    for label, url, trials in plans:
        log(f"{label}: starting gunicorn x2 + uvicorn x2 ...")
        with running_site(label.replace(" ", "-"), url) as site:
            asgi, _ = site.uvicorn(workers=2)
            for name, trial, n in trials:
                series = await run_series(f"{label}: {name}", trial, site, asgi, n, deadline)
                results["series"].append(series.stats())
            if url and args.waiters > 0:
                log(f"{label}: capacity, {args.waiters} waiters on uvicorn --workers 1 ...")
                try:
                    results["capacity"] = await capacity(site, args.waiters)
                except (BenchError, httpx.HTTPError, TimeoutError, OSError) as exc:
                    results["capacity"] = {
                        "waiters_requested": args.waiters,
                        "mode": "SSE, Redis pub/sub",
                        "error": f"{type(exc).__name__}: {exc}",
                    }
    results["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    results["verdicts"] = verdicts(results)
    return results


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny N: a smoke run")
    parser.add_argument("--trials", type=int, default=50, help="trials per waiting mechanism")
    parser.add_argument("--poll-trials", type=int, default=15, help="trials of 1 s polling")
    parser.add_argument("--waiters", type=int, default=1000, help="parked waiters (0: skip)")
    parser.add_argument("--budget", type=float, default=900.0, help="seconds for all trials")
    parser.add_argument("--json", action="store_true", help="JSON on stdout")
    args = parser.parse_args(argv)
    if args.quick:
        args.trials, args.poll_trials, args.waiters = 5, 3, min(args.waiters, 50)
    args.trials = max(1, min(args.trials, MAX_TRIALS))
    args.poll_trials = max(1, min(args.poll_trials, MAX_POLL_TRIALS))
    args.waiters = max(0, min(args.waiters, MAX_WAITERS))
    args.budget = max(10.0, min(args.budget, 3600.0))
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    raise_fd_limit(2 * args.waiters + 1024)

    def terminate(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)  # unwind: every finally stops its servers

    signal.signal(signal.SIGTERM, terminate)
    results = asyncio.run(main_async(args))
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(report(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
