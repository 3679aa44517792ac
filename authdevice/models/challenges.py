from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from django.db import connection, connections, models, router
from django.utils.translation import gettext_lazy as _

from . import fastsql
from .applications import Application
from .identities import Identifier, UserIdentity, load_sign_in, sign_in_layout
from .ids import random_public_int


class Channel(models.TextChoices):
    EMAIL = "EMAIL", _("Email")
    SMS = "SMS", _("SMS")
    WHATSAPP = "WHATSAPP", _("WhatsApp")


# SELECTs built once per database vendor (and user model): identifiers only.
_sql: dict[tuple[Any, ...], str] = {}


class ChallengeManager(models.Manager["Challenge"]):
    """Hand-written SQL for the code-verify hot path (ORM compiles cost more than the
    statements, benchmarks/README.md). Single use rests on the conditional UPDATEs, not on
    row locks: the read happens before any transaction."""

    def for_verify(self, pk: int) -> Challenge | None:
        """The challenge, and in the same query what signing in its identifier needs:
        ``challenge.sign_in`` is :func:`~.identities.load_sign_in`'s answer (None for an
        unknown identifier)."""
        layout = sign_in_layout()
        key = ("verify", layout)
        sql = _sql.get(key)
        if sql is None:
            q = connection.ops.quote_name
            ch, idf = q("ch"), q("idf")  # short aliases: see SignInLayout
            sql = _sql[key] = (
                f"SELECT {fastsql.columns(self.model, 'ch')}, {layout.select} "
                f"FROM {q(self.model._meta.db_table)} {ch} "
                f"LEFT OUTER JOIN {q(Identifier._meta.db_table)} {idf} "
                f"ON {idf}.{q('kind')} = {ch}.{q('kind')} "
                f"AND {idf}.{q('value')} = {ch}.{q('identifier')} {layout.joins} "
                f"WHERE {ch}.{q('id')} = %s"
            )
        with connection.cursor() as cursor:
            cursor.execute(sql, [pk])
            found = cursor.fetchone()
        if found is None:
            return None
        challenge = fastsql.load(self.model, found)
        sign_in = load_sign_in(layout, found, len(self.model._meta.concrete_fields))
        challenge.sign_in = sign_in  # type: ignore[attr-defined]
        return challenge

    def claim_send(
        self, pk: int, version: int, when: datetime
    ) -> tuple[str, str, str | None] | None:
        """Claim the send of code ``version`` (a conditional UPDATE: of duplicate deliveries
        exactly one wins) and return the challenge's channel, identifier and application
        name; None if it is not pending, expired, replaced by a resend or already sent."""
        from .applications import Application

        connection = connections[router.db_for_write(self.model) or "default"]
        q = connection.ops.quote_name
        table = q(self.model._meta.db_table)
        claim = fastsql.cached_sql(
            ("claim_send",),
            lambda: (
                f"UPDATE {table} SET {q('sent_version')} = %s WHERE {q('id')} = %s "
                f"AND {q('version')} = %s AND {q('sent_version')} < %s AND {q('state')} = %s "
                f"AND {q('expires_at')} > %s"
            ),
        )
        apps = q(Application._meta.db_table)
        read = fastsql.cached_sql(
            ("claimed_send",),
            lambda: (
                f"SELECT c.{q('channel')}, c.{q('identifier')}, a.{q('name')} FROM {table} c "
                f"LEFT JOIN {apps} a ON a.{q('id')} = c.{q('application_id')} "
                f"WHERE c.{q('id')} = %s"
            ),
        )
        at = connection.ops.adapt_datetimefield_value(when)
        with connection.cursor() as cursor:
            cursor.execute(
                claim, [version, pk, version, version, Challenge.State.PENDING.value, at]
            )
            if cursor.rowcount != 1:
                return None
            cursor.execute(read, [pk])
            row = cursor.fetchone()
        return None if row is None else (row[0], row[1], row[2])

    def consume(
        self,
        pk: int,
        version: int,
        identity_id: int,
        when: datetime,
        *,
        granted: bool = False,
        token_family: uuid.UUID | None = None,
    ) -> bool:
        """Mark the challenge verified if it is still pending with the code that was
        checked (``version``: a resend replaces the code), or with ``granted``, still
        granted (its authorization code being exchanged; ``token_family`` records the
        tokens issued for it). Exactly one caller wins."""
        q = connection.ops.quote_name
        table = q(self.model._meta.db_table)
        sql = fastsql.cached_sql(
            ("consume", granted),
            lambda: (
                f"UPDATE {table} SET {q('state')} = %s, "
                f"{q('verified_at')} = %s, {q('identity_id')} = %s"
                + (f", {q('token_family')} = %s" if granted else "")
                + f" WHERE {q('id')} = %s AND {q('state')} = %s AND {q('version')} = %s"
            ),
        )
        at = connection.ops.adapt_datetimefield_value(when)
        params: list[Any] = [Challenge.State.VERIFIED.value, at, identity_id]
        if granted:
            field = self.model._meta.get_field("token_family")
            params.append(field.get_db_prep_save(token_family, connection))
        from_state = Challenge.State.GRANTED if granted else Challenge.State.PENDING
        params += [pk, from_state.value, version]
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.rowcount == 1

    def grant(self, pk: int, version: int, grant_hash: str, when: datetime) -> bool:
        """A right code for a PKCE challenge: ``pending`` -> ``granted`` with the hash of
        the authorization code handed out, if still pending with code ``version``. One
        statement, committed on its own: the whole write of a two-step code verify."""
        q = connection.ops.quote_name
        table = q(self.model._meta.db_table)
        sql = fastsql.cached_sql(
            ("grant",),
            lambda: (
                f"UPDATE {table} SET {q('state')} = %s, "
                f"{q('verified_at')} = %s, {q('grant_hash')} = %s "
                f"WHERE {q('id')} = %s AND {q('state')} = %s AND {q('version')} = %s"
            ),
        )
        params = [
            Challenge.State.GRANTED.value,
            connection.ops.adapt_datetimefield_value(when),
            grant_hash,
            pk,
            Challenge.State.PENDING.value,
            version,
        ]
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.rowcount == 1

    def count_wrong_code(self, pk: int, version: int, max_attempts: int) -> bool:
        """One wrong code: ``attempts + 1``, dead at ``max_attempts``; one atomic statement,
        so concurrent wrong guesses are all counted without a lock. False if the challenge
        was no longer pending with that code."""
        q = connection.ops.quote_name
        sql = (
            f"UPDATE {q(self.model._meta.db_table)} SET {q('attempts')} = {q('attempts')} + 1, "
            f"{q('state')} = CASE WHEN {q('attempts')} + 1 >= %s THEN %s ELSE {q('state')} END "
            f"WHERE {q('id')} = %s AND {q('state')} = %s AND {q('version')} = %s"
        )
        params = [max_attempts, Challenge.State.DEAD, pk, Challenge.State.PENDING, version]
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.rowcount == 1

    def by_link_hash(self, link_hash: str) -> Challenge | None:
        """The challenge whose magic link hashes to ``link_hash``, or None. The query also
        says ``link_hash != ''``: without it SQLite will not use the partial index."""
        return self.filter(link_hash=link_hash).exclude(link_hash="").first()

    # -- start_challenge (code request hot path) ------------------------------------------

    def insert_new(self, challenge: Challenge) -> None:
        """INSERT a new ``challenge`` (id chosen in Python) with one prepared statement
        (:func:`fastsql.run_insert`)."""
        fastsql.run_insert(challenge)


class Challenge(models.Model):
    """One attempt to prove control of an email address or phone number.

    Holds the HMAC of a 6-digit code and the SHA-256 of a magic-link token, both replaced on
    resend (``version``). ``binding_hash`` ties it to the browser or client that asked.
    The ``id`` is Cotter's ``challenge_id``.

    Started with a PKCE ``code_challenge`` (the native API's two-step protocol), a right
    code does not sign in: it moves the challenge to ``granted`` and hands the client a
    one-use authorization code (``grant_hash``), which ``/api/v1/auth/code/token``
    exchanges, with the ``code_verifier``, for tokens (``verified``, ``token_family``).
    """

    class State(models.TextChoices):
        PENDING = "pending", _("Pending")
        GRANTED = "granted", _("Code checked, tokens not yet collected")
        VERIFIED = "verified", _("Verified")
        DEAD = "dead", _("Dead (too many wrong codes)")

    class Method(models.TextChoices):
        OTP = "OTP", _("Code")
        MAGIC_LINK = "MAGIC_LINK", _("Magic link")

    id = models.BigIntegerField(primary_key=True, default=random_public_int, editable=False)
    # Not indexed: nothing looks challenges up by application, and the table only holds a
    # day of them (maintenance.purge_old_challenges); deleting an application scans it.
    application = models.ForeignKey(
        Application,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
        db_index=False,
    )
    kind = models.CharField(max_length=8, choices=Identifier.Kind.choices)
    identifier = models.CharField(max_length=254)
    channel = models.CharField(max_length=10, choices=Channel.choices)
    purpose = models.CharField(max_length=20, default="login")
    method = models.CharField(max_length=12, choices=Method.choices, default=Method.OTP)
    code_hash = models.CharField(max_length=64, editable=False)
    # Indexed only where set (Meta.indexes): code-only challenges write no entry. Look it
    # up with ``Challenge.objects.by_link_hash``.
    link_hash = models.CharField(max_length=64, blank=True, default="", editable=False)
    binding_hash = models.CharField(max_length=64, editable=False)
    version = models.PositiveIntegerField(default=1)
    sent_version = models.PositiveIntegerField(default=0)
    resends = models.PositiveSmallIntegerField(default=0)
    attempts = models.PositiveSmallIntegerField(default=0)
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    identity = models.ForeignKey(
        UserIdentity,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,  # a partial index in Meta.indexes: set only once verified
    )
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=400, blank=True, default="")
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    verified_at = models.DateTimeField(null=True, blank=True)
    #: RFC 7636 S256 challenge given with the code request (native API); empty: one step.
    code_challenge = models.CharField(max_length=43, blank=True, default="", editable=False)
    #: SHA-256 of the authorization code a right code was answered with (state ``granted``).
    grant_hash = models.CharField(max_length=64, blank=True, default="", editable=False)
    #: The refresh-token family issued for the grant: a replayed grant revokes it.
    token_family = models.UUIDField(null=True, blank=True, editable=False)

    objects = ChallengeManager()

    class Meta:
        verbose_name = _("sign-in challenge")
        verbose_name_plural = _("sign-in challenges")
        indexes = [
            # Not (identifier, state): a verified or dead challenge would rewrite it.
            models.Index(fields=["identifier", "created_at"], name="authdevice_challenge_ident"),
            models.Index(
                fields=["link_hash"],
                name="authdevice_challenge_link",
                condition=~models.Q(link_hash=""),
            ),
            models.Index(
                fields=["identity"],
                name="authdevice_challenge_identity",
                condition=models.Q(identity__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"challenge {self.pk} ({self.channel})"


class AuthorizationCodeManager(models.Manager["AuthorizationCode"]):
    """Hand-written SQL for ``get_identity`` (see :class:`ChallengeManager`)."""

    def for_redeem(self, pk: int) -> AuthorizationCode | None:
        """The code with its identity and identifier attached (one query, no lock) and
        ``user_is_active`` set. The application is not joined: the caller has it."""
        from django.contrib.auth import get_user_model

        user_model = get_user_model()
        key = ("redeem", connection.vendor, user_model)
        sql = _sql.get(key)
        if sql is None:
            q = connection.ops.quote_name
            code, ident, idf, usr = q("ac"), q("idt"), q("idf"), q("usr")  # short aliases
            # A custom user model may inherit AbstractBaseUser's constant is_active = True.
            active = next(
                (f for f in user_model._meta.concrete_fields if f.name == "is_active"), None
            )
            is_active = f"{usr}.{q(active.column)}" if active is not None else "1"
            sql = _sql[key] = (
                f"SELECT {fastsql.columns(self.model, 'ac')}, "
                f"{fastsql.columns(UserIdentity, 'idt')}, {fastsql.columns(Identifier, 'idf')}, "
                f"{is_active} FROM {q(self.model._meta.db_table)} {code} "
                f"INNER JOIN {q(UserIdentity._meta.db_table)} {ident} "
                f"ON {ident}.{q('id')} = {code}.{q('identity_id')} "
                f"INNER JOIN {q(Identifier._meta.db_table)} {idf} "
                f"ON {idf}.{q('id')} = {code}.{q('identifier_id')} "
                f"INNER JOIN {q(user_model._meta.db_table)} {usr} "
                f"ON {usr}.{q(user_model._meta.pk.column)} = {ident}.{q('user_id')} "
                f"WHERE {code}.{q('id')} = %s"
            )
        with connection.cursor() as cursor:
            cursor.execute(sql, [pk])
            found = cursor.fetchone()
        if found is None:
            return None
        row, identity, identifier = fastsql.load_joined(found, self.model, UserIdentity, Identifier)
        identifier.identity = identity
        row.identity = identity
        row.identifier = identifier
        row.user_is_active = bool(found[-1])  # type: ignore[attr-defined]
        return row

    def redeem(self, pk: int, when: datetime, family: uuid.UUID | None) -> bool:
        """Mark the code redeemed if nobody did yet; of concurrent redemptions exactly one
        gets True."""
        q = connection.ops.quote_name
        field: Any = self.model._meta.get_field("token_family")
        sql = (
            f"UPDATE {q(self.model._meta.db_table)} SET {q('redeemed_at')} = %s, "
            f"{q('token_family')} = %s WHERE {q('id')} = %s AND {q('redeemed_at')} IS NULL"
        )
        params = [
            connection.ops.adapt_datetimefield_value(when),
            field.get_db_prep_value(family, connection),
            pk,
        ]
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.rowcount == 1


class AuthorizationCode(models.Model):
    """A PKCE authorization code (Cotter's hosted-page contract); the id is ``challenge_id``."""

    id = models.BigIntegerField(primary_key=True, default=random_public_int, editable=False)
    code_hash = models.CharField(max_length=64, editable=False)
    application = models.ForeignKey(Application, on_delete=models.CASCADE, related_name="+")
    identity = models.ForeignKey(UserIdentity, on_delete=models.CASCADE, related_name="+")
    identifier = models.ForeignKey(Identifier, on_delete=models.CASCADE, related_name="+")
    auth_method = models.CharField(max_length=20)
    #: The channel of the sign-in's code or link (``RefreshToken.channel``).
    channel = models.CharField(max_length=10, blank=True, default="")
    redirect_url = models.CharField(max_length=2000)
    code_challenge = models.CharField(max_length=200)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    redeemed_at = models.DateTimeField(null=True, blank=True)
    token_family = models.UUIDField(null=True, blank=True)

    objects = AuthorizationCodeManager()

    class Meta:
        verbose_name = _("authorization code")
        verbose_name_plural = _("authorization codes")

    def __str__(self) -> str:
        return f"authorization code {self.pk}"
