"""Race helpers for the PostgreSQL thread tests: calls released together by a barrier."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from django.db import connections

JOIN_TIMEOUT = 60


def race(*calls: Callable[[], Any]) -> list[Any]:
    """Run each call in its own thread (its own database connection), all released at
    once by a barrier; their results, or the exceptions they raised, in call order."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def worker(index: int, call: Callable[[], Any]) -> None:
        try:
            barrier.wait(timeout=JOIN_TIMEOUT)
            results[index] = call()
        except Exception as exc:
            results[index] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(JOIN_TIMEOUT)
    assert not any(thread.is_alive() for thread in threads), "a racing call hung"
    return results


def hammer(call: Callable[[], Any], n: int) -> list[Any]:
    """:func:`race` of ``n`` copies of one call."""
    return race(*[call] * n)
