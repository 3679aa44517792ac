"""The example site's settings, with the benchmark-only URL of the floor endpoint (F)."""

from __future__ import annotations

from project.settings import *  # noqa: F403

ROOT_URLCONF = "benchmarks.urls"
