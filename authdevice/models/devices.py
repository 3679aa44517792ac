from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections, models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django_otp.models import Device

from . import fastsql
from .applications import Application
from .identities import Identifier, UserIdentity

# The methods below take ``connections[DEFAULT_DB_ALIAS]`` once rather than using the
# ``django.db.connection`` proxy, which looks the connection up on every attribute access.


def identity_with_user(client_user_id: str, public_id: uuid.UUID | None) -> UserIdentity | None:
    """The user identity by public id or client user id, with its user attached (as
    ``select_related("user")``), in one hand-written SELECT: the public id match wins over
    a client user id match (both columns are unique). Used by ``flows.devices``; it sits
    here with the other hand-written SQL of the trusted-device paths."""
    connection = connections[DEFAULT_DB_ALIAS]
    from django.contrib.auth import get_user_model

    user_model = get_user_model()
    by_public_id = public_id is not None

    def build() -> str:
        q = connection.ops.quote_name
        it = q(UserIdentity._meta.db_table)
        ut = q(user_model._meta.db_table)
        where = f"{it}.{q('client_user_id')} = %s"
        if by_public_id:
            where = f"({it}.{q('public_id')} = %s OR {where})"
        return (
            f"SELECT {fastsql.columns(UserIdentity)}, {fastsql.columns(user_model)} FROM {it} "
            f"INNER JOIN {ut} ON {ut}.{q(user_model._meta.pk.column)} = {it}.{q('user_id')} "
            f"WHERE {where}"
        )

    sql = fastsql.cached_sql(("identity_with_user", user_model, by_public_id), build)
    params: list[object] = [client_user_id]
    if public_id is not None:
        field = UserIdentity._meta.get_field("public_id")
        params.insert(0, field.get_db_prep_value(public_id, connection))
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchmany(2)
    if not rows:
        return None
    identities = [fastsql.load(UserIdentity, row) for row in rows]
    row, identity = next(
        ((r, i) for r, i in zip(rows, identities, strict=True) if i.public_id == public_id),
        (rows[0], identities[0]),
    )
    user = fastsql.load(user_model, row[len(UserIdentity._meta.concrete_fields) :])
    fastsql.attach_user(identity, user)
    return identity


class IdentifierDevice(Device):
    """django-otp's view of an email address or phone number that signed the user in.

    ``django_otp.login(request, device)`` after a code or link sign-in makes
    ``request.user.is_verified()`` true. For django-otp's forms (e.g. a step-up with
    ``OTPTokenForm``), ``generate_challenge`` sends a code to the address and
    ``verify_token`` checks it, with the limits of sign-in (failure delays, at most
    ``CODE_MAX_ATTEMPTS`` wrong codes per challenge, single use). Those codes never sign
    anyone in, and sign-in codes never answer ``verify_token``.
    """

    identifier = models.OneToOneField(
        Identifier, on_delete=models.CASCADE, related_name="otp_device"
    )

    class Meta(Device.Meta):
        verbose_name = _("email/phone authenticator")
        verbose_name_plural = _("email/phone authenticators")

    def generate_challenge(self) -> str:
        """Send a one-time code to the address (django-otp). Raises the flows' errors
        (``RateLimited`` past the send limits, ``DeliveryUnavailable``...)."""
        from ..flows.codes import mask_identifier, start_check

        start_check(self.identifier)
        return _("sent to %(address)s") % {"address": mask_identifier(self.identifier.value)}

    def verify_is_allowed(self) -> tuple[bool, dict[str, Any] | None]:
        """False while the address waits after too many wrong codes (django-otp)."""
        from django_otp.models import VerifyNotAllowed

        from ..flows.codes import check_state

        failures, wait = check_state(self.identifier.value)
        if wait:
            return False, {
                "reason": VerifyNotAllowed.N_FAILED_ATTEMPTS,
                "failure_count": failures,
                "locked_until": timezone.now() + timedelta(seconds=wait),
            }
        return True, None

    def verify_token(self, token: object) -> bool:
        from ..flows.codes import verify_code_for_identifier

        return verify_code_for_identifier(self.identifier, token)


class TrustedDeviceQuerySet(models.QuerySet["TrustedDevice"]):
    def active(self) -> TrustedDeviceQuerySet:
        return self.filter(revoked_at__isnull=True, confirmed=True)

    def find_active(
        self, user_id: int, fingerprint: str, *, identity_id: int | None = None
    ) -> tuple[TrustedDevice, str] | None:
        """The user's active device with this key fingerprint, in one hand-written SELECT
        (the ORM's compile costs several times the query). With ``identity_id`` the same
        query also reads the user's primary identifier (the tokens' ``identifier`` claim,
        ordered as ``flows.identities.primary_identifier``); else "" is returned for it."""
        connection = connections[DEFAULT_DB_ALIAS]
        with_identifier = identity_id is not None

        def build() -> str:
            q = connection.ops.quote_name
            td = q(self.model._meta.db_table)
            extra = ""
            if with_identifier:
                it = q(Identifier._meta.db_table)
                extra = (
                    f", (SELECT {it}.{q('value')} FROM {it} WHERE {it}.{q('identity_id')} = %s "
                    f"ORDER BY {it}.{q('is_primary')} DESC, {it}.{q('created_at')} ASC LIMIT 1)"
                )
            return (
                f"SELECT {fastsql.columns(self.model)}{extra} FROM {td} "
                f"WHERE {td}.{q('user_id')} = %s AND {td}.{q('fingerprint')} = %s "
                f"AND {td}.{q('revoked_at')} IS NULL AND {td}.{q('confirmed')} = %s"
            )

        sql = fastsql.cached_sql(("find_active", with_identifier), build)
        params: list[object] = [identity_id] if with_identifier else []
        params += [user_id, fingerprint, True]
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            found = cursor.fetchone()
        if found is None:
            return None
        device = fastsql.load(self.model, found)
        identifier = found[-1] if identity_id is not None else ""
        return device, identifier or ""

    def for_sign_in(self, fingerprint: str) -> tuple[TrustedDevice, UserIdentity, str] | None:
        """The active device with this key fingerprint (unique across users), its user's
        identity with the user attached, and the user's primary identifier: everything a
        trusted-device sign-in reads, in one hand-written SELECT. The caller still checks
        that the identity is the one the request names."""
        connection = connections[DEFAULT_DB_ALIAS]
        from django.contrib.auth import get_user_model

        user_model = get_user_model()

        def build() -> str:
            q = connection.ops.quote_name
            td = q(self.model._meta.db_table)
            it = q(UserIdentity._meta.db_table)
            ut = q(user_model._meta.db_table)
            idf = q(Identifier._meta.db_table)
            return (
                f"SELECT {fastsql.columns(self.model)}, {fastsql.columns(UserIdentity)}, "
                f"{fastsql.columns(user_model)}, "
                f"(SELECT {idf}.{q('value')} FROM {idf} WHERE {idf}.{q('identity_id')} = "
                f"{it}.{q('id')} ORDER BY {idf}.{q('is_primary')} DESC, "
                f"{idf}.{q('created_at')} ASC LIMIT 1) "
                f"FROM {td} INNER JOIN {it} ON {it}.{q('user_id')} = {td}.{q('user_id')} "
                f"INNER JOIN {ut} ON {ut}.{q(user_model._meta.pk.column)} = {td}.{q('user_id')} "
                f"WHERE {td}.{q('fingerprint')} = %s AND {td}.{q('revoked_at')} IS NULL "
                f"AND {td}.{q('confirmed')} = %s"
            )

        sql = fastsql.cached_sql(("for_sign_in", user_model), build)
        found = fastsql.fetch_one(sql, [fingerprint, True])
        if found is None:
            return None
        device, identity, user = fastsql.load_joined(found, self.model, UserIdentity, user_model)
        fastsql.attach_user(identity, user)
        return device, identity, found[-1] or ""

    def touch(self, pk: int, when: datetime, stale_before: datetime) -> None:
        """``last_used_at = when`` unless it is already newer than ``stale_before`` (so a
        device signing in repeatedly does not write its row every time)."""
        connection = connections[DEFAULT_DB_ALIAS]
        q = connection.ops.quote_name
        sql = (
            f"UPDATE {q(self.model._meta.db_table)} SET {q('last_used_at')} = %s "
            f"WHERE {q('id')} = %s AND ({q('last_used_at')} IS NULL OR {q('last_used_at')} < %s)"
        )
        adapt = connection.ops.adapt_datetimefield_value
        with connection.cursor() as cursor:
            cursor.execute(sql, [adapt(when), pk, adapt(stale_before)])


class TrustedDevice(Device):
    """A device that holds a private key; we keep only its public key (Cotter's
    TRUSTED_DEVICE method). Signatures are checked by ``authdevice.flows.devices``."""

    class Algorithm(models.TextChoices):
        ED25519 = "ED25519", "Ed25519"
        EC = "EC", "ECDSA P-256"
        RSA = "RSA", "RSA"

    public_key = models.TextField(
        _("public key"), editable=False, help_text=_("Normalised base64.")
    )
    fingerprint = models.CharField(
        _("key fingerprint"),
        max_length=64,
        unique=True,
        editable=False,
        help_text=_("SHA-256 of the key."),
    )
    algorithm = models.CharField(
        _("algorithm"), max_length=8, choices=Algorithm.choices, editable=False
    )
    device_type = models.CharField(_("device type"), max_length=100, blank=True, default="")
    application = models.ForeignKey(
        Application,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("enrolled through"),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    last_used_at = models.DateTimeField(_("last used"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True)
    revoked_by = models.CharField(_("revoked by"), max_length=150, blank=True, default="")
    revoke_reason = models.CharField(_("revoke reason"), max_length=200, blank=True, default="")

    objects = TrustedDeviceQuerySet.as_manager()

    class Meta(Device.Meta):
        verbose_name = _("trusted device")
        verbose_name_plural = _("trusted devices")
        permissions = [("revoke_trusteddevice", _("Can revoke trusted devices"))]
        indexes = [models.Index(fields=["user", "revoked_at"])]

    def __str__(self) -> str:
        return f"{self.name or self.device_type or 'device'} ({self.algorithm})"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None and self.confirmed

    def verify_token(self, token: object) -> bool:
        """django-otp's one-time-password interface does not apply to a key pair: a trusted
        device proves itself with a signature over a server-defined message
        (``authdevice.flows.devices``), never with a typed token."""
        return False


class UsedDeviceMessageManager(models.Manager["UsedDeviceMessage"]):
    def burn(self, device_id: int, digest: str, when: datetime) -> bool:
        """Record the (device, message) pair as used, only while the device is still
        active: False if it was revoked meanwhile (nothing written). A pair already used
        raises ``IntegrityError`` (the unique constraint is what makes a message single
        use). On PostgreSQL the device row is share-locked, so a concurrent removal waits
        for this transaction (and then revokes what it issued) or this one sees it revoked.
        """
        connection = connections[DEFAULT_DB_ALIAS]

        def build() -> str:
            q = connection.ops.quote_name
            td = q(TrustedDevice._meta.db_table)
            lock = " FOR SHARE" if connection.features.has_select_for_update else ""
            return (
                f"INSERT INTO {q(self.model._meta.db_table)} "
                f"({q('device_id')}, {q('digest')}, {q('created_at')}) "
                f"SELECT {td}.{q('id')}, %s, %s FROM {td} WHERE {td}.{q('id')} = %s "
                f"AND {td}.{q('revoked_at')} IS NULL AND {td}.{q('confirmed')} = %s{lock}"
            )

        sql = fastsql.cached_sql(("burn",), build)
        with connection.cursor() as cursor:
            cursor.execute(
                sql, [digest, connection.ops.adapt_datetimefield_value(when), device_id, True]
            )
            return cursor.rowcount == 1


class UsedDeviceMessage(models.Model):
    """Replay cache: a (device, signed message) pair accepted once is never accepted again.

    Keyed by the message digest, never by signature bytes (ECDSA signatures are malleable).
    """

    # Indexed by the (device, digest) unique constraint: one index fewer to write per use.
    device = models.ForeignKey(
        TrustedDevice, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    digest = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    objects = UsedDeviceMessageManager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["device", "digest"], name="authdevice_used_message_unique"
            )
        ]

    def __str__(self) -> str:
        return f"used message {self.digest[:12]}"
