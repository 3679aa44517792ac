"""Token sets: issue, refresh (rotation with reuse detection), revoke, verify."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.dispatch import receiver
from django.http import HttpRequest
from django.utils import timezone
from django.utils.module_loading import import_string

from ..adapter import get_adapter
from ..conf import app_settings
from ..crypto import jwt as jwtcrypto
from ..crypto.keyprovider import CachingKeyProvider
from ..crypto.secrets import constant_time_equals, random_token, sha256_hex
from ..models import (
    Application,
    AuthEvent,
    AuthorizationCode,
    Challenge,
    DeviceBinding,
    Identifier,
    RefreshToken,
    UserIdentity,
    fastsql,
)
from ..signals import (
    auth_event_recorded,
    refresh_token_reused,
    tokens_issued,
    tokens_revoked,
)
from .applications import accepted_audiences, get_application
from .audit import record_event
from .errors import InvalidGrant, InvalidToken
from .identities import primary_identifier
from .keys import keyring

ACCESS_TOKEN_TYPE = "client_access_token"
ID_TOKEN_TYPE = "client_id_token"
# RFC 8176 values for the ``amr`` claim, per Cotter auth method.
AMR = {
    "OTP": ["otp"],
    "MAGIC_LINK": ["otp"],
    "TRUSTED_DEVICE": ["pop", "hwk"],
    "WEBAUTHN": ["hwk", "user"],
    "SOCIAL_LOGIN": ["fed"],
    "PIN": ["pin"],
    "BIOMETRIC": ["user"],
    "OPERATOR": ["mca"],
}
#: ``amr`` values naming the channel a code or link went over (security.md A11): an email
#: code is not an out-of-band authenticator (NIST 800-63B 5.1.3.1), so a relying app must
#: be able to tell it from a phone's. ``sms`` is RFC 8176's; the others are private values
#: (RFC 8176 section 2 allows them).
CHANNEL_AMR = {"EMAIL": "email", "SMS": "sms", "WHATSAPP": "whatsapp"}
MAX_REFRESH_TOKEN_LENGTH = 200


def amr_for(auth_method: str, channel: str = "") -> list[str]:
    """The ``amr`` claim of a sign-in by ``auth_method`` (Cotter's values) whose code or
    link went over ``channel`` (empty for other methods)."""
    values = list(AMR.get(auth_method, []))
    extra = CHANNEL_AMR.get(channel)
    if extra is not None and extra not in values:
        values.append(extra)
    return values


@dataclass(frozen=True)
class TokenSet:
    access_token: str
    id_token: str
    refresh_token: str
    expires_in: int
    auth_method: str
    token_type: str = "Bearer"
    #: The refresh-token family (the ``sid`` claim); not part of the wire format.
    family: uuid.UUID | None = None

    def as_cotter(self) -> dict[str, Any]:
        """Cotter's OAuthToken object."""
        return {
            "access_token": self.access_token,
            "id_token": self.id_token,
            "refresh_token": self.refresh_token,
            "expires_in": self.expires_in,
            "token_type": self.token_type,
            "auth_method": self.auth_method,
        }


def _sign_pair(
    *,
    identity: UserIdentity,
    application: Application,
    auth_method: str,
    auth_time: datetime,
    identifier: str,
    scope: str,
    session: uuid.UUID,
    now: datetime,
    channel: str = "",
) -> tuple[str, str, int]:
    kid, private_key = keyring.signer()
    iat = int(now.timestamp())
    access_lifetime = application.access_token_lifetime or int(app_settings.ACCESS_TOKEN_LIFETIME)
    common = {
        "iss": app_settings.issuer,
        "aud": application.api_key_id,
        "sub": str(identity.public_id),
        "iat": iat,
        "nbf": iat,
        "client_user_id": identity.client_user_id,
        "identifier": identifier,
        "authentication_method": auth_method,
        "amr": amr_for(auth_method, channel),
    }
    adapter = get_adapter()
    access_claims = {
        **adapter.extra_access_token_claims(
            identity=identity, application=application, auth_method=auth_method
        ),
        **common,
        "exp": iat + access_lifetime,
        "jti": str(uuid.uuid4()),
        "auth_time": int(auth_time.timestamp()),
        "type": ACCESS_TOKEN_TYPE,
        "scope": scope,
        "sid": str(session),
    }
    id_claims = {
        **adapter.extra_id_token_claims(
            identity=identity, application=application, auth_method=auth_method
        ),
        **common,
        "exp": iat + int(app_settings.ID_TOKEN_LIFETIME),
        "jti": str(uuid.uuid4()),
        # Cotter's TypeScript and Dart SDKs type auth_time as a string in ID tokens.
        "auth_time": str(int(auth_time.timestamp())),
        "type": ID_TOKEN_TYPE,
    }
    access = jwtcrypto.sign(access_claims, private_key, kid, jwtcrypto.ACCESS_TOKEN_TYP)
    id_token = jwtcrypto.sign(id_claims, private_key, kid, jwtcrypto.ID_TOKEN_TYP)
    return access, id_token, access_lifetime


def _prepare_token_set(
    *,
    identity: UserIdentity,
    application: Application,
    auth_method: str,
    identifier: str | None,
    auth_time: datetime | None,
    scope: str,
    device: Any,
    parent: RefreshToken | None,
    channel: str = "",
) -> tuple[RefreshToken, TokenSet]:
    """Sign the JWTs and build the (unsaved) refresh-token row: all the work that needs no
    database lock. The row's random id is known before it is inserted."""
    now = timezone.now()
    if parent is not None:
        family, family_expires_at = parent.family, parent.family_expires_at
        auth_time, channel = parent.auth_time, parent.channel
    else:
        family = uuid.uuid4()
        family_expires_at = now + timedelta(seconds=app_settings.REFRESH_TOKEN_ABSOLUTE_LIFETIME)
        auth_time = auth_time or now
    device_id = parent.device_id if parent is not None else getattr(device, "pk", None)
    if identifier is None:
        identifier = primary_identifier(identity)
    access, id_token, expires_in = _sign_pair(
        identity=identity,
        application=application,
        auth_method=auth_method,
        auth_time=auth_time,
        identifier=identifier,
        scope=scope,
        session=family,
        now=now,
        channel=channel,
    )
    secret = random_token(32)
    row = fastsql.new(
        RefreshToken,
        secret_hash=sha256_hex(secret),
        family=family,
        parent=parent,
        application=application,
        identity=identity,
        device_id=device_id,
        auth_method=auth_method,
        auth_time=auth_time,
        identifier=identifier,
        channel=channel,
        scope=scope,
        created_at=now,
        family_expires_at=family_expires_at,
    )
    # Convert the row's values now, so that the write lock is held only to execute them.
    row._prepared_insert = fastsql.prepare_insert(row)  # type: ignore[attr-defined]
    tokens = TokenSet(
        access_token=access,
        id_token=id_token,
        refresh_token=f"{row.pk}:{secret}",
        expires_in=expires_in,
        auth_method=auth_method,
        family=family,
    )
    return row, tokens


def _persist(row: RefreshToken, tokens: TokenSet) -> TokenSet:
    fastsql.run_insert(row, getattr(row, "_prepared_insert", None))
    tokens_issued.send(
        sender=RefreshToken,
        identity=row.identity,
        application=row.application,
        refresh_token=row,
        auth_method=row.auth_method,
    )
    return tokens


def prepare_token_set(
    *,
    identity: UserIdentity,
    application: Application,
    auth_method: str,
    identifier: str | None = None,
    device: Any = None,
    scope: str = "access",
    channel: str = "",
) -> tuple[RefreshToken, TokenSet]:
    """Sign a new sign-in's token set and build its refresh-token row without touching the
    database: callers do this before their write transaction and
    :func:`persist_token_set` inside it, so the lock is held for the INSERT alone.
    ``channel``: where the sign-in's code or link went (:func:`amr_for`)."""
    return _prepare_token_set(
        identity=identity,
        application=application,
        auth_method=auth_method,
        identifier=identifier,
        auth_time=None,
        scope=scope,
        device=device,
        parent=None,
        channel=channel,
    )


def persist_token_set(row: RefreshToken, tokens: TokenSet) -> TokenSet:
    """INSERT the refresh-token row of :func:`prepare_token_set` (inside the caller's
    transaction) and announce the token set."""
    return _persist(row, tokens)


def issue_token_set(
    *,
    identity: UserIdentity,
    application: Application,
    auth_method: str,
    identifier: str | None = None,
    auth_time: datetime | None = None,
    scope: str = "access",
    device: Any = None,
    channel: str = "",
) -> TokenSet:
    """Issue access, ID and refresh tokens for a user signed in to an application.

    One INSERT (the refresh-token row). The caller records the sign-in ``AuthEvent``.
    """
    row, tokens = _prepare_token_set(
        identity=identity,
        application=application,
        auth_method=auth_method,
        identifier=identifier,
        auth_time=auth_time,
        scope=scope,
        device=device,
        parent=None,
        channel=channel,
    )
    return _persist(row, tokens)


def _parse_refresh_token(raw: object) -> tuple[int, str] | None:
    if not isinstance(raw, str) or len(raw) > MAX_REFRESH_TOKEN_LENGTH:
        return None
    pk, sep, secret = raw.partition(":")
    if not sep or not secret or not pk.isdigit() or not raw.isascii() or len(pk) > 16:
        return None  # ours are ASCII; a lone surrogate in the secret cannot be hashed
    return int(pk), secret


def revoke_families(families: list[uuid.UUID], reason: str) -> int:
    """Revoke every token of these families; returns how many were revoked.

    Two passes: on PostgreSQL the first UPDATE waits for a refresh that spent one of
    their tokens concurrently, and the child that refresh inserted is invisible to that
    statement; the second revokes it. A refresh that comes later finds its token
    revoked (``spend`` requires ``revoked_at IS NULL``)."""
    now = timezone.now()
    count = 0
    for _pass in range(2):
        count += RefreshToken.objects.filter(family__in=families, revoked_at__isnull=True).update(
            revoked_at=now, revoke_reason=reason[:40]
        )
    tokens_revoked.send(sender=RefreshToken, families=families, reason=reason)
    return count


def refresh_token_set(
    raw_token: object, *, api_key_id: str, request: HttpRequest | None = None
) -> TokenSet:
    """Rotate a refresh token: the presented token is spent, a child is issued.

    Presenting a spent token again (theft, or a lost race) revokes its whole family.
    Everything but the conditional UPDATE and the INSERT happens before the write
    transaction (lookup, checks, signing), so the write lock is held for two statements.
    """
    parsed = _parse_refresh_token(raw_token)
    if parsed is None:
        raise InvalidGrant()
    pk, secret = parsed
    application = get_application(api_key_id)
    row = RefreshToken.objects.for_refresh(pk)
    if (
        row is None
        or not constant_time_equals(sha256_hex(secret), row.secret_hash)
        or application is None
        or row.application_id != application.pk
        or row.revoked_at is not None
    ):
        raise InvalidGrant()
    row.application = application
    if row.used_at is None:
        now = timezone.now()
        idle_deadline = row.created_at + timedelta(seconds=app_settings.REFRESH_TOKEN_IDLE_LIFETIME)
        if now >= row.family_expires_at or now >= idle_deadline:
            raise InvalidGrant()
        if not row.user_is_active:  # type: ignore[attr-defined]
            raise InvalidGrant()
        child, tokens = _prepare_token_set(
            identity=row.identity,
            application=application,
            auth_method=row.auth_method,
            identifier=row.identifier,
            auth_time=None,
            scope=row.scope,
            device=None,
            parent=row,
        )
        with transaction.atomic():
            # Conditional UPDATE: of concurrent refreshes of one token exactly one wins.
            if RefreshToken.objects.spend(row.pk, now):
                return _persist(child, tokens)
    with transaction.atomic():
        revoke_families([row.family], "reuse")
        record_event(
            event=AuthEvent.Kind.REFRESH_TOKEN_REUSED,
            state=AuthEvent.State.REJECTED,
            user_id=row.identity.user_id,
            application=application,
            method=row.auth_method,
            request=request,
            details={"family": str(row.family), "refresh_token_id": row.pk},
        )
        refresh_token_reused.send(sender=RefreshToken, refresh_token=row, family=row.family)
    raise InvalidGrant()


def revoke_token(raw_token: object, *, api_key_id: str, request: HttpRequest | None = None) -> bool:
    """RFC 7009 revocation of a refresh token or an access token (revokes its family).

    Returns whether anything was revoked; callers answer 200 either way (no oracle).
    """
    family: uuid.UUID | None = None
    row: RefreshToken | None = None
    parsed = _parse_refresh_token(raw_token)
    if parsed is not None:
        pk, secret = parsed
        row = (
            RefreshToken.objects.select_related("application", "identity__user")
            .filter(pk=pk)
            .first()
        )
        if (
            row is None
            or not constant_time_equals(sha256_hex(secret), row.secret_hash)
            or row.application.api_key_id != api_key_id
        ):
            return False
        family = row.family
    else:
        try:
            claims = verify_access_token(raw_token, audiences=[api_key_id])
        except InvalidToken:
            return False
        try:
            family = uuid.UUID(str(claims.get("sid")))
        except ValueError:
            return False
        row = (
            RefreshToken.objects.select_related("application", "identity__user")
            .filter(family=family, application__api_key_id=api_key_id)
            .first()
        )
        if row is None:
            return False
    with transaction.atomic():
        count = revoke_families([family], "revoked")
        if count:
            record_event(
                event=AuthEvent.Kind.TOKENS_REVOKED,
                state=AuthEvent.State.APPROVED,
                user=row.identity.user,
                application=row.application,
                method=row.auth_method,
                request=request,
                details={"family": str(family)},
            )
    return bool(count)


@dataclass(frozen=True)
class EndedGrants:
    """What :func:`end_pending_grants` ended (row counts)."""

    authorization_codes: int
    challenges: int
    pending_events: int
    approved_events: int
    device_bindings: int


def end_pending_grants(identity: UserIdentity, now: datetime) -> EndedGrants:
    """End everything of a user that could still turn into a new session or device: one
    conditional UPDATE per table, each reusing the row's own "spent" state, so the flows
    that would complete it (their own conditional UPDATEs) refuse it as they refuse any
    used or invalid one.

    * unredeemed, unexpired authorization codes: ``redeemed_at`` set with no
      ``token_family`` (no redemption ever leaves it empty), so ``get_identity`` answers
      the generic ``invalid_grant``;
    * pending sign-in challenges of the user's identifiers, and granted ones whose
      authorization code was not exchanged yet: ``dead``, so neither the code, the magic
      link nor the grant signs in;
    * pending approval requests: ``rejected`` (the requester sees ``access_denied``);
    * approved requests whose tokens (or page session) nobody collected yet:
      ``tokens_handed_out_at`` set, the mark :meth:`AuthEventManager.claim_tokens` and
      ``claim_session`` take, so they are never collected;
    * QR binding codes not yet redeemed by a new device: ``cancelled_at``.

    Call it inside the caller's transaction, before reading refresh-token families: on
    PostgreSQL each UPDATE waits for a concurrent redemption, verification or hand-out of
    the same row to commit, so that the tokens it issued are seen by the family read
    that follows (READ COMMITTED reads afresh per statement)."""
    identifiers = list(Identifier.objects.filter(identity=identity).values_list("kind", "value"))
    challenges = 0
    if identifiers:
        of_user = Q()
        for kind, value in identifiers:
            of_user |= Q(kind=kind, identifier=value)
        challenges = (
            Challenge.objects.filter(of_user)
            .filter(
                Q(state=Challenge.State.PENDING, expires_at__gt=now)
                | Q(state=Challenge.State.GRANTED)
            )
            .update(state=Challenge.State.DEAD)
        )
    # After the challenges: a hosted-page sign-in mints its authorization code in the
    # transaction that consumes its challenge, which the UPDATE above waited for.
    codes = AuthorizationCode.objects.filter(
        identity=identity, redeemed_at__isnull=True, expires_at__gt=now
    ).update(redeemed_at=now)
    user_events = AuthEvent.objects.filter(user_id=identity.user_id)
    pending_ids = list(
        user_events.filter(state=AuthEvent.State.PENDING, expires_at__gt=now).values_list(
            "pk", flat=True
        )
    )
    pending = user_events.filter(state=AuthEvent.State.PENDING, expires_at__gt=now).update(
        state=AuthEvent.State.REJECTED, decided_at=now, updated_at=now
    )
    approved = user_events.filter(
        state=AuthEvent.State.APPROVED,
        tokens_handed_out_at__isnull=True,
        expires_at__isnull=False,
    ).update(tokens_handed_out_at=now, updated_at=now)
    bindings = DeviceBinding.objects.filter(
        user_id=identity.user_id,
        redeemed_at__isnull=True,
        cancelled_at__isnull=True,
        expires_at__gt=now,
    ).update(cancelled_at=now)
    if pending_ids:
        from . import notify

        for event_id in pending_ids:  # wake their waiters (after commit), no query each
            notify.announce(event_id)
    return EndedGrants(
        authorization_codes=codes,
        challenges=challenges,
        pending_events=pending,
        approved_events=approved,
        device_bindings=bindings,
    )


def _unrevoked_families(identity: UserIdentity) -> list[uuid.UUID]:
    return list(
        RefreshToken.objects.filter(identity=identity, revoked_at__isnull=True)
        .values_list("family", flat=True)
        .distinct()
    )


def revoke_user_tokens(identity: UserIdentity, *, reason: str) -> int:
    """Sign a user out everywhere: revoke every refresh-token family and end every grant
    that could still mint one (:func:`end_pending_grants`), in one transaction.

    Returns the number of refresh tokens revoked (:func:`revoke_families` also catches a
    refresh in flight)."""
    with transaction.atomic():
        end_pending_grants(identity, timezone.now())
        families = _unrevoked_families(identity)
        return revoke_families(families, reason) if families else 0


_provider: CachingKeyProvider | None = None
_provider_path: str | None = None


def key_provider() -> CachingKeyProvider:
    """The configured verification key provider (one per process)."""
    global _provider, _provider_path
    path = app_settings.KEY_PROVIDER
    if _provider is None or _provider_path != path:
        _provider = import_string(path)()
        _provider_path = path
    return _provider


def _forget_verification_keys() -> None:
    if _provider is not None:
        _provider.reset()


@receiver(auth_event_recorded, dispatch_uid="authdevice.flows.tokens.key_change")
def _on_key_change(sender: object, event: AuthEvent, **kwargs: Any) -> None:
    """A key was created, rotated or revoked here: this process's verifier re-reads the
    keys after the commit, instead of refusing the new ``kid`` (or still trusting a revoked
    one) until its cache expires."""
    if event.event in (AuthEvent.Kind.KEY_ROTATED, AuthEvent.Kind.KEY_REVOKED):
        transaction.on_commit(_forget_verification_keys)


def verify_access_token(token: object, *, audiences: list[str] | None = None) -> dict[str, Any]:
    """Verify an access token and return its claims; raise :class:`InvalidToken`.

    No database query on this path once keys and audiences are cached. Use this from
    non-DRF code; DRF views use ``authdevice.api.authentication.AccessTokenAuthentication``.
    """
    try:
        claims = jwtcrypto.verify(
            token,
            get_key=key_provider().get,
            audiences=audiences if audiences is not None else accepted_audiences(),
            issuer=app_settings.issuer,
            leeway=app_settings.leeway,
            typ=jwtcrypto.ACCESS_TOKEN_TYP,
            max_length=app_settings.MAX_TOKEN_LENGTH,
        )
    except jwtcrypto.TokenError as exc:
        raise InvalidToken() from exc
    if claims.get("type") != ACCESS_TOKEN_TYPE:
        raise InvalidToken()
    return claims
