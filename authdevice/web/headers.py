"""Response headers of the authentication pages (security.md A09, K04, K06)."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.http import HttpRequest, HttpResponseBase
from django.utils.cache import add_never_cache_headers

#: Sources allowed by ``form-action`` besides 'self' (set by a view on the response, e.g. the
#: hosted page adds the application's redirect URL: browsers check redirects after a form
#: submission against ``form-action``).
FORM_ACTION_ATTR = "_authdevice_form_action"

BASE_POLICY = (
    "default-src 'self'",
    "script-src 'none'",
    "object-src 'none'",
    "base-uri 'none'",
    "img-src 'self' data:",
    "frame-ancestors 'none'",
)


def content_security_policy(form_action: tuple[str, ...] = ()) -> str:
    sources = " ".join(("'self'", *form_action))
    return "; ".join((*BASE_POLICY, f"form-action {sources}"))


def auth_page(
    view: Callable[..., HttpResponseBase] | None = None, *, sensitive: bool = True
) -> Any:
    """Decorate an authentication page.

    Every page: ``X-Frame-Options: DENY`` and a strict CSP with ``frame-ancestors 'none'``
    (no framing, no scripts, same-origin assets and forms). ``sensitive`` pages (those that
    carry codes, links or sign-in state; the default) also get ``Cache-Control: no-store``
    and ``Referrer-Policy: no-referrer``.
    """

    def decorate(func: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
        @wraps(func)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            response = func(request, *args, **kwargs)
            extra = tuple(getattr(response, FORM_ACTION_ATTR, ()))
            response["X-Frame-Options"] = "DENY"
            response["Content-Security-Policy"] = content_security_policy(extra)
            if sensitive:
                add_never_cache_headers(response)
                response["Referrer-Policy"] = "no-referrer"
            return response

        return wrapper

    if view is not None:
        return decorate(view)
    return decorate
