"""CSRF protection that works on ``Referrer-Policy: no-referrer`` pages.

The sign-in pages send ``Referrer-Policy: no-referrer`` so that codes and link tokens in
their URLs never leak (security.md A09). A side effect (Fetch standard, "serializing a
request origin"): a browser then sends ``Origin: null`` with the page's own form POSTs,
and Django's CSRF check refuses it ("Origin checking failed - null does not match").

:func:`csrf_protect` keeps Django's full check (the masked token against the cookie, then
Origin or, on HTTPS, Referer) and adds one narrow rule: ``Origin: null`` *together with*
``Sec-Fetch-Site: same-origin`` counts as this site's own origin. ``Sec-Fetch-*`` are
forbidden request headers that pages cannot set; a cross-site form (even from a
no-referrer page) arrives with ``Sec-Fetch-Site: cross-site`` or ``same-site`` and is
still refused, and so is ``Origin: null`` without Fetch Metadata.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.http import HttpRequest, HttpResponseBase
from django.middleware.csrf import CsrfViewMiddleware
from django.utils.decorators import decorator_from_middleware
from django.views.decorators.csrf import csrf_exempt

_django_csrf_protect = decorator_from_middleware(CsrfViewMiddleware)
_SAFE_METHODS = {"GET", "HEAD", "OPTIONS", "TRACE"}


def csrf_protect(view: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
    """Like :func:`django.views.decorators.csrf.csrf_protect` (it works without the CSRF
    middleware too), plus the ``Origin: null`` + ``Sec-Fetch-Site: same-origin`` rule."""
    protected = _django_csrf_protect(view)

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if (
            request.method not in _SAFE_METHODS
            and request.META.get("HTTP_ORIGIN") == "null"
            and request.META.get("HTTP_SEC_FETCH_SITE") == "same-origin"
        ):
            request.META["HTTP_ORIGIN"] = f"{request.scheme}://{request.get_host()}"
        return protected(request, *args, **kwargs)

    # The site's CsrfViewMiddleware skips this view: the check above runs instead.
    return csrf_exempt(wrapper)
