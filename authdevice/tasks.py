"""Celery tasks. Idempotent: safe to run twice or late."""

from __future__ import annotations

import logging

from celery import shared_task
from django.db.models import F
from django.utils import timezone

from .channels import ChannelError, Message, load_backend
from .conf import app_settings
from .crypto.seal import SealError, unseal
from .flows import keys as key_flows
from .flows import maintenance
from .models import Challenge

logger = logging.getLogger("authdevice.tasks")


@shared_task(
    name="authdevice.send_challenge",
    bind=True,
    max_retries=5,
    ignore_result=True,
    acks_late=True,
)
def send_challenge(self, challenge_id: int, version: int, sealed: str) -> str:  # type: ignore[no-untyped-def]
    """Deliver a challenge's code/link. The message carries them encrypted; the broker
    never sees them. Only the first delivery of the current version of a pending,
    unexpired challenge sends anything (a conditional UPDATE claims it)."""
    claimed = Challenge.objects.filter(
        pk=challenge_id,
        version=version,
        sent_version__lt=version,
        state=Challenge.State.PENDING,
        expires_at__gt=timezone.now(),
    ).update(sent_version=version)
    if not claimed:
        return "skipped"
    challenge = Challenge.objects.select_related("application").get(pk=challenge_id)
    try:
        secrets_ = unseal(sealed, f"challenge:{challenge_id}:{version}")
    except SealError:
        logger.error("challenge %s: undecryptable payload, not sent", challenge_id)
        return "undecryptable"
    path = app_settings.channels.get(challenge.channel)
    if not path:
        logger.error("challenge %s: channel %s not configured", challenge_id, challenge.channel)
        return "no-channel"
    from .flows.codes import link_url

    message = Message(
        channel=challenge.channel,
        to=challenge.identifier,
        template="code" if challenge.channel == "EMAIL" else "sms",
        context={
            "code": secrets_["code"],
            "link_url": link_url(secrets_["link"]) if secrets_.get("link") else "",
            "minutes": max(1, app_settings.challenge_lifetime // 60),
            "application": challenge.application.name if challenge.application else "",
        },
    )
    try:
        load_backend(path).send(message)
    except ChannelError as exc:
        # Give the claim back so the retry (or a later duplicate) may send.
        Challenge.objects.filter(pk=challenge_id, sent_version=version).update(
            sent_version=F("sent_version") - 1
        )
        logger.warning(
            "challenge %s: delivery failed (%s); retrying", challenge_id, type(exc).__name__
        )
        raise self.retry(exc=exc, countdown=min(60, 2 ** (self.request.retries + 1))) from exc
    logger.info("challenge %s: sent via %s", challenge_id, challenge.channel)
    return "sent"


@shared_task(name="authdevice.notify_device_change", ignore_result=True, max_retries=5, bind=True)
def notify_device_change(self, payload: dict[str, str]) -> str:  # type: ignore[no-untyped-def]
    """Tell the user a trusted device was added or removed (an independent channel)."""
    path = app_settings.channels.get("EMAIL")
    if not path:
        return "no-channel"
    message = Message(
        channel="EMAIL", to=payload["to"], template=f"device_{payload['change']}", context=payload
    )
    try:
        load_backend(path).send(message)
    except ChannelError as exc:
        raise self.retry(exc=exc, countdown=min(300, 2 ** (self.request.retries + 2))) from exc
    return "sent"


@shared_task(name="authdevice.expire_events")
def expire_events() -> int:
    """Mark pending sign-in events past their expiry as expired (expiry itself is decided
    at read time; this keeps the table honest for the admin)."""
    from .flows.events import expire_events as expire

    return expire()


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


@shared_task(name="authdevice.purge_old_challenges")
def purge_old_challenges() -> int:
    """Delete sign-in challenges and authorization codes that expired over a day ago."""
    return maintenance.purge_old_challenges()
