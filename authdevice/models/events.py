from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from .applications import Application
from .ids import random_public_int


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
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="authdevice_events",
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
    )
    approving_device = models.ForeignKey(
        "authdevice.TrustedDevice",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("approving device"),
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
        ]

    def __str__(self) -> str:
        return f"{self.event} {self.state} ({self.pk})"
