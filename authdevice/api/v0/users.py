"""Cotter's users and enrolled methods (reference/cotter-api.md §1.5 group A, A1-A12).

Doors only: every rule (key validation, uniqueness, revocation cascade, tokens) lives in
``authdevice.flows``. Enrolling or removing a trusted device (A5/A6) needs an
``Authorization: Bearer`` access token of the same user issued to the same application,
unless the application has the legacy ``allow_unauthenticated_enrolment`` switch on.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Exists, OuterRef, Prefetch
from django.utils.translation import gettext as _
from rest_framework.request import Request
from rest_framework.response import Response

from ...crypto import devicekeys
from ...flows import devices as device_flows
from ...flows import ratelimit
from ...flows.errors import FlowError, InvalidApplication, InvalidIdentifier, InvalidToken
from ...flows.identities import (
    create_user,
    find_identity,
    guess_kind,
    normalise_identifier,
)
from ...flows.ratelimit import RateLimited
from ...flows.tokens import issue_token_set, verify_access_token
from ...http import client_ip, no_store
from ...models import Application, Identifier, TrustedDevice, UserIdentity
from .base import CotterAPIView, error_response
from .serializers import user_object

TRUSTED_DEVICE = device_flows.TRUSTED_DEVICE
ZERO_UUID = "00000000-0000-0000-0000-000000000000"
ZERO_TIME = "0001-01-01T00:00:00Z"
USERS_PER_PAGE = 50
MAX_FIELD_CHARS = 200
_TRUE = {"true", "1", "yes", "on"}


# --------------------------------------------------------------------------- errors


class InvalidRequest(FlowError):
    """The request is not valid."""

    code = "invalid_request"


class MethodNotSupported(FlowError):
    """Only the TRUSTED_DEVICE method is supported by this server."""

    code = "method_not_supported"


class IssuerMismatch(FlowError):
    """issuer must equal the API_KEY_ID header."""

    code = "invalid_issuer"


class EnrolmentUnauthorized(InvalidToken):
    """Enrolling or removing a trusted device needs "Authorization: Bearer <access token>"
    of this user, issued to this application."""


class EnrolmentForbidden(FlowError):
    """The access token belongs to another user."""

    code = "forbidden"
    status = 403


class SecretRequired(InvalidApplication):
    """This endpoint needs the API_SECRET_KEY header."""


# --------------------------------------------------------------------------- helpers


def wants_oauth_token(request: Request) -> bool:
    """``?oauth_token=true`` (Cotter merges an ``oauth_token`` object into the response)."""
    return str(request.query_params.get("oauth_token", "")).strip().lower() in _TRUE


def text_field(
    data: Any, name: str, *, required: bool = False, max_length: int = MAX_FIELD_CHARS
) -> str:
    """A string field of the JSON body ("" when absent or null)."""
    value = data.get(name)
    if value is None or value == "":
        if required:
            raise InvalidRequest(_("%(field)s is required.") % {"field": name})
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise InvalidRequest(_("%(field)s must be a string.") % {"field": name})
    value = str(value)
    if len(value) > max_length or "\x00" in value:
        raise InvalidRequest(_("%(field)s is too long or not valid.") % {"field": name})
    return value


def check_issuer(data: Any, application: Application) -> None:
    """Cotter's bodies carry ``issuer``: it must be the API key the request came with."""
    if data.get("issuer") != application.api_key_id:
        raise IssuerMismatch()


def identity_or_404(uid: object) -> UserIdentity:
    identity = device_flows.resolve_identity(uid)
    if identity is None:
        raise device_flows.UnknownUser()
    return identity


def identity_from_body(data: Any, *, known: UserIdentity | None = None) -> tuple[UserIdentity, str]:
    """The user named by ``user_id`` if present, else ``client_user_id`` (either may hold
    our public UUID or the client user id), and that id string (it is part of the signed
    messages, reference §2.2). ``known``: an identity already loaded (the event's), used
    without a query when the id can only resolve to it."""
    user_id = data.get("user_id")
    if isinstance(user_id, str) and user_id and user_id != ZERO_UUID:
        uid = user_id
    else:
        uid = data.get("client_user_id")
    if not isinstance(uid, str) or not uid:
        raise InvalidRequest(_("user_id or client_user_id is required."))
    if known is not None and device_flows.resolves_to(uid, known):
        return known, uid
    return identity_or_404(uid), uid


def enrolled_methods(identity: UserIdentity) -> list[str]:
    has_device = TrustedDevice.objects.active().filter(user_id=identity.user_id).exists()
    return [TRUSTED_DEVICE] if has_device else []


def render_user(
    identity: UserIdentity,
    application: Application,
    *,
    identifier: str | None = None,
    enrolled: list[str] | None = None,
) -> dict[str, Any]:
    methods = enrolled_methods(identity) if enrolled is None else enrolled
    return user_object(
        identity,
        issuer=application.api_key_id,
        identifier=identifier,
        enrolled=methods,
        default_method=methods[0] if methods else None,
    )


def zero_user() -> dict[str, Any]:
    """What Cotter answered for an unknown identifier: a 200 with the zero UUID (the RN and
    Flutter SDKs test ``ID != "00000000-..."``); every field iOS needs is non-null."""
    return {
        "ID": ZERO_UUID,
        "client_user_id": "",
        "created_at": ZERO_TIME,
        "updated_at": ZERO_TIME,
        "update_at": ZERO_TIME,
        "deleted_at": None,
        "issuer": "",
        "identifier": "",
        "identifiers": None,
        "enrolled": [],
        "default_method": None,
    }


def bearer_token(request: Request) -> str | None:
    header = request.META.get("HTTP_AUTHORIZATION", "")
    parts = header.split() if isinstance(header, str) else []
    if len(parts) != 2 or parts[0].lower() != "bearer":
        return None
    return parts[1]


def enrolment_actor(
    request: Request, identity: UserIdentity, application: Application, *, adding: bool = False
) -> str:
    """Who is enrolling/removing a device for ``identity``: the user, proven by a bearer
    access token issued to this application (for ``adding``, from a recent sign-in:
    ``AUTHDEVICE_REAUTHENTICATION_SECONDS``); or, for an application with the legacy switch
    on and no token sent, just the API key. Raises 401/403 otherwise."""
    token = bearer_token(request)
    if token is None:
        if application.allow_unauthenticated_enrolment:
            return f"api_key:{application.api_key_id}"
        raise EnrolmentUnauthorized()
    try:
        claims = verify_access_token(token, audiences=[application.api_key_id])
    except InvalidToken as exc:
        raise EnrolmentUnauthorized() from exc
    if claims.get("sub") != str(identity.public_id):
        raise EnrolmentForbidden()
    if adding:
        device_flows.require_recent_sign_in(claims.get("auth_time"))
    return f"user:{identity.public_id}"


def enrolled_response(method: str, enrolled: bool) -> Response:
    """Cotter's EnrolledMethods: ``method`` must echo the requested method."""
    return no_store(Response({"enrolled": bool(enrolled), "method": method}))


def _decoded_key_candidates(encoded: str) -> list[str]:
    """A7/A8 send base64(base64 key string) (reference §2.4): RN url-safe with padding,
    Android url-safe unpadded, iOS url-safe with embedded ``\\n``s, Flutter standard with
    '+' arriving as a space. We also accept the key itself, single-encoded."""
    candidates: list[str] = []
    if not encoded or len(encoded) > 4 * devicekeys.MAX_KEY_CHARS:
        return candidates
    try:
        candidates.append(devicekeys.b64decode_loose(encoded).decode("utf-8"))
    except (devicekeys.InvalidDeviceKey, UnicodeDecodeError):
        pass
    candidates.append(encoded.replace(" ", "+"))
    return candidates


def is_key_enrolled(identity: UserIdentity, encoded: str) -> bool:
    return any(
        device_flows.find_device(identity, key) is not None
        for key in _decoded_key_candidates(encoded)
    )


class DeviceAPIView(CotterAPIView):
    """A v0 view that also answers 429 with ``Retry-After``."""

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, RateLimited):
            return error_response(
                exc.message, exc.code, exc.status, {"Retry-After": str(exc.retry_after)}
            )
        if isinstance(exc, EnrolmentUnauthorized):
            return error_response(
                exc.message,
                exc.code,
                exc.status,
                {"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        return super().handle_exception(exc)


# --------------------------------------------------------------------------- A1


class CreateUserView(DeviceAPIView):
    """A1 ``POST /user/create``: ``{identifier}``, ``{client_user_id, identifiers: [..]}`` or
    ``{client_user_id, identifier}``. Creates no session: ``?oauth_token=true`` is accepted
    and ignored (creating a user proves nothing about who is asking)."""

    def post(self, request: Request) -> Response:
        application = self.get_application(request)
        ratelimit.limit_user_lookup(
            application, request.META.get("HTTP_API_SECRET_KEY"), client_ip(request)
        )
        data = self.body(request)
        raw: list[object] = []
        if data.get("identifier") not in (None, ""):
            raw.append(data.get("identifier"))
        identifiers = data.get("identifiers")
        if isinstance(identifiers, list):
            raw.extend(identifiers[:10])
        elif identifiers is not None:
            raise InvalidRequest(_("identifiers must be a list."))
        if not raw:
            raise InvalidRequest(_("identifier is required."))
        values: list[tuple[str, str]] = []
        for item in raw:
            if not isinstance(item, str) or len(item) > 254:
                raise InvalidIdentifier()
            kind = guess_kind(item)
            normalised = normalise_identifier(kind, item)
            if (kind, normalised) not in values:
                values.append((kind, normalised))
        client_user_id = text_field(data, "client_user_id") or None
        if client_user_id is not None and (
            not client_user_id.isprintable() or client_user_id == ZERO_UUID
        ):
            raise InvalidRequest(_("client_user_id is not valid."))
        identity = create_user(values, client_user_id=client_user_id)
        return no_store(Response(render_user(identity, application, identifier=values[0][1])))


# --------------------------------------------------------------------------- A2, A3, A4


class UserByIdentifierView(DeviceAPIView):
    """A2 ``GET /user?identifier=``: the user, or a 200 with the zero UUID if unknown."""

    def get(self, request: Request) -> Response:
        application = self.get_application(request)
        ratelimit.limit_user_lookup(
            application, request.META.get("HTTP_API_SECRET_KEY"), client_ip(request)
        )
        identifier = request.query_params.get("identifier", "")
        if identifier.startswith(" ") and identifier.strip().isdigit():
            identifier = "+" + identifier.strip()  # an unescaped '+' of a phone number
        identity = find_identity(identifier) if 0 < len(identifier) <= 254 else None
        if identity is None:
            return no_store(Response(zero_user()))
        return no_store(Response(render_user(identity, application)))


class UserView(DeviceAPIView):
    """A3 ``GET /user/<user_id>``; A5 ``PUT /user/<client_user_id>`` (enrol/remove a method)."""

    def get(self, request: Request, user_id: str) -> Response:
        application = self.get_application(request)
        return no_store(Response(render_user(identity_or_404(user_id), application)))

    def put(self, request: Request, user_id: str) -> Response:
        application = self.get_application(request)
        return update_method(self, request, application, identity_or_404(user_id))


class UserListView(DeviceAPIView):
    """A4 ``GET /user/list?page=N`` (server-to-server: needs ``API_SECRET_KEY``): 50 users
    per page from page 0, newest first, as a JSON array of User objects."""

    def get(self, request: Request) -> Response:
        application = self.get_application(request)
        secret = request.META.get("HTTP_API_SECRET_KEY", "")
        if not application.check_secret(secret):
            raise SecretRequired()
        page_raw = request.query_params.get("page", "0")
        if not (page_raw.isascii() and page_raw.isdigit() and len(page_raw) <= 9):
            raise InvalidRequest(_("page must be a number from 0."))
        page = int(page_raw)
        identities = (
            UserIdentity.objects.select_related("user")
            .annotate(
                has_device=Exists(
                    TrustedDevice.objects.active().filter(user_id=OuterRef("user_id"))
                )
            )
            .prefetch_related(
                Prefetch(
                    "identifiers",
                    queryset=Identifier.objects.order_by("-is_primary", "created_at"),
                    to_attr="ordered_identifiers",
                )
            )
            .order_by("-created_at", "-pk")[page * USERS_PER_PAGE : (page + 1) * USERS_PER_PAGE]
        )
        body = []
        for identity in identities:
            ordered = identity.ordered_identifiers  # type: ignore[attr-defined]
            body.append(
                render_user(
                    identity,
                    application,
                    identifier=ordered[0].value if ordered else "",
                    enrolled=[TRUSTED_DEVICE] if identity.has_device else [],  # type: ignore[attr-defined]
                )
            )
        return no_store(Response(body))


# --------------------------------------------------------------------------- A5, A6, A8


def update_method(
    view: CotterAPIView, request: Request, application: Application, identity: UserIdentity
) -> Response:
    """A5/A6 body ``{method, enrolled, code, algorithm?, device_name?, device_type?}``:
    ``enrolled: true`` enrols the key in ``code``; ``enrolled: false`` removes that key only."""
    data = view.body(request)
    method = data.get("method")
    if method != TRUSTED_DEVICE:
        raise MethodNotSupported()
    enrolled = data.get("enrolled")
    if not isinstance(enrolled, bool):
        raise InvalidRequest(_("enrolled must be true or false."))
    code = data.get("code")
    if not isinstance(code, str) or not code.strip():
        raise InvalidRequest(_("code (the device public key) is required."))
    device_name = text_field(data, "device_name")
    device_type = text_field(data, "device_type")
    actor = enrolment_actor(request, identity, application, adding=enrolled)
    if enrolled:
        device = device_flows.enrol_device(
            identity=identity,
            public_key=code,
            algorithm=data.get("algorithm"),
            name=device_name,
            device_type=device_type,
            application=application,
            request=request,
        )
        body = render_user(identity, application)
        if wants_oauth_token(request):
            # Cotter's signUpWithDevice takes its first tokens from the enrolment.
            tokens = issue_token_set(
                identity=identity,
                application=application,
                auth_method=TRUSTED_DEVICE,
                device=device,
            )
            body["oauth_token"] = tokens.as_cotter()
        return no_store(Response(body))
    device_flows.parse_key(code)  # garbage is a 400, not a silent no-op
    device = device_flows.find_device(identity, code)
    if device is not None:
        device_flows.remove_device(
            device, actor=actor, reason="removed through the API", request=request
        )
    return no_store(Response(render_user(identity, application)))


class UserMethodsView(DeviceAPIView):
    """A6 ``PUT /user/methods?cotter_user_id=`` (as A5); A8 ``GET /user/methods?
    cotter_user_id=&method=[&public_key=]`` (as A7)."""

    def _identity(self, request: Request) -> UserIdentity:
        uid = request.query_params.get("cotter_user_id") or request.query_params.get(
            "client_user_id"
        )
        if not uid:
            raise InvalidRequest(_("cotter_user_id is required."))
        return identity_or_404(uid)

    def put(self, request: Request) -> Response:
        application = self.get_application(request)
        return update_method(self, request, application, self._identity(request))

    def get(self, request: Request) -> Response:
        self.get_application(request)
        identity = self._identity(request)
        method = request.query_params.get("method", "")
        if not method:
            raise InvalidRequest(_("method is required."))
        return enrolled_check(identity, method, request.query_params.get("public_key"))


# --------------------------------------------------------------------------- A7, A9


def enrolled_check(identity: UserIdentity, method: str, encoded: str | None) -> Response:
    if method != TRUSTED_DEVICE:
        return enrolled_response(method, False)
    if encoded is None or encoded == "":
        return enrolled_response(method, bool(enrolled_methods(identity)))
    return enrolled_response(method, is_key_enrolled(identity, encoded))


class EnrolledView(DeviceAPIView):
    """A7 ``GET /user/enrolled/<client_user_id>/<method>[/<base64(public key)>]``."""

    def get(
        self, request: Request, user_id: str, method: str, encoded_key: str | None = None
    ) -> Response:
        self.get_application(request)
        return enrolled_check(identity_or_404(user_id), method, encoded_key)


class EnrolledAnyView(DeviceAPIView):
    """A9 ``GET /user/enrolled/any/<user_id>/<method>``: does the user have any active
    trusted device."""

    def get(self, request: Request, user_id: str, method: str) -> Response:
        self.get_application(request)
        return enrolled_check(identity_or_404(user_id), method, None)


# --------------------------------------------------------------------------- A10-A12


class PinResetView(DeviceAPIView):
    """A10-A12 ``POST /user/reset/{start,request,verify,respond}/<id>``: PINs are not a
    method of this server."""

    def post(self, request: Request, action: str, user_id: str) -> Response:
        self.get_application(request)
        return no_store(
            error_response(_("PIN reset is not supported by this server."), "not_supported", 404)
        )


__all__ = [
    "CreateUserView",
    "EnrolledAnyView",
    "EnrolledView",
    "PinResetView",
    "UserByIdentifierView",
    "UserListView",
    "UserMethodsView",
    "UserView",
]
