"""Signing keys: bootstrap, rotation, revocation, and the in-process key ring."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from ..conf import app_settings
from ..crypto import keys as keycrypto
from ..crypto.keyprovider import CachingKeyProvider
from ..models import AuthEvent, SigningKey
from ..signals import signing_key_rotated
from .audit import record_event
from .errors import FlowError, SigningUnavailable


@dataclass(frozen=True)
class _Entry:
    kid: str
    generation: int
    not_before: datetime
    retired_at: datetime | None
    public_jwk: dict[str, str]
    public_key: ec.EllipticCurvePublicKey
    encrypted: str

    def published_at(self, now: datetime) -> bool:
        if self.retired_at is None:
            return True
        return self.retired_at + timedelta(seconds=app_settings.key_retention) > now

    def signs_at(self, now: datetime) -> bool:
        return self.not_before <= now and (self.retired_at is None or self.retired_at > now)


class KeyRing:
    """This process's view of the published keys, re-read every KEY_CACHE_SECONDS.

    Rotation publishes a key KEY_PUBLISH_DELAY before it signs, so every process learns of
    it (and every verifier caching the JWKS for JWKS_MAX_AGE) before the first token
    signed with it exists.
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._entries: list[_Entry] = []
        self._private: dict[str, ec.EllipticCurvePrivateKey] = {}
        self._loaded_at: float | None = None

    def _load(self) -> None:
        now = timezone.now()
        rows = SigningKey.objects.published(now, app_settings.key_retention).order_by("-generation")
        self._entries = [
            _Entry(
                kid=row.kid,
                generation=row.generation,
                not_before=row.not_before,
                retired_at=row.retired_at,
                public_jwk=row.public_jwk,
                public_key=keycrypto.public_key_from_jwk(row.public_jwk),
                encrypted=row.private_key_encrypted,
            )
            for row in rows
        ]
        known = {e.kid for e in self._entries}
        self._private = {k: v for k, v in self._private.items() if k in known}
        self._loaded_at = time.monotonic()

    def entries(self, *, force: bool = False) -> list[_Entry]:
        loaded_at = self._loaded_at
        if (
            force
            or loaded_at is None
            or (time.monotonic() - loaded_at >= app_settings.KEY_CACHE_SECONDS)
        ):
            with self._lock:
                if force or self._loaded_at == loaded_at:
                    self._load()
        return self._entries

    def invalidate(self) -> None:
        with self._lock:
            self._loaded_at = None

    def _current(self, now: datetime, entries: list[_Entry]) -> _Entry | None:
        return next((e for e in entries if e.signs_at(now)), None)

    def signer(self) -> tuple[str, ec.EllipticCurvePrivateKey]:
        """``(kid, private key)`` of the key that signs now; creates the first key if none."""
        now = timezone.now()
        entry = self._current(now, self.entries())
        if entry is None:
            entry = self._current(now, self.entries(force=True))
        if entry is None:
            ensure_signing_key()
            entry = self._current(timezone.now(), self.entries(force=True))
            if transaction.get_connection().in_atomic_block:
                # The key was created inside the caller's transaction: if that rolls back,
                # so does the key. Sign with it now (nothing signed here leaves the
                # process unless the transaction commits), but read the keys again next
                # time instead of signing with a key nobody can verify.
                self.invalidate()
        if entry is None:
            raise SigningUnavailable()
        key = self._private.get(entry.kid)
        if key is None:
            try:
                key = keycrypto.decrypt_private_key(entry.encrypted, entry.kid)
            except keycrypto.KeyDecryptionError as exc:
                raise SigningUnavailable() from exc
            self._private[entry.kid] = key
        return entry.kid, key

    def jwks(self) -> dict[str, Any]:
        """The public JWKS; the key signing now comes first (Cotter's Python SDK uses keys[0])."""
        now = timezone.now()
        entries = [e for e in self.entries() if e.published_at(now)]
        if self._current(now, entries) is None:
            # Never serve an empty or signer-less key set: create the first key now.
            self.signer()
            now = timezone.now()
            entries = [e for e in self.entries() if e.published_at(now)]
        current = self._current(now, entries)
        ordered = ([current] if current else []) + [e for e in entries if e is not current]
        return {
            "keys": [{**e.public_jwk, "kid": e.kid, "use": "sig", "alg": "ES256"} for e in ordered]
        }

    def public_key(self, kid: str, *, refresh: bool) -> ec.EllipticCurvePublicKey | None:
        now = timezone.now()
        for e in self.entries(force=refresh):
            if e.kid == kid and e.published_at(now):
                return e.public_key
        return None


keyring = KeyRing()


class DatabaseKeyProvider(CachingKeyProvider):
    """Verifies with this server's own published keys (read from the database, cached)."""

    def load(self) -> dict[str, dict[str, Any]]:
        now = timezone.now()
        return {e.kid: e.public_jwk for e in keyring.entries(force=True) if e.published_at(now)}


def _create_key(generation: int, not_before: datetime) -> SigningKey:
    private = keycrypto.generate_p256_key()
    jwk = keycrypto.public_jwk(private.public_key())
    kid = keycrypto.jwk_thumbprint(jwk)
    return SigningKey.objects.create(
        kid=kid,
        generation=generation,
        public_jwk=jwk,
        private_key_encrypted=keycrypto.encrypt_private_key(private, kid),
        not_before=not_before,
    )


def ensure_signing_key() -> None:
    """Create a signing key if none can sign now (first start, or all revoked).

    Safe when several processes race: each inserts the generation after the one it saw,
    so at most one insert succeeds (``generation`` is unique) and the others give way.
    """
    # Read the generation before checking for a usable key: a key committed in between
    # then shows up in the check, never as a stale ``seen`` that would allow a second key.
    seen = SigningKey.objects.aggregate(m=Max("generation"))["m"] or 0
    now = timezone.now()
    usable = SigningKey.objects.filter(revoked_at__isnull=True, not_before__lte=now).exclude(
        retired_at__lte=now
    )
    if usable.exists():
        return
    try:
        with transaction.atomic():
            key = _create_key(seen + 1, timezone.now())
            record_event(
                event=AuthEvent.Kind.KEY_ROTATED,
                state=AuthEvent.State.APPROVED,
                actor="system",
                details={"kid": key.kid, "generation": key.generation, "reason": "bootstrap"},
            )
    except IntegrityError:
        pass  # another process created it first


def rotate_signing_key(*, immediate: bool = False, actor: str = "") -> SigningKey:
    """Create a new signing key and schedule the switch to it.

    The new key is published at once and signs from ``now + KEY_PUBLISH_DELAY`` (or at
    once with ``immediate``, for a suspected compromise). Keys signing today stop at that
    instant and stay in the JWKS for the longest token lifetime afterwards.
    """
    now = timezone.now()
    not_before = now if immediate else now + timedelta(seconds=app_settings.KEY_PUBLISH_DELAY)
    try:
        with transaction.atomic():
            top = SigningKey.objects.aggregate(m=Max("generation"))["m"] or 0
            key = _create_key(top + 1, not_before)
            SigningKey.objects.filter(retired_at__isnull=True, revoked_at__isnull=True).exclude(
                pk=key.pk
            ).update(retired_at=not_before)
            SigningKey.objects.filter(retired_at__gt=not_before, revoked_at__isnull=True).exclude(
                pk=key.pk
            ).update(retired_at=not_before)
            record_event(
                event=AuthEvent.Kind.KEY_ROTATED,
                state=AuthEvent.State.APPROVED,
                actor=actor or "system",
                details={
                    "kid": key.kid,
                    "generation": key.generation,
                    "not_before": not_before.isoformat(),
                    "immediate": immediate,
                },
            )
            signing_key_rotated.send(sender=SigningKey, key=key)
            transaction.on_commit(keyring.invalidate)
    except IntegrityError as exc:
        raise FlowError("another rotation is in progress; try again") from exc
    return key


def revoke_signing_key(kid: str, *, actor: str = "") -> SigningKey:
    """Withdraw a key from the JWKS at once (tokens it signed stop verifying)."""
    with transaction.atomic():
        key = SigningKey.objects.select_for_update().filter(kid=kid).first()
        if key is None:
            raise FlowError("unknown key id")
        if key.revoked_at is None:
            key.revoked_at = timezone.now()
            key.private_key_encrypted = ""
            key.save(update_fields=["revoked_at", "private_key_encrypted"])
            record_event(
                event=AuthEvent.Kind.KEY_REVOKED,
                state=AuthEvent.State.APPROVED,
                actor=actor or "system",
                details={"kid": key.kid, "generation": key.generation},
            )
        transaction.on_commit(keyring.invalidate)
    return key


def rotate_if_due() -> SigningKey | None:
    """Rotate when the newest key is older than KEY_ROTATION_DAYS (periodic task)."""
    newest = SigningKey.objects.filter(revoked_at__isnull=True).order_by("-generation").first()
    if newest is None:
        ensure_signing_key()
        return None
    age = timezone.now() - newest.created_at
    if age >= timedelta(days=app_settings.KEY_ROTATION_DAYS):
        return rotate_signing_key(actor="scheduled rotation")
    return None


def purge_retired_private_keys() -> int:
    """Erase private halves of keys that no longer sign and have left the JWKS."""
    cutoff = timezone.now() - timedelta(seconds=app_settings.key_retention)
    return (
        SigningKey.objects.filter(retired_at__lt=cutoff)
        .exclude(private_key_encrypted="")
        .update(private_key_encrypted="")
    )
