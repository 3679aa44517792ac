"""The native trusted-device protocol (``/api/v1`` and the pages): stronger than Cotter's.

* Server-issued challenges: ≥128 bits, single use, short-lived, bound to (purpose, user,
  device, event).
* Domain-separated signed messages (:func:`signed_message`): purpose, server origin,
  challenge, event id and decision, so no signature serves another purpose, event or server.
* Login from a non-trusted device returns an event id, a poll secret (only its holder
  learns the outcome and collects the tokens, once) and a number to show; the trusted
  device must type that number back (number matching, NIST SP 800-63B-4 §3.1.3).
* Adding a device by QR: a single-use binding code, then a short comparison code shown on
  both screens that the signed-in side confirms.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone
from kombu.exceptions import OperationalError

from ..conf import app_settings
from ..crypto import devicekeys
from ..crypto.secrets import constant_time_equals, random_token, server_hmac_hex, sha256_hex
from ..http import client_ip, user_agent
from ..models import (
    Application,
    AuthEvent,
    DeviceBinding,
    DeviceChallenge,
    TrustedDevice,
    UserIdentity,
)
from ..signals import auth_event_recorded
from . import notify
from .devices import (
    TRUSTED_DEVICE,
    BadSignature,
    DeviceNotTrusted,
    InvalidDeviceKey,
    enrol_device,
    parse_key,
    require_active_user,
)
from .errors import FlowError
from .events import (
    AlreadyDecided,
    EventExpired,
    EventNotFound,
    collectable,
    create_pending_event,
    effective_state,
)
from .identities import primary_identifier
from .tokens import TokenSet, issue_token_set

State = AuthEvent.State
Purpose = DeviceChallenge.Purpose
PROTOCOL = b"authdevice/v1"


class ChallengeInvalid(FlowError):
    """The challenge is unknown, used, expired or for something else."""

    code = "challenge_used"


class WrongNumber(FlowError):
    """That is not the number shown on the other screen."""

    code = "wrong_number"


class ApprovalUnavailable(FlowError):
    """Sign-in approval is unavailable right now. Please try again in a minute."""

    code = "temporarily_unavailable"
    status = 503


class BindingInvalid(FlowError):
    """This device link is not valid or has expired."""

    code = "invalid_binding"


# -- challenges and messages ---------------------------------------------------------


def signed_message(
    purpose: str, challenge: str, *, event_id: int | str = "", decision: str = "", extra: str = ""
) -> bytes:
    """The exact bytes a device signs in the native protocol (documented in the README):
    ``authdevice/v1 NUL purpose NUL origin NUL challenge NUL event_id NUL decision NUL extra``."""
    parts = [purpose, app_settings.base_url, challenge, str(event_id), decision, extra]
    return PROTOCOL + b"\x00" + b"\x00".join(p.encode("utf-8") for p in parts)


def issue_challenge(
    purpose: str,
    *,
    user: Any = None,
    device: TrustedDevice | None = None,
    event: AuthEvent | None = None,
) -> DeviceChallenge:
    now = timezone.now()
    return DeviceChallenge.objects.create(
        value=random_token(32),
        purpose=purpose,
        user=user,
        device=device,
        event=event,
        created_at=now,
        expires_at=now + timedelta(seconds=int(app_settings.DEVICE_CHALLENGE_LIFETIME)),
    )


def _find_challenge(
    value: object,
    purpose: str,
    *,
    user_id: Any = None,
    device: TrustedDevice | None = None,
    event: AuthEvent | None = None,
) -> DeviceChallenge:
    """The unused, unexpired challenge bound to these (no write: :func:`_burn` spends it)."""
    if not isinstance(value, str) or not 20 <= len(value) <= 64:
        raise ChallengeInvalid()
    row = DeviceChallenge.objects.filter(value=value, purpose=purpose).first()
    if (
        row is None
        or (row.user_id is not None and user_id is not None and row.user_id != user_id)
        or (row.device_id is not None and (device is None or row.device_id != device.pk))
        or (row.event_id is not None and (event is None or row.event_id != event.pk))
        or row.used_at is not None
        or row.expires_at <= timezone.now()
    ):
        raise ChallengeInvalid()
    return row


def _burn(row: DeviceChallenge) -> None:
    """Spend a challenge (conditional UPDATE: of concurrent callers exactly one wins)."""
    won = DeviceChallenge.objects.filter(
        pk=row.pk, used_at__isnull=True, expires_at__gt=timezone.now()
    ).update(used_at=timezone.now())
    if not won:
        raise ChallengeInvalid()


def _consume(
    value: object,
    purpose: str,
    *,
    user_id: Any = None,
    device: TrustedDevice | None = None,
    event: AuthEvent | None = None,
) -> DeviceChallenge:
    """Burn a challenge (conditional UPDATE: exactly one caller wins)."""
    row = _find_challenge(value, purpose, user_id=user_id, device=device, event=event)
    _burn(row)
    return row


def _check_signature(device: TrustedDevice, message: bytes, signature: object) -> None:
    if not device.is_active:
        raise DeviceNotTrusted()
    key = devicekeys.parse_public_key(device.public_key, device.algorithm)
    if not devicekeys.verify(key, message, signature, ec_encoding="raw"):
        raise BadSignature()


def _note_use(device: TrustedDevice) -> None:
    TrustedDevice.objects.filter(pk=device.pk).update(last_used_at=timezone.now())


def _verify(device: TrustedDevice, message: bytes, signature: object) -> None:
    _check_signature(device, message, signature)
    _note_use(device)


def device_by_handle(handle: object) -> TrustedDevice | None:
    """Devices are named publicly by their key fingerprint (not a secret, not a row id)."""
    if not isinstance(handle, str) or len(handle) != 64:
        return None
    return TrustedDevice.objects.select_related("user").filter(fingerprint=handle).first()


# -- enrolment with proof of possession -----------------------------------------------


def enrolment_challenge(identity: UserIdentity) -> DeviceChallenge:
    return issue_challenge(Purpose.ENROL, user=identity.user)


def enrol_with_proof(
    *,
    identity: UserIdentity,
    public_key: object,
    algorithm: object,
    challenge: object,
    signature: object,
    name: str = "",
    device_type: str = "",
    application: Application | None = None,
    request: HttpRequest | None = None,
) -> TrustedDevice:
    """Enrol a key for a signed-in user; the key must sign the enrolment challenge (no
    registering someone else's public key)."""
    key = parse_key(public_key, algorithm)
    with transaction.atomic():
        _consume(challenge, Purpose.ENROL, user_id=identity.user_id)
        message = signed_message(Purpose.ENROL, str(challenge), extra=key.fingerprint)
        if not devicekeys.verify(key, message, signature, ec_encoding="raw"):
            raise BadSignature()
        return enrol_device(
            identity=identity,
            public_key=public_key,
            algorithm=key.algorithm,
            name=name,
            device_type=device_type,
            application=application,
            request=request,
        )


# -- sign in with this device -------------------------------------------------------


def login_challenge(device: TrustedDevice) -> DeviceChallenge:
    """A sign-in challenge for a device (named by its public handle, so anyone may ask:
    rate limited per device to keep the table from being flooded)."""
    from .ratelimit import Limit, hit

    hit(Limit("login-challenge", 30, 60), device.fingerprint)
    return issue_challenge(Purpose.LOGIN, user=device.user, device=device)


@dataclass(frozen=True)
class DeviceLogin:
    event: AuthEvent
    device: TrustedDevice
    identity: UserIdentity
    tokens: TokenSet | None


def device_login(
    *,
    device: TrustedDevice,
    challenge: object,
    signature: object,
    application: Application | None = None,
    request: HttpRequest | None = None,
) -> DeviceLogin:
    """Sign in with a device key: verify its signature over the login challenge; with an
    ``application``, also issue a token set (the pages start a session instead)."""
    from .audit import record_event

    identity = UserIdentity.objects.select_related("user").get(user_id=device.user_id)
    require_active_user(identity)
    with transaction.atomic():
        _consume(challenge, Purpose.LOGIN, user_id=device.user_id, device=device)
        _verify(device, signed_message(Purpose.LOGIN, str(challenge)), signature)
        event = record_event(
            event="LOGIN",
            state=State.APPROVED,
            user=device.user,
            application=application,
            method=TRUSTED_DEVICE,
            request=request,
            details={"device": device.pk, "protocol": "v1"},
        )
        tokens = None
        if application is not None:
            tokens = issue_token_set(
                identity=identity,
                application=application,
                auth_method=TRUSTED_DEVICE,
                device=device,
            )
    return DeviceLogin(event=event, device=device, identity=identity, tokens=tokens)


# -- approval from another device ------------------------------------------------------


@dataclass(frozen=True)
class ApprovalRequest:
    event: AuthEvent
    poll_secret: str
    #: The number to show on the requesting screen ("" when number matching is off).
    match_code: str
    interval: int


def _match_hash(event_id: int, code: str) -> str:
    return server_hmac_hex(f"{event_id}:{code}", "match-code")


def start_approval(
    *, identity: UserIdentity, application: Application | None, request: HttpRequest | None = None
) -> ApprovalRequest:
    """A non-trusted device asks the user's trusted devices to approve its sign-in, for a
    caller that already knows the user (a site's own step-up, say). A door that takes an
    identifier from anybody uses :func:`start_approval_for_identifier` instead, which
    never looks the user up while answering (J03)."""
    poll_secret = random_token(32)
    digits = max(2, min(int(app_settings.MATCH_CODE_LENGTH), 10))
    match_code = (
        f"{secrets.randbelow(10**digits):0{digits}d}" if app_settings.NUMBER_MATCHING else ""
    )
    with transaction.atomic():
        event = create_pending_event(
            identity=identity,
            application=application,  # type: ignore[arg-type]
            event="LOGIN",
            client_timestamp=str(int(timezone.now().timestamp())),
            request=request,
        )
        event.poll_secret_hash = sha256_hex(poll_secret)
        event.match_code_hash = _match_hash(event.pk, match_code) if match_code else ""
        event.poll_interval = int(app_settings.POLL_INTERVAL)
        event.save(update_fields=["poll_secret_hash", "match_code_hash", "poll_interval"])
    return ApprovalRequest(
        event=event, poll_secret=poll_secret, match_code=match_code, interval=event.poll_interval
    )


def start_approval_for_identifier(
    *, identifier: str, application: Application | None, request: HttpRequest | None = None
) -> ApprovalRequest:
    """Start an approval request for whoever owns ``identifier``.

    Known and unknown identifiers take exactly the same path, as a code request does
    (security.md J03): one rate-limit hit, one INSERT of a pending request that names no
    user yet, and one task enqueued when it commits. Nothing here looks up users, so the
    status, body, statements and time of the answer are the same for an address with an
    account, one without, and one whose owner has no trusted device. The task
    (:func:`resolve_approval`) finds the owner and hands the request to their devices;
    for anyone else the request stays what the requester saw: pending, until it expires.
    Polling it is the same row read and the same pacing either way."""
    from .errors import InvalidIdentifier
    from .identities import guess_kind, normalise_identifier
    from .ratelimit import Limit, hit

    lifetime = int(app_settings.PENDING_EVENT_LIFETIME)
    try:  # every spelling of one address or number counts as that one
        kind = guess_kind(identifier)
        key = normalise_identifier(kind, identifier)
    except InvalidIdentifier:
        kind, key = "", identifier.strip().lower()[:320]
    # The same budget for every identifier, as a real user's own limit
    # (MAX_OUTSTANDING_EVENTS pending) would give: a 429 never tells who has an account.
    hit(Limit("approval-id", int(app_settings.MAX_OUTSTANDING_EVENTS), lifetime), key)
    poll_secret = random_token(32)
    digits = max(2, min(int(app_settings.MATCH_CODE_LENGTH), 10))
    match_code = (
        f"{secrets.randbelow(10**digits):0{digits}d}" if app_settings.NUMBER_MATCHING else ""
    )
    now = timezone.now()
    event = AuthEvent(
        application=application,
        event="LOGIN",
        method=TRUSTED_DEVICE,
        state=State.PENDING,
        ip=client_ip(request) if request is not None else None,
        user_agent=user_agent(request) if request is not None else "",
        details={"identifier": key, "kind": kind},
        poll_secret_hash=sha256_hex(poll_secret),
        poll_interval=int(app_settings.POLL_INTERVAL),
        created_at=now,
        expires_at=now + timedelta(seconds=lifetime),
    )
    event.match_code_hash = _match_hash(event.pk, match_code) if match_code else ""
    # One statement, atomic on its own (as a code request's INSERT); inside a caller's
    # transaction the task is enqueued when that commits, and never if it rolls back.
    AuthEvent.objects.insert(event)
    transaction.on_commit(lambda: _enqueue_resolution(event.pk), robust=False)
    return ApprovalRequest(
        event=event, poll_secret=poll_secret, match_code=match_code, interval=event.poll_interval
    )


def _enqueue_resolution(event_id: int) -> None:
    from ..tasks import resolve_approval_request

    try:
        resolve_approval_request.delay(event_id)
    except (OperationalError, OSError) as exc:  # broker unreachable: say so, at once
        AuthEvent.objects.filter(pk=event_id, state=State.PENDING, user__isnull=True).update(
            state=State.EXPIRED, decided_at=timezone.now()
        )
        raise ApprovalUnavailable() from exc


#: Why a request was not handed to any device (kept in the row's ``details``, for staff).
UNRESOLVED_UNKNOWN = "unknown_identifier"
UNRESOLVED_NO_DEVICE = "no_trusted_device"
UNRESOLVED_INACTIVE = "inactive_user"
UNRESOLVED_LIMITED = "rate_limited"


def resolve_approval(event_id: int) -> str:
    """The task's work (idempotent, safe late): hand a pending request that names no user
    yet to the owner of its identifier, if they have an active trusted device and are
    within the push-bombing limits of :func:`create_pending_event` (outstanding requests,
    requests since the last successful sign-in). Returns what happened: ``resolved``, or
    why not (the row then stays an unanswerable request that expires; the requester
    cannot tell the difference). The server timestamp and signature a device approves
    are made here, with the owner's identity, as for every pending event."""
    from .events import RateLimited
    from .identities import find_identity

    event = AuthEvent.objects.filter(pk=event_id, user__isnull=True).first()
    if event is None or event.state != State.PENDING or effective_state(event) != State.PENDING:
        return "gone"
    details = event.details if isinstance(event.details, dict) else {}
    key = str(details.get("identifier", ""))
    identity = find_identity(key, str(details.get("kind") or "") or None) if key else None
    reason = ""
    if identity is None:
        reason = UNRESOLVED_UNKNOWN
    elif not identity.user.is_active:
        reason = UNRESOLVED_INACTIVE
    elif not TrustedDevice.objects.active().filter(user_id=identity.user_id).exists():
        reason = UNRESOLVED_NO_DEVICE
    if identity is not None and not reason:
        try:
            with transaction.atomic():
                row = create_pending_event(
                    identity=identity,
                    application=event.application,
                    event="LOGIN",
                    client_timestamp=str(int(timezone.now().timestamp())),
                    build_only=True,
                )
                resolved = AuthEvent.objects.filter(
                    pk=event.pk, user__isnull=True, state=State.PENDING
                ).update(
                    user_id=identity.user_id,
                    client_timestamp=row.client_timestamp,
                    signature=row.signature,
                )
        except RateLimited:
            reason = UNRESOLVED_LIMITED
        else:
            if not resolved:
                return "gone"
            event.user_id = identity.user_id
            event.client_timestamp, event.signature = row.client_timestamp, row.signature
            auth_event_recorded.send(sender=AuthEvent, event=event)
            return "resolved"
    if reason == UNRESOLVED_UNKNOWN:
        # Nobody's address: the audit row keeps only enough to recognise a pattern, not
        # the address someone typed (audit rows outlive the nightly purge).
        from .codes import mask_identifier

        details = {**details, "identifier": mask_identifier(key)}
    AuthEvent.objects.filter(pk=event.pk, user__isnull=True).update(
        details={**details, "unresolved": reason}
    )
    return reason


def pending_for(identity: UserIdentity) -> list[AuthEvent]:
    """Unexpired native-protocol requests waiting for this user's approval (newest first)."""
    return list(
        AuthEvent.objects.select_related("application")
        .filter(
            user_id=identity.user_id,
            state=State.PENDING,
            expires_at__gt=timezone.now(),
        )
        .exclude(poll_secret_hash="")
        .order_by("-created_at")[:20]
    )


def approval_challenge(device: TrustedDevice, event: AuthEvent) -> DeviceChallenge:
    if event.user_id != device.user_id:
        raise EventNotFound()
    return issue_challenge(Purpose.APPROVE, user=device.user, device=device, event=event)


def decide(
    *,
    event_id: object,
    device: TrustedDevice,
    challenge: object,
    signature: object,
    approve: bool,
    match_code: object = None,
    request: HttpRequest | None = None,
) -> AuthEvent:
    """Approve or reject with a signature over (approve, origin, challenge, event, decision);
    an approval must carry the number from the requesting screen. Three wrong numbers
    cancel the request."""
    try:
        pk = int(event_id)  # type: ignore[call-overload]
    except (TypeError, ValueError) as exc:
        raise EventNotFound() from exc
    decision = "approve" if approve else "reject"
    # Read and verify before the write transaction (the approval's latency and the write
    # lock's hold time): the event's owner, secret and number are fixed at creation, and
    # what can change meanwhile is re-checked by the conditional UPDATEs below.
    event = _load_event(pk, with_identity=False) if 0 < pk < 2**63 else None
    if event is None or event.user_id != device.user_id or not event.poll_secret_hash:
        raise EventNotFound()
    state = effective_state(event)
    if state == State.EXPIRED:
        raise EventExpired()
    if state != State.PENDING:
        raise AlreadyDecided()
    row = _find_challenge(
        challenge, Purpose.APPROVE, user_id=device.user_id, device=device, event=event
    )
    _check_signature(
        device,
        signed_message(Purpose.APPROVE, str(challenge), event_id=event.pk, decision=decision),
        signature,
    )
    wrong = False
    if approve and event.match_code_hash:
        typed = str(match_code or "").strip()[:16]
        wrong = not constant_time_equals(_match_hash(event.pk, typed), event.match_code_hash)
    with transaction.atomic():
        _burn(row)  # single use: of concurrent uses of the challenge exactly one gets here
        _note_use(device)
        if wrong:
            # Counting attempts is a read-modify-write: lock the row, re-check it is pending.
            event = AuthEvent.objects.select_for_update(of=("self",)).get(pk=pk)
            state = effective_state(event)
            if state == State.EXPIRED:
                raise EventExpired()
            if state != State.PENDING:
                raise AlreadyDecided()
            event.match_attempts += 1
            fields = ["match_attempts"]
            if event.match_attempts >= int(app_settings.MATCH_MAX_ATTEMPTS):
                event.state = State.REJECTED
                event.decided_at = timezone.now()
                event.details = {**event.details, "reason": "number_mismatch"}
                fields += ["state", "decided_at", "details"]
                notify.announce(event.pk)
            event.save(update_fields=fields)
        else:
            target = State.APPROVED if approve else State.REJECTED
            now = timezone.now()
            # Of concurrent decisions (approve vs reject, double approve) exactly one wins.
            won = AuthEvent.objects.filter(
                pk=event.pk, state=State.PENDING, expires_at__gt=now
            ).update(state=target, decided_at=now, approving_device=device)
            if not won:
                raise AlreadyDecided()
            # What the UPDATE wrote (no re-read; QuerySet.update leaves updated_at alone).
            event.state = target
            event.decided_at = now
            event.approving_device = device
            auth_event_recorded.send(sender=AuthEvent, event=event)
            notify.announce(event.pk)
            if not approve:
                _security_notice(event, request)
    if wrong:
        raise WrongNumber()
    return event


def _security_notice(event: AuthEvent, request: HttpRequest | None) -> None:
    """ "This wasn't me": tell the user by email that a sign-in attempt was refused."""
    from ..tasks import notify_device_change

    identity = UserIdentity.objects.filter(user_id=event.user_id).first()
    email = identity and identity.identifiers.filter(kind="EMAIL").order_by("-is_primary").first()
    if not email:
        return
    payload = {
        "to": email.value,
        "change": "refused",
        "device": event.user_agent[:100],
        "device_type": "",
        "ip": event.ip or "",
        "when": timezone.now().isoformat(),
    }
    transaction.on_commit(lambda: notify_device_change.delay(payload))


# -- the requester's side --------------------------------------------------------------


@dataclass(frozen=True)
class PollResult:
    #: RFC 8628: authorization_pending | slow_down | access_denied | expired_token | approved
    status: str
    interval: int
    tokens: TokenSet | None = None
    event: AuthEvent | None = None
    #: The user's primary identifier, when ``tokens`` were handed out (for the user object).
    identifier: str | None = None


def _load_event(pk: int, *, with_identity: bool) -> AuthEvent | None:
    """The event row by id in one hand-written SELECT (the waiters' re-check runs this on
    every wake-up), with its user and identity attached when asked."""
    return AuthEvent.objects.by_id(pk, with_identity=with_identity)


def _requester_event(
    event_id: object, poll_secret: object, *, with_identity: bool = False
) -> AuthEvent:
    try:
        pk = int(event_id)  # type: ignore[call-overload]
    except (TypeError, ValueError) as exc:
        raise EventNotFound() from exc
    event = _load_event(pk, with_identity=with_identity) if 0 < pk < 2**63 else None
    if (
        event is None
        or not event.poll_secret_hash
        or not isinstance(poll_secret, str)
        or not constant_time_equals(sha256_hex(poll_secret), event.poll_secret_hash)
    ):
        raise EventNotFound()
    return event


def status_of(event: AuthEvent) -> str:
    state = effective_state(event)
    if (
        state == State.APPROVED
        and event.tokens_handed_out_at is None
        and event.poll_secret_hash
        and not collectable(event)
    ):
        return "expired_token"  # approved, but nobody came for it in time
    return {
        State.PENDING: "authorization_pending",
        State.APPROVED: "approved",
        State.REJECTED: "access_denied",
        State.EXPIRED: "expired_token",
    }[state]


def peek(event_id: object, poll_secret: object) -> AuthEvent:
    """The requester's event, for waiting (no rate accounting, no token hand-out)."""
    return _requester_event(event_id, poll_secret)


class WrongApplication(FlowError):
    """This request was started with another API key."""

    code = "invalid_client"
    status = 401


def poll(
    event_id: object,
    poll_secret: object,
    *,
    collect: bool = True,
    enforce_interval: bool = True,
    application: Application | None = None,
) -> PollResult:
    """The requester asks for the outcome. Polling faster than ``interval`` answers
    ``slow_down`` (+5 s). Once approved, the first poll (``collect``) gets the tokens if
    the request came through an application; later polls get ``approved`` only.

    With ``application``, an approved request started through another application is
    refused (checked only once approved: a request for an identifier nobody owns is never
    approved, so this tells an outsider nothing about which identifiers exist)."""

    # Without the user: a pending request reads the same row, whether or not anybody owns
    # its identifier (J03); the user and identity are loaded for the hand-out only.
    event = _requester_event(event_id, poll_secret)
    if (
        application is not None
        and event.application_id is not None
        and event.application_id != application.pk
        and status_of(event) == "approved"
    ):
        raise WrongApplication()
    now = timezone.now()
    status = status_of(event)
    interval = event.poll_interval or int(app_settings.POLL_INTERVAL)
    if status == "authorization_pending" and enforce_interval:
        too_soon = event.last_polled_at is not None and (now - event.last_polled_at) < timedelta(
            seconds=interval
        )
        if too_soon:
            interval += 5
            AuthEvent.objects.filter(pk=event.pk).update(poll_interval=interval, last_polled_at=now)
            return PollResult("slow_down", interval, event=event)
        AuthEvent.objects.filter(pk=event.pk).update(last_polled_at=now)
    if (
        status == "approved"
        and collect
        and event.application_id is not None
        and event.tokens_handed_out_at is None
    ):
        from .events import hand_out_tokens

        event = _load_event(event.pk, with_identity=True) or event
        if application is not None and event.application_id == application.pk:
            event.application = application  # the caller's, already loaded
        identifier = primary_identifier(event.user.authdevice_identity)
        tokens = hand_out_tokens(event, identifier=identifier)
        if tokens is not None:
            return PollResult(status, interval, tokens=tokens, event=event, identifier=identifier)
    return PollResult(status, interval, event=event)


def claim_session(event: AuthEvent) -> bool:
    """For the pages: the approved event signs the waiting browser in, once, in time."""
    if effective_state(event) != State.APPROVED or not collectable(event):
        return False
    return bool(
        AuthEvent.objects.filter(
            pk=event.pk, state=State.APPROVED, tokens_handed_out_at__isnull=True
        ).update(tokens_handed_out_at=timezone.now())
    )


# -- adding a device by QR code ----------------------------------------------------------


@dataclass(frozen=True)
class StartedBinding:
    binding: DeviceBinding
    code: str


def start_binding(identity: UserIdentity) -> StartedBinding:
    """A signed-in user starts adding a device: a ≥112-bit single-use code for the QR."""
    code = random_token(18)  # 144 bits
    now = timezone.now()
    lifetime = max(30, min(int(app_settings.BINDING_LIFETIME), 600))
    binding = DeviceBinding.objects.create(
        code_hash=sha256_hex(code),
        user=identity.user,
        created_at=now,
        expires_at=now + timedelta(seconds=lifetime),
    )
    return StartedBinding(binding=binding, code=code)


def comparison_code(binding: DeviceBinding, fingerprint: str) -> str:
    """6 digits both screens show, derived from the binding and the new key."""
    digest = hashlib.sha256(f"{binding.pk}:{binding.code_hash}:{fingerprint}".encode()).digest()
    return f"{int.from_bytes(digest[:8], 'big') % 1_000_000:06d}"


def binding_of(user: Any, pk: int) -> DeviceBinding | None:
    """The user's binding with this id (its new device attached), or None."""
    return DeviceBinding.objects.select_related("device").filter(pk=pk, user=user).first()


def preview_binding(code: object) -> DeviceBinding | None:
    if not isinstance(code, str) or not 20 <= len(code) <= 64:
        return None
    binding = DeviceBinding.objects.filter(code_hash=sha256_hex(code)).first()
    if (
        binding is None
        or binding.redeemed_at is not None
        or binding.cancelled_at is not None
        or timezone.now() >= binding.expires_at
    ):
        return None
    return binding


def redeem_binding(
    *,
    code: object,
    public_key: object,
    algorithm: object,
    signature: object,
    name: str = "",
    device_type: str = "",
    request: HttpRequest | None = None,
) -> tuple[DeviceBinding, TrustedDevice, str]:
    """The new device presents the code and its key (signing the code as proof). The device
    is created unconfirmed: it cannot sign in until the initiating side confirms."""
    binding = preview_binding(code)
    if binding is None:
        raise BindingInvalid()
    key = parse_key(public_key, algorithm)
    message = signed_message(Purpose.BIND, str(code), extra=key.fingerprint)
    if not devicekeys.verify(key, message, signature, ec_encoding="raw"):
        raise BadSignature()
    with transaction.atomic():
        won = DeviceBinding.objects.filter(
            pk=binding.pk,
            redeemed_at__isnull=True,
            cancelled_at__isnull=True,
            expires_at__gt=timezone.now(),
        ).update(redeemed_at=timezone.now())
        if not won:
            raise BindingInvalid()
        try:
            with transaction.atomic():
                device = TrustedDevice.objects.create(
                    user_id=binding.user_id,
                    name=(name or device_type or "New device")[:64],
                    confirmed=False,
                    public_key=key.normalized,
                    fingerprint=key.fingerprint,
                    algorithm=key.algorithm,
                    device_type=str(device_type)[:100],
                )
        except IntegrityError as exc:
            raise InvalidDeviceKey("this key is already enrolled") from exc
        compare = comparison_code(binding, key.fingerprint)
        DeviceBinding.objects.filter(pk=binding.pk).update(
            device=device, comparison_hash=sha256_hex(compare)
        )
    binding.refresh_from_db()
    return binding, device, compare


def confirm_binding(
    *,
    binding_id: object,
    identity: UserIdentity,
    comparison: object,
    request: HttpRequest | None = None,
) -> TrustedDevice:
    """The signed-in side confirms after comparing the short code: the device becomes
    active (and the user is notified)."""
    from .audit import record_event
    from .devices import _notify

    try:
        pk = int(binding_id)  # type: ignore[call-overload]
    except (TypeError, ValueError) as exc:
        raise BindingInvalid() from exc
    with transaction.atomic():
        binding = (
            DeviceBinding.objects.select_for_update(of=("self",))
            .select_related("device")
            .filter(pk=pk, user_id=identity.user_id)
            .first()
        )
        if (
            binding is None
            or binding.device is None
            or binding.confirmed_at is not None
            or binding.cancelled_at is not None
            or not isinstance(comparison, str)
            or not constant_time_equals(sha256_hex(comparison.strip()), binding.comparison_hash)
        ):
            raise BindingInvalid()
        if timezone.now() >= binding.expires_at + timedelta(seconds=300):
            raise BindingInvalid()
        binding.confirmed_at = timezone.now()
        binding.save(update_fields=["confirmed_at"])
        device = binding.device
        device.confirmed = True
        device.save(update_fields=["confirmed"])
        record_event(
            event=AuthEvent.Kind.ENROLL_NEW_TRUSTED_DEVICE,
            state=State.APPROVED,
            user=identity.user,
            method=TRUSTED_DEVICE,
            request=request,
            details={"device": device.pk, "binding": binding.pk},
        )
        _notify(identity, "added", device, request)
    return device


def cancel_binding(*, binding_id: object, identity: UserIdentity) -> None:
    """Refuse a redeemed binding (the codes did not match): its device is deleted."""
    try:
        pk = int(binding_id)  # type: ignore[call-overload]
    except (TypeError, ValueError) as exc:
        raise BindingInvalid() from exc
    with transaction.atomic():
        binding = DeviceBinding.objects.filter(
            pk=pk, user_id=identity.user_id, confirmed_at__isnull=True, cancelled_at__isnull=True
        ).first()
        if binding is None:
            raise BindingInvalid()
        # Keep the binding (the record of what was refused); drop the unconfirmed device.
        DeviceBinding.objects.filter(pk=pk).update(cancelled_at=timezone.now(), device=None)
        if binding.device_id:
            TrustedDevice.objects.filter(pk=binding.device_id, confirmed=False).delete()
