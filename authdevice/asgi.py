"""ASGI helpers for sites that serve authdevice's waiting endpoints with uvicorn.

**Views that wait only under ASGI.** :class:`ServerAwareView` is routed like a view; under
an ASGI server it is an async view (it may hold the request: long-poll, server-sent
events), under a WSGI server it is the plain sync view (it answers at once). A sync
gunicorn worker is then never held by a waiting client, and the plain poll pays no
``async_to_sync`` hop (about half a millisecond a request here).

**Underscore headers.** Django's ASGI handler drops every header with an underscore in its name (they are
ambiguous with dashes once mapped into ``request.META``). Cotter's SDKs, and clients of
the native API, send ``API_KEY_ID``. :func:`keep_api_key_headers` wraps the ASGI
application so exactly ``API_KEY_ID`` and ``API_SECRET_KEY`` get through (as their dashed
spelling, which Django maps to ``HTTP_API_KEY_ID``); when a request carries one of them,
a dashed twin is dropped so no header can shadow or merge with it. This is what
``project/gunicorn.conf.py`` (``header_map``) and authdevice's ``runserver`` do for WSGI.

    application = keep_api_key_headers(get_asgi_application())
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from asgiref.sync import markcoroutinefunction

Scope = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]], Any]

KEPT_UNDERSCORE_HEADERS = {b"api_key_id": b"api-key-id", b"api_secret_key": b"api-secret-key"}


def _headers(raw: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    present = {name.lower() for name, _ in raw}
    shadowed = {dashed for kept, dashed in KEPT_UNDERSCORE_HEADERS.items() if kept in present}
    headers = []
    for name, value in raw:
        lower = name.lower()
        if lower in shadowed:
            continue
        headers.append((KEPT_UNDERSCORE_HEADERS.get(lower, name), value))
    return headers


def keep_api_key_headers(app: ASGIApp) -> ASGIApp:
    async def application(scope: Scope, receive: Any, send: Any) -> Any:
        if scope.get("type") in ("http", "websocket"):
            scope = {**scope, "headers": _headers(list(scope.get("headers", [])))}
        return await app(scope, receive, send)

    return application


# -- views that wait only under ASGI ------------------------------------------------------------


def _in_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _coroutine_marks() -> dict[str, Any]:
    """The attribute(s) by which asgiref/inspect recognise a callable marked as a
    coroutine function (``_is_coroutine`` before Python 3.12, ``_is_coroutine_marker``
    after)."""

    def probe() -> None:
        return None

    before = set(vars(probe))
    markcoroutinefunction(probe)
    return {name: value for name, value in vars(probe).items() if name not in before}


_COROUTINE_MARKS = _coroutine_marks()


class ServerAwareView:
    """Route this like a view function. Django asks ``iscoroutinefunction(view)`` for every
    request, in the thread that will call it: under ASGI that is the event loop, and the
    answer is yes (``async_view`` runs); under WSGI there is no loop, the answer is no and
    ``sync_view`` answers at once, without a thread hop.

    ``cls`` (a DRF view class) lets schema generators document it as that view.
    """

    csrf_exempt = True  # GET-only endpoints; the DRF view inside has its own rules

    def __init__(
        self,
        sync_view: Callable[..., Any],
        async_view: Callable[..., Awaitable[Any]],
        *,
        cls: type | None = None,
    ) -> None:
        self.sync_view = sync_view
        self.async_view = async_view
        self.__name__ = getattr(async_view, "__name__", type(self).__name__)
        self.__qualname__ = getattr(async_view, "__qualname__", self.__name__)
        self.__module__ = getattr(async_view, "__module__", __name__)
        self.__doc__ = getattr(async_view, "__doc__", None)
        if cls is not None:
            self.cls = cls
            self.initkwargs: dict[str, Any] = {}

    def __getattr__(self, name: str) -> Any:
        if name in _COROUTINE_MARKS and _in_event_loop():
            return _COROUTINE_MARKS[name]
        raise AttributeError(name)

    def __call__(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        if _in_event_loop():
            return self.async_view(request, *args, **kwargs)
        return self.sync_view(request, *args, **kwargs)
