"""Waiting for an approval decision: long-poll and server-sent events, for ASGI.

Shared by every door that waits (``/api/v1`` approvals, Cotter's ``GET /event/get/<id>``
with ``?wait=``, the waiting sign-in page). These coroutines only wait; what counts as a
change and who may ask is decided by ``authdevice.flows.native`` and ``flows.notify``.
Serve them with uvicorn (ASGI); everything else stays on gunicorn (WSGI).
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from asgiref.sync import sync_to_async
from django.http import StreamingHttpResponse

from ..conf import app_settings
from ..flows import notify
from ..models import AuthEvent

HEARTBEAT_SECONDS = 15.0


def clamp_wait(raw: object) -> float:
    """``?wait=N`` as seconds in ``[0, AUTHDEVICE_MAX_WAIT]`` (junk means no wait)."""
    try:
        value = float(str(raw))
    except (TypeError, ValueError):
        return 0.0
    if value != value:  # NaN
        return 0.0
    return max(0.0, min(value, float(app_settings.MAX_WAIT)))


async def wait_until_decided(
    event_id: int, load: Callable[[], AuthEvent], timeout: float
) -> AuthEvent:
    """Wait (up to ``timeout``) until ``load()`` returns an event that is no longer
    pending; return the last loaded event. ``load`` is a sync function (it reads the
    database and enforces who may look); it runs in a thread."""
    from ..flows.events import effective_state

    aload = sync_to_async(load, thread_sensitive=False)
    latest: dict[str, AuthEvent] = {}

    async def decided() -> bool:
        latest["event"] = await aload()
        return effective_state(latest["event"]) != AuthEvent.State.PENDING

    await notify.wait_for_change(event_id, decided, timeout)
    return latest["event"]


def sse_response(
    event_id: int,
    load: Callable[[], AuthEvent],
    render: Callable[[AuthEvent], dict[str, Any]],
    max_seconds: float = 300.0,
) -> StreamingHttpResponse:
    """A ``text/event-stream`` that sends the current status at once, then every change,
    with a comment heartbeat every 15 s, and ends when the event is decided or expires."""
    from ..flows.events import effective_state

    async def stream() -> AsyncIterator[bytes]:
        deadline = time.monotonic() + max_seconds
        last: str | None = None
        while True:
            remaining = deadline - time.monotonic()
            event = await wait_until_decided(
                event_id, load, 0 if last is None else min(HEARTBEAT_SECONDS, max(0.0, remaining))
            )
            body = render(event)
            payload = json.dumps(body, separators=(",", ":"))
            if payload != last:
                yield f"event: status\ndata: {payload}\n\n".encode()
                last = payload
            else:
                yield b": keep-alive\n\n"
            if effective_state(event) != AuthEvent.State.PENDING or remaining <= 0:
                return

    response = StreamingHttpResponse(stream(), content_type="text/event-stream")
    response["Cache-Control"] = "no-store"
    response["X-Accel-Buffering"] = "no"  # nginx: do not buffer the stream
    return response
