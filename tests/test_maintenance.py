"""The periodic purges delete only what can no longer be used (security.md M06)."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from authdevice.flows import codes, maintenance, native
from authdevice.models import (
    Challenge,
    DeviceBinding,
    DeviceChallenge,
    TrustedDevice,
    UsedDeviceMessage,
)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _mail(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    from django.core.cache import cache

    cache.clear()


def _device(user) -> TrustedDevice:
    from authdevice.flows.devices import enrol_device
    from tests.devicekit import Phone

    return enrol_device(identity=user.authdevice_identity, public_key=Phone.new("rn").public_key)


def test_purge_keeps_what_is_still_usable_and_deletes_the_rest(user):
    start = timezone.now()
    with time_machine.travel(start, tick=False) as clock:
        old_challenge = codes.start_challenge(identifier="a@example.com").challenge
        old_device_challenge = native.issue_challenge(DeviceChallenge.Purpose.LOGIN, user=user)
        old_binding = native.start_binding(user.authdevice_identity).binding
        confirmed = native.start_binding(user.authdevice_identity).binding
        DeviceBinding.objects.filter(pk=confirmed.pk).update(confirmed_at=start)
        device = _device(user)
        old_message = UsedDeviceMessage.objects.create(device=device, digest="a" * 64)
        clock.shift(timedelta(days=1, hours=1))
        fresh_challenge = codes.start_challenge(identifier="b@example.com").challenge
        fresh_message = UsedDeviceMessage.objects.create(device=device, digest="b" * 64)

        deleted = maintenance.purge_old_challenges()

    assert deleted == 4  # the sign-in challenge, device challenge, binding, entry
    assert not Challenge.objects.filter(pk=old_challenge.pk).exists()
    assert Challenge.objects.filter(pk=fresh_challenge.pk).exists()
    assert not DeviceChallenge.objects.filter(pk=old_device_challenge.pk).exists()
    assert not DeviceBinding.objects.filter(pk=old_binding.pk).exists()
    # A confirmed binding records how a device was added: kept.
    assert DeviceBinding.objects.filter(pk=confirmed.pk).exists()
    assert not UsedDeviceMessage.objects.filter(pk=old_message.pk).exists()
    assert UsedDeviceMessage.objects.filter(pk=fresh_message.pk).exists()


def test_a_replay_entry_lives_as_long_as_a_signed_timestamp_can_pass(user, settings):
    settings.AUTHDEVICE_DEVICE_TIMESTAMP_WINDOW = 300
    settings.AUTHDEVICE_PENDING_EVENT_LIFETIME = 180
    device = _device(user)
    start = timezone.now()
    with time_machine.travel(start, tick=False) as clock:
        entry = UsedDeviceMessage.objects.create(device=device, digest="c" * 64)
        # A day (the grace) plus 2 x 300 s plus 180 s: one second short of it, kept.
        clock.shift(timedelta(days=1, seconds=780 - 1))
        maintenance.purge_old_challenges()
        assert UsedDeviceMessage.objects.filter(pk=entry.pk).exists()
        clock.shift(2)
        maintenance.purge_old_challenges()
        assert not UsedDeviceMessage.objects.filter(pk=entry.pk).exists()
