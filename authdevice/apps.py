from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AuthdeviceConfig(AppConfig):
    name = "authdevice"
    verbose_name = _("Passwordless authentication")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registers system checks and signal receivers.
        from . import checks, receivers, signals  # noqa: F401
