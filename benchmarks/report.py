"""Machine information, per-endpoint summaries and the printed table."""

from __future__ import annotations

import os
import platform
import sqlite3
import statistics
import subprocess
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


def busy(machine: dict[str, Any]) -> bool:
    load = machine.get("loadavg_start")
    return bool(load and machine.get("nproc") and load[0] >= machine["nproc"] / 2)


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
                f">= {e.target:.2f}" if e.target is not None else "baseline",
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
        f"load average: start {machine['loadavg_start']}, end {machine.get('loadavg_end')}",
    ]
    if busy(machine):
        lines.append(
            "warning: the machine was busy before the run (load average >= nproc / 2): "
            "other processes shared the CPUs, so rps and ratios are noisy"
        )
    return "\n".join(lines)
