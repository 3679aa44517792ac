"""Trusted devices on the server-rendered pages: the browser as a trusted device.

* **This browser as a trusted device.** ``static/authdevice/device.js`` makes a WebCrypto
  ECDSA P-256 key pair (private key non-extractable, kept in IndexedDB), and signs the
  native protocol's messages (:func:`authdevice.flows.native.signed_message`) with it. Only
  the public key (SPKI) leaves the browser. These views hand out challenges and call the
  flows; the session (with CSRF) says who is signed in, the signature which device acts.
* **Approve from my device.** A browser that is not trusted starts an approval for the
  identifier typed on the sign-in page, shows the number and waits (server-sent events,
  long-poll fallback: :mod:`authdevice.api.waiting`, async views for ASGI) until a trusted
  device of that user approves with the number, rejects, or the request expires. The poll
  secret stays in this browser's pre-session; the approved event signs it in once.
* **Device management.** List, rename, remove; add a device by QR code (only the server
  origin and a single-use binding code in it), confirmed on this side after comparing a
  short code shown on both screens (security.md D01-D05).

Doors only: every state change is a flow in :mod:`authdevice.flows`. JSON endpoints
answer ``{"error": code, "message": text}``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import urlencode, urlsplit

import django_otp
import segno
from asgiref.sync import sync_to_async
from django import forms
from django.contrib import auth
from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseBase,
    HttpResponseRedirect,
    JsonResponse,
)
from django.http.request import RawPostDataException
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from ..api.waiting import clamp_wait, sse_response, wait_until_decided
from ..asgi import ServerAwareView
from ..conf import app_settings
from ..flows import devices as device_flows
from ..flows import native
from ..flows.codes import mask_identifier
from ..flows.devices import remove_device, rename_device
from ..flows.errors import FlowError
from ..flows.events import EventNotFound
from ..flows.identities import identity_for_user, primary_identifier
from ..flows.ratelimit import Limit, RateLimited, hit
from ..http import approximate_location, client_ip, has_lone_surrogate, user_agent
from ..http import describe_user_agent as parse_user_agent
from ..models import AuthEvent, DeviceBinding, TrustedDevice, UserIdentity
from . import presession
from .csrf import csrf_protect
from .headers import SCRIPTS_ATTR, auth_page
from .views import HttpResponseSeeOther, error_message, safe_next

logger = logging.getLogger("authdevice.web")

T = "authdevice/web/devices/"
#: When this session signed in (unix seconds), set on every login (receiver below).
AUTH_AT_SESSION_KEY = "authdevice_auth_at"
#: The trusted device this session signed in with or enrolled (marked on the pages).
THIS_DEVICE_SESSION_KEY = "authdevice_this_device"
MAX_JSON_BYTES = 8192
MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"
#: Challenge and redeem requests from browsers that are not signed in, per client IP.
ANONYMOUS_LIMIT = Limit("web-device", 30, 60)

NOTICES = {
    "added": gettext_lazy("This browser is now a trusted device."),
    "renamed": gettext_lazy("The device was renamed."),
    "removed": gettext_lazy("The device was removed. It can no longer sign in or approve."),
    "confirmed": gettext_lazy("The new device was added."),
    "cancelled": gettext_lazy("Adding the device was cancelled. It was not added."),
}


@receiver(user_logged_in, dispatch_uid="authdevice.web.devices.sign_in_time")
def remember_sign_in_time(sender: Any, request: HttpRequest | None, **kwargs: Any) -> None:
    """Record when this session signed in (for the recent-sign-in rule, D03)."""
    session = getattr(request, "session", None)
    if session is not None:
        session[AUTH_AT_SESSION_KEY] = int(timezone.now().timestamp())


# -- what the server saw: user agent and place ---------------------------------------------


def describe_user_agent(value: str) -> str:
    """ "Chrome 126 on Windows" (see :func:`authdevice.http.describe_user_agent`)."""
    browser, system = parse_user_agent(value)
    if browser and system:
        return _("%(browser)s on %(system)s") % {"browser": browser, "system": system}
    return browser or system or _("Unknown browser")


def locate(ip: str | None) -> str:
    """The approximate place of ``ip`` (``AUTHDEVICE_GEOLOCATION_BACKEND``), or ""."""
    return approximate_location(ip)


# -- helpers -------------------------------------------------------------------------------


def _page(
    request: HttpRequest, template: str, context: dict[str, Any], *, status: int = 200
) -> HttpResponse:
    response = render(request, T + template, context, status=status)
    setattr(response, SCRIPTS_ATTR, True)
    return response


def _json(data: dict[str, Any], status: int = 200) -> JsonResponse:
    response = JsonResponse(data, status=status)
    add_never_cache_headers(response)
    return response


def _json_error(code: str, message: str, status: int) -> JsonResponse:
    return _json({"error": code, "message": str(message)}, status)


def _flow_error(exc: FlowError) -> JsonResponse:
    messages = {
        "challenge_used": _("This request took too long. Please try again."),
        "bad_signature": _("This browser's key was not accepted."),
        "device_not_trusted": _("This browser is not a trusted device any more."),
        "invalid_public_key": _("This browser's key was not accepted."),
        "public_key_taken": _("This browser's key is already in use."),
        "invalid_binding": _("This link is not valid or has expired. Start again."),
        "event_not_found": _("This sign-in request was not found."),
        "already_decided": _("This request was already approved, refused or has expired."),
    }
    response = _json_error(exc.code, messages.get(exc.code) or error_message(exc), exc.status)
    if isinstance(exc, RateLimited):
        response["Retry-After"] = str(exc.retry_after)
    return response


def _body(request: HttpRequest) -> dict[str, Any]:
    """The JSON object the page's script posted ({} when it is not one: too long, not
    JSON, nested past the recursion limit, holding a lone surrogate, or a form body that
    the CSRF check already read)."""
    try:
        raw = request.body
    except RawPostDataException:
        return {}
    if len(raw) > MAX_JSON_BYTES:
        return {}
    try:
        data = json.loads(raw or b"{}")
    except (ValueError, RecursionError):
        return {}
    if not isinstance(data, dict) or (b"\\u" in raw and has_lone_surrogate(data)):
        return {}
    return data


def _text(data: dict[str, Any], name: str, limit: int = 200) -> str:
    value = data.get(name)
    return value[:limit] if isinstance(value, str) else ""


def _clean_name(value: object, fallback: str) -> str:
    """A device name as the person typed it: printable, single line, at most 64 chars.
    (Rendered escaped everywhere; never trusted as markup.)"""
    text = value if isinstance(value, str) else ""
    text = " ".join("".join(ch for ch in text if ch.isprintable()).split())[:64]
    return text or fallback[:64]


def _signin_url(request: HttpRequest) -> str:
    return f"{reverse('authdevice_web:signin')}?{urlencode({'next': request.get_full_path()})}"


def _recently_signed_in(request: HttpRequest) -> bool:
    at = request.session.get(AUTH_AT_SESSION_KEY)
    if not isinstance(at, int):
        return False
    # AUTHDEVICE_REAUTHENTICATION_SECONDS (security.md D03; allauth's default window too).
    return 0 <= timezone.now().timestamp() - at <= int(app_settings.REAUTHENTICATION_SECONDS)


def signed_in_page(view: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
    """Pages for a signed-in person: others go to the sign-in page (and come back)."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if not request.user.is_authenticated:
            if request.method in ("GET", "HEAD"):
                return HttpResponseRedirect(_signin_url(request))
            return HttpResponseSeeOther(reverse("authdevice_web:signin"))
        return view(request, *args, **kwargs)

    return wrapper


def signed_in_json(view: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if not request.user.is_authenticated:
            return _json_error("login_required", _("Please sign in again."), 401)
        return view(request, *args, **kwargs)

    return wrapper


def _limit_anonymous(request: HttpRequest) -> JsonResponse | None:
    try:
        hit(ANONYMOUS_LIMIT, client_ip(request) or "unknown")
    except FlowError as exc:
        return _flow_error(exc)
    return None


def _own_device(request: HttpRequest, handle: object) -> TrustedDevice | JsonResponse:
    """The signed-in user's device named by its key fingerprint: 404 for anyone else's,
    401 when it was removed or revoked."""
    device = native.device_by_handle(handle)
    if device is None or device.user_id != request.user.pk:
        return _json_error("unknown_device", _("This browser is not a trusted device."), 404)
    if not device.is_active:
        return _json_error(
            "device_not_trusted", _("This browser is not a trusted device any more."), 401
        )
    return device


def _challenge_json(challenge: Any, **extra: Any) -> JsonResponse:
    # ``origin`` is the server origin inside every signed message (AUTHDEVICE_BASE_URL).
    return _json({"challenge": challenge.value, "origin": app_settings.base_url, **extra})


def _sign_in(request: HttpRequest, user: Any, device: TrustedDevice) -> None:
    """Log this browser in (auth.login rotates the session key: security.md K03)."""
    auth.login(request, user, backend=MODEL_BACKEND)
    django_otp.login(request, device)


# -- sign in with this device (the sign-in page) ------------------------------------------


@auth_page
@csrf_protect
@require_POST
def device_login_challenge(request: HttpRequest) -> HttpResponseBase:
    """A login challenge for the device this browser holds the key of."""
    limited = _limit_anonymous(request)
    if limited is not None:
        return limited
    device = native.device_by_handle(_body(request).get("handle"))
    if device is None or not device.is_active or not device.user.is_active:
        return _json_error(
            "unknown_device", _("This browser is not a trusted device any more."), 404
        )
    try:
        return _challenge_json(native.login_challenge(device))
    except FlowError as exc:  # rate limited per device
        return _flow_error(exc)


@auth_page
@csrf_protect
@require_POST
def device_login(request: HttpRequest) -> HttpResponseBase:
    """The browser signed the login challenge: start a session for the device's user."""
    data = _body(request)
    device = native.device_by_handle(data.get("handle"))
    if device is None or not device.is_active or not device.user.is_active:
        return _json_error(
            "unknown_device", _("This browser is not a trusted device any more."), 404
        )
    try:
        native.device_login(
            device=device,
            challenge=data.get("challenge"),
            signature=data.get("signature"),
            request=request,
        )
    except FlowError as exc:
        return _flow_error(exc)
    _sign_in(request, device.user, device)
    request.session[THIS_DEVICE_SESSION_KEY] = device.pk
    target = safe_next(request, data.get("next")) or reverse("authdevice_web:done")
    return _json({"redirect": target})


# -- approve from my device (a browser that is not trusted) -------------------------------


class ApprovalStartForm(forms.Form):
    identifier = forms.CharField(
        max_length=254,
        strip=True,
        label=gettext_lazy("Email address or phone number"),
        error_messages={"required": gettext_lazy("Enter your email address or phone number.")},
    )
    next = forms.CharField(required=False, strip=False)


def _approval(flow: dict[str, Any] | None) -> dict[str, Any] | None:
    approval = (flow or {}).get("approval")
    return approval if isinstance(approval, dict) else None


def _approval_urls(flow_id: str) -> dict[str, str]:
    query = urlencode({"flow": flow_id})
    return {
        "events_url": f"{reverse('authdevice_web:approval-events')}?{query}",
        "status_url": f"{reverse('authdevice_web:approval-status')}?{query}",
    }


def _waiting_page(
    request: HttpRequest,
    flow_id: str,
    approval: dict[str, Any],
    status: str,
    *,
    notice: str = "",
    http_status: int = 200,
) -> HttpResponse:
    context = {
        "flow_id": flow_id,
        "match_code": approval.get("code", ""),
        "masked": mask_identifier(approval.get("identifier", "")),
        "identifier": approval.get("identifier", ""),
        "status": status,
        "notice": notice,
        "approvals_url": app_settings.base_url + reverse("authdevice_web:approvals"),
        "next": (presession.get_flow(request, flow_id) or {}).get("next", ""),
        **_approval_urls(flow_id),
    }
    return _page(request, "waiting.html", context, status=http_status)


def _approval_status(approval: dict[str, Any]) -> str:
    try:
        return native.status_of(native.peek(approval["event"], approval["secret"]))
    except EventNotFound:
        return "expired_token"


@auth_page
@csrf_protect
@require_http_methods(["GET", "HEAD", "POST"])
def approval_start(request: HttpRequest) -> HttpResponseBase:
    """POST (the sign-in page's "Approve from my device"): ask the trusted devices of the
    account to approve; then (GET ``?flow=``) show the number and wait."""
    if request.method != "POST":
        flow_id = request.GET.get("flow") or ""
        flow = presession.get_flow(request, flow_id)
        approval = _approval(flow)
        if approval is None:
            form = ApprovalStartForm(initial={"next": safe_next(request, request.GET.get("next"))})
            return _page(request, "approve_start.html", {"form": form})
        return _waiting_page(request, flow_id, approval, _approval_status(approval))
    form = ApprovalStartForm(request.POST)
    if not form.is_valid():
        return _page(request, "approve_start.html", {"form": form}, status=400)
    identifier = form.cleaned_data["identifier"]
    try:
        started = native.start_approval_for_identifier(
            identifier=identifier, application=None, request=request
        )
    except FlowError as exc:
        response = _page(
            request,
            "approve_start.html",
            {"form": form, "error": error_message(exc)},
            status=exc.status,
        )
        if isinstance(exc, RateLimited):
            response["Retry-After"] = str(exc.retry_after)
        return response
    flow = {
        "approval": {
            "event": started.event.pk,
            "secret": started.poll_secret,
            "code": started.match_code,
            "identifier": identifier,
        },
        "next": safe_next(request, form.cleaned_data["next"]) or "",
    }
    flow_id = presession.save_flow(request, flow)
    query = urlencode({"flow": flow_id})
    return HttpResponseSeeOther(f"{reverse('authdevice_web:approval-start')}?{query}")


async def _waiting_request(request: HttpRequest) -> tuple[int, Callable[[], AuthEvent]] | None:
    """The event this browser waits for and a loader that only its poll secret opens."""
    flow = await sync_to_async(presession.get_flow)(request, request.GET.get("flow"))
    approval = _approval(flow)
    if approval is None:
        return None
    event_id, secret = approval["event"], approval["secret"]

    def load() -> AuthEvent:
        return native.peek(event_id, secret)

    try:
        await sync_to_async(load)()
    except EventNotFound:
        return None
    return int(event_id), load


def _not_waiting() -> JsonResponse:
    return _json_error("not_found", _("This sign-in request has expired. Please start again."), 404)


def _events_wsgi(request: HttpRequest) -> HttpResponseBase:
    """Under WSGI Django would buffer the whole stream (minutes) on a worker: the page falls
    back to polling instead (EventSource gives up on a non-200 answer)."""
    response = _json_error("use_long_poll", _("Server-sent events need ASGI."), 503)
    response["Retry-After"] = "0"
    return response


async def _events_asgi(request: HttpRequest) -> HttpResponseBase:
    if request.method not in ("GET", "HEAD"):
        return _json_error("method_not_allowed", _("Use GET."), 405)
    found = await _waiting_request(request)
    if found is None:
        return _not_waiting()
    event_id, load = found
    lifetime = float(app_settings.PENDING_EVENT_LIFETIME) + 5.0

    def render_status(event: AuthEvent) -> dict[str, Any]:
        return {"status": native.status_of(event)}

    response = sse_response(event_id, load, render_status, max_seconds=lifetime)
    response["X-Content-Type-Options"] = "nosniff"
    return response


#: Server-sent events for the waiting page (``event: status``, ``data: {"status": ...}``)
#: until the request is decided or expires; under ASGI (uvicorn) only.
approval_events = ServerAwareView(_events_wsgi, _events_asgi)


def _status_wsgi(request: HttpRequest) -> HttpResponseBase:
    """Under WSGI: the current status at once (a sync worker is never held by a waiter)."""
    if request.method not in ("GET", "HEAD"):
        return _json_error("method_not_allowed", _("Use GET."), 405)
    approval = _approval(presession.get_flow(request, request.GET.get("flow")))
    if approval is None:
        return _not_waiting()
    try:
        event = native.peek(approval["event"], approval["secret"])
    except EventNotFound:
        return _not_waiting()
    return _json({"status": native.status_of(event)})


async def _status_asgi(request: HttpRequest) -> HttpResponseBase:
    if request.method not in ("GET", "HEAD"):
        return _json_error("method_not_allowed", _("Use GET."), 405)
    found = await _waiting_request(request)
    if found is None:
        return _not_waiting()
    event_id, load = found
    event = await wait_until_decided(event_id, load, clamp_wait(request.GET.get("wait")))
    return _json({"status": native.status_of(event)})


#: The long-poll fallback: ``?wait=N`` (at most ``AUTHDEVICE_MAX_WAIT``) answers as soon as
#: the request is decided, else ``authorization_pending`` after N seconds (under ASGI; under
#: WSGI at once, and the page polls every 2 s).
approval_status = ServerAwareView(_status_wsgi, _status_asgi)


@auth_page
@csrf_protect
@require_POST
def approval_finish(request: HttpRequest) -> HttpResponseBase:
    """The waiting page learned "approved": sign this browser in (once) and go on."""
    flow_id = request.POST.get("flow") or ""
    flow = presession.get_flow(request, flow_id)
    approval = _approval(flow)
    if flow is None or approval is None:
        return HttpResponseSeeOther(reverse("authdevice_web:signin"))
    try:
        event = native.peek(approval["event"], approval["secret"])
    except EventNotFound:
        event = None
    status = native.status_of(event) if event is not None else "expired_token"
    if status == "authorization_pending":
        notice = _("Not approved yet. Approve on your trusted device, then continue.")
        return _waiting_page(request, flow_id, approval, status, notice=notice, http_status=409)
    if status != "approved" or event is None or not native.claim_session(event):
        if status == "approved":
            status = "expired_token"  # already used to sign in
        return _waiting_page(request, flow_id, approval, status, http_status=400)
    user = get_user_model().objects.filter(pk=event.user_id, is_active=True).first()
    if user is None:
        return _waiting_page(request, flow_id, approval, "access_denied", http_status=400)
    device = TrustedDevice.objects.filter(pk=event.approving_device_id).first()
    presession.drop_flow(request, flow_id)
    auth.login(request, user, backend=MODEL_BACKEND)
    if device is not None:
        django_otp.login(request, device)
    target = safe_next(request, flow.get("next")) or reverse("authdevice_web:done")
    return HttpResponseSeeOther(target)


# -- device management -------------------------------------------------------------------


class RenameForm(forms.Form):
    name = forms.CharField(
        max_length=64,
        strip=True,
        label=gettext_lazy("Name"),
        error_messages={"required": gettext_lazy("Enter a name for the device.")},
    )


def _manage_context(request: HttpRequest, identity: UserIdentity) -> dict[str, Any]:
    devices = device_flows.list_devices(request.user)
    return {
        "devices": devices,
        "fingerprints": " ".join(d.fingerprint for d in devices),
        "this_device": request.session.get(THIS_DEVICE_SESSION_KEY),
        "pending_count": len(native.pending_for(identity)),
        "suggested_name": describe_user_agent(user_agent(request)),
        "recent": _recently_signed_in(request),
        "reauth_url": _signin_url(request),
        "notice": NOTICES.get(request.GET.get("done", ""), ""),
    }


@auth_page(scripts=True)
@csrf_protect
@require_safe
@signed_in_page
def manage(request: HttpRequest) -> HttpResponseBase:
    """The signed-in person's trusted devices: this browser, rename, remove, add by QR."""
    identity = identity_for_user(request.user)
    return _page(request, "manage.html", _manage_context(request, identity))


@auth_page
@csrf_protect
@require_POST
@signed_in_json
def enrol_challenge(request: HttpRequest) -> HttpResponseBase:
    """Step 1 of "make this browser a trusted device" (needs a recent sign-in, D03)."""
    if not _recently_signed_in(request):
        return _json_error(
            "reauth_required", _("For your security, sign in again to add a device."), 401
        )
    identity = identity_for_user(request.user)
    try:
        return _challenge_json(native.enrolment_challenge(identity))
    except FlowError as exc:
        return _flow_error(exc)


def _browser_key(request: HttpRequest, data: dict[str, Any]) -> dict[str, Any]:
    """What a browser sends with its new WebCrypto key (P-256), as the flows take it."""
    return {
        "public_key": data.get("public_key"),
        "algorithm": "EC",
        "signature": data.get("signature"),
        "name": _clean_name(data.get("name"), describe_user_agent(user_agent(request))),
        "device_type": _("Web browser"),
        "request": request,
    }


@auth_page
@csrf_protect
@require_POST
@signed_in_json
def enrol(request: HttpRequest) -> HttpResponseBase:
    """Step 2: the browser's public key and its signature over the enrolment challenge."""
    data = _body(request)
    identity = identity_for_user(request.user)
    try:
        device = native.enrol_with_proof(
            identity=identity, challenge=data.get("challenge"), **_browser_key(request, data)
        )
    except FlowError as exc:
        return _flow_error(exc)
    request.session[THIS_DEVICE_SESSION_KEY] = device.pk
    redirect = f"{reverse('authdevice_web:devices')}?done=added"
    return _json({"handle": device.fingerprint, "name": device.name, "redirect": redirect})


def _not_found(request: HttpRequest) -> HttpResponse:
    return _page(request, "not_found.html", {}, status=404)


@auth_page
@csrf_protect
@require_POST
@signed_in_page
def rename(request: HttpRequest, pk: int) -> HttpResponseBase:
    device = device_flows.active_device_of(request.user, pk)
    if device is None:
        return _not_found(request)
    form = RenameForm(request.POST)
    if not form.is_valid():
        identity = identity_for_user(request.user)
        context = _manage_context(request, identity)
        context.update(rename_error=form.errors["name"][0], rename_pk=device.pk)
        return _page(request, "manage.html", context, status=400)
    rename_device(
        device,
        _clean_name(form.cleaned_data["name"], device.name),
        actor=request.user.get_username(),
    )
    return HttpResponseSeeOther(f"{reverse('authdevice_web:devices')}?done=renamed")


@auth_page
@csrf_protect
@require_http_methods(["GET", "HEAD", "POST"])
@signed_in_page
def remove(request: HttpRequest, pk: int) -> HttpResponseBase:
    """GET asks "are you sure?"; the POST removes (flows.devices.remove_device)."""
    device = device_flows.active_device_of(request.user, pk)
    if device is None:
        return _not_found(request)
    if request.method != "POST":
        this = request.session.get(THIS_DEVICE_SESSION_KEY) == device.pk
        return _page(request, "remove.html", {"device": device, "this_device": this})
    remove_device(
        device, actor=request.user.get_username(), reason="removed by the user", request=request
    )
    if request.session.get(THIS_DEVICE_SESSION_KEY) == device.pk:
        del request.session[THIS_DEVICE_SESSION_KEY]
    return HttpResponseSeeOther(f"{reverse('authdevice_web:devices')}?done=removed")


# -- approving on this browser -------------------------------------------------------------


def _request_rows(events: list[AuthEvent]) -> list[dict[str, Any]]:
    places: dict[str, str] = {}
    rows = []
    for event in events:
        ip = event.ip or ""
        if ip not in places:
            places[ip] = locate(ip)
        rows.append(
            {
                "id": str(event.pk),
                "browser": describe_user_agent(event.user_agent),
                "user_agent": event.user_agent,
                "ip": ip,
                "place": places[ip],
                "application": event.application.name if event.application else "",
                "created_at": event.created_at,
                "expires_at": event.expires_at,
            }
        )
    return rows


@auth_page(scripts=True)
@csrf_protect
@require_safe
@signed_in_page
def approvals(request: HttpRequest) -> HttpResponseBase:
    """Sign-in requests waiting for this person's approval, with what the server saw
    (never the number: it exists only on the requesting screen)."""
    identity = identity_for_user(request.user)
    devices = device_flows.list_devices(request.user)
    context = {
        "requests": _request_rows(native.pending_for(identity)),
        "fingerprints": " ".join(d.fingerprint for d in devices),
        "digits": max(2, min(int(app_settings.MATCH_CODE_LENGTH), 10)),
        "site_name": urlsplit(app_settings.base_url).netloc,
        "number_matching": bool(app_settings.NUMBER_MATCHING),
    }
    return _page(request, "approvals.html", context)


def _pending_event(request: HttpRequest, event_id: object) -> AuthEvent | None:
    try:
        pk = int(str(event_id))
    except ValueError:
        return None
    return AuthEvent.objects.filter(pk=pk, user=request.user).exclude(poll_secret_hash="").first()


@auth_page
@csrf_protect
@require_POST
@signed_in_json
def approval_challenge(request: HttpRequest) -> HttpResponseBase:
    data = _body(request)
    device = _own_device(request, data.get("handle"))
    if isinstance(device, JsonResponse):
        return device
    event = _pending_event(request, data.get("event"))
    if event is None:
        return _flow_error(EventNotFound())
    if native.status_of(event) != "authorization_pending":
        return _json_error(
            "already_decided",
            _("This request was already approved, refused or has expired."),
            409,
        )
    try:
        challenge = native.approval_challenge(device, event)
    except FlowError as exc:
        return _flow_error(exc)
    return _challenge_json(challenge, event=str(event.pk))


@auth_page
@csrf_protect
@require_POST
@signed_in_json
def approval_decide(request: HttpRequest) -> HttpResponseBase:
    """Approve (with the number from the other screen) or "This wasn't me" (reject: the
    account gets a security notice)."""
    data = _body(request)
    device = _own_device(request, data.get("handle"))
    if isinstance(device, JsonResponse):
        return device
    decision = data.get("decision")
    if decision not in ("approve", "reject"):
        return _json_error("invalid_request", _("Choose approve or reject."), 400)
    event = _pending_event(request, data.get("event"))
    if event is None:
        return _flow_error(EventNotFound())
    try:
        decided = native.decide(
            event_id=event.pk,
            device=device,
            challenge=data.get("challenge"),
            signature=data.get("signature"),
            approve=decision == "approve",
            match_code=_text(data, "match_code", 16),
            request=request,
        )
    except native.WrongNumber:
        event.refresh_from_db()
        if native.status_of(event) != "authorization_pending":
            return _json_error(
                "cancelled",
                _("That was the wrong number again. The request was cancelled."),
                400,
            )
        left = max(0, int(app_settings.MATCH_MAX_ATTEMPTS) - event.match_attempts)
        message = ngettext(
            "That is not the number on the other screen. %(left)d try left.",
            "That is not the number on the other screen. %(left)d tries left.",
            left,
        ) % {"left": left}
        return _json_error("wrong_number", message, 400)
    except FlowError as exc:
        return _flow_error(exc)
    if decided.state == AuthEvent.State.APPROVED:
        message = _("Approved. The other browser is signing in.")
    else:
        message = _("Refused. Nobody was signed in, and we emailed you a security notice.")
    return _json({"status": decided.state, "message": message})


# -- adding a device by QR code -----------------------------------------------------------


def binding_state(binding: DeviceBinding) -> str:
    now = timezone.now()
    if binding.confirmed_at is not None:
        return "confirmed"
    if binding.cancelled_at is not None:
        return "cancelled"
    if binding.device is not None:
        # confirm_binding accepts a redeemed binding up to 5 minutes after its expiry.
        late = (now - binding.expires_at).total_seconds() >= 300
        return "expired" if late else "redeemed"
    return "expired" if now >= binding.expires_at else "waiting"


def qr_svg(url: str) -> str:
    """An SVG QR code (segno) of ``url``: markup we generate, safe to inline."""
    qr = segno.make(url, error="m", micro=False)
    return qr.svg_inline(
        scale=1,
        border=4,
        omitsize=True,
        svgclass="ad-qr-svg",
        lineclass="",
        dark="#000",
        light="#fff",
        title=_("QR code to add a device"),
    )


@auth_page
@csrf_protect
@require_http_methods(["GET", "HEAD", "POST"])
@signed_in_page
def binding_start(request: HttpRequest) -> HttpResponseBase:
    """POST: a single-use binding code (≥112 bits, minutes) shown as a QR code holding
    only this server's origin and the code, and as a short link to type."""
    if request.method != "POST":
        return HttpResponseRedirect(reverse("authdevice_web:devices"))
    identity = identity_for_user(request.user)
    if not _recently_signed_in(request):
        context = _manage_context(request, identity)
        context["error"] = _("For your security, sign in again to add a device.")
        return _page(request, "manage.html", context, status=401)
    try:
        started = native.start_binding(identity)
    except FlowError as exc:
        context = _manage_context(request, identity)
        context["error"] = error_message(exc)
        return _page(request, "manage.html", context, status=exc.status)
    url = app_settings.base_url + reverse("authdevice_web:bind", args=[started.code])
    binding = started.binding
    context = {
        "binding": binding,
        "qr": mark_safe(qr_svg(url)),  # noqa: S308 - segno's SVG of our own URL
        "link": url,
        "status_url": reverse("authdevice_web:binding-status", args=[binding.pk]),
        "next_url": reverse("authdevice_web:binding", args=[binding.pk]),
        "minutes": max(1, round((binding.expires_at - binding.created_at).total_seconds() / 60)),
    }
    return _page(request, "add_qr.html", context)


@auth_page(scripts=True)
@csrf_protect
@require_safe
@signed_in_page
def binding(request: HttpRequest, pk: int) -> HttpResponseBase:
    """The initiating side: waiting, or compare the code shown on the new device and
    confirm or cancel (D04)."""
    row = native.binding_of(request.user, pk)
    if row is None:
        return _not_found(request)
    state = binding_state(row)
    context: dict[str, Any] = {"binding": row, "state": state}
    if state == "redeemed" and row.device is not None:
        context["comparison"] = native.comparison_code(row, row.device.fingerprint)
        context["device"] = row.device
    return _page(request, "add_status.html", context)


@auth_page
@require_safe
@signed_in_json
def binding_status(request: HttpRequest, pk: int) -> HttpResponseBase:
    row = native.binding_of(request.user, pk)
    if row is None:
        return _json_error("not_found", _("Not found."), 404)
    return _json({"state": binding_state(row)})


@auth_page
@csrf_protect
@require_POST
@signed_in_page
def binding_confirm(request: HttpRequest, pk: int) -> HttpResponseBase:
    row = native.binding_of(request.user, pk)
    if row is None:
        return _not_found(request)
    try:
        native.confirm_binding(
            binding_id=row.pk,
            identity=identity_for_user(request.user),
            comparison=request.POST.get("comparison", "")[:16],
            request=request,
        )
    except FlowError:
        context = {
            "binding": row,
            "state": "expired",
            "error": _("This device could not be added. Start again."),
        }
        return _page(request, "add_status.html", context, status=400)
    return HttpResponseSeeOther(f"{reverse('authdevice_web:devices')}?done=confirmed")


@auth_page
@csrf_protect
@require_POST
@signed_in_page
def binding_cancel(request: HttpRequest, pk: int) -> HttpResponseBase:
    row = native.binding_of(request.user, pk)
    if row is None:
        return _not_found(request)
    try:
        native.cancel_binding(binding_id=row.pk, identity=identity_for_user(request.user))
    except FlowError:
        pass  # already confirmed or cancelled: the list shows the truth
    return HttpResponseSeeOther(f"{reverse('authdevice_web:devices')}?done=cancelled")


# -- the new device's side of the QR code ---------------------------------------------------


@auth_page
@csrf_protect
@require_safe
def bind(request: HttpRequest, code: str) -> HttpResponseBase:
    """What the QR code opens on the new device. GET changes nothing (link scanners);
    the page's script creates this browser's key and redeems the code."""
    row = native.preview_binding(code)
    if row is None:
        return _page(request, "bind_invalid.html", {}, status=404)
    identity = UserIdentity.objects.filter(user_id=row.user_id).first()
    context = {
        "code": code,
        "masked": mask_identifier(primary_identifier(identity)) if identity else "",
        "suggested_name": describe_user_agent(user_agent(request)),
        "redeem_url": reverse("authdevice_web:bind-redeem", args=[code]),
        "origin": app_settings.base_url,
        "signin_url": reverse("authdevice_web:signin"),
    }
    return _page(request, "bind.html", context)


@auth_page
@csrf_protect
@require_POST
def bind_redeem(request: HttpRequest, code: str) -> HttpResponseBase:
    """The new browser's public key, signed over the binding code: an unconfirmed device
    and the comparison code to show (the initiating side confirms)."""
    limited = _limit_anonymous(request)
    if limited is not None:
        return limited
    data = _body(request)
    try:
        redeemed = native.redeem_binding(code=code, **_browser_key(request, data))
    except FlowError as exc:
        return _flow_error(exc)
    device, comparison = redeemed[1], redeemed[2]
    return _json({"comparison": comparison, "handle": device.fingerprint, "name": device.name})
