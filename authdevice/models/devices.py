from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _
from django_otp.models import Device

from .applications import Application
from .identities import Identifier


class IdentifierDevice(Device):
    """django-otp's view of an email address or phone number that signed the user in.

    ``django_otp.login(request, device)`` after a code or link sign-in makes
    ``request.user.is_verified()`` true. ``verify_token`` checks a code against the newest
    pending sign-in challenge of this identifier.
    """

    identifier = models.OneToOneField(
        Identifier, on_delete=models.CASCADE, related_name="otp_device"
    )

    class Meta(Device.Meta):
        verbose_name = _("email/phone authenticator")
        verbose_name_plural = _("email/phone authenticators")

    def verify_token(self, token: object) -> bool:
        from ..flows.codes import verify_code_for_identifier

        return verify_code_for_identifier(self.identifier.value, token)


class TrustedDeviceQuerySet(models.QuerySet["TrustedDevice"]):
    def active(self) -> TrustedDeviceQuerySet:
        return self.filter(revoked_at__isnull=True, confirmed=True)


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


class UsedDeviceMessage(models.Model):
    """Replay cache: a (device, signed message) pair accepted once is never accepted again.

    Keyed by the message digest, never by signature bytes (ECDSA signatures are malleable).
    """

    device = models.ForeignKey(TrustedDevice, on_delete=models.CASCADE, related_name="+")
    digest = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["device", "digest"], name="authdevice_used_message_unique"
            )
        ]

    def __str__(self) -> str:
        return f"used message {self.digest[:12]}"
