from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from .applications import Application
from .identities import Identifier, UserIdentity
from .ids import random_public_int


class Channel(models.TextChoices):
    EMAIL = "EMAIL", _("Email")
    SMS = "SMS", _("SMS")
    WHATSAPP = "WHATSAPP", _("WhatsApp")


class Challenge(models.Model):
    """One attempt to prove control of an email address or phone number.

    Holds the HMAC of a 6-digit code and the SHA-256 of a magic-link token, both replaced on
    resend (``version``). ``binding_hash`` ties it to the browser or client that asked.
    The ``id`` is Cotter's ``challenge_id``.
    """

    class State(models.TextChoices):
        PENDING = "pending", _("Pending")
        VERIFIED = "verified", _("Verified")
        DEAD = "dead", _("Dead (too many wrong codes)")

    class Method(models.TextChoices):
        OTP = "OTP", _("Code")
        MAGIC_LINK = "MAGIC_LINK", _("Magic link")

    id = models.BigIntegerField(primary_key=True, default=random_public_int, editable=False)
    application = models.ForeignKey(
        Application, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    kind = models.CharField(max_length=8, choices=Identifier.Kind.choices)
    identifier = models.CharField(max_length=254)
    channel = models.CharField(max_length=10, choices=Channel.choices)
    purpose = models.CharField(max_length=20, default="login")
    method = models.CharField(max_length=12, choices=Method.choices, default=Method.OTP)
    code_hash = models.CharField(max_length=64, editable=False)
    link_hash = models.CharField(
        max_length=64, blank=True, default="", db_index=True, editable=False
    )
    binding_hash = models.CharField(max_length=64, editable=False)
    version = models.PositiveIntegerField(default=1)
    sent_version = models.PositiveIntegerField(default=0)
    resends = models.PositiveSmallIntegerField(default=0)
    attempts = models.PositiveSmallIntegerField(default=0)
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    identity = models.ForeignKey(
        UserIdentity, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=400, blank=True, default="")
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    verified_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("sign-in challenge")
        verbose_name_plural = _("sign-in challenges")
        indexes = [models.Index(fields=["identifier", "state"])]

    def __str__(self) -> str:
        return f"challenge {self.pk} ({self.channel})"


class AuthorizationCode(models.Model):
    """A PKCE authorization code (Cotter's hosted-page contract); the id is ``challenge_id``."""

    id = models.BigIntegerField(primary_key=True, default=random_public_int, editable=False)
    code_hash = models.CharField(max_length=64, editable=False)
    application = models.ForeignKey(Application, on_delete=models.CASCADE, related_name="+")
    identity = models.ForeignKey(UserIdentity, on_delete=models.CASCADE, related_name="+")
    identifier = models.ForeignKey(Identifier, on_delete=models.CASCADE, related_name="+")
    auth_method = models.CharField(max_length=20)
    redirect_url = models.CharField(max_length=2000)
    code_challenge = models.CharField(max_length=200)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    redeemed_at = models.DateTimeField(null=True, blank=True)
    token_family = models.UUIDField(null=True, blank=True)

    class Meta:
        verbose_name = _("authorization code")
        verbose_name_plural = _("authorization codes")

    def __str__(self) -> str:
        return f"authorization code {self.pk}"
