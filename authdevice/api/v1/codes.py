"""Sign in with a one-time code or magic link through the native JSON API.

``POST /auth/code`` starts a challenge and returns its id and secret (the binding: only
the client that asked can verify); ``/auth/code/resend`` replaces the code;
``/auth/code/verify`` checks it and returns a token set. The rules live in
``authdevice.flows.codes``; these views parse, call and render.
"""

from __future__ import annotations

from typing import Any

from rest_framework.request import Request
from rest_framework.response import Response

from ...conf import app_settings
from ...flows import codes
from ..v0.serializers import user_object
from .base import NativeAPIView, no_store
from .serializers import (
    ChallengeIdField,
    ChallengeSerializer,
    CodeRequestSerializer,
    CodeVerifySerializer,
)


def _challenge_body(started: codes.StartedChallenge) -> dict[str, Any]:
    challenge = started.challenge
    return {
        "challenge_id": ChallengeIdField().to_representation(challenge.pk),
        "challenge_secret": started.binding,
        # The flows (re)arm a challenge for exactly this long, on request and on resend.
        "expires_in": app_settings.challenge_lifetime,
        "channel": challenge.channel,
    }


class CodeRequestView(NativeAPIView):
    """``POST /api/v1/auth/code`` ``{identifier, channel?, method?}`` -> 202.

    Known and unknown identifiers get the same status, headers and body shape."""

    def post(self, request: Request) -> Response:
        application = self.get_application(request)
        data = self.validated(CodeRequestSerializer, request)
        started = codes.start_challenge(
            identifier=data["identifier"],
            channel=data.get("channel"),
            method=data["method"],
            application=application,
            request=request,
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


class CodeVerifyView(NativeAPIView):
    """``POST /api/v1/auth/code/verify`` ``{challenge_id, challenge_secret, code}`` ->
    200 with Cotter's OAuthToken fields and the user object."""

    def post(self, request: Request) -> Response:
        application = self.get_application(request)
        data = self.validated(CodeVerifySerializer, request)
        signed = codes.verify_code(
            challenge_id=data["challenge_id"],
            binding=data["challenge_secret"],
            code=data["code"],
            request=request,
            application=application,
            issue_tokens=True,
        )
        assert signed.tokens is not None
        body = {
            **signed.tokens.as_cotter(),
            "user": user_object(
                signed.identity, issuer=application.api_key_id, identifier=signed.identifier.value
            ),
        }
        return no_store(Response(body))
