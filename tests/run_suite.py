"""`make test`: the whole suite on SQLite, then again on a real PostgreSQL server (with
Redis and a Celery worker for the tests that need them), all started by the tests.

Without PostgreSQL binaries the second pass is skipped with a warning, except in CI
(``CI`` set), where a missing service fails the run.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.services import postgres_bindir  # noqa: E402

SEPARATE_SERVER_TESTS = [
    "tests/compat",
    "tests/test_live_headers.py",
    "tests/test_benchmarks_smoke.py",
    "tests/test_enumeration_harness.py",
    "tests/test_waiting_live.py",
]


def run(label: str, env_extra: dict[str, str], args: list[str]) -> tuple[int, dict[str, int]]:
    report = Path(tempfile.mkdtemp()) / "report.xml"
    env = {**os.environ, **env_extra}
    print(f"\n===== {label} =====", flush=True)
    cmd = [sys.executable, "-m", "pytest", f"--junitxml={report}", *args, *sys.argv[1:]]
    rc = subprocess.call(cmd, cwd=ROOT, env=env)
    counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    if report.exists():
        for suite in ET.parse(report).getroot().iter("testsuite"):
            for key in counts:
                counts[key] += int(suite.get(key, 0))
    return rc, counts


def main() -> int:
    results = [run("SQLite", {}, ["-m", "not postgres"])]
    if postgres_bindir() is not None or os.environ.get("CI"):
        # Tests that start their own server process on its own SQLite file (the SDK
        # compatibility runs, header handling, the benchmark smoke run) would only repeat
        # the first pass, so the PostgreSQL pass leaves them out.
        separate_servers = [f"--ignore={p}" for p in SEPARATE_SERVER_TESTS]
        results.append(run("PostgreSQL", {"AUTHDEVICE_TEST_DB": "postgres"}, separate_servers))
    else:
        print(
            "\nWARNING: PostgreSQL binaries not found; the PostgreSQL pass (race tests) did not run."
        )
    total = {k: sum(c[k] for _, c in results) for k in results[0][1]}
    failed = total["failures"] + total["errors"]
    passed = total["tests"] - failed - total["skipped"]
    rc = max(r for r, _ in results)
    if rc == 5:  # no tests collected in a pass is a failure of the suite
        rc = 1
    print(f"\nsuite: {passed} passed, {failed} failed, {total['skipped']} skipped")
    return rc


if __name__ == "__main__":
    sys.exit(main())
