"""Fixed-window counters in the shared cache (Redis in production).

Counting is atomic (``incr``, and ``add`` to start a window's counter). If the cache is
down we fail closed: the caller gets :class:`RateLimitUnavailable` (HTTP 503), never
unlimited attempts.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache

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
        try:
            count = cache.incr(key)  # one operation for every hit but a window's first
        except ValueError:  # no counter yet: start it with its expiry (atomic add)
            if cache.add(key, 1, timeout=limit.window + 1):
                count = 1
            else:  # another process started it meanwhile
                count = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=limit.window + 1)
        count = 1
    except Exception as exc:
        raise RateLimitUnavailable() from exc
    if count > limit.limit:
        raise RateLimited(remaining)


#: Count each key and stop at the first over its limit (what consecutive ``hit`` calls do),
#: atomically and in one round trip. A new key gets its expiry in the same step, so a
#: counter never outlives its window.
_HIT_MANY_LUA = """
for i, key in ipairs(KEYS) do
  local n = redis.call('INCR', key)
  if n == 1 then redis.call('EXPIRE', key, ARGV[2 * i - 1]) end
  if n > tonumber(ARGV[2 * i]) then return i end
end
return 0
"""


def _redis_client(cache: Any) -> Any | None:
    """The write client of Django's own RedisCache (all writes go to its first server);
    None for any other backend (locmem, memcached, database, third-party)."""
    if type(cache) is not RedisCache:
        return None
    return cache._cache.get_client(write=True)


def hit_many(hits: Sequence[tuple[Limit, str]]) -> None:
    """``hit`` for each ``(limit, subject)`` in order, stopping at the first over its limit;
    on Django's RedisCache one scripted round trip instead of two per counter."""
    try:
        cache = caches[app_settings.RATELIMIT_CACHE]
        client = _redis_client(cache)
    except Exception as exc:
        raise RateLimitUnavailable() from exc
    if client is not None:
        from redis.exceptions import ResponseError  # installed whenever RedisCache works

        keys: list[str] = []
        args: list[int] = []
        remaining: list[int] = []
        for limit, subject in hits:
            key, left = _key(limit.scope, subject, limit.window)
            keys.append(cache.make_and_validate_key(key))
            args += [limit.window + 1, limit.limit]
            remaining.append(left)
        try:
            over = int(client.eval(_HIT_MANY_LUA, len(keys), *keys, *args))
        except ResponseError:  # scripting refused by this server: count one by one
            pass
        except Exception as exc:
            raise RateLimitUnavailable() from exc
        else:
            if over:
                raise RateLimited(remaining[over - 1])
            return
    for limit, subject in hits:
        hit(limit, subject)


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


def limit_user_lookup(application: Any, secret: object, ip: str | None) -> None:
    """Count one call of Cotter's "does this user exist" endpoints (``GET /user?identifier=``,
    ``POST /user/create``), which its SDKs call with the public API key alone: such calls
    are limited per client IP (``USER_LOOKUP_LIMIT_PER_IP``, security.md J03); calls that
    prove the application's secret key (``secret``, a server) are not counted."""
    if isinstance(secret, str) and secret and application.check_secret(secret):
        return
    limit = Limit(
        "user-lookup-ip",
        int(app_settings.USER_LOOKUP_LIMIT_PER_IP),
        int(app_settings.USER_LOOKUP_WINDOW),
    )
    hit(limit, ip or "unknown")
