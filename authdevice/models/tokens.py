from __future__ import annotations

import uuid
from typing import Any

from django.db import models
from django.utils.translation import gettext_lazy as _

from . import fastsql
from .applications import Application
from .identities import UserIdentity
from .ids import random_public_int


class AuthMethod(models.TextChoices):
    """Cotter's ``auth_method`` values (the ``authentication_method`` claim)."""

    OTP = "OTP", _("One-time code")
    MAGIC_LINK = "MAGIC_LINK", _("Magic link")
    TRUSTED_DEVICE = "TRUSTED_DEVICE", _("Trusted device")
    WEBAUTHN = "WEBAUTHN", _("Passkey")
    SOCIAL_LOGIN = "SOCIAL_LOGIN", _("Social login")
    PIN = "PIN", _("PIN")
    BIOMETRIC = "BIOMETRIC", _("Biometric")
    OPERATOR = "OPERATOR", _("Issued by an operator")


class RefreshTokenManager(models.Manager["RefreshToken"]):
    """Hand-written SQL for the two statements of the refresh hot path: compiling the
    equivalent ORM queries costs several times more than running them (benchmarks/)."""

    def for_refresh(self, pk: int) -> RefreshToken | None:
        """The token with its identity (public id, client user id, user id) and the user's
        ``is_active`` flag, in one query; the identity is attached without another."""
        from django.contrib.auth import get_user_model
        from django.db import connection

        user_model = get_user_model()

        def build() -> str:
            q = connection.ops.quote_name
            rt = self.model._meta.db_table
            ident = UserIdentity._meta.db_table
            user_table = user_model._meta.db_table
            user_pk = user_model._meta.pk.column
            return (
                f"SELECT {fastsql.columns(self.model)}, {q(ident)}.{q('public_id')}, "
                f"{q(ident)}.{q('client_user_id')}, {q(ident)}.{q('user_id')}, "
                f"{fastsql.is_active_sql(user_model, q(user_table))} "
                f"FROM {q(rt)} "
                f"INNER JOIN {q(ident)} ON {q(ident)}.{q('id')} = {q(rt)}.{q('identity_id')} "
                f"INNER JOIN {q(user_table)} "
                f"ON {q(user_table)}.{q(user_pk)} = {q(ident)}.{q('user_id')} "
                f"WHERE {q(rt)}.{q('id')} = %s"
            )

        sql = fastsql.cached_sql(("for_refresh", user_model), build)
        # Identifiers only: table and column names from the models, the value a parameter.
        with connection.cursor() as cursor:
            cursor.execute(sql, [pk])
            found = cursor.fetchone()
        if found is None:
            return None
        row = fastsql.load(self.model, found)
        public_id, client_user_id, user_id, is_active = found[-4:]
        row.identity = UserIdentity(
            pk=row.identity_id,
            public_id=public_id if isinstance(public_id, uuid.UUID) else uuid.UUID(str(public_id)),
            client_user_id=client_user_id,
            user_id=user_id,
        )
        row.user_is_active = bool(is_active)
        return row

    def insert(self, row: RefreshToken) -> RefreshToken:
        """INSERT a new token row with one prepared statement (no ORM compile)."""
        return fastsql.insert(row)

    def spend(self, pk: int, when: Any) -> bool:
        """Mark the token used if nobody did yet: ``UPDATE ... WHERE used_at IS NULL``.
        Of concurrent refreshes of one token exactly one gets True."""
        from django.db import connection

        q = connection.ops.quote_name
        sql = (
            f"UPDATE {q(self.model._meta.db_table)} SET {q('used_at')} = %s "
            f"WHERE {q('id')} = %s AND {q('used_at')} IS NULL AND {q('revoked_at')} IS NULL"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, [connection.ops.adapt_datetimefield_value(when), pk])
            return cursor.rowcount == 1


class RefreshToken(models.Model):
    """One refresh token. Handed out as ``<id>:<secret>``; only SHA-256(secret) is stored.

    Every use rotates: the row is marked ``used_at`` and a child row is created in the same
    family. Presenting a used token again revokes the whole family.
    """

    id = models.BigIntegerField(primary_key=True, default=random_public_int, editable=False)
    secret_hash = models.CharField(max_length=64, editable=False)
    family = models.UUIDField(default=uuid.uuid4, db_index=True, editable=False)
    # At most one child per token (Meta.constraints), enforced only where there is a
    # parent: the first token of a family writes no index entry for it.
    parent = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        editable=False,
        db_index=False,
    )
    application = models.ForeignKey(Application, on_delete=models.CASCADE, related_name="+")
    # Indexed by Meta.indexes' (identity, revoked_at): one index fewer to write per token.
    identity = models.ForeignKey(
        UserIdentity, on_delete=models.CASCADE, related_name="refresh_tokens", db_index=False
    )
    device = models.ForeignKey(
        "authdevice.TrustedDevice",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="refresh_tokens",
        help_text=_("The trusted device this session came through."),
        db_index=False,  # a partial index in Meta.indexes
    )
    auth_method = models.CharField(max_length=20, choices=AuthMethod.choices)
    auth_time = models.DateTimeField(help_text=_("When the user signed in (family start)."))
    identifier = models.CharField(max_length=254, blank=True, default="")
    #: The channel a code or link of the sign-in went over (``EMAIL``, ``SMS``,
    #: ``WHATSAPP``; empty for other methods): named in the tokens' ``amr``.
    channel = models.CharField(max_length=10, blank=True, default="")
    scope = models.CharField(max_length=200, default="access")
    created_at = models.DateTimeField()
    family_expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoke_reason = models.CharField(max_length=40, blank=True, default="")

    objects = RefreshTokenManager()

    class Meta:
        verbose_name = _("refresh token")
        verbose_name_plural = _("refresh tokens")
        constraints = [
            models.UniqueConstraint(
                fields=["parent"],
                name="authdevice_token_one_child",
                condition=models.Q(parent__isnull=False),
            ),
        ]
        indexes = [
            models.Index(fields=["identity", "revoked_at"]),
            # Most families come from codes and have no device: no index entry to write.
            models.Index(
                fields=["device"],
                name="authdevice_token_device",
                condition=models.Q(device__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"refresh token {self.pk}"
