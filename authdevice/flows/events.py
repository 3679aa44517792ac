"""Pending sign-in events: a non-trusted device asks, a trusted device approves or rejects,
the requester collects its tokens once (Cotter's B2-B6, reference §4.1).

Expiry is decided at read time from the server clock; ``expire_events`` only tidies up.
Approve vs reject and the token hand-out are conditional UPDATEs: exactly one outcome.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from ..conf import app_settings
from ..http import client_ip, user_agent
from ..models import Application, AuthEvent, TrustedDevice, UsedDeviceMessage, UserIdentity
from ..signals import auth_event_recorded
from . import notify
from .devices import (
    TRUSTED_DEVICE,
    DeviceNotTrusted,
    burn_message,
    check_device_signature,
    find_device,
    login_message,
    note_device_use,
)
from .errors import FlowError
from .keys import keyring
from .ratelimit import RateLimited
from .tokens import TokenSet

State = AuthEvent.State


class EventNotFound(FlowError):
    """Event not found."""

    code = "event_not_found"
    status = 404


class AlreadyDecided(FlowError):
    """This request was already approved, rejected or has expired."""

    code = "already_decided"
    status = 409


class EventExpired(AlreadyDecided):
    """This request has expired."""

    code = "expired"
    status = 410


@dataclass(frozen=True)
class Decision:
    event: AuthEvent
    approved: bool


def _sign(event: AuthEvent, client_user_id: str, issuer: str, new: bool, approved: bool) -> str:
    """Our server signature over Cotter's event string (§2.6), with the current ES256 key
    (Cotter used Ed25519 under its own key, which no self-hosted server can reproduce)."""
    message = f"{client_user_id}{issuer}{event.event}{event.client_timestamp}{TRUSTED_DEVICE}"
    message += f"{str(new).lower()}{str(approved).lower()}"
    _, key = keyring.signer()
    return base64.b64encode(key.sign(message.encode("utf-8"), ec.ECDSA(hashes.SHA256()))).decode()


def is_expired(event: AuthEvent) -> bool:
    return (
        event.state == State.PENDING
        and event.expires_at is not None
        and timezone.now() >= event.expires_at
    )


def effective_state(event: AuthEvent) -> str:
    """The state as of now (a pending event past its expiry is expired, whatever the row says)."""
    return State.EXPIRED if is_expired(event) else event.state


#: Seconds after its approval that an approved request's tokens (or, on the pages, its
#: session) can still be collected, when that is later than the request's own expiry.
HANDOUT_GRACE = 60


def collectable(event: AuthEvent) -> bool:
    """Whether an approved request may still hand out its tokens or session: until the
    request expires, or ``HANDOUT_GRACE`` seconds after the approval if that is later. A
    poll secret that turns up later opens nothing (RFC 8628 3.5: ``expired_token``)."""
    if event.expires_at is None:
        return False
    deadline = event.expires_at
    if event.decided_at is not None:
        deadline = max(deadline, event.decided_at + timedelta(seconds=HANDOUT_GRACE))
    return timezone.now() < deadline


def new_event_row(**kwargs) -> AuthEvent:  # type: ignore[no-untyped-def]
    """Build, sign and INSERT an event row (arguments as :func:`build_event_row`)."""
    return insert_event_row(build_event_row(**kwargs))


def build_event_row(
    *,
    identity: UserIdentity,
    application: Application | None,
    event: str,
    state: str,
    client_timestamp: str = "",
    reported_ip: str = "",
    reported_location: str = "",
    request: HttpRequest | None = None,
    approving_device: TrustedDevice | None = None,
    requesting_device: TrustedDevice | None = None,
    expires_at=None,  # type: ignore[no-untyped-def]
) -> AuthEvent:
    """The event row with its random id and server signature, not yet saved: all the work
    that needs no database (callers sign before their write transaction)."""
    row = AuthEvent(
        user=identity.user,
        application=application,
        event=str(event)[:40],
        method=TRUSTED_DEVICE,
        state=state,
        ip=client_ip(request) if request is not None else None,
        user_agent=user_agent(request) if request is not None else "",
        client_timestamp=str(client_timestamp)[:20],
        reported_ip=str(reported_ip)[:64],
        reported_location=str(reported_location)[:100],
        approving_device=approving_device,
        requesting_device=requesting_device,
        expires_at=expires_at,
        decided_at=timezone.now() if state != State.PENDING else None,
    )
    row.signature = _sign(
        row,
        identity.client_user_id,
        application.api_key_id if application is not None else "",
        state == State.PENDING,
        state == State.APPROVED,
    )
    return row


def insert_event_row(row: AuthEvent, prepared: tuple[str, list[Any]] | None = None) -> AuthEvent:
    """INSERT a row from :func:`build_event_row` and announce it (inside the caller's
    transaction, like every audit row). ``prepared``: from
    ``AuthEvent.objects.prepare_insert(row)``, converted before the transaction."""
    if prepared is None:
        AuthEvent.objects.insert(row)
    else:
        AuthEvent.objects.run_insert(row, prepared)
    auth_event_recorded.send(sender=AuthEvent, event=row)
    return row


def create_pending_event(
    *,
    identity: UserIdentity,
    application: Application | None,
    event: str,
    client_timestamp: str = "",
    reported_ip: str = "",
    reported_location: str = "",
    request: HttpRequest | None = None,
    build_only: bool = False,
) -> AuthEvent:
    """Cotter B2: a non-trusted device asks the user's trusted devices to approve a login.

    Push-bombing limits: at most MAX_OUTSTANDING_EVENTS pending at once, and at most
    MAX_REQUESTS_SINCE_SUCCESS within the last hour since the last successful sign-in.
    The client's timestamp must be current (it is part of what the approver signs).
    ``build_only``: check and build the signed row, without the INSERT (the native
    protocol's requests already have their row; ``native.resolve_approval``)."""
    from .devices import check_timestamp

    check_timestamp(client_timestamp)
    now = timezone.now()
    with transaction.atomic():
        pending = AuthEvent.objects.filter(
            user=identity.user, state=State.PENDING, expires_at__gt=now
        ).count()
        if pending >= int(app_settings.MAX_OUTSTANDING_EVENTS):
            raise RateLimited(int(app_settings.PENDING_EVENT_LIFETIME))
        last_success = (
            AuthEvent.objects.filter(
                user=identity.user, event__startswith="LOGIN", state=State.APPROVED
            )
            .order_by("-created_at")
            .values_list("created_at", flat=True)
            .first()
        )
        since = max(last_success or now - timedelta(hours=1), now - timedelta(hours=1))
        recent = AuthEvent.objects.filter(
            user=identity.user, created_at__gt=since, expires_at__isnull=False
        ).count()
        if recent >= int(app_settings.MAX_REQUESTS_SINCE_SUCCESS):
            raise RateLimited(3600)
        return (build_event_row if build_only else new_event_row)(
            identity=identity,
            application=application,
            event=event,
            state=State.PENDING,
            client_timestamp=_server_timestamp(identity, application, str(event), now),
            reported_ip=reported_ip,
            reported_location=reported_location,
            request=request,
            expires_at=now + timedelta(seconds=int(app_settings.PENDING_EVENT_LIFETIME)),
        )


def _server_timestamp(
    identity: UserIdentity, application: Application | None, event: str, now: datetime
) -> str:
    """The timestamp a pending event carries, which the approving device signs (§2.2).

    The server chooses it (now), never the requester: a requester choosing it could line
    a new request up with a login signature it captured. If the user's device already
    used the resulting string (its own sign-in in the same second), or another request of
    the user for the same event and application carries it (two requests in one second:
    approving the first would burn the second's message), step back a second so the
    approval never collides with the replay cache."""
    issuer = application.api_key_id if application is not None else ""
    uids = {identity.client_user_id, str(identity.public_id)}
    ts = int(now.timestamp())
    taken = set(
        AuthEvent.objects.filter(
            user_id=identity.user_id,
            event=event,
            application=application,
            expires_at__isnull=False,
            client_timestamp__gte=str(ts - 30),
        ).values_list("client_timestamp", flat=True)
    )
    for candidate in range(ts, ts - 30, -1):
        if str(candidate) in taken:
            continue
        digests = [
            hashlib.sha256(
                login_message(uid, issuer, event, str(candidate), d).encode()
            ).hexdigest()
            for uid in uids
            for d in ("true", "false")
        ]
        if not UsedDeviceMessage.objects.filter(
            device__user_id=identity.user_id, digest__in=digests
        ).exists():
            return str(candidate)
    return str(ts)


def newest_pending_event(
    identity: UserIdentity, application: Application | None = None
) -> AuthEvent | None:
    """The user's newest unexpired pending event (one indexed lookup), or None; with
    ``application``, the newest one made through that application."""
    row = AuthEvent.objects.newest_pending(
        identity.user_id, timezone.now(), application.pk if application is not None else None
    )
    if row is not None and application is not None:
        row.application = application
    return row


def get_event(event_id: object, application: Application) -> AuthEvent:
    # One spelling per id: ASCII digits, no leading zero (int() would also take " 12",
    # "+12", "012", "1_2" and other scripts' digits).
    text = str(event_id) if isinstance(event_id, int | str) else ""
    if not (text.isascii() and text.isdigit() and len(text) <= 16) or text[0] == "0":
        raise EventNotFound()
    pk = int(text)
    if not 0 < pk < 2**53:
        raise EventNotFound()
    row = AuthEvent.objects.by_id(
        pk, with_identity=True, application_id=application.pk, method=TRUSTED_DEVICE
    )
    # A native approval request (it has a poll secret) is answered and collected only
    # through /api/v1, with its secret and number matching: Cotter's doors, which hand
    # out event ids to anyone with the public key, never see it.
    if row is None or row.poll_secret_hash:
        raise EventNotFound()
    row.application = application
    return row


def event_identity(event: AuthEvent) -> UserIdentity | None:
    """The event's user identity if :func:`get_event` already loaded it, else None (never
    a query)."""
    user_field = AuthEvent._meta.get_field("user")
    if not user_field.is_cached(event):
        return None
    user = user_field.get_cached_value(event)
    reverse = UserIdentity._meta.get_field("user").remote_field
    if user is None or not reverse.is_cached(user):
        return None
    return reverse.get_cached_value(user)


def respond_to_event(
    *,
    event: AuthEvent,
    identity: UserIdentity,
    uid: str,
    application: Application,
    approved: bool,
    public_key: object,
    signature: object,
    request: HttpRequest | None = None,
) -> Decision:
    """Cotter B3: an active trusted device of the same user approves or rejects, signing
    ``uid+issuer+pending.event+pending.timestamp+TRUSTED_DEVICE+true|false``.

    Lookup and both signatures happen before the write transaction; inside it, the
    replay-cache INSERT (single use, device still active) and the conditional UPDATE
    ``WHERE state = 'pending'``, which decides races (approve vs reject, double approve)."""
    if event.user_id != identity.user_id:
        raise EventNotFound()
    device = find_device(identity, public_key)
    if device is None:
        raise DeviceNotTrusted()
    if effective_state(event) != State.PENDING:
        raise AlreadyDecided()
    message = login_message(
        uid,
        application.api_key_id,
        event.event,
        event.client_timestamp,
        "true" if approved else "false",
    )
    encoded = check_device_signature(device, message, signature)
    target = State.APPROVED if approved else State.REJECTED
    # _sign reads only the event name and timestamp besides the arguments.
    signature_ = _sign(event, identity.client_user_id, application.api_key_id, False, approved)
    with transaction.atomic():
        burn_message(device, encoded)
        now = timezone.now()
        won = AuthEvent.objects.decide(
            event.pk, state=target, when=now, device_id=device.pk, signature=signature_
        )
        if not won:
            raise AlreadyDecided()
        # What the UPDATE wrote (no re-read: QuerySet.update leaves updated_at alone too).
        event.state = target
        event.decided_at = now
        event.approving_device = device
        event.signature = signature_
        auth_event_recorded.send(sender=AuthEvent, event=event)
        notify.announce(event.pk)
    note_device_use(device)
    return Decision(event=event, approved=approved)


def hand_out_tokens(event: AuthEvent, *, identifier: str | None = None) -> TokenSet | None:
    """The approved event's token set, to the first poll after approval only. Only a
    request that waited for approval has tokens to hand out (not a signed sign-in, whose
    tokens went out with it, nor a QR enrolment or any other audit row).

    ``event`` comes with its user and the user's identity loaded (``get_event``, the
    native poll); ``identifier``, the user's primary identifier, if the caller has it.
    As in the refresh grant, the tokens are signed before the write transaction, which
    holds only the claim (a conditional UPDATE: of concurrent polls exactly one wins) and
    the refresh-token INSERT. A losing poll's token set is dropped unsent."""

    from .tokens import persist_token_set, prepare_token_set

    if (
        event.state != State.APPROVED
        or event.tokens_handed_out_at is not None
        or not collectable(event)
        or not getattr(event.user, "is_active", True)  # disabled since it was approved
    ):
        return None
    identity = event.user.authdevice_identity
    # Only the device's id goes into the refresh-token row: no need to load the device.
    device = None
    if event.approving_device_id is not None:
        device = TrustedDevice(pk=event.approving_device_id, user_id=event.user_id)
    row, tokens = prepare_token_set(
        identity=identity,
        application=event.application,
        auth_method=TRUSTED_DEVICE,
        identifier=identifier,
        device=device,
    )
    with transaction.atomic():
        # Of concurrent polls exactly one claims the tokens; the others drop theirs.
        if not AuthEvent.objects.claim_tokens(event.pk, tokens.family, timezone.now()):
            return None
        persist_token_set(row, tokens)
    return tokens


def expire_events() -> int:
    """Mark pending events past their expiry as expired (periodic tidy-up)."""
    return AuthEvent.objects.filter(state=State.PENDING, expires_at__lte=timezone.now()).update(
        state=State.EXPIRED, decided_at=timezone.now()
    )
