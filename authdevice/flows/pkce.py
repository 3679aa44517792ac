"""Cotter's hosted-page contract for mobile apps and CLIs (OAuth 2.0 code + PKCE S256).

``/app`` signs the person in with a code or link, then ``create_authorization_code``
hands the app a single-use code bound to (application, redirect URL, user, challenge);
``redeem_authorization_code`` (``POST /api/v0/verify/get_identity``) swaps it for tokens.
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from ..conf import app_settings
from ..crypto.secrets import constant_time_equals, random_token, sha256_hex
from ..models import Application, AuthEvent, AuthorizationCode, Identifier, UserIdentity
from .audit import record_event
from .errors import FlowError
from .tokens import TokenSet, persist_token_set, prepare_token_set, revoke_families

#: Used with ``fullmatch`` (``$`` would let a trailing newline through).
CODE_CHALLENGE_RE = re.compile(r"[A-Za-z0-9_-]{43}")
#: The only ``code_challenge_method`` accepted; compared exactly (``s256`` is refused).
CODE_CHALLENGE_METHOD = "S256"
#: RFC 7636 4.1: a verifier has 43 to 128 characters (security.md H03). Every Cotter SDK
#: format fits: Python and iOS base64url (43), react-native-cotter standard base64 (44),
#: the web SDK's hex (56).
MIN_VERIFIER_LENGTH = 43
MAX_VERIFIER_LENGTH = 128
# RFC 7636's verifier charset ([A-Za-z0-9._~-]) is NOT enforced, for compatibility:
# react-native-cotter sends standard base64 with "+", "/" and "=" (reference/cotter-api.md
# D1). The verifier is only hashed and compared with the stored S256 challenge, whose
# format (43 base64url characters) is enforced.


class InvalidAuthorizationCode(FlowError):
    """The authorization code is not valid."""

    code = "invalid_grant"


class InvalidHostedRequest(FlowError):
    """The app's redirect URL or PKCE challenge is no longer acceptable."""


@dataclass(frozen=True)
class HostedApp:
    """Where a sign-in on the hosted page (``/app``) sends its authorization code. The
    code is minted in the transaction that consumes the challenge (``codes._complete``),
    so a "sign out everywhere" either comes first (the challenge is dead) or finds the
    code and ends it (:func:`~.tokens.end_pending_grants`)."""

    application: Application
    redirect_url: str
    code_challenge: str


@dataclass(frozen=True)
class Redeemed:
    identity: UserIdentity
    identifier: Identifier
    authorization: AuthorizationCode
    tokens: TokenSet


def valid_code_challenge(value: object) -> bool:
    """An S256 challenge: exactly 43 base64url characters (no ``plain``)."""
    return isinstance(value, str) and CODE_CHALLENGE_RE.fullmatch(value) is not None


def valid_code_verifier(value: object) -> bool:
    """A verifier of RFC 7636's length (43-128) in ASCII; any ASCII characters (see
    above)."""
    return (
        isinstance(value, str)
        and MIN_VERIFIER_LENGTH <= len(value) <= MAX_VERIFIER_LENGTH
        and value.isascii()
    )


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("utf-8")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def create_authorization_code(
    *,
    application: Application,
    identity: UserIdentity,
    identifier: Identifier,
    auth_method: str,
    redirect_url: str,
    code_challenge: str,
    channel: str = "",
) -> tuple[AuthorizationCode, str]:
    """Issue a single-use authorization code; returns the row (its id is the
    ``challenge_id``) and the code, which is only ever stored hashed."""
    if not application.redirect_url_allowed(redirect_url):
        raise InvalidHostedRequest(_("This redirect URL is not allowed for the application."))
    if not valid_code_challenge(code_challenge):
        raise InvalidHostedRequest(_("code_challenge must be an S256 challenge."))
    code = random_token(32)
    now = timezone.now()
    row = AuthorizationCode.objects.create(
        code_hash=sha256_hex(code),
        application=application,
        identity=identity,
        identifier=identifier,
        auth_method=auth_method,
        channel=channel,
        redirect_url=redirect_url,
        code_challenge=code_challenge,
        created_at=now,
        expires_at=now + timedelta(seconds=app_settings.authorization_code_lifetime),
    )
    return row, code


def redeem_authorization_code(
    *,
    application: Application,
    authorization_code: object,
    challenge_id: object,
    code_verifier: object,
    redirect_url: object,
    request: HttpRequest | None = None,
) -> Redeemed:
    """Check code, verifier (S256; 43-128 characters, otherwise treated as an opaque
    string: Cotter's SDKs send several formats), application, redirect URL and lifetime,
    then issue a token set.

    A second redemption fails and revokes the tokens issued from the first (RFC 6749 4.1.2).
    The read, the checks and the signing happen before the transaction, which holds only
    the conditional UPDATE (exactly one redemption wins) and the refresh-token INSERT.
    """
    if not all(
        isinstance(v, str) and 0 < len(v) <= 2000 and v.isascii()
        for v in (authorization_code, redirect_url)
    ):
        raise InvalidAuthorizationCode()  # ours are ASCII; a lone surrogate cannot be hashed
    if not valid_code_verifier(code_verifier):
        raise InvalidAuthorizationCode()
    try:
        pk = int(challenge_id)  # type: ignore[call-overload]
    except (TypeError, ValueError) as exc:
        raise InvalidAuthorizationCode() from exc
    if not -(2**63) <= pk < 2**63:  # a raw cursor refuses wider integers
        raise InvalidAuthorizationCode()
    row = AuthorizationCode.objects.for_redeem(pk)
    if row is None or not constant_time_equals(sha256_hex(str(authorization_code)), row.code_hash):
        raise InvalidAuthorizationCode()
    if row.redeemed_at is None:
        now = timezone.now()
        if (
            row.application_id != application.pk
            or row.redirect_url != redirect_url
            or now >= row.expires_at
            or not constant_time_equals(s256(str(code_verifier)), row.code_challenge)
            or not row.user_is_active  # type: ignore[attr-defined]
        ):
            raise InvalidAuthorizationCode()
        row.application = application
        refresh, tokens = prepare_token_set(
            identity=row.identity,
            application=application,
            auth_method=row.auth_method,
            identifier=row.identifier.value,
            channel=row.channel,
        )
        with transaction.atomic():
            if AuthorizationCode.objects.redeem(row.pk, now, tokens.family):
                persist_token_set(refresh, tokens)
                row.redeemed_at, row.token_family = now, tokens.family
                return Redeemed(
                    identity=row.identity,
                    identifier=row.identifier,
                    authorization=row,
                    tokens=tokens,
                )
        # Lost the race to a concurrent redemption: that is a replay too. The winner has
        # committed (its UPDATE held the row until then): read the family it issued.
        row = AuthorizationCode.objects.for_redeem(pk)
        if row is None:
            raise InvalidAuthorizationCode()
    # Replay: revoke what the first redemption issued, then refuse.
    with transaction.atomic():
        if row.token_family is not None:
            revoke_families([row.token_family], "code_replay")
        record_event(
            event=AuthEvent.Kind.TOKENS_REVOKED,
            state=AuthEvent.State.REJECTED,
            user_id=row.identity.user_id,
            application=application if row.application_id == application.pk else row.application,
            method=row.auth_method,
            request=request,
            details={
                # No family: the code was ended by "sign out everywhere", not redeemed.
                "reason": "authorization code replay"
                if row.token_family is not None
                else "revoked authorization code",
                "challenge_id": row.pk,
            },
        )
    raise InvalidAuthorizationCode()
