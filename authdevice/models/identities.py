from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

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

    class Meta:
        verbose_name = _("identifier")
        verbose_name_plural = _("identifiers")
        constraints = [
            models.UniqueConstraint(fields=["kind", "value"], name="authdevice_identifier_unique")
        ]

    def __str__(self) -> str:
        return self.value
