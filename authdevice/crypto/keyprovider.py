"""Where token verifiers get public keys from, with caching.

A provider keeps parsed key objects in memory, re-reads them every
``AUTHDEVICE_KEY_CACHE_SECONDS`` and, when a token names an unknown ``kid``, at most once per
``AUTHDEVICE_KEY_MIN_REFRESH_INTERVAL`` seconds. No lookup goes further than that.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from ..conf import app_settings
from .keys import public_key_from_jwk


class CachingKeyProvider:
    """Base class: subclasses implement :meth:`load` returning ``{kid: jwk-dict}``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._keys: dict[str, ec.EllipticCurvePublicKey] = {}
        self._loaded_at: float | None = None

    def load(self) -> dict[str, dict[str, Any]] | None:
        """Return ``{kid: jwk}``, or None when the source is unreachable (keep old keys)."""
        raise NotImplementedError

    def _refresh(self) -> None:
        jwks = self.load()
        if jwks is None:
            self._loaded_at = time.monotonic()
            return
        parsed = {}
        for kid, jwk in jwks.items():
            try:
                parsed[kid] = public_key_from_jwk(jwk)
            except (KeyError, ValueError):
                continue
        self._keys = parsed
        self._loaded_at = time.monotonic()

    def get(self, kid: str) -> ec.EllipticCurvePublicKey | None:
        now = time.monotonic()
        loaded_at = self._loaded_at
        stale = loaded_at is None or now - loaded_at >= app_settings.KEY_CACHE_SECONDS
        unknown = kid not in self._keys
        may_refetch = loaded_at is None or now - loaded_at >= app_settings.KEY_MIN_REFRESH_INTERVAL
        if stale or (unknown and may_refetch):
            with self._lock:
                if self._loaded_at == loaded_at:  # nobody refreshed while we waited
                    self._refresh()
        return self._keys.get(kid)

    def reset(self) -> None:
        with self._lock:
            self._keys = {}
            self._loaded_at = None


class JWKSURLKeyProvider(CachingKeyProvider):
    """Reads ``AUTHDEVICE_JWKS_URL`` (a separate site verifying an authdevice server's tokens)."""

    timeout = 5

    def load(self) -> dict[str, dict[str, Any]] | None:
        url = app_settings.JWKS_URL
        if not url or not url.startswith(("https://", "http://")):
            return {}
        try:
            with urllib.request.urlopen(url, timeout=self.timeout) as resp:  # noqa: S310
                document = json.loads(resp.read(1_000_000))
        except (OSError, ValueError):
            return None
        keys = document.get("keys") if isinstance(document, dict) else None
        return {
            k["kid"]: k
            for k in keys or []
            if isinstance(k, dict) and isinstance(k.get("kid"), str) and k.get("alg") == "ES256"
        }
