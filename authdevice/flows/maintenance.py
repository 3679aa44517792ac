"""Tidy-up flows run by periodic tasks. Expiry is decided at read time; these only delete."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from ..models import RefreshToken


def purge_expired_refresh_tokens(grace: timedelta = timedelta(days=1)) -> int:
    cutoff = timezone.now() - grace
    deleted, _ = RefreshToken.objects.filter(family_expires_at__lt=cutoff).delete()
    return deleted


def purge_old_challenges(grace: timedelta = timedelta(days=1)) -> int:
    """Delete one-use things that can no longer be used, ``grace`` after they expired:
    sign-in challenges, authorization codes, device challenges, QR bindings that were
    never confirmed, and replay-cache entries whose signed timestamps every check now
    refuses anyway (older than the device timestamp window on both sides plus the life
    of a pending event, whose timestamp an approval signs). Returns the rows deleted."""
    from ..conf import app_settings
    from ..models import (
        AuthorizationCode,
        Challenge,
        DeviceBinding,
        DeviceChallenge,
        UsedDeviceMessage,
    )

    now = timezone.now()
    cutoff = now - grace
    deleted = 0
    for queryset in (
        Challenge.objects.filter(expires_at__lt=cutoff),
        AuthorizationCode.objects.filter(expires_at__lt=cutoff),
        DeviceChallenge.objects.filter(expires_at__lt=cutoff),
        DeviceBinding.objects.filter(expires_at__lt=cutoff, confirmed_at__isnull=True),
    ):
        count, _ = queryset.delete()
        deleted += count
    replay_horizon = timedelta(
        seconds=2 * int(app_settings.DEVICE_TIMESTAMP_WINDOW)
        + int(app_settings.PENDING_EVENT_LIFETIME)
    )
    count, _ = UsedDeviceMessage.objects.filter(created_at__lt=cutoff - replay_horizon).delete()
    return deleted + count
