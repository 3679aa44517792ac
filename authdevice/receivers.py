"""Signal receivers authdevice installs for itself."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from .flows.applications import clear_application_cache
from .models import Application


@receiver([post_save, post_delete], sender=Application)
def _application_changed(sender: type, **kwargs: Any) -> None:
    # This process forgets at once; others within AUTHDEVICE_APPLICATION_CACHE_SECONDS.
    transaction.on_commit(clear_application_cache)
