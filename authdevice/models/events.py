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
    created_at = models.DateTimeField(_("created at"), auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("auth event")
        verbose_name_plural = _("auth events")
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["user", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.event} {self.state} ({self.pk})"
