"""Shared plumbing of the native API: JSON only, API key header, ``{"error", "message"}``."""

from __future__ import annotations

from typing import Any

from django.http import Http404
from django.utils.translation import gettext as _
from rest_framework import exceptions, serializers
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ...flows.applications import get_application
from ...flows.errors import FlowError, InvalidApplication
from ...flows.ratelimit import RateLimited
from ...http import no_store, safe_message
from ...models import Application
from ..v0.base import API_KEY_HEADER, JSONObjectParser, PlainJSONNegotiation


def error_response(
    code: str, message: str, status: int, headers: dict[str, str] | None = None
) -> Response:
    """The native error body: ``{"error": <stable code>, "message": <text for people>}``."""
    return no_store(
        Response({"error": code, "message": safe_message(message)}, status=status, headers=headers)
    )


def _first_message(detail: Any) -> str:
    if isinstance(detail, dict):
        field, errors = next(iter(detail.items()), ("", ""))
        inner = _first_message(errors)
        if field in ("", "non_field_errors"):
            return inner
        return f"{field}: {inner}"
    if isinstance(detail, list):
        return _first_message(detail[0]) if detail else ""
    return str(detail)


def native_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, RateLimited):
        return error_response(
            exc.code, exc.message, exc.status, {"Retry-After": str(exc.retry_after)}
        )
    if isinstance(exc, FlowError):
        return error_response(exc.code, exc.message, exc.status)
    if isinstance(exc, Http404):
        return error_response("not_found", _("Not found."), 404)
    if isinstance(exc, exceptions.ValidationError):
        return error_response("invalid_request", _first_message(exc.detail), 400)
    if isinstance(exc, exceptions.ParseError):
        return error_response("invalid_json", _first_message(exc.detail), 400)
    if isinstance(exc, exceptions.UnsupportedMediaType):
        return error_response(
            "unsupported_media_type", _("Send a JSON body (Content-Type: application/json)."), 415
        )
    if isinstance(exc, exceptions.APIException):
        codes = exc.get_codes()
        code = codes if isinstance(codes, str) else "invalid_request"
        return error_response(code, _first_message(exc.detail), exc.status_code)
    return None


class NativeAPIView(APIView):
    """Base view for /api/v1: the application is named by the ``API_KEY_ID`` header.

    JSON bodies only: a form or ``text/plain`` body (what a cross-site page can send
    without a preflight) gets 415 (security.md I05). No session authentication, so no
    CSRF; nothing here trusts cookies.
    """

    authentication_classes: list[type] = []
    permission_classes: list[type] = []
    throttle_classes: list[type] = []
    renderer_classes = [JSONRenderer]
    parser_classes = [JSONObjectParser]
    content_negotiation_class = PlainJSONNegotiation

    def get_exception_handler(self):  # type: ignore[override]
        return native_exception_handler

    def get_application(self, request: Request) -> Application:
        key = request.META.get(API_KEY_HEADER)
        if not isinstance(key, str) or not key.isprintable():
            raise InvalidApplication(_("Unknown or inactive API key (header API_KEY_ID)."))
        application = get_application(key)
        if application is None:
            raise InvalidApplication(_("Unknown or inactive API key (header API_KEY_ID)."))
        return application

    def validated(
        self, serializer_class: type[serializers.Serializer], request: Request
    ) -> dict[str, Any]:
        serializer = serializer_class(data=request.data)
        serializer.is_valid(raise_exception=True)
        return dict(serializer.validated_data)
