"""Real-time notification of event changes to waiting requesters, across workers.

``announce(event_id)`` publishes on Redis (``AUTHDEVICE_REDIS_URL``) after commit.
Waiters (``wait_for_change``, async) subscribe first, then re-check the database, then
wait, so no wake-up is lost. Without Redis they re-check the database every 25 ms.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from functools import lru_cache
from typing import Any

from django.db import transaction

from ..conf import app_settings

logger = logging.getLogger("authdevice.notify")
CHANNEL_PREFIX = "authdevice:event:"
DB_RECHECK_SECONDS = 0.025
SAFETY_RECHECK_SECONDS = 5.0


def channel(event_id: int) -> str:
    return f"{CHANNEL_PREFIX}{event_id}"


@lru_cache(maxsize=4)
def _sync_client(url: str) -> Any:
    import redis

    return redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)


def announce(event_id: int) -> None:
    """Publish that the event changed, once the surrounding transaction commits."""
    url = app_settings.REDIS_URL
    if not url:
        return

    def publish() -> None:
        try:
            _sync_client(url).publish(channel(event_id), b"1")
        except Exception:  # noqa: BLE001 - waiters fall back to their periodic re-check
            logger.warning("could not publish event %s change", event_id)

    transaction.on_commit(publish)


class _Hub:
    """One Redis pattern subscription per event loop (per ASGI worker), fanning out to
    in-process waiters: 1,000 parked waiters cost 1,000 ``asyncio.Event``s, not 1,000
    Redis connections."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.waiters: dict[int, set[asyncio.Event]] = {}
        self.ready = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self.task is None or self.task.done():
            self.ready.clear()
            self.task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        import redis.asyncio as aioredis

        while True:
            client = aioredis.Redis.from_url(self.url, socket_connect_timeout=2)
            pubsub = client.pubsub()
            try:
                await pubsub.psubscribe(CHANNEL_PREFIX + "*")
                self.ready.set()
                async for message in pubsub.listen():
                    if message.get("type") != "pmessage":
                        continue
                    name = message["channel"]
                    name = name.decode() if isinstance(name, bytes) else str(name)
                    with contextlib.suppress(ValueError):
                        for waiter in self.waiters.get(int(name[len(CHANNEL_PREFIX) :]), ()):
                            waiter.set()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - reconnect; waiters keep re-checking meanwhile
                logger.warning("notification hub lost Redis; reconnecting")
                self.ready.clear()
                # Wake everyone so they re-check the database at once.
                for waiters in self.waiters.values():
                    for waiter in waiters:
                        waiter.set()
                await asyncio.sleep(0.5)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
                with contextlib.suppress(Exception):
                    await client.aclose()

    def register(self, event_id: int) -> asyncio.Event:
        waiter = asyncio.Event()
        self.waiters.setdefault(event_id, set()).add(waiter)
        return waiter

    def unregister(self, event_id: int, waiter: asyncio.Event) -> None:
        waiters = self.waiters.get(event_id)
        if waiters is not None:
            waiters.discard(waiter)
            if not waiters:
                del self.waiters[event_id]


_hubs: dict[int, _Hub] = {}


def _hub(url: str) -> _Hub:
    loop = asyncio.get_running_loop()
    hub = _hubs.get(id(loop))
    if hub is None or hub.url != url:
        hub = _hubs[id(loop)] = _Hub(url)
    hub.start()
    return hub


async def wait_for_change(
    event_id: int, check: Callable[[], Awaitable[bool]], timeout: float
) -> bool:
    """Wait until ``check()`` is true or ``timeout`` passes; returns the last check.

    ``check`` reads the database (it must be cheap). With Redis: subscribe (the hub), then
    check, then wait for a notification (re-checking every 5-6 s as a safety
    net every few seconds). Without Redis: re-check every 25 ms.
    """
    deadline = time.monotonic() + max(0.0, timeout)
    url = app_settings.REDIS_URL
    if not url:
        while True:
            if await check():
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            await asyncio.sleep(min(DB_RECHECK_SECONDS, remaining))
    hub = _hub(url)
    waiter = hub.register(event_id)
    try:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(
                hub.ready.wait(), timeout=min(2.0, max(0.0, deadline - time.monotonic()))
            )
        while True:
            waiter.clear()
            if await check():
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            # With a live subscription every change wakes us, so the periodic re-check is
            # only a safety net (spread out so 1,000 parked waiters do not all hit the
            # database each second); without one, fall back to frequent database checks.
            step = (
                SAFETY_RECHECK_SECONDS + secrets.randbelow(1000) / 1000
                if hub.ready.is_set()
                else DB_RECHECK_SECONDS
            )
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(waiter.wait(), timeout=min(step, remaining))
    finally:
        hub.unregister(event_id, waiter)
