"""Sign in with a one-time code or magic link through the native JSON API.

``POST /auth/code`` starts a challenge and returns its id and secret (the binding: only
the client that asked can verify); ``/auth/code/resend`` replaces the code;
``/auth/code/verify`` checks it and returns a token set, or, for a challenge started with
a PKCE ``code_challenge``, a one-use authorization code that ``/auth/code/token``
exchanges with the ``code_verifier`` for the token set. The rules live in
``authdevice.flows.codes``; these views parse, call and render.
"""

from __future__ import annotations

from typing import Any

from rest_framework.request import Request
from rest_framework.response import Response

from ...conf import app_settings
from ...flows import codes
from ...flows.pkce import CODE_CHALLENGE_METHOD, valid_code_challenge
from ...models import Challenge, Channel
from ..v0.serializers import user_object
from .base import NativeAPIView, no_store
from .serializers import (
    MAX_CHALLENGE_ID,
    ChallengeIdField,
    ChallengeSerializer,
    CodeExchangeSerializer,
    CodeRequestSerializer,
    CodeVerifySerializer,
)

#: Stateless: one instance renders every id (building a DRF field per response costs more).
_CHALLENGE_ID = ChallengeIdField()


def _challenge_body(started: codes.StartedChallenge) -> dict[str, Any]:
    challenge = started.challenge
    return {
        "challenge_id": _CHALLENGE_ID.to_representation(challenge.pk),
        "challenge_secret": started.binding,
        # The flows (re)arm a challenge for exactly this long, on request and on resend.
        "expires_in": app_settings.challenge_lifetime,
        "channel": challenge.channel,
    }


_CHANNELS = frozenset(Channel.values)
_METHODS = frozenset(Challenge.Method.values)
_ABSENT = object()


def _code_request_fields(data: Any) -> tuple[str, str | None, str, str] | None:
    """``(identifier, channel, method, code_challenge)`` exactly as
    ``CodeRequestSerializer`` would return them (``""``: no challenge), for the plain
    valid bodies only (ASCII, strings); None for anything else, which then goes through
    the serializer for its exact error. Building the DRF fields costs more than the rest
    of the validation of the request."""
    if type(data) is not dict:
        return None
    identifier = data.get("identifier")
    if type(identifier) is not str or not identifier.isascii():
        return None
    identifier = identifier.strip()  # the serializer's trim_whitespace
    if not identifier or len(identifier) > 254 or "\x00" in identifier:
        return None
    channel = data.get("channel", _ABSENT)
    if channel is _ABSENT:
        channel = None
    elif type(channel) is not str or channel not in _CHANNELS:
        return None
    method = data.get("method", "OTP")  # the serializer's default
    if type(method) is not str or method not in _METHODS:
        return None
    code_challenge = data.get("code_challenge", _ABSENT)
    if code_challenge is _ABSENT:
        code_challenge = ""
    elif not valid_code_challenge(code_challenge):
        return None
    if "code_challenge_method" in data and (
        not code_challenge or data["code_challenge_method"] != CODE_CHALLENGE_METHOD
    ):
        return None
    return identifier, channel, method, code_challenge


class CodeRequestView(NativeAPIView):
    """``POST /api/v1/auth/code`` ``{identifier, channel?, method?}`` -> 202.

    Known and unknown identifiers get the same status, headers and body shape."""

    def post(self, request: Request) -> Response:
        application = self.get_application(request)
        fields = _code_request_fields(request.data)
        if fields is None:
            data = self.validated(CodeRequestSerializer, request)
            fields = (
                data["identifier"],
                data.get("channel"),
                data["method"],
                data.get("code_challenge", ""),
            )
        identifier, channel, method, code_challenge = fields
        started = codes.start_challenge(
            identifier=identifier,
            channel=channel,
            method=method,
            application=application,
            request=request,
            code_challenge=code_challenge,
        )
        return no_store(Response(_challenge_body(started), status=202))


class CodeResendView(NativeAPIView):
    """``POST /api/v1/auth/code/resend`` ``{challenge_id, challenge_secret}`` -> 202."""

    def post(self, request: Request) -> Response:
        application = self.get_application(request)
        data = self.validated(ChallengeSerializer, request)
        started = codes.resend_challenge(
            challenge_id=data["challenge_id"],
            binding=data["challenge_secret"],
            request=request,
            application=application,
        )
        return no_store(Response(_challenge_body(started), status=202))


def _challenge_id(raw: Any) -> int | None:
    """What :class:`ChallengeIdField` accepts, for an int or a decimal string; else None."""
    if type(raw) is int:
        value = raw
    elif type(raw) is str and 0 < len(raw) <= 19 and raw.isascii() and raw.isdigit():
        value = int(raw)
    else:
        return None
    return value if 0 < value <= MAX_CHALLENGE_ID else None


def _plain_verify_input(data: Any) -> tuple[int, str, str] | None:
    """``(challenge_id, challenge_secret, code)`` when the body is plainly what
    :class:`CodeVerifySerializer` accepts (and would return unchanged, code stripped);
    None for anything else, which then goes through the serializer for its exact error.
    Building the serializer costs more than the checks (benchmarks/README.md)."""
    if type(data) is not dict:
        return None
    challenge_id = _challenge_id(data.get("challenge_id"))
    secret, code = data.get("challenge_secret"), data.get("code")
    if challenge_id is None:
        return None
    # ASCII without NUL: the serializer's null and surrogate checks cannot fail.
    if not (type(secret) is str and 0 < len(secret) <= 128 and secret.isascii()):
        return None
    if type(code) is not str or not code.isascii():
        return None
    code = code.strip()
    if not 0 < len(code) <= 32 or "\x00" in secret or "\x00" in code:
        return None
    return challenge_id, secret, code


def _signed_in_body(signed: codes.SignedIn, application: Any) -> dict[str, Any]:
    if signed.tokens is None:  # both callers ask for tokens; never without them
        raise codes.InvalidCode()
    return {
        **signed.tokens.as_cotter(),
        "user": user_object(
            signed.identity, issuer=application.api_key_id, identifier=signed.identifier.value
        ),
    }


def _plain_exchange_input(data: Any) -> tuple[int, str, str] | None:
    """``(challenge_id, authorization_code, code_verifier)`` when the body is plainly what
    :class:`CodeExchangeSerializer` accepts (ASCII strings within its bounds); None for
    anything else, which then goes through the serializer for its exact error."""
    if type(data) is not dict:
        return None
    challenge_id = _challenge_id(data.get("challenge_id"))
    code, verifier = data.get("authorization_code"), data.get("code_verifier")
    if (
        challenge_id is None
        or not (type(code) is str and 0 < len(code) <= 200 and code.isascii())
        or not (type(verifier) is str and 43 <= len(verifier) <= 128 and verifier.isascii())
        or "\x00" in code
        or "\x00" in verifier
    ):
        return None
    return challenge_id, code, verifier


class CodeVerifyView(NativeAPIView):
    """``POST /api/v1/auth/code/verify`` ``{challenge_id, challenge_secret, code}`` ->
    200 with Cotter's OAuthToken fields and the user object; for a challenge started with
    a ``code_challenge``, 200 ``{authorization_code, challenge_id, expires_in}``."""

    def post(self, request: Request) -> Response:
        application = self.get_application(request)
        plain = _plain_verify_input(request.data)
        if plain is None:
            data = self.validated(CodeVerifySerializer, request)
            plain = data["challenge_id"], data["challenge_secret"], data["code"]
        challenge_id, secret, code = plain
        result = codes.verify_code_or_grant(
            challenge_id=challenge_id,
            binding=secret,
            code=code,
            request=request,
            application=application,
        )
        if isinstance(result, codes.Granted):
            body = {
                "authorization_code": result.authorization_code,
                "challenge_id": _CHALLENGE_ID.to_representation(result.challenge.pk),
                "expires_in": result.expires_in,
            }
        else:
            body = _signed_in_body(result, application)
        return no_store(Response(body))


class CodeTokenView(NativeAPIView):
    """``POST /api/v1/auth/code/token`` ``{challenge_id, authorization_code,
    code_verifier}`` -> 200 with the same body as a one-step verify (tokens and user);
    ``invalid_grant`` for anything wrong, and a second exchange revokes the first's
    tokens."""

    def post(self, request: Request) -> Response:
        application = self.get_application(request)
        plain = _plain_exchange_input(request.data)
        if plain is None:
            data = self.validated(CodeExchangeSerializer, request)
            plain = data["challenge_id"], data["authorization_code"], data["code_verifier"]
        challenge_id, authorization_code, code_verifier = plain
        signed = codes.exchange_code_grant(
            application=application,
            challenge_id=challenge_id,
            authorization_code=authorization_code,
            code_verifier=code_verifier,
            request=request,
        )
        return no_store(Response(_signed_in_body(signed, application)))
