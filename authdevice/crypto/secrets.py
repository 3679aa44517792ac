"""Random secrets and how they are stored.

High-entropy secrets (API secret keys, refresh tokens, link tokens) are stored as SHA-256;
short secrets that could be brute-forced offline (6-digit codes) are stored as
HMAC-SHA256 under a server key. Never a password KDF: these are checked on hot paths.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import secrets as _secrets

from django.conf import settings


def random_token(nbytes: int = 32) -> str:
    """A URL-safe random string carrying ``nbytes`` bytes of entropy."""
    return base64.urlsafe_b64encode(_secrets.token_bytes(nbytes)).rstrip(b"=").decode("ascii")


def random_int_below(upper: int) -> int:
    """A uniformly random integer in ``[1, upper)``."""
    return 1 + _secrets.randbelow(upper - 1)


def sha256_hex(value: str) -> str:
    """SHA-256 of a high-entropy secret, hex encoded (what the database stores)."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


@functools.lru_cache(maxsize=16)
def _hmac_key(purpose: str, secret_key: str) -> bytes:
    return hashlib.sha256(f"authdevice:{purpose}:{secret_key}".encode()).digest()


def server_hmac_hex(value: str, purpose: str) -> str:
    """HMAC-SHA256 of a low-entropy secret under a key derived from ``SECRET_KEY``."""
    key = _hmac_key(purpose, settings.SECRET_KEY)
    return hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()


def constant_time_equals(a: str, b: str) -> bool:
    """Compare two strings in time independent of where they differ."""
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))
