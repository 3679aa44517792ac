"""Trusted devices (Cotter's "Sign in with Device"): enrolment, signed sign-in, QR
enrolment of another device, removal. Pending approvals live in ``flows/events.py``.

Cotter's signed strings (reference §2.2) are plain concatenations with no server
challenge, so every accepted (device, message) pair goes into a replay cache and the
device's timestamp must lie within ``AUTHDEVICE_DEVICE_TIMESTAMP_WINDOW`` of our clock.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone

from ..conf import app_settings
from ..crypto import devicekeys
from ..models import (
    Application,
    AuthEvent,
    RefreshToken,
    TrustedDevice,
    UsedDeviceMessage,
    UserIdentity,
)
from ..models.devices import identity_with_user
from .audit import record_event
from .errors import FlowError
from .tokens import TokenSet, persist_token_set, prepare_token_set, revoke_families

#: ``last_used_at`` is display information: written at most this often per device.
LAST_USED_RESOLUTION = timedelta(minutes=1)

TRUSTED_DEVICE = "TRUSTED_DEVICE"


class InvalidDeviceKey(FlowError):
    """The public key is not valid."""

    code = "invalid_public_key"


class DeviceKeyTaken(FlowError):
    """This key is already enrolled."""

    code = "public_key_taken"
    status = 409


class ReauthenticationRequired(FlowError):
    """Sign in again to add a device: this sign-in is too old."""

    code = "reauthentication_required"
    status = 403


class AccountDisabled(FlowError):
    """This account is disabled."""

    code = "account_disabled"
    status = 403


def require_recent_sign_in(auth_time: object) -> None:
    """Raise :class:`ReauthenticationRequired` unless ``auth_time`` (unix seconds; ID
    tokens carry it as a string) is at most ``REAUTHENTICATION_SECONDS`` ago."""
    try:
        at = float(auth_time)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise ReauthenticationRequired() from exc
    age = timezone.now().timestamp() - at
    if not -int(app_settings.LEEWAY) <= age <= int(app_settings.REAUTHENTICATION_SECONDS):
        raise ReauthenticationRequired()


def require_active_user(identity: UserIdentity) -> None:
    """Raise :class:`AccountDisabled` for a user whose account is switched off (the
    sign-in queries load the user with the identity: no query then)."""
    if not getattr(identity.user, "is_active", True):
        raise AccountDisabled()


class DeviceNotTrusted(FlowError):
    """This device is not a trusted device of the user."""

    code = "device_not_trusted"
    status = 401


class BadSignature(FlowError):
    """The signature is not valid."""

    code = "bad_signature"
    status = 401


class StaleTimestamp(FlowError):
    """The device's timestamp is too far from the server clock."""

    code = "stale_timestamp"


class Replayed(FlowError):
    """This signed request was already used."""

    code = "replayed"


class UnknownUser(FlowError):
    """User not found."""

    code = "user_not_found"
    status = 404


@dataclass(frozen=True)
class DeviceSignIn:
    event: AuthEvent
    device: TrustedDevice
    tokens: TokenSet


def resolve_identity(user_id: object) -> UserIdentity | None:
    """A user by Cotter's ids: our public UUID or the (deprecated) client_user_id."""
    if (
        not isinstance(user_id, str)
        or not user_id
        or len(user_id) > 200
        or not user_id.isprintable()
    ):
        return None
    try:
        public_id: uuid.UUID | None = uuid.UUID(user_id)
    except ValueError:
        public_id = None
    return identity_with_user(user_id, public_id)


def resolves_to(user_id: str, identity: UserIdentity) -> bool:
    """Whether :func:`resolve_identity` would certainly answer ``identity`` for this id (so a
    caller holding it can skip the query): its public id, or its client user id when that is
    not UUID-shaped (a UUID-shaped one could be another user's public id, which wins)."""
    if user_id == str(identity.public_id):
        return True
    if user_id != identity.client_user_id or len(user_id) > 200 or not user_id.isprintable():
        return False
    try:
        uuid.UUID(user_id)
    except ValueError:
        return True
    return False


def list_devices(user: Any, *, include_unconfirmed: bool = False) -> list[TrustedDevice]:
    """The user's devices that are not revoked, newest first; with ``include_unconfirmed``
    also those whose QR binding the initiating device has not confirmed yet."""
    rows = TrustedDevice.objects.filter(user=user, revoked_at__isnull=True)
    if not include_unconfirmed:
        rows = rows.filter(confirmed=True)
    return list(rows.order_by("-created_at"))


def active_device_of(user: Any, pk: int) -> TrustedDevice | None:
    """The user's active device with this id, or None (another user's id reads as none)."""
    return TrustedDevice.objects.active().filter(pk=pk, user=user).first()


def parse_key(public_key: object, algorithm: object = None) -> devicekeys.DeviceKey:
    try:
        return devicekeys.parse_public_key(public_key, algorithm)
    except devicekeys.InvalidDeviceKey as exc:
        raise InvalidDeviceKey(str(exc)) from exc


def find_device(identity: UserIdentity, public_key: object) -> TrustedDevice | None:
    """The user's active device with this key (any spelling of the key), or None."""
    found = _find_device(identity, public_key)
    return None if found is None else found[0]


def device_for_sign_in(public_key: object) -> tuple[TrustedDevice, UserIdentity, str] | None:
    """The active device holding ``public_key``, its user's identity and primary identifier
    (one query), or None. Callers must still check that the identity is the one the
    request names before passing ``(device, identifier)`` to :func:`sign_in_with_device`."""
    try:
        key = devicekeys.parse_public_key(public_key)
    except devicekeys.InvalidDeviceKey:
        return None
    return TrustedDevice.objects.for_sign_in(key.fingerprint)


def _find_device(
    identity: UserIdentity, public_key: object, *, with_identifier: bool = False
) -> tuple[TrustedDevice, str] | None:
    try:
        key = devicekeys.parse_public_key(public_key)
    except devicekeys.InvalidDeviceKey:
        return None
    return TrustedDevice.objects.find_active(
        identity.user_id, key.fingerprint, identity_id=identity.pk if with_identifier else None
    )


def enrol_device(
    *,
    identity: UserIdentity,
    public_key: object,
    algorithm: object = None,
    name: str = "",
    device_type: str = "",
    application: Application | None = None,
    request: HttpRequest | None = None,
    via: TrustedDevice | None = None,
) -> TrustedDevice:
    """Enrol a trusted device (the caller has checked the user's authority to do so).

    Re-enrolling a key the same user already has is idempotent; a key of another user
    is refused (no unknown-key-share)."""
    require_active_user(identity)  # a disabled account gets no new device, on any door
    key = parse_key(public_key, algorithm)
    with transaction.atomic():
        existing = (
            TrustedDevice.objects.select_for_update().filter(fingerprint=key.fingerprint).first()
        )
        if existing is not None:
            if existing.user_id != identity.user_id or existing.revoked_at is not None:
                raise DeviceKeyTaken()
            return existing
        try:
            with transaction.atomic():
                device = TrustedDevice.objects.create(
                    user=identity.user,
                    name=(name or device_type or "Trusted device")[:64],
                    confirmed=True,
                    public_key=key.normalized,
                    fingerprint=key.fingerprint,
                    algorithm=key.algorithm,
                    device_type=str(device_type)[:100],
                    application=application,
                )
        except IntegrityError as exc:
            raise DeviceKeyTaken() from exc
        record_event(
            event=AuthEvent.Kind.ENROLL_NEW_TRUSTED_DEVICE
            if via
            else AuthEvent.Kind.DEVICE_ENROLLED,
            state=AuthEvent.State.APPROVED,
            user=identity.user,
            application=application,
            method=TRUSTED_DEVICE,
            request=request,
            details={
                "device": device.pk,
                "algorithm": key.algorithm,
                "via_device": via.pk if via else None,
            },
        )
        _notify(identity, "added", device, request)
    return device


def rename_device(device: TrustedDevice, name: str, *, actor: str = "") -> TrustedDevice:
    """Give a device a new display name (trimmed, at most 64 characters, never empty)."""
    cleaned = " ".join(str(name).split())[:64]
    if not cleaned:
        raise FlowError("A device needs a name.")
    TrustedDevice.objects.filter(pk=device.pk).update(name=cleaned)
    device.name = cleaned
    return device


def remove_device(
    device: TrustedDevice, *, actor: str = "", reason: str = "", request: HttpRequest | None = None
) -> bool:
    """Revoke a device at once: its signatures stop working on the next request and every
    refresh-token family issued through it is revoked. Returns False if already revoked."""
    with transaction.atomic():
        now = timezone.now()
        changed = TrustedDevice.objects.filter(pk=device.pk, revoked_at__isnull=True).update(
            revoked_at=now, revoked_by=actor[:150], revoke_reason=reason[:200]
        )
        if not changed:
            return False
        families = list(
            RefreshToken.objects.filter(device=device, revoked_at__isnull=True)
            .values_list("family", flat=True)
            .distinct()
        )
        if families:
            revoke_families(families, "device_removed")
        record_event(
            event=AuthEvent.Kind.DEVICE_REMOVED,
            state=AuthEvent.State.APPROVED,
            user=device.user,
            application=device.application,
            method=TRUSTED_DEVICE,
            request=request,
            actor=actor,
            details={"device": device.pk, "reason": reason, "revoked_families": len(families)},
        )
        identity = UserIdentity.objects.filter(user_id=device.user_id).first()
        if identity is not None:
            _notify(identity, "removed", device, request)
    device.revoked_at = now
    return True


def check_timestamp(timestamp: object) -> int:
    """The device's unix-seconds string must be within the window of our clock."""
    try:
        ts = int(str(timestamp))
    except (TypeError, ValueError) as exc:
        raise StaleTimestamp() from exc
    if abs(timezone.now().timestamp() - ts) > int(app_settings.DEVICE_TIMESTAMP_WINDOW):
        raise StaleTimestamp()
    return ts


def check_device_signature(device: TrustedDevice, message: str, signature: object) -> bytes:
    """Verify with the algorithm pinned at enrolment (no database access: callers do this
    before their write transaction); returns the signed bytes for :func:`burn_message`."""
    key = devicekeys.parse_public_key(device.public_key, device.algorithm)
    encoded = message.encode("utf-8")
    if not devicekeys.verify(key, encoded, signature):
        raise BadSignature()
    return encoded


def burn_message(device: TrustedDevice, encoded: bytes) -> None:
    """Inside the caller's write transaction, first: record the verified (device, message)
    pair as used (a second use is :class:`Replayed`), refusing a device removed since it was
    read (:class:`DeviceNotTrusted`: removal takes effect on the very next request). No
    savepoint: on failure the caller's transaction is rolled back as a whole."""
    try:
        burnt = UsedDeviceMessage.objects.burn(
            device.pk, hashlib.sha256(encoded).hexdigest(), timezone.now()
        )
    except IntegrityError as exc:
        raise Replayed() from exc
    if not burnt:
        raise DeviceNotTrusted()


def note_device_use(device: TrustedDevice) -> None:
    """After the caller's commit: ``last_used_at``, at most once a minute per device. Not
    inside the transaction: on PostgreSQL :func:`burn_message` share-locks the device row,
    and two sign-ins of one device each updating it there would deadlock."""
    now = timezone.now()
    if device.last_used_at is None or device.last_used_at < now - LAST_USED_RESOLUTION:
        TrustedDevice.objects.touch(device.pk, now, now - LAST_USED_RESOLUTION)
        device.last_used_at = now


def verify_device_signature(device: TrustedDevice, message: str, signature: object) -> None:
    """Verify with the algorithm pinned at enrolment, then burn the (device, message) pair
    (the caller's transaction must commit for the burn to count)."""
    encoded = check_device_signature(device, message, signature)
    try:
        with transaction.atomic():
            UsedDeviceMessage.objects.create(
                device=device, digest=hashlib.sha256(encoded).hexdigest()
            )
    except IntegrityError as exc:
        raise Replayed() from exc
    TrustedDevice.objects.filter(pk=device.pk).update(last_used_at=timezone.now())


def login_message(uid: str, issuer: str, event: str, timestamp: str, approved: str = "true") -> str:
    return f"{uid}{issuer}{event}{timestamp}{TRUSTED_DEVICE}{approved}"


def sign_in_with_device(
    *,
    identity: UserIdentity,
    uid: str,
    application: Application,
    event: str,
    timestamp: object,
    public_key: object,
    signature: object,
    reported_ip: str = "",
    reported_location: str = "",
    request: HttpRequest | None = None,
    found: tuple[TrustedDevice, str] | None = None,
) -> DeviceSignIn:
    """Cotter B1: a trusted device signs ``uid+issuer+event+timestamp+TRUSTED_DEVICE+true``;
    on success an approved event and a token set (``auth_method`` TRUSTED_DEVICE).
    ``found``: the device and primary identifier when the caller already read them for
    this ``identity`` (:func:`device_for_sign_in`).

    Lookup, signature check, the event's server signature and the token signing happen
    before the write transaction, which holds only the replay-cache INSERT (single use,
    and the device still active), the event INSERT and the refresh-token INSERT."""
    from .events import build_event_row, insert_event_row

    check_timestamp(timestamp)
    if found is None or found[0].user_id != identity.user_id:
        found = _find_device(identity, public_key, with_identifier=True)
    if found is None:
        raise DeviceNotTrusted()
    device, identifier = found
    encoded = check_device_signature(
        device, login_message(uid, application.api_key_id, event, str(timestamp)), signature
    )
    require_active_user(identity)
    row = build_event_row(
        identity=identity,
        application=application,
        event=event,
        state=AuthEvent.State.APPROVED,
        client_timestamp=str(timestamp),
        reported_ip=reported_ip,
        reported_location=reported_location,
        request=request,
        approving_device=device,
        requesting_device=device,
    )
    refresh_row, tokens = prepare_token_set(
        identity=identity,
        application=application,
        auth_method=TRUSTED_DEVICE,
        identifier=identifier,
        device=device,
    )
    # The tokens go out with this response: the event says so from its INSERT on.
    row.tokens_handed_out_at = refresh_row.created_at
    row.token_family = tokens.family
    prepared = AuthEvent.objects.prepare_insert(row)
    with transaction.atomic():
        burn_message(device, encoded)
        insert_event_row(row, prepared)
        persist_token_set(refresh_row, tokens)
    note_device_use(device)
    return DeviceSignIn(event=row, device=device, tokens=tokens)


def enrol_from_qr(
    *,
    identity: UserIdentity,
    uid: str,
    application: Application,
    timestamp: object,
    public_key: object,
    signature: object,
    new_public_key: object,
    new_algorithm: object,
    name: str = "",
    device_type: str = "",
    reported_ip: str = "",
    reported_location: str = "",
    request: HttpRequest | None = None,
) -> tuple[AuthEvent, TrustedDevice]:
    """Cotter B1 with ``register_new_device``: a trusted device vouches for the key it read
    from the new device's QR code, signing ``...ENROLL_NEW_TRUSTED_DEVICE...true<newkey>``."""
    from .events import new_event_row

    check_timestamp(timestamp)
    if not isinstance(new_public_key, str):
        raise InvalidDeviceKey()
    with transaction.atomic():
        device = find_device(identity, public_key)
        if device is None:
            raise DeviceNotTrusted()
        message = (
            login_message(uid, application.api_key_id, "ENROLL_NEW_TRUSTED_DEVICE", str(timestamp))
            + new_public_key
        )
        verify_device_signature(device, message, signature)
        new_device = enrol_device(
            identity=identity,
            public_key=new_public_key,
            algorithm=new_algorithm,
            name=name,
            device_type=device_type,
            application=application,
            request=request,
            via=device,
        )
        row = new_event_row(
            identity=identity,
            application=application,
            event="ENROLL_NEW_TRUSTED_DEVICE",
            state=AuthEvent.State.APPROVED,
            client_timestamp=str(timestamp),
            reported_ip=reported_ip,
            reported_location=reported_location,
            request=request,
            approving_device=device,
            requesting_device=new_device,
        )
    return row, new_device


def _notify(
    identity: UserIdentity, change: str, device: TrustedDevice, request: HttpRequest | None
) -> None:
    if not app_settings.NOTIFY_DEVICE_CHANGES:
        return
    from ..http import client_ip
    from ..tasks import notify_device_change

    email = identity.identifiers.filter(kind="EMAIL").order_by("-is_primary", "created_at").first()
    if email is None:
        return
    payload: dict[str, Any] = {
        "to": email.value,
        "change": change,
        "device": device.name,
        "device_type": device.device_type,
        "ip": client_ip(request) if request is not None else "",
        "when": timezone.now().isoformat(),
    }
    transaction.on_commit(lambda: notify_device_change.delay(payload))
