"""Smoke test of the benchmark harness: ``benchmarks/run.py --quick`` runs end to end.

It asserts that the harness works (server up, seeding, sanity checks, load runs, report,
JSON), never how fast anything is: wall-clock thresholds do not belong in tests.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
KEYS = ("a", "b", "c")


def _run_quick(tmp_path: Path, *extra: str) -> tuple[subprocess.CompletedProcess[str], dict]:
    output = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, "benchmarks/run.py", "--quick", "--output", str(output), *extra],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=90,
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
    assert data["machine"]["nproc"] >= 1
    assert data["machine"]["cpu_model"]


def test_quick_benchmark_reports_every_endpoint(tmp_path: Path) -> None:
    proc, data = _run_quick(tmp_path)
    _assert_ratios(proc.stdout, data, KEYS)
    assert re.search(r"machine: nproc=\d+, CPU ", proc.stdout)


@pytest.mark.skipif(shutil.which("wrk") is None, reason="the first test already used Python")
def test_quick_benchmark_python_load_generator(tmp_path: Path) -> None:
    proc, data = _run_quick(tmp_path, "--loadgen", "python", "--endpoints", "c", "--warmup", "0")
    _assert_ratios(proc.stdout, data, ("a", "c"))
    assert {r["tool"] for e in data["endpoints"] for r in e["runs"]} == {"python"}
