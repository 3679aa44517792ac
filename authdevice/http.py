"""Request helpers shared by every door (API views, pages, admin)."""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from django.http import HttpRequest

from .conf import app_settings


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


def _valid(addr: str | None) -> str | None:
    if not addr:
        return None
    try:
        return str(ipaddress.ip_address(addr))
    except ValueError:
        return None


def user_agent(request: HttpRequest) -> str:
    return request.META.get("HTTP_USER_AGENT", "")[:400]
