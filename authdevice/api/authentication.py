"""DRF authentication with authdevice access tokens (``Authorization: Bearer <jwt>``)."""

from __future__ import annotations

from functools import cached_property
from typing import Any

from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.request import Request

from ..flows.errors import InvalidToken
from ..flows.tokens import verify_access_token
from ..models import UserIdentity


class TokenUser:
    """The caller, as proven by a verified access token; built without a database query.

    ``public_id`` is the token's ``sub``. ``.user`` loads the Django user on first access.
    """

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False

    def __init__(self, claims: dict[str, Any]) -> None:
        self.claims = claims
        self.public_id: str = claims["sub"]
        self.application_id: str = claims["aud"] if isinstance(claims["aud"], str) else ""

    @property
    def pk(self) -> str:
        return self.public_id

    id = pk

    @cached_property
    def user(self) -> Any:
        identity = UserIdentity.objects.select_related("user").filter(public_id=self.public_id)
        row = identity.first()
        return row.user if row is not None else None

    def __str__(self) -> str:
        return self.public_id


class AccessTokenAuthentication(BaseAuthentication):
    """Verifies the bearer token locally (ES256 against cached keys, no DB query).

    ``request.user`` is a :class:`TokenUser`; ``request.auth`` is the claims dict.
    """

    keyword = b"bearer"

    def _claims(self, request: Request) -> dict[str, Any] | None:
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != self.keyword:
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed(_("Invalid Authorization header."))
        try:
            token = parts[1].decode("ascii")
        except UnicodeDecodeError as exc:
            raise exceptions.AuthenticationFailed(_("Invalid access token.")) from exc
        try:
            return verify_access_token(token)
        except InvalidToken as exc:
            raise exceptions.AuthenticationFailed(_("Invalid access token.")) from exc

    def authenticate(self, request: Request) -> tuple[Any, dict[str, Any]] | None:
        claims = self._claims(request)
        if claims is None:
            return None
        return TokenUser(claims), claims

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'


class AccessTokenUserAuthentication(AccessTokenAuthentication):
    """Like :class:`AccessTokenAuthentication`, but ``request.user`` is the Django user
    (one query) and tokens of inactive or deleted users are refused."""

    def authenticate(self, request: Request) -> tuple[Any, dict[str, Any]] | None:
        claims = self._claims(request)
        if claims is None:
            return None
        user = TokenUser(claims).user
        if user is None or not user.is_active:
            raise exceptions.AuthenticationFailed(_("Invalid access token."))
        return user, claims
