"""Machine information, per-endpoint summaries and the printed table."""

from __future__ import annotations

import os
import platform
import sqlite3
import statistics
import subprocess
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from .endpoints import Endpoint
from .loadgen import LoadResult

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("Django", "djangorestframework", "gunicorn", "PyJWT", "cryptography")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def _mem_total_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except (OSError, ValueError, IndexError):
        pass
    return None


def _git_revision() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    rev = out.stdout.strip()
    return f"{rev}{'+dirty' if dirty.stdout.strip() else ''}" if rev else None


def machine_info(loadgen: str, loadgen_version: str | None) -> dict[str, Any]:
    try:
        nproc = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        nproc = os.cpu_count() or 0
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "nproc": nproc,
        "cpu_count": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "mem_total_gib": _mem_total_gib(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "platform": platform.platform(),
        "sqlite": sqlite3.sqlite_version,
        "packages": versions,
        "loadgen": loadgen,
        "loadgen_version": loadgen_version,
        "git": _git_revision(),
        "loadavg_start": load_average(),
    }


def load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


@dataclass(frozen=True)
class CpuSnapshot:
    """CPU seconds used so far by the whole machine (``/proc/stat``, steal excluded) and
    by this process with its reaped children (gunicorn and its workers, seeder, wrk,
    Redis: all waited for once the run ends)."""

    wall: float
    machine: float
    ours: float

    @classmethod
    def take(cls) -> CpuSnapshot | None:
        try:
            fields = Path("/proc/stat").read_text().splitlines()[0].split()
            user, nice, system, _idle, _iowait, irq, softirq = (int(x) for x in fields[1:8])
            hz = os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError, IndexError):
            return None
        t = os.times()
        ours = t.user + t.system + t.children_user + t.children_system
        busy_seconds = (user + nice + system + irq + softirq) / hz
        return cls(wall=time.monotonic(), machine=busy_seconds, ours=ours)


def other_cpu(start: CpuSnapshot | None, end: CpuSnapshot | None) -> dict[str, float] | None:
    """Average CPUs busy during the run: all processes, this run's, everybody else's."""
    if start is None or end is None or end.wall <= start.wall:
        return None
    wall = end.wall - start.wall
    total = (end.machine - start.machine) / wall
    ours = (end.ours - start.ours) / wall
    return {
        "total": round(total, 2),
        "this_run": round(ours, 2),
        "others": round(max(0.0, total - ours), 2),
    }


def busy(machine: dict[str, Any]) -> bool:
    """Other processes shared the CPUs: measured during the run when /proc/stat allows
    (the load average at the start also counts the decaying tail of a previous run),
    else judged by the load average at the start."""
    cpu = machine.get("cpu_during_run")
    if cpu:
        return bool(cpu["others"] >= OTHERS_BUSY)
    load = machine.get("loadavg_start")
    nproc = machine.get("nproc") or 0
    return bool(nproc and load and load[0] >= nproc / 2)


@dataclass
class Summary:
    endpoint: Endpoint
    runs: list[LoadResult] = field(default_factory=list)
    warmup: LoadResult | None = None
    retries: int = 0
    median_rps: float = 0.0
    ratio: float | None = None
    round_ratios: list[float] = field(default_factory=list)

    @property
    def errors(self) -> int:
        return sum(r.error_count for r in self.runs)

    @property
    def exhausted(self) -> bool:
        return any(r.exhausted for r in self.runs)

    def latency(self, key: str) -> float:
        values = [r.latency_ms[key] for r in self.runs]
        return statistics.median(values) if values else 0.0

    @property
    def verdict(self) -> str | None:
        target = self.endpoint.target
        if target is None or self.ratio is None:
            return None
        if self.errors or self.exhausted:
            return "FAIL"
        return "PASS" if self.ratio >= target else "FAIL"

    def as_dict(self) -> dict[str, Any]:
        e = self.endpoint
        return {
            "key": e.key,
            "name": e.name,
            "description": e.description,
            "request": f"{e.method} {e.path}",
            "median_rps": round(self.median_rps, 1),
            "p50_ms": round(self.latency("p50"), 3),
            "p99_ms": round(self.latency("p99"), 3),
            "ratio": round(self.ratio, 3) if self.ratio is not None else None,
            "ratio_median_of_rounds": (
                round(statistics.median(self.round_ratios), 3) if self.round_ratios else None
            ),
            "target": e.target,
            "verdict": self.verdict,
            "errors": self.errors,
            "exhausted": self.exhausted,
            "retries": self.retries,
            "runs": [r.as_dict() for r in self.runs],
            "warmup": self.warmup.as_dict() if self.warmup else None,
        }


def summarise(summaries: list[Summary], baseline_key: str) -> None:
    """Median rps per endpoint and ratios to the baseline (the same run's rounds)."""
    base = next(s for s in summaries if s.endpoint.key == baseline_key)
    for s in summaries:
        s.median_rps = statistics.median(r.rps for r in s.runs) if s.runs else 0.0
    for s in summaries:
        if base.median_rps > 0:
            s.ratio = s.median_rps / base.median_rps
        s.round_ratios = [r.rps / b.rps for r, b in zip(s.runs, base.runs, strict=False) if b.rps]


def table(summaries: list[Summary], machine: dict[str, Any], settings: dict[str, Any]) -> str:
    head = (
        "endpoint",
        "request",
        "median rps",
        "min-max rps",
        "p50 ms",
        "p99 ms",
        "ratio",
        "per-round",
        "target",
        "",
    )
    rows = []
    for s in summaries:
        e = s.endpoint
        note = []
        if s.errors:
            note.append(f"{s.errors} errors")
        if s.exhausted:
            note.append("ran out of one-use credentials")
        rows.append(
            (
                f"({e.key}) {e.name}",
                f"{e.method} {e.path}",
                f"{s.median_rps:,.0f}",
                (
                    f"{min(r.rps for r in s.runs):,.0f}-{max(r.rps for r in s.runs):,.0f}"
                    if s.runs
                    else "-"
                ),
                f"{s.latency('p50'):.2f}",
                f"{s.latency('p99'):.2f}",
                f"{s.ratio:.2f}" if s.ratio is not None else "-",
                f"{statistics.median(s.round_ratios):.2f}" if s.round_ratios else "-",
                (
                    f">= {e.target:.2f}"
                    if e.target is not None
                    else ("baseline" if e.key == settings.get("baseline") else "-")
                ),
                " ".join(filter(None, [s.verdict or "", *note])),
            )
        )
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head))]
    right = {2, 3, 4, 5, 6, 7}

    def fmt(row: tuple[str, ...]) -> str:
        cells = [
            c.rjust(widths[i]) if i in right else c.ljust(widths[i]) for i, c in enumerate(row)
        ]
        return "  ".join(cells).rstrip()

    lines = [fmt(head), fmt(tuple("-" * w for w in widths)), *(fmt(r) for r in rows)]
    lines += broker_notes(summaries, settings)
    pk = machine["packages"]
    lines += [
        "",
        f"machine: nproc={machine['nproc']}, CPU {machine['cpu_model']}, "
        f"{machine['mem_total_gib']} GiB RAM, {machine['platform']}",
        f"software: {machine['python']}, Django {pk.get('Django')}, "
        f"DRF {pk.get('djangorestframework')}, gunicorn {pk.get('gunicorn')}, "
        f"SQLite {machine['sqlite']} (WAL), git {machine['git']}",
        f"protocol: gunicorn sync x{settings['workers']}, {machine['loadgen']} "
        f"({machine['loadgen_version']}) -t{settings['threads']} -c{settings['connections']}, "
        f"{settings['rounds']} rounds x {settings['duration']} s per endpoint, interleaved, "
        f"after {settings['warmup']} s warm-up; median of rounds; ratio = median rps / "
        f"median rps of ({settings['baseline']}); per-round = median of the rounds' ratios",
        load_line(machine),
    ]
    if busy(machine):
        lines.append(BUSY_WARNING)
    return "\n".join(lines)


OTHERS_BUSY = 0.25  # CPUs used on average by other processes during the run
BUSY_WARNING = (
    f"warning: the machine was busy (other processes used >= {OTHERS_BUSY} CPU on average "
    "during the run, or without /proc/stat: load average >= nproc / 2 at the start): "
    "rps and ratios are noisy"
)


def load_line(machine: dict[str, Any]) -> str:
    """Load average at the start and end (the end includes this run: gunicorn and the
    load generator keep every CPU busy), and the CPUs other processes used meanwhile."""
    line = f"load average: start {machine['loadavg_start']}, end {machine.get('loadavg_end')}"
    cpu = machine.get("cpu_during_run")
    if cpu:
        line += (
            f"; CPUs busy on average during the run: {cpu['total']:.2f} of "
            f"{machine['nproc']}, this run {cpu['this_run']:.2f}, other processes "
            f"{cpu['others']:.2f}"
        )
    return line


def broker_notes(summaries: list[Summary], settings: dict[str, Any]) -> list[str]:
    """What the broker saw during the timed runs of the endpoints served with one."""
    lines = []
    for s in summaries:
        watched = [r for r in s.runs if "broker_connections" in r.extra]
        if s.endpoint.server != "main":
            url = settings.get("broker_url", "?")
            if not watched:
                lines.append(
                    f"({s.endpoint.key}) Celery publishes to {url} (in-process: no broker "
                    "connections to count)"
                )
                continue
            requests = sum(r.requests for r in watched)
            connections = sum(int(r.extra["broker_connections"]) for r in watched)
            messages = sum(int(r.extra["broker_messages"]) for r in watched)
            lines.append(
                f"({s.endpoint.key}) broker {url}: {connections} new connections and "
                f"{messages:,} queued send tasks during {requests:,} timed requests"
            )
    return ["", *lines] if lines else []
