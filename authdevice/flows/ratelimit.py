"""Fixed-window counters in the shared cache (Redis in production).

Counting is atomic (``add`` then ``incr``). If the cache is down we fail closed: the
caller gets :class:`RateLimitUnavailable` (HTTP 503), never unlimited attempts.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

from django.core.cache import caches

from ..conf import app_settings
from .errors import FlowError


class RateLimited(FlowError):
    """Too many requests. Please wait and try again."""

    code = "rate_limited"
    status = 429

    def __init__(self, retry_after: int, message: str = "") -> None:
        super().__init__(message)
        self.retry_after = max(1, int(retry_after))


class RateLimitUnavailable(FlowError):
    """The service is temporarily unavailable. Please try again shortly."""

    code = "temporarily_unavailable"
    status = 503


@dataclass(frozen=True)
class Limit:
    scope: str
    limit: int
    window: int


def _key(scope: str, subject: str, window: int) -> tuple[str, int]:
    bucket = int(time.time() // window)
    digest = hashlib.sha256(subject.encode()).hexdigest()[:32]
    return f"authdevice:rl:{scope}:{digest}:{bucket}", (bucket + 1) * window - int(time.time())


def hit(limit: Limit, subject: str) -> None:
    """Count one event for ``subject``; raise RateLimited once over the limit."""
    key, remaining = _key(limit.scope, subject, limit.window)
    try:
        cache = caches[app_settings.RATELIMIT_CACHE]
        cache.add(key, 0, timeout=limit.window + 1)
        count = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=limit.window + 1)
        count = 1
    except Exception as exc:
        raise RateLimitUnavailable() from exc
    if count > limit.limit:
        raise RateLimited(remaining)


def peek(scope: str, subject: str, window: int) -> int:
    key, _ = _key(scope, subject, window)
    try:
        return int(caches[app_settings.RATELIMIT_CACHE].get(key) or 0)
    except Exception as exc:
        raise RateLimitUnavailable() from exc


def reset(scope: str, subject: str, window: int) -> None:
    key, _ = _key(scope, subject, window)
    try:
        caches[app_settings.RATELIMIT_CACHE].delete(key)
    except Exception as exc:
        raise RateLimitUnavailable() from exc


def send_limits() -> tuple[Limit, Limit]:
    window = int(app_settings.SEND_WINDOW)
    return (
        Limit("send-ip", int(app_settings.SEND_LIMIT_PER_IP), window),
        Limit("send-id", int(app_settings.SEND_LIMIT_PER_IDENTIFIER), window),
    )
