"""``benchmarks/enumeration.py``: its statistics, and that it runs end to end.

What it measures (time) is never asserted here: wall clocks do not belong in tests.
``tests/test_enumeration_paths.py`` asserts the cause of equal time instead.
"""

from __future__ import annotations

import random
import re
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.enumeration import mann_whitney_u

ROOT = Path(__file__).resolve().parent.parent


def test_mann_whitney_u_against_known_values():
    # Reference values from scipy.stats.mannwhitneyu(a, b, alternative="two-sided",
    # method="asymptotic", use_continuity=True).
    assert mann_whitney_u(list(range(1, 21)), list(range(21, 41))) == pytest.approx(
        6.795615e-08, rel=1e-5
    )
    assert mann_whitney_u([1, 2, 3, 4, 5], [3, 4, 5, 6, 7]) == pytest.approx(0.113846, rel=1e-4)
    rng = random.Random(1)
    a = [rng.random() for _ in range(200)]
    b = [rng.random() + 0.05 for _ in range(200)]
    assert mann_whitney_u(a, b) == pytest.approx(0.0647341, rel=1e-4)
    # Ties everywhere: no evidence of a difference.
    assert mann_whitney_u([1.0] * 10, [1.0] * 10) == 1.0
    same = [0.1 * (i % 7) for i in range(50)]
    assert mann_whitney_u(same, list(reversed(same))) == pytest.approx(1.0)


def test_the_harness_runs_every_door():
    proc = subprocess.run(
        [sys.executable, "benchmarks/enumeration.py", "--samples", "12"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    # 0: every pair alike; 1: some pair differs (12 samples are too few to judge).
    assert proc.returncode in (0, 1), proc.stderr[-4000:]
    rows = re.findall(
        r"^(\S.+?)\s{2,}(device|no device) / (unknown|no device)\s", proc.stdout, re.M
    )
    doors = {door.strip() for door, _a, _b in rows}
    assert doors == {
        "POST /api/v1/auth/code",
        "POST /api/v1/approvals",
        "GET /api/v1/approvals/<id> (first poll)",
        "POST /signin/ (code)",
        "POST /signin/approve/",
    }, proc.stdout
    assert len(rows) == 15
    assert "12 interleaved samples per kind" in proc.stdout
