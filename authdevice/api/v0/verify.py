"""Cotter's email/phone verification endpoint (reference/cotter-api.md, group D)."""

from __future__ import annotations

from typing import Any

from django.utils import timezone
from django.utils.translation import gettext as _
from rest_framework.request import Request
from rest_framework.response import Response

from ...flows.pkce import InvalidAuthorizationCode, redeem_authorization_code
from ...http import no_store, user_agent
from .base import CotterAPIView, error_response
from .serializers import identity_response

MAX_CHALLENGE_ID = 2**63 - 1
_FALSE = {"false", "0", "no", "off"}


def _challenge_id(value: Any) -> int | None:
    """Cotter's SDKs send an int (the web SDK ``parseInt``s the query string); accept a
    decimal string too. Anything else (bool, float, list, non-ASCII digits) is invalid."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        pk = value
    elif isinstance(value, str) and 0 < len(value) <= 19 and value.isascii() and value.isdigit():
        pk = int(value)
    else:
        return None
    return pk if 0 < pk <= MAX_CHALLENGE_ID else None


class GetIdentityView(CotterAPIView):
    """D1 ``POST /verify/get_identity?oauth_token=true``: swap the hosted page's
    authorization code (PKCE S256) for Cotter's Identity response and a token set.

    Every code, verifier, redirect URL, application or lifetime problem is the same
    ``400 invalid_grant`` with one message, so the endpoint tells an attacker nothing.

    ``oauth_token`` is included unless the query says ``oauth_token=false``: the iOS SDK
    sends no query yet decodes ``oauth_token`` as a required field, and the tokens are
    issued (and their refresh token stored) by the redemption either way.
    """

    def post(self, request: Request) -> Response:
        application = self.get_application(request)
        data = self.body(request)
        challenge_id = _challenge_id(data.get("challenge_id"))
        try:
            if challenge_id is None:
                raise InvalidAuthorizationCode()
            redeemed = redeem_authorization_code(
                application=application,
                authorization_code=data.get("authorization_code"),
                challenge_id=challenge_id,
                code_verifier=data.get("code_verifier"),
                redirect_url=data.get("redirect_url"),
                request=request,
            )
        except InvalidAuthorizationCode:
            return no_store(
                error_response(
                    _("The authorization code is invalid, expired or already used."),
                    "invalid_grant",
                    400,
                )
            )
        body = identity_response(
            redeemed,
            receiver=application.api_key_id,
            device_name=user_agent(request),
            now=timezone.now(),
        )
        if str(request.query_params.get("oauth_token", "true")).strip().lower() not in _FALSE:
            body["oauth_token"] = redeemed.tokens.as_cotter()
        return no_store(Response(body))
