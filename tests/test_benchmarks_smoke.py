"""Smoke test of the benchmark harness: ``benchmarks/run.py --quick`` runs end to end.

It asserts that the harness works (servers up, seeding, one-use credentials of every kind,
sanity checks, load runs, report, JSON, the scale check), never how fast anything is:
wall-clock thresholds do not belong in tests.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
KEYS = ("a", "b", "c", "d", "e", "f", "f1", "f2", "f0", "g", "h", "i")


def _run_quick(tmp_path: Path, *extra: str) -> tuple[subprocess.CompletedProcess[str], Any]:
    output = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, "benchmarks/run.py", "--quick", "--output", str(output), *extra],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=150,
    )
    assert proc.returncode == 0, f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr[-4000:]}"
    return proc, json.loads(output.read_text())


def _assert_ratios(stdout: str, data: dict, keys: tuple[str, ...]) -> None:
    for key in keys:
        # One table row per endpoint, with a ratio such as "0.64" (the baseline is 1.00).
        assert re.search(rf"^\({key}\) .*\s\d+\.\d\d\s", stdout, re.MULTILINE), stdout
    by_key = {e["key"]: e for e in data["endpoints"]}
    assert set(by_key) == set(keys)
    assert by_key["a"]["ratio"] == 1.0
    for key in keys:
        entry = by_key[key]
        assert entry["median_rps"] > 0
        assert entry["ratio"] is not None and entry["ratio"] > 0
        assert entry["runs"], key
        assert entry["errors"] == 0, entry
        assert not entry["exhausted"], entry
    assert data["machine"]["nproc"] >= 1
    assert data["machine"]["cpu_model"]


def test_quick_benchmark_reports_every_endpoint(tmp_path: Path) -> None:
    proc, data = _run_quick(tmp_path, "--warmup", "0")
    _assert_ratios(proc.stdout, data, KEYS)
    assert re.search(r"machine: nproc=\d+, CPU ", proc.stdout)
    assert re.search(r"load average: start \[", proc.stdout)
    # (e) runs on the server whose Celery publishes to a broker; with Redis the harness
    # counts the connections the broker received during the timed runs.
    assert re.search(r"^\(e\) (broker|Celery publishes to) ", proc.stdout, re.MULTILINE)
    if data["settings"]["broker"] == "redis":
        runs = next(e for e in data["endpoints"] if e["key"] == "e")["runs"]
        assert all(r["broker_messages"] > 0 for r in runs), runs
        assert all(r["broker_connections"] >= 0 for r in runs), runs


@pytest.mark.skipif(shutil.which("wrk") is None, reason="the first test already used Python")
def test_quick_benchmark_python_load_generator(tmp_path: Path) -> None:
    proc, data = _run_quick(tmp_path, "--loadgen", "python", "--endpoints", "h", "--warmup", "0")
    _assert_ratios(proc.stdout, data, ("a", "h"))
    assert {r["tool"] for e in data["endpoints"] for r in e["runs"]} == {"python"}


def test_quick_scale_check(tmp_path: Path) -> None:
    proc, data = _run_quick(tmp_path, "--scale", "--scale-rows", "10000", "--warmup", "0")
    assert data["rows"]["small"] >= 1000 and data["rows"]["big"] >= 10000
    assert set(data["verdict"]) == {"in_process", "http"}
    assert data["in_process_us"]["small"] > 0 and data["in_process_us"]["big"] > 0
    for entry in data["endpoints"]:
        assert entry["median_rps"] > 0 and entry["errors"] == 0, entry
    assert re.search(r"^newest_pending_event, in process .* (PASS|FAIL)", proc.stdout, re.M)
    assert re.search(r"^GET /api/v0/event/new/.* (PASS|FAIL)", proc.stdout, re.M)
    assert "query plan" in proc.stdout
