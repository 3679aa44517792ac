"""``make bench``: load-test the example site under gunicorn. See benchmarks/README.md.

.venv/bin/python benchmarks/run.py [--quick] [--duration S] [--rounds N] [--json]
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.bench import main

if __name__ == "__main__":
    raise SystemExit(main())
