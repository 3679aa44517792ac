from __future__ import annotations

from datetime import datetime, timedelta

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class SigningKeyQuerySet(models.QuerySet["SigningKey"]):
    def published(self, now: datetime, max_lifetime: int) -> SigningKeyQuerySet:
        """Keys whose public half belongs in the JWKS at ``now``."""
        cutoff = now - timedelta(seconds=max_lifetime)
        return self.filter(revoked_at__isnull=True).filter(
            Q(retired_at__isnull=True) | Q(retired_at__gt=cutoff)
        )


class SigningKey(models.Model):
    """An ES256 key pair. The private half is encrypted at rest and never displayed.

    Life cycle, decided from timestamps at read time: published from ``created_at``; signs
    from ``not_before`` until ``retired_at``; stays published until ``retired_at`` plus the
    longest token lifetime; ``revoked_at`` (emergency) removes it from the JWKS at once.
    """

    kid = models.CharField(_("key ID"), max_length=100, unique=True, editable=False)
    generation = models.PositiveIntegerField(unique=True, editable=False)
    algorithm = models.CharField(max_length=10, default="ES256", editable=False)
    public_jwk = models.JSONField(editable=False)
    private_key_encrypted = models.TextField(editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    not_before = models.DateTimeField(_("signs from"))
    retired_at = models.DateTimeField(_("stops signing at"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True)

    objects = SigningKeyQuerySet.as_manager()

    class Meta:
        verbose_name = _("signing key")
        verbose_name_plural = _("signing keys")
        ordering = ["-generation"]

    def __str__(self) -> str:
        return self.kid

    def __repr__(self) -> str:
        return f"<SigningKey kid={self.kid!r} generation={self.generation}>"

    def signs_at(self, now: datetime) -> bool:
        return (
            self.revoked_at is None
            and self.not_before <= now
            and (self.retired_at is None or self.retired_at > now)
        )

    def status(self, now: datetime | None = None) -> str:
        now = now or timezone.now()
        if self.revoked_at is not None:
            return "revoked"
        if self.signs_at(now):
            return "signing"
        if self.not_before > now:
            return "published (not yet signing)"
        return "retired"
