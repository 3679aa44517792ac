from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _
from django_otp.models import Device

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
