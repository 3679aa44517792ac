"""Cotter's authentication events (reference/cotter-api.md §1.5 group B, B1-B6; §4.1, §4.2).

Doors only: signatures, the timestamp window, the replay cache, expiry, push-bombing limits
and the one-time token hand-out are rules of ``authdevice.flows.devices`` and
``authdevice.flows.events``. Every failure is a Cotter error body ``{"msg", "type"}`` with
a 4xx status (bad signature 401, unknown device 401, stale timestamp or replay 400,
decided event 409, unknown event 404, too many pending requests 429).
"""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse
from django.utils.cache import add_never_cache_headers
from django.utils.translation import gettext as _
from rest_framework.request import Request
from rest_framework.response import Response

from ...flows import devices as device_flows
from ...flows import events as event_flows
from ...models import Application, AuthEvent, UserIdentity
from .event_objects import event_object
from .users import (
    TRUSTED_DEVICE,
    DeviceAPIView,
    InvalidRequest,
    MethodNotSupported,
    check_issuer,
    identity_from_body,
    identity_or_404,
    no_store,
    text_field,
    wants_oauth_token,
)

MAX_EVENT_CHARS = 40  # AuthEvent.event; longer names would not match the signed string
MAX_TIMESTAMP_CHARS = 20


def _event_name(data: Any) -> str:
    name = text_field(data, "event", required=True, max_length=MAX_EVENT_CHARS)
    if not name.isprintable():
        raise InvalidRequest(_("event is not valid."))
    return name


def _timestamp(data: Any) -> str:
    """The device's unix seconds, a decimal string (Cotter's SDKs send a string)."""
    value = text_field(data, "timestamp", required=True, max_length=MAX_TIMESTAMP_CHARS)
    if not (value.isascii() and value.isdigit()):
        raise InvalidRequest(_("timestamp must be unix seconds."))
    return value


def _reported(data: Any) -> tuple[str, str]:
    """``ip`` and ``location`` as the client reported them (Android omits ``location``)."""
    return text_field(data, "ip", max_length=64), text_field(data, "location", max_length=100)


def _require_trusted_device_method(data: Any) -> None:
    if data.get("method") != TRUSTED_DEVICE:
        raise MethodNotSupported()


def _json_null() -> HttpResponse:
    """JSON ``null``: "no pending event" (RN ``if (resp)``, iOS ``CotterEvent?``)."""
    response = HttpResponse(b"null", content_type="application/json")
    add_never_cache_headers(response)
    return response


class CreateEventView(DeviceAPIView):
    """B1 ``POST /event/create``: a trusted device signs
    ``uid + issuer + event + timestamp + "TRUSTED_DEVICE" + "true"`` and is signed in at once
    (``?oauth_token=true`` adds the token set, ``auth_method: TRUSTED_DEVICE``).

    With ``register_new_device: true`` it vouches instead for the key it read from another
    device's QR code (signed string ends with that key; reference §2.3); the new device is
    enrolled and the approved event returned (no tokens: nobody signed in)."""

    def post(self, request: Request) -> Response:
        application = self.get_application(request)
        data = self.body(request)
        # The device, its user and identifier in one query; used only when the request's
        # user id can only mean that user (else the usual lookups and errors follow).
        context = None
        if data.get("register_new_device", False) is False:
            context = device_flows.device_for_sign_in(data.get("public_key"))
        identity, uid = identity_from_body(data, known=context[1] if context else None)
        check_issuer(data, application)
        _require_trusted_device_method(data)
        if data.get("approved", True) is not True:
            raise InvalidRequest(_("approved must be true."))
        timestamp = _timestamp(data)
        reported_ip, reported_location = _reported(data)
        register = data.get("register_new_device", False)
        if not isinstance(register, bool):
            raise InvalidRequest(_("register_new_device must be true or false."))
        if register:
            row, _device = device_flows.enrol_from_qr(
                identity=identity,
                uid=uid,
                application=application,
                timestamp=timestamp,
                public_key=data.get("public_key"),
                signature=data.get("code"),
                new_public_key=data.get("new_device_public_key"),
                new_algorithm=data.get("new_device_algorithm"),
                name=text_field(data, "device_name"),
                device_type=text_field(data, "device_type"),
                reported_ip=reported_ip,
                reported_location=reported_location,
                request=request,
            )
            return no_store(Response(event_object(row)))
        signed_in = device_flows.sign_in_with_device(
            identity=identity,
            uid=uid,
            application=application,
            event=_event_name(data),
            timestamp=timestamp,
            public_key=data.get("public_key"),
            signature=data.get("code"),
            reported_ip=reported_ip,
            reported_location=reported_location,
            request=request,
            found=(context[0], context[2]) if context and context[1] is identity else None,
        )
        body = event_object(
            signed_in.event,
            state=AuthEvent.State.APPROVED,
            identity=identity,
            application=application,
        )
        if wants_oauth_token(request):
            body["oauth_token"] = signed_in.tokens.as_cotter()
        return no_store(Response(body))


class CreatePendingEventView(DeviceAPIView):
    """B2 ``POST /event/create_pending``: a device that is not trusted asks the user's
    trusted devices for approval; answers the Event with ``new: true`` (the client polls B4
    with its ``ID``)."""

    def post(self, request: Request) -> Response:
        application = self.get_application(request)
        data = self.body(request)
        identity, _uid = identity_from_body(data)
        check_issuer(data, application)
        _require_trusted_device_method(data)
        reported_ip, reported_location = _reported(data)
        row = event_flows.create_pending_event(
            identity=identity,
            application=application,
            event=_event_name(data),
            client_timestamp=_timestamp(data),
            reported_ip=reported_ip,
            reported_location=reported_location,
            request=request,
        )
        return no_store(Response(event_object(row)))


class RespondEventView(DeviceAPIView):
    """B3 ``POST /event/respond/<id>``: an active trusted device of the same user approves
    or rejects, signing ``uid + issuer + pending.event + pending.timestamp +
    "TRUSTED_DEVICE" + "true"|"false"`` (the stored event and timestamp count, not the
    body's). A dismissed Flutter prompt sends ``approved: null``: a 400, nothing changes."""

    def post(self, request: Request, event_id: str) -> Response:
        application = self.get_application(request)
        data = self.body(request)
        event = event_flows.get_event(event_id, application)
        identity, uid = identity_from_body(data, known=event_flows.event_identity(event))
        check_issuer(data, application)
        _require_trusted_device_method(data)
        approved = data.get("approved")
        if not isinstance(approved, bool):
            raise InvalidRequest(_("approved must be true or false."))
        decision = event_flows.respond_to_event(
            event=event,
            identity=identity,
            uid=uid,
            application=application,
            approved=approved,
            public_key=data.get("public_key"),
            signature=data.get("code"),
            request=request,
        )
        return no_store(
            Response(event_object(decision.event, identity=identity, application=application))
        )


class GetEventView(DeviceAPIView):
    """B4 ``GET /event/get/<id>[?oauth_token=true]``: the requester's poll. The approved
    request's token set is handed out once, to the first poll that asks for it; rejected
    and expired requests never yield tokens (expired reads ``new: false, approved: false``).
    """

    def get(self, request: Request, event_id: str) -> Response:
        application = self.get_application(request)
        event = event_flows.get_event(event_id, application)
        state = event_flows.effective_state(event)
        body = event_object(event, state=state)
        if wants_oauth_token(request) and state == AuthEvent.State.APPROVED:
            tokens = event_flows.hand_out_tokens(event)
            if tokens is not None:
                body["oauth_token"] = tokens.as_cotter()
        return no_store(Response(body))


def _newest_pending(identity: UserIdentity, application: Application) -> HttpResponse:
    # A request made through another application cannot be answered through this one
    # (B3 looks events up per application), so only this application's are offered.
    row = event_flows.newest_pending_event(identity, application)
    if row is None:
        return _json_null()
    return no_store(Response(event_object(row, identity=identity, application=application)))


class NewEventView(DeviceAPIView):
    """B5 ``GET /event/new/<user_id>``: the user's newest pending request, or JSON null."""

    def get(self, request: Request, user_id: str) -> HttpResponse:
        application = self.get_application(request)
        return _newest_pending(identity_or_404(user_id), application)


class NewEventQueryView(DeviceAPIView):
    """B6 ``GET /event/new?cotter_user_id=<id>`` (or ``?client_user_id=<id>``): as B5."""

    def get(self, request: Request) -> HttpResponse:
        application = self.get_application(request)
        uid = request.query_params.get("cotter_user_id") or request.query_params.get(
            "client_user_id"
        )
        if not uid:
            raise InvalidRequest(_("cotter_user_id or client_user_id is required."))
        return _newest_pending(identity_or_404(uid), application)
