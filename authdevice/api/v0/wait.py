"""Cotter's ``GET /api/v0/event/get/<id>`` with an optional ``?wait=N`` long-poll (ASGI).

Cotter's SDKs poll once a second; a client that adds ``?wait=N`` (at most
``AUTHDEVICE_MAX_WAIT`` seconds) is held until the event is approved, rejected or expires,
then gets exactly the response of the plain poll (:class:`.events.GetEventView`, called in
a thread). Without ``wait``, or for anything but GET, the plain view answers at once.
Only an ASGI server (uvicorn) waits; under WSGI (gunicorn) the route is the plain view.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable

from asgiref.sync import sync_to_async
from django.http import HttpRequest, HttpResponse

from ...asgi import ServerAwareView
from ...flows import events as event_flows
from ...flows.applications import get_application
from ...flows.errors import FlowError
from ...models import AuthEvent
from ..waiting import clamp_wait, wait_until_decided
from .base import API_KEY_HEADER
from .events import GetEventView


def _watch(request: HttpRequest, event_id: str) -> tuple[int, Callable[[], AuthEvent]] | None:
    """The event and a loader if this caller may read it, else None (the plain view then
    renders Cotter's error)."""
    application = get_application(request.META.get(API_KEY_HEADER))
    if application is None:
        return None
    try:
        event = event_flows.get_event(event_id, application)
    except FlowError:
        return None
    return event.pk, functools.partial(event_flows.get_event, event_id, application)


def _render(request: HttpRequest, event_id: str) -> HttpResponse:
    response = GetEventView.as_view()(request, event_id=event_id)
    response.render()
    return response


async def wait_for_event(request: HttpRequest, event_id: str) -> HttpResponse:
    if request.method == "GET":
        wait = clamp_wait(request.GET.get("wait"))
        if wait > 0:
            watch = await sync_to_async(_watch, thread_sensitive=False)(request, event_id)
            if watch is not None:
                pk, load = watch
                with contextlib.suppress(FlowError):
                    await wait_until_decided(pk, load, wait)
    return await sync_to_async(_render)(request, event_id)


#: Routed at ``event/get/<id>``: waits under ASGI (uvicorn); under WSGI (gunicorn) it is
#: the plain view, answering at once (a sync worker is never held by a waiting client).
get_event = ServerAwareView(GetEventView.as_view(), wait_for_event, cls=GetEventView)
