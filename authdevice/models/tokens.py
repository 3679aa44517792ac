from __future__ import annotations

import uuid

from django.db import models
from django.utils.translation import gettext_lazy as _

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


class RefreshToken(models.Model):
    """One refresh token. Handed out as ``<id>:<secret>``; only SHA-256(secret) is stored.

    Every use rotates: the row is marked ``used_at`` and a child row is created in the same
    family. Presenting a used token again revokes the whole family.
    """

    id = models.BigIntegerField(primary_key=True, default=random_public_int, editable=False)
    secret_hash = models.CharField(max_length=64, editable=False)
    family = models.UUIDField(default=uuid.uuid4, db_index=True, editable=False)
    parent = models.OneToOneField(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="child",
        editable=False,
    )
    application = models.ForeignKey(Application, on_delete=models.CASCADE, related_name="+")
    identity = models.ForeignKey(
        UserIdentity, on_delete=models.CASCADE, related_name="refresh_tokens"
    )
    device = models.ForeignKey(
        "authdevice.TrustedDevice",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="refresh_tokens",
        help_text=_("The trusted device this session came through."),
    )
    auth_method = models.CharField(max_length=20, choices=AuthMethod.choices)
    auth_time = models.DateTimeField(help_text=_("When the user signed in (family start)."))
    identifier = models.CharField(max_length=254, blank=True, default="")
    scope = models.CharField(max_length=200, default="access")
    created_at = models.DateTimeField()
    family_expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoke_reason = models.CharField(max_length=40, blank=True, default="")

    class Meta:
        verbose_name = _("refresh token")
        verbose_name_plural = _("refresh tokens")
        indexes = [models.Index(fields=["identity", "revoked_at"])]

    def __str__(self) -> str:
        return f"refresh token {self.pk}"
