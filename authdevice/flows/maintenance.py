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
    from ..models import AuthorizationCode, Challenge

    cutoff = timezone.now() - grace
    deleted, _ = Challenge.objects.filter(expires_at__lt=cutoff).delete()
    codes, _ = AuthorizationCode.objects.filter(expires_at__lt=cutoff).delete()
    return deleted + codes
