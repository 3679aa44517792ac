"""Celery tasks. Idempotent: safe to run twice or late."""

from __future__ import annotations

from celery import shared_task

from .flows import keys as key_flows
from .flows import maintenance


@shared_task(name="authdevice.rotate_signing_key_if_due")
def rotate_signing_key_if_due() -> str | None:
    """Rotate the signing key when it is older than AUTHDEVICE_KEY_ROTATION_DAYS."""
    key = key_flows.rotate_if_due()
    key_flows.purge_retired_private_keys()
    return key.kid if key is not None else None


@shared_task(name="authdevice.purge_expired_refresh_tokens")
def purge_expired_refresh_tokens() -> int:
    """Delete refresh-token rows whose family ended more than a day ago."""
    return maintenance.purge_expired_refresh_tokens()
