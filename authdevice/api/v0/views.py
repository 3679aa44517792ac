"""Cotter-compatible token endpoints (reference/cotter-api.md, group C)."""

from __future__ import annotations

from django.utils.translation import gettext as _
from rest_framework.request import Request
from rest_framework.response import Response

from ...flows import tokens as token_flows
from ...flows.errors import FlowError
from ...http import no_store
from .base import CotterAPIView, error_response


class TokenView(CotterAPIView):
    """C1 ``POST /token/<API_KEY_ID>``, C2 ``POST /token``: refresh with rotation.
    C3 ``DELETE /token/<API_KEY_ID>``: the web SDK's logout (no server session to end)."""

    def post(self, request: Request, api_key_id: str | None = None) -> Response:
        app = self.get_application(request, api_key_id)
        data = self.body(request)
        grant_type = data.get("grant_type")
        if grant_type != "refresh_token":
            return error_response(
                _("grant_type must be refresh_token."), "unsupported_grant_type", 400
            )
        refresh_token = data.get("refresh_token")
        if not isinstance(refresh_token, str) or not refresh_token:
            return error_response(_("The refresh token is not valid."), "invalid_grant", 400)
        try:
            tokens = token_flows.refresh_token_set(
                refresh_token, api_key_id=app.api_key_id, request=request
            )
        except FlowError as exc:
            if exc.code == "invalid_grant":
                return error_response(_("The refresh token is not valid."), "invalid_grant", 400)
            raise
        return no_store(Response(tokens.as_cotter()))

    def delete(self, request: Request, api_key_id: str | None = None) -> Response:
        self.get_application(request, api_key_id)
        return no_store(Response({"success": True}))


class RevokeView(CotterAPIView):
    """RFC 7009 revocation: ``POST /token/revoke`` with ``token`` (refresh or access token).

    The application is named by the API_KEY_ID header or a ``client_id`` field. Unknown,
    foreign or already revoked tokens also get 200, so the endpoint is no oracle.
    """

    def post(self, request: Request) -> Response:
        data = self.body(request)
        client_id = request.META.get("HTTP_API_KEY_ID") or data.get("client_id")
        app = self.get_application(request, client_id if isinstance(client_id, str) else None)
        token = data.get("token")
        if not isinstance(token, str) or not token:
            return error_response(_("token is required."), "invalid_request", 400)
        token_flows.revoke_token(token, api_key_id=app.api_key_id, request=request)
        return no_store(Response({}))
