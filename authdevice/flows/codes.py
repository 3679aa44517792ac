"""Sign in with an email address or phone number: one-time codes and magic links.

One set of flows for every door (pages, the hosted ``/app`` page, the JSON API):
``start_challenge`` -> the code/link is sent by a Celery task after commit ->
``verify_code`` or ``verify_link`` -> :class:`SignedIn`, which the door turns into a
session, an authorization code or a token set.
"""

from __future__ import annotations

import hashlib
import math
import secrets
import time
import unicodedata
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.core.cache import caches
from django.db import transaction
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from kombu.exceptions import OperationalError

from ..adapter import get_adapter
from ..conf import app_settings
from ..crypto.seal import seal
from ..crypto.secrets import constant_time_equals, random_token, server_hmac_hex, sha256_hex
from ..http import client_ip, user_agent
from ..models import (
    Application,
    AuthEvent,
    AuthorizationCode,
    Challenge,
    Channel,
    Identifier,
    IdentifierDevice,
    RefreshToken,
    UserIdentity,
    fastsql,
)
from . import identities, pkce, ratelimit
from .audit import prepare_event, record_event, save_event
from .errors import FlowError, InvalidIdentifier
from .identities import add_identifier, guess_kind, normalise_identifier
from .tokens import TokenSet, persist_token_set, prepare_token_set, revoke_families

CODE_DIGITS = 6
_METHODS = frozenset(Challenge.Method.values)
_CHANNELS_FOR_KIND = {
    Identifier.Kind.EMAIL: [Channel.EMAIL],
    Identifier.Kind.PHONE: [Channel.SMS, Channel.WHATSAPP],
}


class InvalidCode(FlowError):
    """That code is not valid or has expired. Request a new one."""

    code = "invalid_code"


class ChallengeNotFound(FlowError):
    """This sign-in request is not valid or has expired. Please start again."""

    code = "invalid_challenge"


class ConfirmationRequired(FlowError):
    """This link was opened in another browser: confirm the account to continue."""

    code = "confirmation_required"
    status = 409


class ChannelUnavailable(FlowError):
    """That delivery method is not available."""

    code = "channel_unavailable"


class DeliveryUnavailable(FlowError):
    """We cannot send messages right now. Please try again in a minute."""

    code = "delivery_unavailable"
    status = 503


class SignupClosed(identities.SignupClosed):
    """There is no account for this address."""


class AccountDisabled(FlowError):
    """This account is disabled."""

    code = "account_disabled"
    status = 403


@dataclass(frozen=True)
class StartedChallenge:
    challenge: Challenge
    #: The secret that proves "the same browser/client that asked"; keep it client-side
    #: (the session, or the API response) and present it when verifying.
    binding: str


@dataclass(frozen=True)
class SignedIn:
    identity: UserIdentity
    identifier: Identifier
    device: IdentifierDevice
    challenge: Challenge
    auth_method: str
    created: bool
    event: AuthEvent
    #: Set when the caller asked for tokens (``issue_tokens``), issued in the same
    #: transaction that consumed the code.
    tokens: TokenSet | None = None
    #: Set for a hosted-page sign-in (``hosted``): the authorization code row and the
    #: code, minted in the same transaction that consumed the challenge.
    authorization: tuple[AuthorizationCode, str] | None = None

    @property
    def user(self) -> Any:
        return self.identity.user


@dataclass(frozen=True)
class Granted:
    """A right code for a challenge started with a PKCE ``code_challenge``: nobody is
    signed in yet; ``authorization_code`` (single use, ``expires_in`` seconds) and the
    ``code_verifier`` buy the tokens (:func:`exchange_code_grant`)."""

    challenge: Challenge
    authorization_code: str
    expires_in: int


def available_channels(kind: str) -> list[str]:
    configured = app_settings.channels
    return [c for c in _CHANNELS_FOR_KIND.get(kind, []) if configured.get(c)]


def link_url(token: str) -> str:
    """Absolute magic-link URL, built from AUTHDEVICE_BASE_URL (never from the Host header)."""
    return app_settings.base_url + reverse("authdevice_web:link", args=[token])


def _new_code() -> str:
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


def _code_hash(code: str, challenge: Challenge) -> str:
    # Bound to the challenge and purpose: a code never verifies anything else.
    return server_hmac_hex(f"{challenge.pk}:{challenge.purpose}:{code}", "code")


def _arm(challenge: Challenge, method: str) -> dict[str, str]:
    """Give the challenge a fresh code (and link); return the plaintext to send."""
    code = _new_code()
    link = random_token(32) if method == Challenge.Method.MAGIC_LINK else ""
    challenge.code_hash = _code_hash(code, challenge)
    challenge.link_hash = sha256_hex(link) if link else ""
    if challenge.purpose != LOGIN:  # a django-otp check: the message says "verification"
        return {"code": code, "link": link, "check": "1"}
    return {"code": code, "link": link}


def _enqueue(challenge: Challenge, secrets_: dict[str, str], mode: str | None = None) -> None:
    from ..tasks import BROKER, send_challenge

    sealed = seal(secrets_, f"challenge:{challenge.pk}:{challenge.version}")
    if mode == BROKER:
        send_challenge.publish(challenge.pk, challenge.version, sealed)
    else:
        send_challenge.delay(challenge.pk, challenge.version, sealed)


def _send_after_commit(
    challenge: Challenge,
    secrets_: dict[str, str],
    *,
    mode: str | None = None,
    application: Application | None = None,
) -> None:
    """Enqueue the send when the transaction commits; if the broker is down, kill the
    challenge and tell the caller at once (rollback sends nothing). ``mode`` is what
    ``tasks.send_mode()`` said (None: let ``delay`` decide); with ``INLINE`` the caller
    wrote the send's claim with the challenge and the send runs here after the commit."""
    from ..tasks import INLINE

    def enqueue() -> None:
        if mode == INLINE:
            from ..tasks import send_inline

            send_inline(
                challenge.pk,
                challenge.version,
                challenge.channel,
                challenge.identifier,
                application.name if application is not None else None,
                secrets_,
            )
            return
        try:
            _enqueue(challenge, secrets_, mode)
        except (OperationalError, OSError) as exc:  # broker unreachable
            Challenge.objects.filter(pk=challenge.pk, version=challenge.version).update(
                state=Challenge.State.DEAD
            )
            raise DeliveryUnavailable() from exc

    transaction.on_commit(enqueue, robust=False)


def _check_send_limits(identifier: str, ip: str | None) -> None:
    """Count one send for the client's IP, then for the identifier (both counters in one
    cache round trip on Redis); raise RateLimited at the first over its limit."""
    per_ip, per_identifier = ratelimit.send_limits()
    if ip:
        ratelimit.hit_many(((per_ip, ip), (per_identifier, identifier)))
    else:
        ratelimit.hit(per_identifier, identifier)


def start_challenge(
    *,
    identifier: str,
    kind: str | None = None,
    channel: str | None = None,
    method: str = Challenge.Method.OTP,
    application: Application | None = None,
    request: HttpRequest | None = None,
    purpose: str = "login",
    code_challenge: str = "",
) -> StartedChallenge:
    """Send a code (and a magic link if ``method`` is MAGIC_LINK) to an email or phone.

    With ``code_challenge`` (RFC 7636 S256), a right code answers with a one-use
    authorization code instead of a sign-in (:func:`verify_code_or_grant`).

    Known and unknown identifiers take exactly the same path: nothing here looks up users.
    """
    if not isinstance(identifier, str) or not identifier.strip():
        raise InvalidIdentifier()
    kind = kind or guess_kind(identifier)
    if kind not in _CHANNELS_FOR_KIND:
        raise InvalidIdentifier()
    value = normalise_identifier(kind, identifier)
    channels = available_channels(kind)
    channel = channel or (channels[0] if channels else None)
    if channel not in channels:
        raise ChannelUnavailable()
    if method not in _METHODS:
        raise FlowError(_("Unknown sign-in method."))
    if code_challenge and not pkce.valid_code_challenge(code_challenge):
        raise FlowError(_("code_challenge must be an S256 challenge."))
    ip = client_ip(request) if request is not None else None
    _check_send_limits(value, ip)
    binding = random_token(32)
    now = timezone.now()
    challenge = fastsql.new(
        Challenge,
        application=application,
        kind=kind,
        identifier=value,
        channel=channel,
        purpose=purpose,
        method=method,
        binding_hash=sha256_hex(binding),
        code_challenge=code_challenge,
        ip=ip,
        user_agent=user_agent(request) if request is not None else "",
        created_at=now,
        expires_at=now + timedelta(seconds=app_settings.challenge_lifetime),
    )
    plaintext = _arm(challenge, method)
    from ..tasks import INLINE, send_mode

    mode = send_mode()
    if mode == INLINE:  # this process sends: the claim a worker would take is written now
        challenge.sent_version = challenge.version
    # One statement, atomic on its own: without BEGIN/COMMIT around it SQLite's write lock
    # (which both workers queue on) is held for the INSERT alone. Outside a transaction
    # the row is committed when this returns and the send is enqueued at once; inside the
    # caller's transaction, when that commits (and never if it rolls back).
    Challenge.objects.insert_new(challenge)
    _send_after_commit(challenge, plaintext, mode=mode, application=application)
    return StartedChallenge(challenge=challenge, binding=binding)


def _bound_challenge(
    challenge_id: object, binding: object, *, lock: bool, application: Application | None = None
) -> Challenge:
    """The challenge, if ``binding`` proves the caller started it (and, when given, through
    the same application). Every mismatch looks the same: not found.

    ``lock=False`` reads without a row lock and outside any transaction: the caller then
    relies on the conditional UPDATEs of ``Challenge.objects`` (``consume``,
    ``count_wrong_code``) for single use."""
    try:
        pk = int(challenge_id)  # type: ignore[call-overload]
    except (TypeError, ValueError) as exc:
        raise ChallengeNotFound() from exc
    if lock:
        challenge = Challenge.objects.select_for_update().filter(pk=pk).first()
    else:
        # A raw cursor refuses integers beyond 64 bits (the ORM finds nothing): not found.
        challenge = Challenge.objects.for_verify(pk) if -(2**63) <= pk < 2**63 else None
    if (
        challenge is None
        or not isinstance(binding, str)
        or not constant_time_equals(sha256_hex(binding), challenge.binding_hash)
        or (application is not None and challenge.application_id != application.pk)
    ):
        raise ChallengeNotFound()
    return challenge


def resend_challenge(
    *,
    challenge_id: object,
    binding: object,
    request: HttpRequest | None = None,
    application: Application | None = None,
) -> StartedChallenge:
    """Replace the code (and link) of a pending challenge and send it again."""
    with transaction.atomic():
        challenge = _bound_challenge(challenge_id, binding, lock=True, application=application)
        if challenge.state != Challenge.State.PENDING:
            raise ChallengeNotFound()
        if challenge.resends >= int(app_settings.CODE_MAX_RESENDS):
            raise ratelimit.RateLimited(
                int((challenge.expires_at - timezone.now()).total_seconds()),
                str(_("You have asked for too many codes. Please start again.")),
            )
        ip = client_ip(request) if request is not None else None
        _check_send_limits(challenge.identifier, ip)
        now = timezone.now()
        challenge.version += 1
        challenge.resends += 1
        challenge.attempts = 0  # per-code tries; the per-identifier count is not reset
        challenge.expires_at = now + timedelta(seconds=app_settings.challenge_lifetime)
        plaintext = _arm(challenge, challenge.method)
        challenge.save(
            update_fields=["version", "resends", "attempts", "expires_at", "code_hash", "link_hash"]
        )
        _send_after_commit(challenge, plaintext)
    return StartedChallenge(challenge=challenge, binding=str(binding))


# -- the per-identifier failure count (NIST 800-63B 3.2.2): across codes and resends --


#: The purpose of sign-in challenges; a code or link only ever signs in through a
#: challenge started for it (security.md A05).
LOGIN = "login"
#: The purpose of django-otp's challenges (``IdentifierDevice.generate_challenge``): a code
#: that proves the signed-in user still holds the address, never a sign-in.
OTP_CHECK = "otp"


def _failure_key(identifier: str) -> str:
    return "authdevice:fail:" + hashlib.sha256(identifier.encode()).hexdigest()[:32]


def _wait_key(identifier: str) -> str:
    return "authdevice:failwait:" + hashlib.sha256(identifier.encode()).hexdigest()[:32]


def _failure_state(identifier: str) -> tuple[int, int]:
    """``(wrong codes counted, seconds to wait before the next check)`` for this
    identifier (:func:`_count_failure`); one cache round trip."""
    count_key, wait_key = _failure_key(identifier), _wait_key(identifier)
    try:
        found = caches[app_settings.RATELIMIT_CACHE].get_many([count_key, wait_key])
    except Exception as exc:
        raise ratelimit.RateLimitUnavailable() from exc
    until = found.get(wait_key)
    wait = 0 if until is None else max(0, math.ceil(float(until) - time.time()))
    return int(found.get(count_key) or 0), wait


def _count_failure(identifier: str) -> int:
    """Count one wrong code for ``identifier`` and return the count (kept for
    ``IDENTIFIER_FAILURE_WINDOW`` after the last one). From ``IDENTIFIER_FAILURE_LIMIT``
    on, every wrong code makes the identifier wait before its next check:
    ``IDENTIFIER_FAILURE_DELAY`` seconds, doubling with each further one, at most
    ``IDENTIFIER_FAILURE_WINDOW`` (security.md J02: delays, not a lockout)."""
    cache = caches[app_settings.RATELIMIT_CACHE]
    key = _failure_key(identifier)
    window = int(app_settings.IDENTIFIER_FAILURE_WINDOW)
    try:
        if cache.add(key, 1, timeout=window):
            count = 1
        else:
            count = cache.incr(key)
            cache.touch(key, timeout=window)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=window)
        count = 1
    except Exception as exc:
        raise ratelimit.RateLimitUnavailable() from exc
    limit = int(app_settings.IDENTIFIER_FAILURE_LIMIT)
    if count >= limit:
        base = int(app_settings.IDENTIFIER_FAILURE_DELAY)
        delay = min(base * 2 ** min(count - limit, 20), window)
        try:
            cache.set(_wait_key(identifier), time.time() + delay, timeout=delay)
        except Exception as exc:
            raise ratelimit.RateLimitUnavailable() from exc
    return count


def _clear_failures(identifier: str) -> None:
    try:
        caches[app_settings.RATELIMIT_CACHE].delete_many(
            [_failure_key(identifier), _wait_key(identifier)]
        )
    except Exception:  # noqa: BLE001, S110 - a stale counter only delays the user
        pass


def _typed(code: object) -> str:
    """The code as typed, without spaces and dashes (``123 456``, ``123-456``); digits of
    other scripts' keyboards (full-width U+FF11...) read as ASCII digits."""
    text = str(code or "")[:32]
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text)
    return "".join(ch for ch in text if not ch.isspace() and ch != "-")


def _wrong_code(challenge: Challenge) -> None:
    """Count a wrong code against the challenge (dead after ``CODE_MAX_ATTEMPTS``) and its
    identifier; once the identifier's count reaches the limit, the challenge dies too."""
    Challenge.objects.count_wrong_code(
        challenge.pk, challenge.version, int(app_settings.CODE_MAX_ATTEMPTS)
    )
    if _count_failure(challenge.identifier) >= int(app_settings.IDENTIFIER_FAILURE_LIMIT):
        Challenge.objects.filter(pk=challenge.pk, state=Challenge.State.PENDING).update(
            state=Challenge.State.DEAD
        )


_UNREAD = object()


def _login_event(
    challenge: Challenge,
    user: Any,
    application: Application | None,
    auth_method: str,
    request: HttpRequest | None,
    created: bool = False,
) -> AuthEvent:
    return prepare_event(
        event=AuthEvent.Kind.LOGIN,
        state=AuthEvent.State.APPROVED,
        user=user,
        application=application,
        method=auth_method,
        request=request,
        details={"challenge_id": challenge.pk, "channel": challenge.channel, "new_user": created},
    )


def _sign(
    row: Identifier, application: Application | None, auth_method: str, channel: str
) -> tuple[RefreshToken, TokenSet] | None:
    """The token set of a sign-in of ``row`` to ``application`` (None: no tokens asked),
    signed and ready to persist (:func:`~.tokens.prepare_token_set`)."""
    if application is None:
        return None
    return prepare_token_set(
        identity=row.identity,
        application=application,
        auth_method=auth_method,
        identifier=row.value,
        channel=channel,
    )


def _complete(
    challenge: Challenge,
    auth_method: str,
    request: HttpRequest | None,
    issue_tokens: Application | None = None,
    *,
    application: Application | None = None,
    failures: int | None = None,
    granted: bool = False,
    hosted: pkce.HostedApp | None = None,
) -> SignedIn:
    """The identifier is proven: find or create the user, consume the challenge, audit.

    ``challenge`` was read without a lock: it is consumed by a conditional UPDATE (still
    pending, same code ``version``), which raises :class:`InvalidCode` for every loser.
    Lookups and token signing happen before the transaction, so for a known user it holds
    only that UPDATE and the INSERTs (event, refresh token, the device if missing).
    ``application`` is the challenge's application when the caller already has it;
    ``failures`` the per-identifier failure count the caller read (0: nothing to clear);
    ``granted``: the challenge is ``granted`` (its authorization code is being exchanged),
    not pending, and records the token family it is exchanged for; ``hosted``: mint the
    hosted page's authorization code in the same transaction."""
    now = timezone.now()
    adapter = get_adapter()
    # Read with the challenge when it came from Challenge.objects.for_verify.
    found = getattr(challenge, "sign_in", _UNREAD)
    if found is _UNREAD:
        found = Identifier.objects.for_sign_in(challenge.kind, challenge.identifier)
    row: Identifier | None = None
    device: IdentifierDevice | None = None
    prepared: tuple[RefreshToken, TokenSet] | None = None
    audit_row: AuthEvent | None = None
    if application is None and challenge.application_id is not None:
        application = challenge.application  # the hosted page's flow; outside the lock
    if found is None:
        if not adapter.is_signup_allowed(challenge.kind, challenge.identifier):
            raise SignupClosed()
    else:
        row, device = found
        if not row.identity.user.is_active:
            raise AccountDisabled()
        audit_row = _login_event(challenge, row.identity.user, application, auth_method, request)
        prepared = _sign(row, issue_tokens, auth_method, challenge.channel)
    created = False
    tokens: TokenSet | None = None
    with transaction.atomic():
        if row is None:
            # First sign-in (rare): the ORM path, then the same conditional UPDATE.
            user = adapter.create_user(challenge.kind, challenge.identifier)
            row = add_identifier(user, challenge.kind, challenge.identifier, verified=True)
            created = True
            if not row.identity.user.is_active:
                raise AccountDisabled()
            prepared = _sign(row, issue_tokens, auth_method, challenge.channel)
        if not Challenge.objects.consume(
            challenge.pk,
            challenge.version,
            row.identity_id,
            now,
            granted=granted,
            token_family=prepared[1].family if prepared is not None else None,
        ):
            raise InvalidCode()
        identity = row.identity
        user = identity.user
        if row.verified_at is None:
            row.verified_at = now
            row.save(update_fields=["verified_at"])
        if device is None:
            device, _ = IdentifierDevice.objects.get_or_create(
                identifier=row, defaults={"user": user, "name": row.value[:64], "confirmed": True}
            )
        event = save_event(
            audit_row or _login_event(challenge, user, application, auth_method, request, True)
        )
        if prepared is not None:
            tokens = persist_token_set(*prepared)
        authorization = None
        if hosted is not None:
            authorization = pkce.create_authorization_code(
                application=hosted.application,
                identity=identity,
                identifier=row,
                auth_method=auth_method,
                redirect_url=hosted.redirect_url,
                code_challenge=hosted.code_challenge,
                channel=challenge.channel,
            )
    challenge.state = Challenge.State.VERIFIED
    challenge.verified_at = now
    challenge.identity = identity
    if prepared is not None and granted:
        challenge.token_family = prepared[1].family
    if failures != 0:
        _clear_failures(challenge.identifier)
    return SignedIn(
        identity=identity,
        identifier=row,
        device=device,
        challenge=challenge,
        auth_method=auth_method,
        created=created,
        event=event,
        tokens=tokens,
        authorization=authorization,
    )


def _checked(
    challenge_id: object, binding: object, code: object, application: Application | None
) -> tuple[Challenge, int]:
    """The challenge if ``code`` is its right code, and the per-identifier failure count
    read on the way; a wrong code is counted and raises :class:`InvalidCode`.

    No row lock: at most ``CODE_MAX_ATTEMPTS`` guesses can count, because every wrong one
    is counted by one atomic UPDATE (dead at the limit) and a right one is only accepted
    by the UPDATE that finds the challenge still pending with the same code."""
    challenge = _bound_challenge(challenge_id, binding, lock=False, application=application)
    # The wait first: after the wrong code that started it, "try again in ..." says more
    # than "invalid code" (that code's challenge is dead).
    failures, wait = _failure_state(challenge.identifier)
    if wait:
        raise ratelimit.RateLimited(wait)
    now = timezone.now()
    if (
        challenge.state != Challenge.State.PENDING
        or now >= challenge.expires_at
        or challenge.purpose != LOGIN
    ):
        raise InvalidCode()
    if constant_time_equals(_code_hash(_typed(code), challenge), challenge.code_hash):
        return challenge, failures
    _wrong_code(challenge)
    raise InvalidCode()


def verify_code(
    *,
    challenge_id: object,
    binding: object,
    code: object,
    request: HttpRequest | None = None,
    application: Application | None = None,
    issue_tokens: bool = False,
    hosted: pkce.HostedApp | None = None,
) -> SignedIn:
    """Check a code typed by the person who asked for it (same browser or client) and
    sign them in.

    With ``application``, the challenge must have been started through it; with
    ``issue_tokens`` a token set for that application is issued in the same transaction
    that consumes the code (nothing is half-done if signing fails); with ``hosted``, the
    hosted page's authorization code likewise. A challenge started with a
    ``code_challenge`` is answered only by :func:`verify_code_or_grant`."""
    challenge, failures = _checked(challenge_id, binding, code, application)
    if challenge.code_challenge:  # its client exchanges a grant; never a one-step sign-in
        raise InvalidCode()
    return _complete(
        challenge,
        Challenge.Method.OTP,
        request,
        issue_tokens=application if issue_tokens else None,
        application=application,
        failures=failures,
        hosted=hosted,
    )


def verify_code_or_grant(
    *,
    challenge_id: object,
    binding: object,
    code: object,
    request: HttpRequest | None = None,
    application: Application,
) -> SignedIn | Granted:
    """The native API's code verify: :func:`verify_code`, except that a challenge started
    with a PKCE ``code_challenge`` answers a right code with a :class:`Granted` (one
    conditional UPDATE; no user is looked up, no token signed) and signs in only when the
    client exchanges it (:func:`exchange_code_grant`)."""
    challenge, failures = _checked(challenge_id, binding, code, application)
    if challenge.code_challenge:
        grant = random_token(32)
        if not Challenge.objects.grant(
            challenge.pk, challenge.version, sha256_hex(grant), timezone.now()
        ):
            raise InvalidCode()
        if failures:
            _clear_failures(challenge.identifier)
        return Granted(
            challenge=challenge,
            authorization_code=grant,
            expires_in=app_settings.authorization_code_lifetime,
        )
    return _complete(
        challenge,
        Challenge.Method.OTP,
        request,
        issue_tokens=application,
        application=application,
        failures=failures,
    )


def exchange_code_grant(
    *,
    application: Application,
    challenge_id: object,
    authorization_code: object,
    code_verifier: object,
    request: HttpRequest | None = None,
) -> SignedIn:
    """Exchange the authorization code of a :class:`Granted` and its PKCE verifier for a
    sign-in with tokens: the user is found or created, the challenge consumed, audited
    and the tokens persisted in one transaction (:func:`_complete`).

    Every failure is :class:`~.pkce.InvalidAuthorizationCode` (``invalid_grant``); the
    account's own refusals (signup closed, account disabled) keep their errors. A second
    exchange fails and revokes the tokens the first one issued (RFC 6749 4.1.2)."""
    if not (
        isinstance(authorization_code, str)
        and 0 < len(authorization_code) <= 200
        and authorization_code.isascii()
        and pkce.valid_code_verifier(code_verifier)
    ):
        raise pkce.InvalidAuthorizationCode()
    try:
        pk = int(challenge_id)  # type: ignore[call-overload]
    except (TypeError, ValueError) as exc:
        raise pkce.InvalidAuthorizationCode() from exc
    challenge = Challenge.objects.for_verify(pk) if -(2**63) <= pk < 2**63 else None
    if (
        challenge is None
        or not challenge.grant_hash
        or not constant_time_equals(sha256_hex(authorization_code), challenge.grant_hash)
    ):
        raise pkce.InvalidAuthorizationCode()
    if challenge.state == Challenge.State.GRANTED:
        now = timezone.now()
        lifetime = timedelta(seconds=app_settings.authorization_code_lifetime)
        if (
            challenge.application_id != application.pk
            or challenge.verified_at is None
            or now >= challenge.verified_at + lifetime
            or not constant_time_equals(pkce.s256(str(code_verifier)), challenge.code_challenge)
        ):
            raise pkce.InvalidAuthorizationCode()
        try:
            return _complete(
                challenge,
                Challenge.Method.OTP,
                request,
                issue_tokens=application,
                application=application,
                failures=0,
                granted=True,
            )
        except InvalidCode:
            # Lost the race to a concurrent exchange (or "sign out everywhere"): read
            # what the winner committed.
            challenge = Challenge.objects.for_verify(pk)
    if challenge is not None and challenge.token_family is not None:
        # Replay: revoke what the first exchange issued, then refuse.
        with transaction.atomic():
            revoke_families([challenge.token_family], "code_replay")
            record_event(
                event=AuthEvent.Kind.TOKENS_REVOKED,
                state=AuthEvent.State.REJECTED,
                user_id=challenge.identity.user_id if challenge.identity else None,
                application=application,
                method=Challenge.Method.OTP,
                request=request,
                details={"reason": "authorization code replay", "challenge_id": challenge.pk},
            )
    raise pkce.InvalidAuthorizationCode()


def preview_link(token: object) -> Challenge | None:
    """The pending challenge behind a magic link, or None. Changes nothing (safe GET)."""
    if not isinstance(token, str) or not 20 <= len(token) <= 100:
        return None
    challenge = Challenge.objects.by_link_hash(sha256_hex(token))
    if (
        challenge is None
        or challenge.state != Challenge.State.PENDING
        or timezone.now() >= challenge.expires_at
        or challenge.purpose != LOGIN
    ):
        return None
    return challenge


def link_matches_binding(challenge: Challenge, binding: object) -> bool:
    return isinstance(binding, str) and constant_time_equals(
        sha256_hex(binding), challenge.binding_hash
    )


def verify_link(
    *,
    token: object,
    binding: object = None,
    confirmed: bool = False,
    request: HttpRequest | None = None,
    hosted: pkce.HostedApp | None = None,
) -> SignedIn:
    """Sign in with a magic link (POST only). In a browser other than the one that asked,
    the person must have confirmed the account named on the page (``confirmed``).
    ``hosted``: as for :func:`verify_code`."""
    challenge = preview_link(token)
    if challenge is None:
        raise InvalidCode(_("This link is not valid or has expired. Request a new one."))
    if not link_matches_binding(challenge, binding) and not confirmed:
        raise ConfirmationRequired()
    try:
        # Consumed only if still pending with the same version, i.e. the same link.
        return _complete(challenge, Challenge.Method.MAGIC_LINK, request, hosted=hosted)
    except InvalidCode as exc:
        raise InvalidCode(_("This link is not valid or has expired. Request a new one.")) from exc


def start_check(identifier: Identifier, request: HttpRequest | None = None) -> StartedChallenge:
    """Send a code that proves the signed-in user still holds ``identifier``
    (django-otp's ``generate_challenge``). Its challenge can only be answered through
    :func:`verify_code_for_identifier`, never used to sign in; the send limits apply."""
    return start_challenge(
        identifier=identifier.value, kind=identifier.kind, request=request, purpose=OTP_CHECK
    )


def check_state(value: str) -> tuple[int, int]:
    """``(wrong codes counted, seconds before a code is checked again)`` for ``value``
    (see :func:`_count_failure`)."""
    return _failure_state(value)


def verify_code_for_identifier(identifier: Identifier, token: object) -> bool:
    """django-otp hook: ``token`` against the newest pending challenge that
    :func:`start_check` started for ``identifier``, under the rules of sign-in: the
    identifier's failure delays, at most ``CODE_MAX_ATTEMPTS`` wrong codes per challenge
    (each counted by one atomic UPDATE, dead at the limit), single use (a conditional
    UPDATE). Sign-in challenges never answer here, nor these challenges at sign-in."""
    challenge = (
        Challenge.objects.filter(
            identifier=identifier.value,
            kind=identifier.kind,
            purpose=OTP_CHECK,
            state=Challenge.State.PENDING,
        )
        .order_by("-created_at")
        .first()
    )
    now = timezone.now()
    if challenge is None or now >= challenge.expires_at:
        return False
    failures, wait = _failure_state(challenge.identifier)
    if wait:
        return False
    if not constant_time_equals(_code_hash(_typed(token), challenge), challenge.code_hash):
        _wrong_code(challenge)
        return False
    if not Challenge.objects.consume(challenge.pk, challenge.version, identifier.identity_id, now):
        return False
    if failures:
        _clear_failures(challenge.identifier)
    return True


def mask_identifier(value: str) -> str:
    """``a…@example.com`` / ``+1••••••2671``: enough to recognise, not to harvest."""
    if "@" in value:
        local, _, domain = value.partition("@")
        return f"{local[:1]}…@{domain}"
    return value[:2] + "•" * max(0, len(value) - 6) + value[-4:]
