"""Hypothesis settings shared by the state-machine tests."""

from __future__ import annotations

from hypothesis import HealthCheck, settings


def derandomized(max_examples: int, steps: int) -> settings:
    """The same examples on every run (CI never meets a new one), no example database
    written to the work tree, no deadline (the steps use a real database)."""
    return settings(
        max_examples=max_examples,
        stateful_step_count=steps,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
