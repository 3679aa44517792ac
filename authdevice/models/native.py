"""Models of the native protocol (``/api/v1``): server-issued challenges and the binding
codes that add a device by QR code."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from .devices import TrustedDevice
from .events import AuthEvent
from .ids import random_public_int


class DeviceChallenge(models.Model):
    """A single-use nonce a device signs (≥128 bits, short-lived), bound to its purpose and,
    where known, to the user, the device and the event it is about."""

    class Purpose(models.TextChoices):
        LOGIN = "login", _("Sign in")
        APPROVE = "approve", _("Approve or reject a sign-in")
        ENROL = "enrol", _("Enrol a device")
        BIND = "bind", _("Add a device by QR code")

    id = models.BigIntegerField(primary_key=True, default=random_public_int, editable=False)
    value = models.CharField(max_length=64, unique=True, editable=False)
    purpose = models.CharField(max_length=10, choices=Purpose.choices)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    device = models.ForeignKey(
        TrustedDevice, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    event = models.ForeignKey(
        AuthEvent, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.purpose} challenge {self.pk}"


class DeviceBinding(models.Model):
    """Adding a device by QR code: the QR holds the server origin and a single-use binding
    code (≥112 bits, a few minutes). The new device redeems it with its public key, then the
    initiating (signed-in) side confirms after comparing a short code shown on both."""

    id = models.BigIntegerField(primary_key=True, default=random_public_int, editable=False)
    code_hash = models.CharField(max_length=64, unique=True, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    device = models.OneToOneField(
        TrustedDevice, null=True, blank=True, on_delete=models.CASCADE, related_name="binding"
    )
    comparison_hash = models.CharField(max_length=64, blank=True, default="", editable=False)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    redeemed_at = models.DateTimeField(null=True, blank=True)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"device binding {self.pk}"
