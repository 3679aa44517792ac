from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connection, connections, models
from django.utils.translation import gettext_lazy as _

from . import fastsql
from .ids import new_uuid


class UserIdentity(models.Model):
    """authdevice's view of a user: the public id tokens carry (never the database pk)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="authdevice_identity",
        verbose_name=_("user"),
    )
    public_id = models.UUIDField(
        _("public ID"),
        unique=True,
        default=new_uuid,
        editable=False,
        help_text=_("Cotter's user ID; the sub claim of tokens."),
    )
    client_user_id = models.CharField(
        _("client user ID"),
        max_length=200,
        unique=True,
        help_text=_("Cotter's deprecated client_user_id; equals the public ID unless set."),
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("user identity")
        verbose_name_plural = _("user identities")

    def __str__(self) -> str:
        return str(self.public_id)

    def save(self, *args: object, **kwargs: object) -> None:
        if not self.client_user_id:
            self.client_user_id = str(self.public_id)
        super().save(*args, **kwargs)  # type: ignore[arg-type]


@dataclass(frozen=True)
class SignInLayout:
    """Where the models of a sign-in lookup sit in its row, and the SQL that selects them:
    the select list (identifier, identity, user, django-otp device) and the joins after
    the identifier table, which the query names ``idf``. Everything is LEFT joined, so the
    identifier table may itself be LEFT joined (see ``Challenge.objects.for_verify``)."""

    user_model: Any
    select: str
    joins: str
    identifier_pk: int
    identity_at: int
    user_at: int
    device_at: int
    device_pk: int


# Built once per (database vendor, user model): identifiers only, values are parameters.
_layouts: dict[tuple[str, Any], SignInLayout] = {}


def sign_in_layout() -> SignInLayout:
    from django.contrib.auth import get_user_model

    from .devices import IdentifierDevice

    user_model = get_user_model()
    key = (connection.vendor, user_model)
    found = _layouts.get(key)
    if found is None:
        q = connection.ops.quote_name
        # Short table aliases: Django's SQLite cursor rewrites every %s with a regex over
        # the whole statement, whose length is mostly the qualified column names.
        idf, ident, user_table, dev = q("idf"), q("idt"), q("usr"), q("dev")
        identity_at = len(Identifier._meta.concrete_fields)
        user_at = identity_at + len(UserIdentity._meta.concrete_fields)
        device_at = user_at + len(user_model._meta.concrete_fields)
        found = _layouts[key] = SignInLayout(
            user_model=user_model,
            select=(
                f"{fastsql.columns(Identifier, 'idf')}, {fastsql.columns(UserIdentity, 'idt')}, "
                f"{fastsql.columns(user_model, 'usr')}, {fastsql.columns(IdentifierDevice, 'dev')}"
            ),
            joins=(
                f"LEFT OUTER JOIN {q(UserIdentity._meta.db_table)} {ident} "
                f"ON {ident}.{q('id')} = {idf}.{q('identity_id')} "
                f"LEFT OUTER JOIN {q(user_model._meta.db_table)} {user_table} "
                f"ON {user_table}.{q(user_model._meta.pk.column)} = {ident}.{q('user_id')} "
                f"LEFT OUTER JOIN {q(IdentifierDevice._meta.db_table)} {dev} "
                f"ON {dev}.{q('identifier_id')} = {idf}.{q('id')}"
            ),
            identifier_pk=Identifier._meta.concrete_fields.index(Identifier._meta.pk),
            identity_at=identity_at,
            user_at=user_at,
            device_at=device_at,
            device_pk=IdentifierDevice._meta.concrete_fields.index(IdentifierDevice._meta.pk),
        )
    return found


def load_sign_in(
    layout: SignInLayout, found: Sequence[Any], start: int = 0
) -> tuple[Identifier, Any] | None:
    """The identifier (identity and user attached) and its device or None, from the
    columns of ``layout.select`` at ``found[start:]``; None if there was no identifier."""
    from .devices import IdentifierDevice

    if found[start + layout.identifier_pk] is None:
        return None
    identifier = fastsql.load(Identifier, found[start:])
    identity = fastsql.load(UserIdentity, found[start + layout.identity_at :])
    user = fastsql.load(layout.user_model, found[start + layout.user_at :])
    identity.user = user
    identifier.identity = identity
    device = None
    at = start + layout.device_at
    if found[at + layout.device_pk] is not None:  # NULL when the LEFT JOIN found no device
        device = fastsql.load(IdentifierDevice, found[at:])
        device.identifier = identifier
        if device.user_id == user.pk:
            device.user = user
    return identifier, device


_sign_in_sql: dict[SignInLayout, str] = {}


class IdentifierManager(models.Manager["Identifier"]):
    def primary_value(self, identity_id: int) -> str:
        """The user's primary identifier (primary first, then the oldest), "" if none: the
        tokens' ``identifier`` claim, in one hand-written SELECT."""
        connection = connections[DEFAULT_DB_ALIAS]

        def build() -> str:
            q = connection.ops.quote_name
            return (
                f"SELECT {q('value')} FROM {q(self.model._meta.db_table)} "
                f"WHERE {q('identity_id')} = %s "
                f"ORDER BY {q('is_primary')} DESC, {q('created_at')} ASC LIMIT 1"
            )

        found = fastsql.fetch_one(fastsql.cached_sql(("primary_value",), build), [identity_id])
        return found[0] if found is not None else ""

    def for_sign_in(self, kind: str, value: str) -> tuple[Identifier, Any] | None:
        """The identifier with its identity and user attached, and its django-otp device
        (or None), in one hand-written query (the code-verify hot path)."""
        layout = sign_in_layout()
        sql = _sign_in_sql.get(layout)
        if sql is None:
            q = connection.ops.quote_name
            sql = _sign_in_sql[layout] = (
                f"SELECT {layout.select} FROM {q(self.model._meta.db_table)} {q('idf')} "
                f"{layout.joins} WHERE {q('idf')}.{q('kind')} = %s AND {q('idf')}.{q('value')} = %s"
            )
        with connection.cursor() as cursor:
            cursor.execute(sql, [kind, value])
            found = cursor.fetchone()
        return None if found is None else load_sign_in(layout, found)


class Identifier(models.Model):
    """An email address or phone number through which a user signs in."""

    class Kind(models.TextChoices):
        EMAIL = "EMAIL", _("Email")
        PHONE = "PHONE", _("Phone")

    identity = models.ForeignKey(UserIdentity, on_delete=models.CASCADE, related_name="identifiers")
    kind = models.CharField(_("kind"), max_length=8, choices=Kind.choices)
    value = models.CharField(
        _("value"), max_length=254, help_text=_("Normalised: lower-case email, E.164 phone.")
    )
    is_primary = models.BooleanField(_("primary"), default=False)
    verified_at = models.DateTimeField(_("verified at"), null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = IdentifierManager()

    class Meta:
        verbose_name = _("identifier")
        verbose_name_plural = _("identifiers")
        constraints = [
            models.UniqueConstraint(fields=["kind", "value"], name="authdevice_identifier_unique")
        ]

    def __str__(self) -> str:
        return self.value
