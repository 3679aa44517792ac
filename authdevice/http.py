"""Request helpers shared by every door (API views, pages, admin)."""

from __future__ import annotations

import ipaddress
import logging
import re
from functools import lru_cache
from typing import TypeVar

from django.http import HttpRequest, HttpResponseBase
from django.utils.cache import add_never_cache_headers
from django.utils.http import http_date
from django.utils.module_loading import import_string

from .conf import app_settings

logger = logging.getLogger("authdevice")

R = TypeVar("R", bound=HttpResponseBase)

#: What ``add_never_cache_headers`` writes into a response without caching headers.
_NEVER_CACHE = "max-age=0, no-cache, no-store, must-revalidate, private"


def no_store(response: R) -> R:
    """Django's ``add_never_cache_headers`` plus ``Pragma: no-cache`` (HTTP/1.0 caches),
    for every response that carries tokens, codes or secrets. A response with no caching
    headers yet (the usual case) gets the same headers set directly, without parsing."""
    headers = response.headers
    if "Cache-Control" in headers or "Expires" in headers:
        add_never_cache_headers(response)
    else:
        headers["Expires"] = http_date()
        headers["Cache-Control"] = _NEVER_CACHE
    headers["Pragma"] = "no-cache"
    return response


@lru_cache(maxsize=16)
def _networks(spec: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(item, strict=False) for item in spec)


def _trusted(addr: str, networks: tuple) -> bool:
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError:
        return False
    return any(ip in net for net in networks)


def client_ip(request: HttpRequest) -> str | None:
    """The client's IP address.

    ``X-Forwarded-For`` is only believed when the direct peer is one of
    ``AUTHDEVICE_TRUSTED_PROXIES`` (CIDRs); we then walk the chain from the right and
    return the first address that is not a trusted proxy.
    """
    remote = request.META.get("REMOTE_ADDR") or None
    proxies = tuple(app_settings.TRUSTED_PROXIES or ())
    if not remote or not proxies:
        return _valid(remote)
    networks = _networks(proxies)
    if not _trusted(remote, networks):
        return _valid(remote)
    chain = [p.strip() for p in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    for hop in reversed([p for p in chain if p]):
        if not _trusted(hop, networks):
            return _valid(hop)
    return _valid(remote)


@lru_cache(maxsize=4096)
def _valid(addr: str | None) -> str | None:
    if not addr:
        return None
    try:
        return str(ipaddress.ip_address(addr))
    except ValueError:
        return None


def user_agent(request: HttpRequest) -> str:
    return request.META.get("HTTP_USER_AGENT", "")[:400]


_BROWSERS = (
    ("Edge", re.compile(r"\b(?:Edg|EdgA|EdgiOS|Edge)/(\d+)")),
    ("Opera", re.compile(r"\b(?:OPR|OPT|Opera)/(\d+)")),
    ("Samsung Internet", re.compile(r"\bSamsungBrowser/(\d+)")),
    ("Firefox", re.compile(r"\b(?:Firefox|FxiOS)/(\d+)")),
    ("Chrome", re.compile(r"\b(?:HeadlessChrome|Chrome|CriOS|Chromium)/(\d+)")),
    ("Safari", re.compile(r"\bVersion/(\d+)[\d.]*(?: Mobile/\S+)? Safari/")),
)
_SYSTEMS = (
    ("iPadOS", re.compile(r"\biPad\b.*? OS (\d+)(?:_(\d+))?")),
    ("iOS", re.compile(r"\b(?:iPhone|iPod)\b.*? OS (\d+)(?:_(\d+))?")),
    ("Android", re.compile(r"\bAndroid (\d+)(?:\.(\d+))?")),
    ("ChromeOS", re.compile(r"\bCrOS\b")),
    ("Windows", re.compile(r"\bWindows\b")),
    ("macOS", re.compile(r"\bMac OS X\b|\bMacintosh\b")),
    ("Linux", re.compile(r"\bLinux\b")),
)
_PRODUCT = re.compile(r"^([A-Za-z][\w.\-]{0,40})/(\d+)")


def describe_user_agent(ua: str) -> tuple[str, str]:
    """``("Firefox 121", "Windows")`` from a User-Agent header as the server received it
    (never what a client claims in a body); ``""`` where nothing is known."""
    ua = (ua or "")[:400]
    browser = ""
    for name, pattern in _BROWSERS:
        found = pattern.search(ua)
        if found:
            browser = f"{name} {found.group(1)}"
            break
    else:
        product = _PRODUCT.match(ua)
        if product and product.group(1) != "Mozilla":
            browser = f"{product.group(1)} {product.group(2)}"
    system = ""
    for name, pattern in _SYSTEMS:
        found = pattern.search(ua)
        if found:
            numbers = [g for g in found.groups() if g]
            system = f"{name} {'.'.join(numbers)}" if numbers else name
            break
    return browser, system


def approximate_location(ip: str | None) -> str:
    """``AUTHDEVICE_GEOLOCATION_BACKEND``'s answer for ``ip`` (a dotted path to a
    ``locate(ip) -> str`` callable, or a class or object with such a method), or ``""``
    when none is configured or it fails: a place is a hint, never a reason to fail."""
    path = app_settings.GEOLOCATION_BACKEND
    if not path or not ip:
        return ""
    try:
        backend = import_string(path)
        if isinstance(backend, type):
            backend = backend()
        return str(getattr(backend, "locate", backend)(ip) or "")[:100]
    except Exception:
        logger.warning("geolocation backend failed", exc_info=True)
        return ""


def safe_message(text: object, limit: int = 300) -> str:
    """An error message fit for a JSON body: at most ``limit`` characters (DRF's field
    errors repeat the input, which can be 100 KB), and lone surrogates (valid in a JSON
    string, not in UTF-8) replaced, which the JSON renderer could not encode."""
    value = str(text)
    if len(value) > limit:
        value = value[: limit - 1] + "\u2026"
    return value.encode("utf-8", "replace").decode("utf-8")


_SURROGATE = re.compile("[\ud800-\udfff]")


def has_lone_surrogate(value: object) -> bool:
    """Whether a parsed JSON value holds a lone surrogate (from a ``\\uD800``-``\\uDFFF``
    escape) in any string or key: UTF-8 cannot encode it, so no hash, database or
    response may see it."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False
