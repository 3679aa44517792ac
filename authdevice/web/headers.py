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
#: Set to True on a response (or pass ``auth_page(scripts=True)``) for a page that runs this
#: site's own script files (``static/authdevice/device.js``: the browser as a trusted device):
#: ``script-src 'self'`` (files only, never inline), ``connect-src 'self'`` and Trusted Types
#: with no policy (the scripts never write HTML, so no DOM XSS sink can be reached).
SCRIPTS_ATTR = "_authdevice_scripts"

BASE_POLICY = (
    "default-src 'self'",
    "script-src 'none'",
    "object-src 'none'",
    "base-uri 'none'",
    "img-src 'self' data:",
    "frame-ancestors 'none'",
)


SCRIPT_POLICY = (
    "script-src 'self'",
    "connect-src 'self'",
    "require-trusted-types-for 'script'",
    "trusted-types 'none'",
)


def content_security_policy(form_action: tuple[str, ...] = (), *, scripts: bool = False) -> str:
    sources = " ".join(("'self'", *form_action))
    policy = BASE_POLICY
    if scripts:
        policy = tuple(p for p in BASE_POLICY if not p.startswith("script-src")) + SCRIPT_POLICY
    return "; ".join((*policy, f"form-action {sources}"))


def auth_page(
    view: Callable[..., HttpResponseBase] | None = None,
    *,
    sensitive: bool = True,
    scripts: bool = False,
) -> Any:
    """Decorate an authentication page.

    Every page: ``X-Frame-Options: DENY`` and a strict CSP with ``frame-ancestors 'none'``
    (no framing, no scripts, same-origin assets and forms). ``sensitive`` pages (those that
    carry codes, links or sign-in state; the default) also get ``Cache-Control: no-store``
    and ``Referrer-Policy: no-referrer``. ``scripts`` pages may load this site's own script
    files (:data:`SCRIPTS_ATTR`).
    """

    def decorate(func: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
        @wraps(func)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            response = func(request, *args, **kwargs)
            extra = tuple(getattr(response, FORM_ACTION_ATTR, ()))
            response["X-Frame-Options"] = "DENY"
            with_scripts = scripts or bool(getattr(response, SCRIPTS_ATTR, False))
            response["Content-Security-Policy"] = content_security_policy(
                extra, scripts=with_scripts
            )
            if sensitive:
                add_never_cache_headers(response)
                response["Referrer-Policy"] = "no-referrer"
            return response

        return wrapper

    if view is not None:
        return decorate(view)
    return decorate
