"""Server-rendered sign-in pages and Cotter's hosted ``/app`` page.

Doors only: parse the form, call a flow in :mod:`authdevice.flows`, render or redirect.
The sign-in in progress lives in the pre-session (:mod:`.presession`); the browser that
asked is proven by the challenge's binding secret kept there.

Cotter's hosted page (``/app``) runs the same pages for an application and ends with a
redirect to the application's registered URL carrying a PKCE authorization code. It does
**not** log the browser into this site: the app gets its tokens from ``get_identity``.
"""

from __future__ import annotations

import math
import re
from typing import Any
from urllib.parse import urlencode, urlsplit

import django_otp
from django.contrib import auth
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, QueryDict
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from ..flows import codes, pkce
from ..flows.applications import get_application
from ..flows.codes import SignedIn
from ..flows.errors import FlowError
from ..flows.identities import guess_kind
from ..flows.ratelimit import RateLimited
from ..models import Challenge, Identifier
from ..models.applications import NEVER_REDIRECT_SCHEMES
from . import presession
from .csrf import csrf_protect
from .forms import CodeForm, FlowForm, LinkForm, SignInForm
from .headers import FORM_ACTION_ATTR, SCRIPTS_ATTR, auth_page

T = "authdevice/web/"
#: Longest ``state`` accepted on ``/app`` (it is stored in the session and echoed).
MAX_STATE_LENGTH = 2048
_CSP_HOST = re.compile(r"^[A-Za-z0-9.-]+(:[0-9]{1,5})?$")


class HttpResponseSeeOther(HttpResponseRedirect):
    """303: after a POST the browser follows with a GET and never re-sends the form
    (a POST that carries credentials is never answered with 307/308, security.md H12)."""

    status_code = 303


# -- helpers -------------------------------------------------------------------------------


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    """A ``handler400`` for sites (the example site uses it): Django's own 400 page
    without its ``requires_csrf_token`` wrapper, which re-runs the CSRF check and, for a
    form body Django cannot decode (``charset=hex``), raises again inside the handler (a
    500 from the server instead of a 400)."""
    from django.views import defaults

    return defaults.bad_request.__wrapped__(request, exception)


def safe_next(request: HttpRequest, value: object) -> str | None:
    """``value`` if it is a path on this site (security.md H11, V12), else None."""
    if not isinstance(value, str) or not value or len(value) > 2000:
        return None
    if not value.startswith("/") or value.startswith(("//", "/\\")):
        return None
    if any(ch.isspace() or ch == "\\" or ord(ch) < 32 or ord(ch) == 127 for ch in value):
        return None
    if not url_has_allowed_host_and_scheme(
        value, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return None
    return value


def _wait(seconds: int) -> str:
    minutes = max(1, math.ceil(seconds / 60))
    return ngettext(
        "Too many attempts. Try again in %(minutes)d minute.",
        "Too many attempts. Try again in %(minutes)d minutes.",
        minutes,
    ) % {"minutes": minutes}


def error_message(exc: FlowError) -> str:
    """A translatable, friendly message for every flow error (by its stable code)."""
    if isinstance(exc, RateLimited):
        if exc.message != (RateLimited.__doc__ or "").strip():
            return exc.message  # a specific message from the flow (e.g. the resend cap)
        return _wait(exc.retry_after)
    messages = {
        "invalid_identifier": _("Enter a valid email address or phone number."),
        "invalid_code": _("That code is not right or has expired. Check it, or send a new code."),
        "invalid_challenge": _("This sign-in request has expired. Please start again."),
        "confirmation_required": _("Tick the box to confirm that this is your account."),
        "channel_unavailable": _("That delivery method is not available. Choose another."),
        "delivery_unavailable": _(
            "We cannot send messages right now. Please try again in a minute."
        ),
        "signup_closed": _("There is no account for this address."),
        "account_disabled": _("This account is disabled."),
        "temporarily_unavailable": _(
            "The service is temporarily unavailable. Please try again shortly."
        ),
    }
    return messages.get(exc.code, _("Something went wrong. Please start again."))


def _render(
    request: HttpRequest,
    template: str,
    context: dict[str, Any],
    *,
    status: int = 200,
    error: FlowError | None = None,
    form_action: tuple[str, ...] = (),
) -> HttpResponse:
    if error is not None:
        context.setdefault("error", error_message(error))
        status = error.status
    response = render(request, T + template, context, status=status)
    if isinstance(error, RateLimited):
        response["Retry-After"] = str(error.retry_after)
    setattr(response, FORM_ACTION_ATTR, form_action)
    if context.get("device_signin"):
        # "Sign in with this device" / "Approve from my device" (web/devices.py) run
        # static/authdevice/device.js.
        setattr(response, SCRIPTS_ATTR, True)
    return response


def _redirect_target_allowed(url: str) -> bool:
    scheme = urlsplit(url).scheme.lower()
    return bool(scheme) and scheme not in NEVER_REDIRECT_SCHEMES


def app_redirect_url(redirect_url: str, params: dict[str, str | None], /) -> str:
    """``redirect_url`` plus ``params`` (None values left out). The registered URL is kept
    byte for byte, including any query it already has; values are percent-encoded, so the
    app decodes exactly what it sent (``state`` round-trips, security.md H10)."""
    base, hash_, fragment = redirect_url.partition("#")
    extra = urlencode([(k, v) for k, v in params.items() if v is not None])
    if not extra:
        return redirect_url
    joiner = "&" if "?" in base else "?"
    if base.endswith(("?", "&")):
        joiner = ""
    return f"{base}{joiner}{extra}{hash_}{fragment}"


def _to_app(redirect_url: str, params: dict[str, str | None], status: int) -> HttpResponse:
    """Redirect to a registered application URL (any scheme the registry allowed: Django's
    HttpResponseRedirect only knows http/https/ftp, native apps use their own)."""
    response = HttpResponse(status=status)
    response["Location"] = app_redirect_url(redirect_url, params)
    return response


def _form_action_for(redirect_url: str) -> tuple[str, ...]:
    """The CSP source that lets a form's redirect reach the application's URL."""
    parts = urlsplit(redirect_url)
    scheme = parts.scheme.lower()
    if scheme in ("http", "https") and _CSP_HOST.match(parts.netloc):
        return (f"{scheme}://{parts.netloc}",)
    if re.fullmatch(r"[a-z][a-z0-9+.-]*", scheme):
        return (f"{scheme}:",)
    return ()


def _channel_choices(kind: str | None, hosted: dict[str, Any] | None) -> list[str]:
    """Phone channels offered as a choice (only when there is more than one)."""
    if kind == Identifier.Kind.EMAIL:
        return []
    channels = hosted["channels"] if hosted else codes.available_channels(Identifier.Kind.PHONE)
    return list(channels) if len(channels) > 1 else []


def _signin_context(
    form: SignInForm, hosted: dict[str, Any] | None, flow_id: str | None
) -> dict[str, Any]:
    return {
        "form": form,
        "hosted": hosted,
        "flow_id": flow_id or "",
        "show_channel": len(form.fields["channel"].choices) > 1,
        "show_method": hosted is None,
        # The site's own sign-in (not an app's hosted page, which must end with a PKCE code
        # for the app) also offers its trusted devices (web/devices.py).
        "device_signin": hosted is None,
    }


def _restart(
    request: HttpRequest, flow_id: str | None = None, flow: dict[str, Any] | None = None
) -> HttpResponse:
    """The sign-in cannot go on (expired, used up, unknown to this browser): show the
    sign-in form again, keeping the hosted parameters and ``next`` when we still have them."""
    flow = flow or {}
    hosted = flow.get("hosted")
    if flow_id and hosted:
        flow_id = presession.save_flow(request, {"hosted": hosted}, flow_id)
    elif flow_id:
        presession.drop_flow(request, flow_id)
        flow_id = None
    kind = hosted["kind"] if hosted else None
    form = SignInForm(
        initial={
            "next": flow.get("next", ""),
            "method": hosted["method"] if hosted else Challenge.Method.OTP,
            "flow": flow_id or "",
        },
        kind=kind,
        phone_channels=_channel_choices(kind, hosted),
    )
    context = _signin_context(form, hosted, flow_id)
    context["error"] = _("This sign-in request has expired. Please start again.")
    form_action = _form_action_for(hosted["redirect_url"]) if hosted else ()
    return _render(request, "signin.html", context, status=400, form_action=form_action)


def _hosted_error(request: HttpRequest, message: str, status: int = 400) -> HttpResponse:
    """An error page that redirects nowhere (security.md H08, H11)."""
    return _render(request, "hosted_error.html", {"message": message}, status=status)


def _hosted_app(flow: dict[str, Any]) -> pkce.HostedApp | None:
    """Where a hosted-page sign-in sends its authorization code; None if the flow is the
    site's own or the application is gone (raises :class:`pkce.InvalidHostedRequest`)."""
    hosted = flow.get("hosted")
    if not hosted:
        return None
    application = get_application(hosted["api_key"])
    if application is None:
        raise pkce.InvalidHostedRequest(_("This application is unknown or disabled."))
    return pkce.HostedApp(
        application=application,
        redirect_url=hosted["redirect_url"],
        code_challenge=hosted["code_challenge"],
    )


def _finish(
    request: HttpRequest, flow_id: str | None, flow: dict[str, Any], signed: SignedIn
) -> HttpResponse:
    """The identifier is proven: hand the app its code (minted with the sign-in), or log
    this browser in."""
    if flow_id:
        presession.drop_flow(request, flow_id)
    hosted = flow.get("hosted")
    if hosted:
        if signed.authorization is None:  # the views always pass hosted= for such a flow
            return _hosted_error(request, _("This sign-in request is no longer valid."))
        row, code = signed.authorization
        params = {"code": code, "state": hosted.get("state"), "challenge_id": str(row.pk)}
        return _to_app(hosted["redirect_url"], params, 303)
    # The site's own session: auth.login rotates the session key (security.md K03) and the
    # pre-session entry is gone, so it can never turn into the signed-in session (K02).
    auth.login(request, signed.user, backend="django.contrib.auth.backends.ModelBackend")
    django_otp.login(request, signed.device)
    target = safe_next(request, flow.get("next")) or reverse("authdevice_web:done")
    return HttpResponseSeeOther(target)


def _restart_url(flow_id: str, flow: dict[str, Any]) -> str:
    """ "Use a different address": the sign-in form again (same app, same ``next``)."""
    url = reverse("authdevice_web:signin")
    if flow.get("hosted"):
        return f"{url}?{urlencode({'flow': flow_id})}"
    if flow.get("next"):
        return f"{url}?{urlencode({'next': flow['next']})}"
    return url


def _code_page(
    request: HttpRequest,
    flow_id: str,
    flow: dict[str, Any],
    form: CodeForm | None = None,
    *,
    notice: str = "",
    **kwargs: Any,
) -> HttpResponse:
    hosted = flow.get("hosted")
    context = {
        "form": form or CodeForm(initial={"flow": flow_id}),
        "flow_id": flow_id,
        "masked": flow.get("masked", ""),
        "method": flow.get("method", Challenge.Method.OTP),
        "channel": flow.get("channel", ""),
        "hosted": hosted,
        "notice": notice,
        "restart_url": _restart_url(flow_id, flow),
    }
    form_action = _form_action_for(hosted["redirect_url"]) if hosted else ()
    return _render(request, "code.html", context, form_action=form_action, **kwargs)


# -- the site's sign-in pages ------------------------------------------------------------------


@auth_page
@csrf_protect
@require_http_methods(["GET", "HEAD", "POST"])
def signin(request: HttpRequest) -> HttpResponse:
    """Ask for an email address or phone number, then send a code or a magic link."""
    if request.method != "POST":
        hosted_flow = presession.get_flow(request, request.GET.get("flow"))
        if hosted_flow is not None and hosted_flow.get("hosted"):
            return _hosted_form(request, str(request.GET["flow"]), hosted_flow["hosted"])
        next_url = safe_next(request, request.GET.get("next")) or ""
        form = SignInForm(
            initial={"next": next_url, "method": Challenge.Method.OTP},
            kind=None,
            phone_channels=_channel_choices(None, None),
        )
        return _render(request, "signin.html", _signin_context(form, None, None))

    flow_id = request.POST.get("flow") or None
    flow: dict[str, Any] = {}
    if flow_id:
        found = presession.get_flow(request, flow_id)
        if found is None or not found.get("hosted"):
            return _hosted_error(
                request, _("This sign-in request has expired. Go back to the app and start again.")
            )
        flow = found
    hosted = flow.get("hosted")
    kind = hosted["kind"] if hosted else None
    form = SignInForm(request.POST, kind=kind, phone_channels=_channel_choices(kind, hosted))
    context = _signin_context(form, hosted, flow_id)
    form_action = _form_action_for(hosted["redirect_url"]) if hosted else ()
    if not form.is_valid():
        return _render(request, "signin.html", context, status=400, form_action=form_action)
    identifier = form.cleaned_data["identifier"]
    if hosted:
        application = get_application(hosted["api_key"])
        if application is None:
            return _hosted_error(request, _("This application is unknown or disabled."))
        method = hosted["method"]
        channel = form.cleaned_data["channel"] or (hosted["channels"] or [None])[0]
    else:
        application = None
        method = form.cleaned_data["method"] or Challenge.Method.OTP
        channel = form.cleaned_data["channel"] or None
    if (kind or guess_kind(identifier)) == Identifier.Kind.EMAIL:
        channel = None  # the phone channel choice does not apply to an email address
    try:
        started = codes.start_challenge(
            identifier=identifier,
            kind=kind,
            channel=channel,
            method=method,
            application=application,
            request=request,
        )
    except FlowError as exc:
        field = {"invalid_identifier": "identifier", "channel_unavailable": "channel"}.get(exc.code)
        if field == "channel" and not context["show_channel"]:
            field = None  # no choice on the page: say it at the top
        if field:
            form.add_error(field, error_message(exc))
            return _render(
                request, "signin.html", context, status=exc.status, form_action=form_action
            )
        return _render(request, "signin.html", context, error=exc, form_action=form_action)
    challenge = started.challenge
    flow.update(
        challenge=challenge.pk,
        binding=started.binding,
        masked=codes.mask_identifier(challenge.identifier),
        channel=challenge.channel,
        method=challenge.method,
        next=safe_next(request, form.cleaned_data["next"]) or "",
    )
    flow_id = presession.save_flow(request, flow, flow_id)
    return HttpResponseSeeOther(f"{reverse('authdevice_web:code')}?{urlencode({'flow': flow_id})}")


@auth_page
@csrf_protect
@require_http_methods(["GET", "HEAD", "POST"])
def code(request: HttpRequest) -> HttpResponse:
    """Enter the code that was sent (or wait for the magic link)."""
    source = request.POST if request.method == "POST" else request.GET
    flow_id = source.get("flow") or ""
    flow = presession.get_flow(request, flow_id)
    if flow is None or not flow.get("challenge"):
        if request.method == "POST":
            return _restart(request)
        return HttpResponseRedirect(reverse("authdevice_web:signin"))
    if request.method != "POST":
        notice = (
            _("We sent a new code. The old one no longer works.") if request.GET.get("sent") else ""
        )
        return _code_page(request, flow_id, flow, notice=notice)
    form = CodeForm(request.POST)
    if not form.is_valid():
        return _code_page(request, flow_id, flow, form, status=400)
    try:
        signed = codes.verify_code(
            challenge_id=flow["challenge"],
            binding=flow.get("binding"),
            code=form.cleaned_data["code"],
            request=request,
            hosted=_hosted_app(flow),
        )
    except pkce.InvalidHostedRequest as exc:
        return _hosted_error(request, exc.message)
    except codes.ChallengeNotFound:
        return _restart(request, flow_id, flow)
    except FlowError as exc:
        return _code_page(request, flow_id, flow, CodeForm(initial={"flow": flow_id}), error=exc)
    return _finish(request, flow_id, flow, signed)


@auth_page
@csrf_protect
@require_POST
def resend(request: HttpRequest) -> HttpResponse:
    """Replace the code (and link) and send it again."""
    form = FlowForm(request.POST)
    flow_id = form.data.get("flow") or ""
    flow = presession.get_flow(request, flow_id)
    if flow is None or not flow.get("challenge"):
        return _restart(request)
    try:
        codes.resend_challenge(
            challenge_id=flow["challenge"], binding=flow.get("binding"), request=request
        )
    except codes.ChallengeNotFound:
        return _restart(request, flow_id, flow)
    except FlowError as exc:
        return _code_page(request, flow_id, flow, error=exc)
    query = urlencode({"flow": flow_id, "sent": "1"})
    return HttpResponseSeeOther(f"{reverse('authdevice_web:code')}?{query}")


@auth_page
@csrf_protect
@require_http_methods(["GET", "HEAD", "POST"])
def link(request: HttpRequest, token: str) -> HttpResponse:
    """The magic-link landing page. GET (and HEAD: mail scanners) only shows a button and
    changes nothing; the POST from that page signs in (security.md A07). In a browser other
    than the one that asked, the page names the (masked) account and the person must tick
    a confirmation (A10)."""
    challenge = codes.preview_link(token)
    if challenge is None:
        return _render(request, "link_invalid.html", {}, status=400)
    found = presession.flow_for_challenge(request, challenge.pk)
    flow_id, flow = found if found is not None else (None, {})
    same_browser = found is not None and codes.link_matches_binding(challenge, flow.get("binding"))
    if not same_browser:
        flow_id, flow = None, {}
    context: dict[str, Any] = {
        "masked": codes.mask_identifier(challenge.identifier),
        "same_browser": same_browser,
        "hosted": flow.get("hosted"),
        "form": LinkForm(),
    }
    form_action = _form_action_for(flow["hosted"]["redirect_url"]) if flow.get("hosted") else ()
    if challenge.application_id is not None and not flow.get("hosted"):
        # Started on the hosted page for an app: only the browser that holds the app's
        # redirect URL and PKCE challenge can finish it.
        context["app_name"] = challenge.application.name if challenge.application else ""
        status = 400 if request.method == "POST" else 200
        return _render(request, "link_elsewhere.html", context, status=status)
    if request.method != "POST":
        return _render(request, "link.html", context, form_action=form_action)
    form = LinkForm(request.POST)
    confirmed = form.is_valid() and form.cleaned_data["confirm"]
    context["form"] = form
    try:
        signed = codes.verify_link(
            token=token,
            binding=flow.get("binding") if same_browser else None,
            confirmed=bool(confirmed),
            request=request,
            hosted=_hosted_app(flow),
        )
    except pkce.InvalidHostedRequest as exc:
        return _hosted_error(request, exc.message)
    except codes.InvalidCode:
        return _render(request, "link_invalid.html", {}, status=400)
    except FlowError as exc:
        return _render(request, "link.html", context, error=exc, form_action=form_action)
    return _finish(request, flow_id, flow, signed)


@auth_page
@require_GET
def done(request: HttpRequest) -> HttpResponse:
    """The signed-in landing page; goes on to a safe ``next`` when there is one."""
    if not request.user.is_authenticated:
        signin = reverse("authdevice_web:signin")
        # Back here after signing in, unless this URL could not be a safe ``next`` (e.g.
        # 20 KB long: Django refuses to redirect to it at all).
        if safe_next(request, request.get_full_path()) is None:
            return HttpResponseRedirect(signin)
        return HttpResponseRedirect(f"{signin}?{urlencode({'next': request.get_full_path()})}")
    target = safe_next(request, request.GET.get("next"))
    if target:
        return HttpResponseRedirect(target)
    return _render(request, "done.html", {"user": request.user})


@auth_page
@csrf_protect
@require_http_methods(["GET", "HEAD", "POST"])
def signout(request: HttpRequest) -> HttpResponse:
    """GET shows a button; only the POST signs out (no logout by a cross-site GET)."""
    if request.method != "POST":
        return _render(
            request,
            "signout.html",
            {"user": request.user, "next": safe_next(request, request.GET.get("next"))},
        )
    auth.logout(request)
    target = safe_next(request, request.POST.get("next")) or reverse("authdevice_web:signin")
    return HttpResponseSeeOther(target)


# -- Cotter's hosted page (reference/cotter-api.md 1.6) ----------------------------------------


def _pkce_parameters_valid(query: QueryDict) -> bool:
    """One ``code_challenge`` of 43 base64url characters, and at most one
    ``code_challenge_method``, which must be exactly ``S256`` (security.md H02).

    Deviation from H02 / RFC 7636 4.3, on purpose: an *absent* method means S256 here,
    not ``plain``. Cotter's SDKs never send ``code_challenge_method`` and always use S256
    (reference/cotter-api.md D1), and ``plain`` is never accepted, so nothing downgrades.
    """
    methods = query.getlist("code_challenge_method")
    challenges = query.getlist("code_challenge")
    return (
        len(challenges) == 1
        and pkce.valid_code_challenge(challenges[0])
        and (not methods or methods == [pkce.CODE_CHALLENGE_METHOD])
    )


@auth_page
@require_GET
def hosted_app(request: HttpRequest) -> HttpResponse:
    """``/app?api_key&redirect_url&type&auth_method&state&code_challenge``: validate, keep the
    parameters in the pre-session and show the sign-in form for that application.

    Unknown application or unregistered redirect URL: an error page and no redirect
    (security.md H08, H11). Anything else wrong (including a ``code_challenge_method``
    other than ``S256``): back to the registered URL with ``error=invalid_request`` and
    the ``state`` (H01, H02, H10; RFC 6749 4.1.2.1)."""
    query = request.GET
    application = get_application(query.get("api_key"))
    if application is None:
        return _hosted_error(request, _("This application is unknown or disabled."))
    redirect_url = query.get("redirect_url", "")
    if (
        len(query.getlist("redirect_url")) != 1
        or not application.redirect_url_allowed(redirect_url)
        or not _redirect_target_allowed(redirect_url)
    ):
        return _hosted_error(request, _("This redirect URL is not registered for the application."))
    state = query.get("state")
    if state is not None and len(state) > MAX_STATE_LENGTH:
        return _to_app(redirect_url, {"error": "invalid_request"}, 302)
    kind = (query.get("type") or "").upper()
    method = (query.get("auth_method") or Challenge.Method.OTP).upper()
    if (
        kind not in Identifier.Kind.values
        or method not in Challenge.Method.values
        or not _pkce_parameters_valid(query)
    ):
        return _to_app(redirect_url, {"error": "invalid_request", "state": state}, 302)
    channels = codes.available_channels(kind)
    wanted = {
        c.upper() for c in query.getlist("phone_channels[]") + query.getlist("phone_channels")
    }
    if kind == Identifier.Kind.PHONE and wanted & set(channels):
        channels = [c for c in channels if c in wanted]
    hosted = {
        "api_key": application.api_key_id,
        "app_name": application.name,
        "redirect_url": redirect_url,
        "state": state,
        "code_challenge": query["code_challenge"],
        "kind": kind,
        "method": method,
        "channels": channels,
    }
    flow_id = presession.save_flow(request, {"hosted": hosted})
    return _hosted_form(
        request,
        flow_id,
        hosted,
        identifier=(query.get("input") or "")[:254],
        use_channel=(query.get("use_channel") or "").upper(),
        direct_login=query.get("direct_login") == "true" and bool(query.get("input")),
    )


def _hosted_form(
    request: HttpRequest,
    flow_id: str,
    hosted: dict[str, Any],
    *,
    identifier: str = "",
    use_channel: str = "",
    direct_login: bool = False,
) -> HttpResponse:
    channels = hosted["channels"]
    form = SignInForm(
        initial={
            "identifier": identifier,
            "channel": use_channel if use_channel in channels else (channels or [""])[0],
            "method": hosted["method"],
            "flow": flow_id,
        },
        kind=hosted["kind"],
        phone_channels=_channel_choices(hosted["kind"], hosted),
    )
    context = _signin_context(form, hosted, flow_id)
    context["direct_login"] = direct_login
    return _render(
        request, "signin.html", context, form_action=_form_action_for(hosted["redirect_url"])
    )


@auth_page
@csrf_protect
@require_POST
def hosted_cancel(request: HttpRequest) -> HttpResponse:
    """The person declined: back to the app with ``error=access_denied`` and the state."""
    form = FlowForm(request.POST)
    flow_id = form.data.get("flow") or ""
    flow = presession.get_flow(request, flow_id)
    if flow is None or not flow.get("hosted"):
        return _hosted_error(
            request, _("This sign-in request has expired. Go back to the app and start again.")
        )
    presession.drop_flow(request, flow_id)
    hosted = flow["hosted"]
    return _to_app(
        hosted["redirect_url"], {"error": "access_denied", "state": hosted.get("state")}, 303
    )
