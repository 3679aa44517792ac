"""Trusted devices through the native JSON API (``/api/v1``).

* ``devices/...``: enrol this device's key (bearer token; the key signs a server
  challenge), sign in with it (challenge, then signature), list and remove devices.
* ``approvals/...``: a device that is not trusted asks the user's trusted devices to
  approve its sign-in and waits (plain poll, ``?wait=N`` long-poll or server-sent events,
  RFC 8628 statuses); a trusted device lists what is waiting (what the server saw, never
  the number), asks for a challenge and decides, typing the number shown on the other
  screen.
* ``bindings/...``: add a device by QR code (a single-use binding code, then a short
  comparison code the signed-in side confirms).

Every rule lives in :mod:`authdevice.flows.native`; these views parse, call and render.
The status poll (:data:`approval_status`) waits only under ASGI (uvicorn): there it is the
async view :func:`wait_for_status`; under WSGI it is the plain DRF view. The rest are
ordinary DRF views for WSGI.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Callable
from typing import Any

from asgiref.sync import sync_to_async
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import exceptions, serializers
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from ...asgi import ServerAwareView
from ...conf import app_settings
from ...flows import devices as device_flows
from ...flows import native
from ...flows.applications import get_application
from ...flows.devices import DeviceNotTrusted, remove_device
from ...flows.errors import FlowError
from ...flows.events import EventNotFound
from ...flows.identities import identity_for_user
from ...http import approximate_location, describe_user_agent
from ...models import AuthEvent, TrustedDevice, UserIdentity
from ..authentication import AccessTokenUserAuthentication
from ..v0.base import API_KEY_HEADER
from ..v0.serializers import rfc3339, user_object
from ..waiting import clamp_wait, sse_response, wait_until_decided
from .base import NativeAPIView, error_response, no_store
from .schema import (
    ErrorSerializer,
    NativeSchema,
    TokenSetSerializer,
    document,
    error_responses,
)

logger = logging.getLogger("authdevice.api")

POLL_SECRET_HEADER = "X-Poll-Secret"
EVENT_STREAM = "text/event-stream"
MAX_PUBLIC_ID = 2**63 - 1
HANDLE_PATTERN = r"[0-9a-f]{64}"
PUBLIC_ID_PATTERN = r"[0-9]{1,19}"


# -- input ---------------------------------------------------------------------------------


class StrictBooleanField(serializers.BooleanField):
    """A JSON ``true`` or ``false``; nothing else (no ``"yes"``, no ``1``)."""

    def to_internal_value(self, data: Any) -> bool:
        if not isinstance(data, bool):
            self.fail("invalid", input=data)
        return data


def _text(max_length: int, **kwargs: Any) -> serializers.CharField:
    return serializers.CharField(max_length=max_length, trim_whitespace=False, **kwargs)


class DeviceRefSerializer(serializers.Serializer):
    device = serializers.RegexField(
        rf"^{HANDLE_PATTERN}$",
        help_text="The device handle: lowercase hex SHA-256 of its normalised public key.",
    )


class SignedSerializer(DeviceRefSerializer):
    challenge = _text(64, help_text="The challenge the server issued for this purpose.")
    signature = _text(1200, help_text="base64url signature over the signed message.")


class NewKeySerializer(serializers.Serializer):
    public_key = _text(2000, help_text="SPKI DER (P-256, RSA) or raw 32 bytes (Ed25519), base64.")
    algorithm = serializers.ChoiceField(choices=TrustedDevice.Algorithm.choices)
    signature = _text(1200)
    name = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")
    device_type = serializers.CharField(
        max_length=100, required=False, allow_blank=True, default=""
    )


class EnrolSerializer(NewKeySerializer):
    challenge = _text(64)


class StartApprovalSerializer(serializers.Serializer):
    identifier = serializers.CharField(max_length=254, help_text="Email address or phone number.")


class DecisionSerializer(SignedSerializer):
    approve = StrictBooleanField(help_text="true approves, false rejects ('This wasn't me').")
    match_code = serializers.CharField(
        max_length=16,
        required=False,
        allow_blank=True,
        default="",
        help_text="The number shown on the requesting screen (needed to approve).",
    )


class BindingCodeSerializer(serializers.Serializer):
    code = _text(64, help_text="The binding code from the QR code or link.")


class RedeemSerializer(NewKeySerializer):
    code = _text(64)


class ComparisonSerializer(serializers.Serializer):
    comparison_code = serializers.CharField(
        max_length=16, help_text="The short code shown on the new device."
    )


# -- output (documented shapes) ----------------------------------------------------------


class ChallengeOut(serializers.Serializer):
    challenge = serializers.CharField()
    expires_in = serializers.IntegerField()


class ApprovalChallengeOut(ChallengeOut):
    event_id = serializers.CharField()


class DeviceOut(serializers.Serializer):
    handle = serializers.CharField()
    name = serializers.CharField()
    algorithm = serializers.CharField()
    device_type = serializers.CharField()
    active = serializers.BooleanField()
    created_at = serializers.DateTimeField()
    last_used_at = serializers.DateTimeField(allow_null=True)


class DeviceListOut(serializers.Serializer):
    devices = DeviceOut(many=True)


class EnrolledOut(serializers.Serializer):
    device = DeviceOut()


class ApprovalStartedOut(serializers.Serializer):
    event_id = serializers.CharField()
    poll_secret = serializers.CharField(
        help_text=f"Send it back in the {POLL_SECRET_HEADER} header."
    )
    match_code = serializers.CharField(help_text="Show it; the approver must type it ('' if off).")
    interval = serializers.IntegerField(help_text="Seconds between plain polls (RFC 8628).")
    expires_in = serializers.IntegerField()


class ApprovedOut(serializers.Serializer):
    status = serializers.ChoiceField(choices=["approved"])
    event_id = serializers.CharField()
    access_token = serializers.CharField(required=False, help_text="First response only.")
    id_token = serializers.CharField(required=False)
    refresh_token = serializers.CharField(required=False)
    expires_in = serializers.IntegerField(required=False)
    token_type = serializers.CharField(required=False)
    auth_method = serializers.CharField(required=False)
    user = serializers.DictField(required=False)


class PollErrorOut(serializers.Serializer):
    error = serializers.ChoiceField(
        choices=["authorization_pending", "slow_down", "access_denied", "expired_token"]
    )
    message = serializers.CharField()
    interval = serializers.IntegerField()


class PendingRequestOut(serializers.Serializer):
    event_id = serializers.CharField()
    application = serializers.CharField(help_text="Name of the application that asked.")
    ip = serializers.CharField(allow_null=True, help_text="As the server saw it.")
    location = serializers.CharField(help_text="Approximate, if a geolocation backend is set.")
    browser = serializers.CharField(help_text="Parsed from the user agent.")
    os = serializers.CharField(help_text="Parsed from the user agent.")
    user_agent = serializers.CharField()
    created_at = serializers.DateTimeField()
    expires_in = serializers.IntegerField()


class PendingListOut(serializers.Serializer):
    requests = PendingRequestOut(many=True)


class DecisionOut(serializers.Serializer):
    event_id = serializers.CharField()
    status = serializers.ChoiceField(choices=["approved", "access_denied"])


class BindingStartedOut(serializers.Serializer):
    binding_id = serializers.CharField()
    code = serializers.CharField(help_text="Single use; put it (and origin) in the QR code.")
    origin = serializers.CharField()
    expires_in = serializers.IntegerField()


class BindingPreviewOut(serializers.Serializer):
    expires_in = serializers.IntegerField()


class BindingRedeemedOut(serializers.Serializer):
    status = serializers.ChoiceField(choices=["awaiting_confirmation"])
    comparison_code = serializers.CharField(help_text="Show it; the other device types it.")
    device = DeviceOut()


class BindingStatusOut(serializers.Serializer):
    binding_id = serializers.CharField()
    status = serializers.ChoiceField(
        choices=["waiting", "redeemed", "confirmed", "cancelled", "expired"]
    )
    expires_in = serializers.IntegerField()
    device = DeviceOut(allow_null=True)


# -- helpers ---------------------------------------------------------------------------------


def public_id(value: int) -> str:
    """Ids go out as zero-padded 16-digit strings: every response has the same length."""
    return f"{int(value):016d}"


def parse_public_id(value: object) -> int | None:
    if (
        isinstance(value, str)
        and 0 < len(value) <= 19
        and value.isascii()
        and value.isdigit()
        and 0 < int(value) <= MAX_PUBLIC_ID
    ):
        return int(value)
    return None


def _event_pk(value: object) -> int:
    pk = parse_public_id(value)
    if pk is None:
        raise EventNotFound()
    return pk


def _seconds_until(moment: Any) -> int:
    if moment is None:
        return 0
    return max(0, int((moment - timezone.now()).total_seconds()))


def trusted_device(handle: str) -> TrustedDevice:
    """An active trusted device by handle; unknown and removed devices look the same."""
    device = native.device_by_handle(handle)
    if device is None or not device.is_active:
        raise DeviceNotTrusted()
    return device


def device_body(device: TrustedDevice) -> dict[str, Any]:
    return {
        "handle": device.fingerprint,
        "name": device.name,
        "algorithm": device.algorithm,
        "device_type": device.device_type,
        "active": device.is_active,
        "created_at": rfc3339(device.created_at),
        "last_used_at": rfc3339(device.last_used_at),
    }


def pending_body(event: AuthEvent) -> dict[str, Any]:
    browser, system = describe_user_agent(event.user_agent)
    return {
        "event_id": public_id(event.pk),
        "application": event.application.name if event.application is not None else "",
        "ip": event.ip,
        "location": approximate_location(event.ip),
        "browser": browser,
        "os": system,
        "user_agent": event.user_agent,
        "created_at": rfc3339(event.created_at),
        "expires_in": _seconds_until(event.expires_at),
    }


# -- base views --------------------------------------------------------------------------------


class JSONAlways(DefaultContentNegotiation):
    """Answer JSON whatever ``Accept`` says (an error for an event-stream request, too)."""

    def select_renderer(self, request: Request, renderers: list[Any], format_suffix: Any = None):  # type: ignore[override]
        return renderers[0], renderers[0].media_type


class DeviceAPIView(NativeAPIView):
    schema = NativeSchema()
    content_negotiation_class = JSONAlways


class UserAPIView(DeviceAPIView):
    """Acts for the signed-in user: ``Authorization: Bearer <access token>``."""

    authentication_classes = [AccessTokenUserAuthentication]
    permission_classes = [IsAuthenticated]

    def identity(self, request: Request) -> UserIdentity:
        return identity_for_user(request.user)

    def require_recent_sign_in(self, request: Request) -> None:
        """Adding a device needs a recent sign-in (``AUTHDEVICE_REAUTHENTICATION_SECONDS``):
        the access token's ``auth_time``, which refreshes keep."""
        claims = request.auth if isinstance(request.auth, dict) else {}
        device_flows.require_recent_sign_in(claims.get("auth_time"))

    def handle_exception(self, exc: Exception) -> Response:
        response = super().handle_exception(exc)
        if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
            response.status_code = 401
            response["WWW-Authenticate"] = 'Bearer realm="api"'
        return response


# -- devices -------------------------------------------------------------------------------------


class DeviceListView(UserAPIView):
    @document(
        summary="List the signed-in user's trusted devices",
        responses={200: DeviceListOut, **error_responses(400, 401)},
    )
    def get(self, request: Request) -> Response:
        self.get_application(request)
        devices = device_flows.list_devices(request.user, include_unconfirmed=True)
        return no_store(Response({"devices": [device_body(d) for d in devices]}))


class DeviceView(UserAPIView):
    @document(
        summary="Remove one of the signed-in user's devices",
        description="Its signatures stop working on the next request; refresh tokens issued "
        "through it are revoked.",
        responses={204: None, **error_responses(400, 401, 404)},
    )
    def delete(self, request: Request, handle: str) -> Response:
        self.get_application(request)
        device = native.device_by_handle(handle)
        if device is None or device.user_id != request.user.pk or device.revoked_at is not None:
            return error_response("device_not_found", _("Device not found."), 404)
        remove_device(
            device, actor=f"user:{request.user.pk}", reason="removed by user", request=request
        )
        return no_store(Response(status=204))


class EnrolChallengeView(UserAPIView):
    @document(
        summary="Challenge for enrolling this device's key",
        description="Sign `enrol` with `extra` = the new key's handle.",
        request=None,
        responses={200: ChallengeOut, **error_responses(400, 401)},
    )
    def post(self, request: Request) -> Response:
        self.get_application(request)
        self.require_recent_sign_in(request)
        challenge = native.enrolment_challenge(self.identity(request))
        return no_store(
            Response(
                {
                    "challenge": challenge.value,
                    "expires_in": _seconds_until(challenge.expires_at),
                }
            )
        )


class EnrolView(UserAPIView):
    @document(
        summary="Enrol this device's key (proof of possession)",
        request=EnrolSerializer,
        responses={201: EnrolledOut, **error_responses(400, 401, 409, 415)},
    )
    def post(self, request: Request) -> Response:
        application = self.get_application(request)
        self.require_recent_sign_in(request)
        data = self.validated(EnrolSerializer, request)
        device = native.enrol_with_proof(
            identity=self.identity(request),
            public_key=data["public_key"],
            algorithm=data["algorithm"],
            challenge=data["challenge"],
            signature=data["signature"],
            name=data["name"],
            device_type=data["device_type"],
            application=application,
            request=request,
        )
        return no_store(Response({"device": device_body(device)}, status=201))


class LoginChallengeView(DeviceAPIView):
    @document(
        summary="Challenge for signing in with a trusted device",
        request=DeviceRefSerializer,
        responses={200: ChallengeOut, **error_responses(400, 401, 415)},
    )
    def post(self, request: Request) -> Response:
        self.get_application(request)
        data = self.validated(DeviceRefSerializer, request)
        challenge = native.login_challenge(trusted_device(data["device"]))
        return no_store(
            Response(
                {"challenge": challenge.value, "expires_in": _seconds_until(challenge.expires_at)}
            )
        )


class LoginView(DeviceAPIView):
    @document(
        summary="Sign in with a trusted device's signature",
        description="Sign `login` over the challenge; returns a token set.",
        request=SignedSerializer,
        responses={200: TokenSetSerializer, **error_responses(400, 401, 415)},
    )
    def post(self, request: Request) -> Response:
        application = self.get_application(request)
        data = self.validated(SignedSerializer, request)
        signed_in = native.device_login(
            device=trusted_device(data["device"]),
            challenge=data["challenge"],
            signature=data["signature"],
            application=application,
            request=request,
        )
        assert signed_in.tokens is not None
        body = {
            **signed_in.tokens.as_cotter(),
            "user": user_object(signed_in.identity, issuer=application.api_key_id),
        }
        return no_store(Response(body))


# -- approvals: the requester -----------------------------------------------------------------


class StartApprovalView(DeviceAPIView):
    @document(
        summary="Ask the user's trusted devices to approve this sign-in",
        description="Known and unknown identifiers get the same status and shape (an unknown "
        "one gets a request that stays pending, then expires). Show `match_code`; wait with "
        "`GET /api/v1/approvals/{event_id}`.",
        request=StartApprovalSerializer,
        responses={201: ApprovalStartedOut, **error_responses(400, 415, 429, 503)},
    )
    def post(self, request: Request) -> Response:
        application = self.get_application(request)
        data = self.validated(StartApprovalSerializer, request)
        started = native.start_approval_for_identifier(
            identifier=data["identifier"], application=application, request=request
        )
        body = {
            "event_id": public_id(started.event.pk),
            "poll_secret": started.poll_secret,
            "match_code": started.match_code,
            "interval": started.interval,
            "expires_in": int(app_settings.PENDING_EVENT_LIFETIME),
        }
        return no_store(Response(body, status=201))


POLL_MESSAGES = {
    "authorization_pending": "Waiting for approval on a trusted device.",
    "slow_down": "Polling too fast: wait `interval` seconds between polls.",
    "access_denied": "The sign-in was rejected.",
    "expired_token": "The request has expired; start a new one.",
}


def poll_error(status: str, interval: int) -> Response:
    """RFC 8628 §3.5: every outcome but approval is a 400 with ``error``."""
    return no_store(
        Response({"error": status, "message": POLL_MESSAGES[status], "interval": interval}, 400)
    )


WAIT_PARAMETER = OpenApiParameter(
    "wait",
    OpenApiTypes.NUMBER,
    OpenApiParameter.QUERY,
    required=False,
    description="Long-poll: hold the request up to this many seconds (at most "
    "AUTHDEVICE_MAX_WAIT, 25 by default) until the request is decided.",
)


class ApprovalStatusView(DeviceAPIView):
    """The requester's plain poll (under ASGI, :func:`wait_for_status` waits first)."""

    @document(
        summary="The outcome of an approval request (poll, long-poll or event stream)",
        description="RFC 8628 semantics: approval answers 200 (the token set on the first "
        "such response only, later just the status); everything else answers 400 with "
        "`error` = `authorization_pending`, `slow_down` (polled faster than `interval`; it "
        "grew by 5 s), `access_denied` or `expired_token`. A wrong or missing "
        f"`{POLL_SECRET_HEADER}` answers 404. With `Accept: {EVENT_STREAM}` the answer is a "
        'stream of `status` events (`data: {"status": ...}`) that ends once decided; then '
        "fetch the tokens with a plain GET. A long-poll of at least `interval` seconds is "
        "never `slow_down`. Waiting and streaming need the ASGI server; under WSGI the "
        "plain poll answers at once.",
        parameters=[WAIT_PARAMETER],
        auth=[{"apiKey": [], "pollSecret": []}],
        responses={
            (200, "application/json"): ApprovedOut,
            (200, EVENT_STREAM): OpenApiResponse(
                OpenApiTypes.STR, description="Server-sent events (Accept: text/event-stream)."
            ),
            (400, "application/json"): OpenApiResponse(
                PollErrorOut, description="Not approved (yet): RFC 8628 error codes."
            ),
            (404, "application/json"): OpenApiResponse(
                ErrorSerializer, description="Unknown request or wrong poll secret."
            ),
        },
    )
    def get(self, request: Request, event_id: str) -> Response:
        application = self.get_application(request)
        pk = _event_pk(event_id)
        secret = request.headers.get(POLL_SECRET_HEADER)
        # A long-poll that really waited at least `interval` paces itself: no slow_down.
        waited = float(getattr(request, "authdevice_waited", 0.0))
        result = native.poll(
            pk,
            secret,
            enforce_interval=waited < float(app_settings.POLL_INTERVAL),
            application=application,
        )
        if result.status != "approved":
            return poll_error(result.status, result.interval)
        body: dict[str, Any] = {"status": "approved", "event_id": public_id(pk)}
        if result.tokens is not None and result.event is not None:
            identity = identity_for_user(result.event.user)
            body.update(result.tokens.as_cotter())
            body["user"] = user_object(
                identity, issuer=application.api_key_id, identifier=result.identifier
            )
        return no_store(Response(body))


def _watch(request: HttpRequest, event_id: str) -> tuple[int, Callable[[], AuthEvent]] | None:
    """Whether this caller may wait on the request: the event's id and a loader, or None
    (the plain view then renders the refusal)."""
    pk = parse_public_id(event_id)
    if pk is None or get_application(request.META.get(API_KEY_HEADER)) is None:
        return None
    load = functools.partial(native.peek, pk, request.headers.get(POLL_SECRET_HEADER))
    try:
        load()
    except FlowError:
        return None
    return pk, load


def _render_status(request: HttpRequest, event_id: str) -> HttpResponse:
    response = ApprovalStatusView.as_view()(request, event_id=event_id)
    response.render()
    return response


def _stream_body(event: AuthEvent) -> dict[str, Any]:
    return {"status": native.status_of(event)}


async def wait_for_status(request: HttpRequest, event_id: str) -> HttpResponse:
    """Under ASGI: with ``Accept: text/event-stream`` a stream of statuses; with ``?wait=N``
    waits (up to N s) for a decision; then answers exactly as the plain poll does."""
    if request.method == "GET":
        stream = EVENT_STREAM in request.headers.get("Accept", "")
        wait = clamp_wait(request.GET.get("wait"))
        if stream or wait > 0:
            watch = await sync_to_async(_watch, thread_sensitive=False)(request, event_id)
            if watch is not None:
                pk, load = watch
                if stream:
                    return sse_response(pk, load, _stream_body)
                with contextlib.suppress(FlowError):
                    await wait_until_decided(pk, load, wait)
                    request.authdevice_waited = wait  # type: ignore[attr-defined]
    return await sync_to_async(_render_status)(request, event_id)


#: ``GET /api/v1/approvals/<id>``: waits under ASGI (uvicorn); under WSGI (gunicorn) the
#: plain poll answers at once, so a sync worker is never held by a waiting client.
approval_status = ServerAwareView(
    ApprovalStatusView.as_view(), wait_for_status, cls=ApprovalStatusView
)


# -- approvals: the trusted device ---------------------------------------------------------------


class PendingApprovalsView(UserAPIView):
    @document(
        summary="Sign-in requests waiting for the signed-in user's approval",
        description="What the server saw of each requester (IP, browser and OS from the user "
        "agent, application, time; approximate place if a geolocation backend is set). "
        "Never the number to type: that is only on the requesting screen.",
        responses={200: PendingListOut, **error_responses(400, 401)},
    )
    def get(self, request: Request) -> Response:
        self.get_application(request)
        events = native.pending_for(self.identity(request))
        return no_store(Response({"requests": [pending_body(e) for e in events]}))


class ApprovalChallengeView(DeviceAPIView):
    @document(
        summary="Challenge for approving or rejecting one request",
        description="Sign `approve` with `event_id` and `decision` (`approve` or `reject`).",
        request=DeviceRefSerializer,
        responses={200: ApprovalChallengeOut, **error_responses(400, 401, 404, 415)},
    )
    def post(self, request: Request, event_id: str) -> Response:
        self.get_application(request)
        pk = _event_pk(event_id)
        data = self.validated(DeviceRefSerializer, request)
        device = trusted_device(data["device"])
        identity = identity_for_user(device.user)
        event = next((e for e in native.pending_for(identity) if e.pk == pk), None)
        if event is None:
            raise EventNotFound()
        challenge = native.approval_challenge(device, event)
        return no_store(
            Response(
                {
                    "event_id": public_id(pk),
                    "challenge": challenge.value,
                    "expires_in": _seconds_until(challenge.expires_at),
                }
            )
        )


class DecisionView(DeviceAPIView):
    @document(
        summary="Approve (with the number shown on the other screen) or reject",
        description="Three wrong numbers cancel the request. Approve and reject race "
        "safely: exactly one decision wins, the other gets 409 `already_decided`.",
        request=DecisionSerializer,
        responses={200: DecisionOut, **error_responses(400, 401, 404, 409, 415)},
    )
    def post(self, request: Request, event_id: str) -> Response:
        self.get_application(request)
        pk = _event_pk(event_id)
        data = self.validated(DecisionSerializer, request)
        event = native.decide(
            event_id=pk,
            device=trusted_device(data["device"]),
            challenge=data["challenge"],
            signature=data["signature"],
            approve=data["approve"],
            match_code=data["match_code"],
            request=request,
        )
        return no_store(Response({"event_id": public_id(pk), "status": native.status_of(event)}))


# -- adding a device by QR code -------------------------------------------------------------------


def _binding_pk(value: object) -> int:
    pk = parse_public_id(value)
    if pk is None:
        raise native.BindingInvalid()
    return pk


class StartBindingView(UserAPIView):
    @document(
        summary="Start adding a device by QR code",
        description="The QR code holds only `origin` and `code`. The new device redeems the "
        "code; this side then confirms with the comparison code the new device shows.",
        request=None,
        responses={201: BindingStartedOut, **error_responses(400, 401)},
    )
    def post(self, request: Request) -> Response:
        self.get_application(request)
        self.require_recent_sign_in(request)
        started = native.start_binding(self.identity(request))
        body = {
            "binding_id": public_id(started.binding.pk),
            "code": started.code,
            "origin": app_settings.base_url,
            "expires_in": _seconds_until(started.binding.expires_at),
        }
        return no_store(Response(body, status=201))


def _binding_status(binding: Any) -> str:
    if binding.confirmed_at is not None:
        return "confirmed"
    if binding.cancelled_at is not None:
        return "cancelled"
    if binding.redeemed_at is not None:
        return "redeemed"
    if timezone.now() >= binding.expires_at:
        return "expired"
    return "waiting"


class BindingView(UserAPIView):
    @document(
        summary="State of a binding the signed-in user started",
        description="Once redeemed, shows the new device (name, type, algorithm) to compare.",
        responses={200: BindingStatusOut, **error_responses(400, 401)},
    )
    def get(self, request: Request, binding_id: str) -> Response:
        self.get_application(request)
        binding = native.binding_of(request.user, _binding_pk(binding_id))
        if binding is None:
            raise native.BindingInvalid()
        body = {
            "binding_id": public_id(binding.pk),
            "status": _binding_status(binding),
            "expires_in": _seconds_until(binding.expires_at),
            "device": device_body(binding.device) if binding.device is not None else None,
        }
        return no_store(Response(body))


class BindingPreviewView(DeviceAPIView):
    @document(
        summary="Check a binding code before making a key",
        request=BindingCodeSerializer,
        responses={200: BindingPreviewOut, **error_responses(400, 415)},
    )
    def post(self, request: Request) -> Response:
        self.get_application(request)
        data = self.validated(BindingCodeSerializer, request)
        binding = native.preview_binding(data["code"])
        if binding is None:
            raise native.BindingInvalid()
        return no_store(Response({"expires_in": _seconds_until(binding.expires_at)}))


class BindingRedeemView(DeviceAPIView):
    @document(
        summary="Redeem a binding code with the new device's key",
        description="Sign `bind` over the code with `extra` = the new key's handle. The device "
        "cannot sign in until the other side confirms the comparison code.",
        request=RedeemSerializer,
        responses={201: BindingRedeemedOut, **error_responses(400, 401, 415)},
    )
    def post(self, request: Request) -> Response:
        self.get_application(request)
        data = self.validated(RedeemSerializer, request)
        _binding, device, compare = native.redeem_binding(
            code=data["code"],
            public_key=data["public_key"],
            algorithm=data["algorithm"],
            signature=data["signature"],
            name=data["name"],
            device_type=data["device_type"],
            request=request,
        )
        body = {
            "status": "awaiting_confirmation",
            "comparison_code": compare,
            "device": device_body(device),
        }
        return no_store(Response(body, status=201))


class BindingConfirmView(UserAPIView):
    @document(
        summary="Confirm the new device (type the code it shows)",
        request=ComparisonSerializer,
        responses={200: EnrolledOut, **error_responses(400, 401, 415)},
    )
    def post(self, request: Request, binding_id: str) -> Response:
        self.get_application(request)
        data = self.validated(ComparisonSerializer, request)
        device = native.confirm_binding(
            binding_id=_binding_pk(binding_id),
            identity=self.identity(request),
            comparison=data["comparison_code"],
            request=request,
        )
        return no_store(Response({"device": device_body(device)}))


class BindingCancelView(UserAPIView):
    @document(
        summary="Refuse the new device (the codes did not match)",
        request=None,
        responses={204: None, **error_responses(400, 401)},
    )
    def post(self, request: Request, binding_id: str) -> Response:
        self.get_application(request)
        native.cancel_binding(binding_id=_binding_pk(binding_id), identity=self.identity(request))
        return no_store(Response(status=204))
