from __future__ import annotations

import uuid
from datetime import datetime

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections, models
from django.utils.translation import gettext_lazy as _

from . import fastsql
from .applications import Application
from .ids import random_public_int

# The methods below take ``connections[DEFAULT_DB_ALIAS]`` once rather than using the
# ``django.db.connection`` proxy, which looks the connection up on every attribute access.


class AuthEventManager(models.Manager["AuthEvent"]):
    """Hand-written SQL for the trusted-device hot paths (sign-in, respond, the pending
    lookup, the poll): compiling the ORM statements for this 27-column model costs several
    times more than running them (benchmarks/README.md)."""

    def insert(self, row: AuthEvent) -> AuthEvent:
        """INSERT a new row (its random id already chosen) with one prepared statement."""
        return fastsql.insert(row)

    def prepare_insert(self, row: AuthEvent) -> fastsql.Prepared:
        """The INSERT of a new row and its converted values, so that a caller can convert
        before its write transaction and only execute inside it (:meth:`run_insert`)."""
        return fastsql.prepare_insert(row)

    def run_insert(self, row: AuthEvent, prepared: fastsql.Prepared) -> AuthEvent:
        return fastsql.run_insert(row, prepared)

    def decide(
        self, pk: int, *, state: str, when: datetime, device_id: int, signature: str
    ) -> bool:
        """Decide a pending, unexpired event: ``UPDATE ... WHERE state = 'pending'``. Of
        concurrent decisions (approve vs reject, double approve) exactly one gets True."""
        connection = connections[DEFAULT_DB_ALIAS]
        q = connection.ops.quote_name
        sql = (
            f"UPDATE {q(self.model._meta.db_table)} SET {q('state')} = %s, "
            f"{q('decided_at')} = %s, {q('approving_device_id')} = %s, {q('signature')} = %s "
            f"WHERE {q('id')} = %s AND {q('state')} = %s AND {q('expires_at')} > %s"
        )
        at = connection.ops.adapt_datetimefield_value(when)
        with connection.cursor() as cursor:
            cursor.execute(sql, [state, at, device_id, signature, pk, AuthEvent.State.PENDING, at])
            return cursor.rowcount == 1

    def newest_pending(
        self, user_id: int, now: datetime, application_id: int | None = None
    ) -> AuthEvent | None:
        """The user's newest unexpired pending Cotter event (the partial index
        ``authdevice_event_pending``), optionally of one application. Native approval
        requests (with a poll secret) are left out: Cotter's doors never see them."""
        connection = connections[DEFAULT_DB_ALIAS]

        def build() -> str:
            q = connection.ops.quote_name
            t = q(self.model._meta.db_table)
            sql = (
                f"SELECT {fastsql.columns(self.model)} FROM {t} WHERE {t}.{q('user_id')} = %s "
                f"AND {t}.{q('state')} = %s AND {t}.{q('expires_at')} > %s "
                f"AND {t}.{q('poll_secret_hash')} = ''"
            )
            if application_id is not None:
                sql += f" AND {t}.{q('application_id')} = %s"
            return sql + f" ORDER BY {t}.{q('created_at')} DESC LIMIT 1"

        sql = fastsql.cached_sql(("newest_pending", application_id is not None), build)
        params: list[object] = [
            user_id,
            AuthEvent.State.PENDING,
            connection.ops.adapt_datetimefield_value(now),
        ]
        if application_id is not None:
            params.append(application_id)
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            found = cursor.fetchone()
        return None if found is None else fastsql.load(self.model, found)

    def claim_tokens(self, pk: int, family: uuid.UUID, when: datetime) -> bool:
        """Record that the approved event's tokens were handed out (with their family), if
        nobody did yet: of concurrent polls exactly one gets True."""
        connection = connections[DEFAULT_DB_ALIAS]

        def build() -> str:
            q = connection.ops.quote_name
            return (
                f"UPDATE {q(self.model._meta.db_table)} SET {q('tokens_handed_out_at')} = %s, "
                f"{q('token_family')} = %s WHERE {q('id')} = %s AND {q('state')} = %s "
                f"AND {q('tokens_handed_out_at')} IS NULL AND {q('expires_at')} IS NOT NULL"
            )

        family_field = self.model._meta.get_field("token_family")
        params = [
            connection.ops.adapt_datetimefield_value(when),
            family_field.get_db_prep_value(family, connection),
            pk,
            AuthEvent.State.APPROVED.value,
        ]
        with connection.cursor() as cursor:
            cursor.execute(fastsql.cached_sql(("claim_tokens",), build), params)
            return cursor.rowcount == 1

    def by_id(
        self,
        pk: int,
        *,
        with_identity: bool = False,
        application_id: int | None = None,
        method: str | None = None,
    ) -> AuthEvent | None:
        """The event by id in one hand-written SELECT (optionally only of this application
        and method). With ``with_identity`` its user and the user's ``UserIdentity`` come
        attached, as ``select_related("user__authdevice_identity")`` would."""
        from django.contrib.auth import get_user_model

        from .identities import UserIdentity

        connection = connections[DEFAULT_DB_ALIAS]
        user_model = get_user_model()
        scoped = application_id is not None

        def build() -> str:
            q = connection.ops.quote_name
            t = q(self.model._meta.db_table)
            sql = f"SELECT {fastsql.columns(self.model)}"
            if with_identity:
                ut = q(user_model._meta.db_table)
                it = q(UserIdentity._meta.db_table)
                user_pk = q(user_model._meta.pk.column)
                sql += (
                    f", {fastsql.columns(user_model)}, {fastsql.columns(UserIdentity)} FROM {t} "
                    f"LEFT OUTER JOIN {ut} ON {ut}.{user_pk} = {t}.{q('user_id')} "
                    f"LEFT OUTER JOIN {it} ON {it}.{q('user_id')} = {ut}.{user_pk}"
                )
            else:
                sql += f" FROM {t}"
            sql += f" WHERE {t}.{q('id')} = %s"
            if scoped:
                sql += f" AND {t}.{q('application_id')} = %s AND {t}.{q('method')} = %s"
            return sql

        sql = fastsql.cached_sql(("event_by_id", user_model, with_identity, scoped), build)
        params: list[object] = [pk] + ([application_id, method] if scoped else [])
        found = fastsql.fetch_one(sql, params)
        if found is None:
            return None
        if not with_identity:
            return fastsql.load(self.model, found)
        event, user, identity = fastsql.load_joined(found, self.model, user_model, UserIdentity)
        if user is not None:
            fastsql.attach_user(identity, user)
            event.user = user
        return event


class AuthEvent(models.Model):
    """The audit log: every change to who can sign in is one row (Cotter's Event object)."""

    class State(models.TextChoices):
        PENDING = "pending", _("Pending")
        APPROVED = "approved", _("Approved")
        REJECTED = "rejected", _("Rejected")
        EXPIRED = "expired", _("Expired")

    class Kind(models.TextChoices):
        LOGIN = "LOGIN", _("Sign-in")
        TOKENS_ISSUED = "TOKENS_ISSUED", _("Tokens issued by an operator")
        REFRESH_TOKEN_REUSED = "REFRESH_TOKEN_REUSED", _("Refresh token reused")
        TOKENS_REVOKED = "TOKENS_REVOKED", _("Tokens revoked")
        KEY_ROTATED = "KEY_ROTATED", _("Signing key rotated")
        KEY_REVOKED = "KEY_REVOKED", _("Signing key revoked")
        DEVICE_ENROLLED = "DEVICE_ENROLLED", _("Trusted device enrolled")
        DEVICE_REMOVED = "DEVICE_REMOVED", _("Trusted device removed")
        ENROLL_NEW_TRUSTED_DEVICE = "ENROLL_NEW_TRUSTED_DEVICE", _("Device enrolled from QR code")

    id = models.BigIntegerField(primary_key=True, default=random_public_int, editable=False)
    # Indexed by Meta.indexes' (user, -created_at): one index fewer to write per event.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="authdevice_events",
        db_index=False,
    )
    application = models.ForeignKey(
        Application, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    event = models.CharField(_("event"), max_length=40)
    method = models.CharField(_("method"), max_length=20, blank=True, default="")
    state = models.CharField(_("state"), max_length=10, choices=State.choices)
    ip = models.GenericIPAddressField(_("IP address"), null=True, blank=True)
    user_agent = models.CharField(_("user agent"), max_length=400, blank=True, default="")
    actor = models.CharField(
        _("actor"),
        max_length=150,
        blank=True,
        default="",
        help_text=_("Staff member or system component that caused the event."),
    )
    details = models.JSONField(default=dict, blank=True)
    # Trusted-device events (Cotter's Event object).
    requesting_device = models.ForeignKey(
        "authdevice.TrustedDevice",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("requesting device"),
        db_index=False,  # a partial index in Meta.indexes
    )
    approving_device = models.ForeignKey(
        "authdevice.TrustedDevice",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("approving device"),
        db_index=False,  # a partial index in Meta.indexes
    )
    client_timestamp = models.CharField(
        _("client timestamp"),
        max_length=20,
        blank=True,
        default="",
        help_text=_("As the client sent it; never used for freshness."),
    )
    reported_ip = models.CharField(max_length=64, blank=True, default="", editable=False)
    reported_location = models.CharField(max_length=100, blank=True, default="", editable=False)
    expires_at = models.DateTimeField(_("expires at"), null=True, blank=True)
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)
    tokens_handed_out_at = models.DateTimeField(null=True, blank=True, editable=False)
    token_family = models.UUIDField(null=True, blank=True, editable=False)
    signature = models.TextField(_("server signature"), blank=True, default="", editable=False)
    # Native protocol (/api/v1): only the requester (holder of the poll secret) learns the
    # outcome; the approver must type the number shown on the requesting screen.
    poll_secret_hash = models.CharField(max_length=64, blank=True, default="", editable=False)
    match_code_hash = models.CharField(max_length=64, blank=True, default="", editable=False)
    match_attempts = models.PositiveSmallIntegerField(default=0, editable=False)
    last_polled_at = models.DateTimeField(null=True, blank=True, editable=False)
    poll_interval = models.PositiveSmallIntegerField(default=0, editable=False)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = AuthEventManager()

    class Meta:
        verbose_name = _("auth event")
        verbose_name_plural = _("auth events")
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["user", "-created_at"]),
            # The trusted device's "newest pending request" lookup stays flat with table size.
            models.Index(
                fields=["user", "-created_at"],
                name="authdevice_event_pending",
                condition=models.Q(state="pending"),
            ),
            # Only trusted-device events have devices: code sign-ins write no entry.
            models.Index(
                fields=["requesting_device"],
                name="authdevice_event_requesting",
                condition=models.Q(requesting_device__isnull=False),
            ),
            models.Index(
                fields=["approving_device"],
                name="authdevice_event_approving",
                condition=models.Q(approving_device__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event} {self.state} ({self.pk})"
