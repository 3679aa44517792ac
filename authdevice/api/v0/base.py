"""Shared plumbing of the v0 views: API key lookup and Cotter's error shape."""

from __future__ import annotations

import json as stdlib_json
from typing import Any

from django.http import Http404
from django.utils.cache import add_never_cache_headers, patch_vary_headers
from django.utils.translation import gettext as _
from rest_framework import exceptions
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.parsers import FormParser, JSONParser, get_encoding
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils import json as drf_json
from rest_framework.views import APIView

from ...flows.applications import get_application, origin_allowed_anywhere
from ...flows.errors import FlowError, InvalidApplication
from ...http import has_lone_surrogate, safe_message
from ...models import Application

API_KEY_HEADER = "HTTP_API_KEY_ID"


def error_response(
    msg: str, type_: str, status: int, headers: dict[str, str] | None = None
) -> Response:
    """Cotter's error body: ``{"msg": ..., "type": ...}``."""
    response = Response({"msg": safe_message(msg), "type": type_}, status=status, headers=headers)
    add_never_cache_headers(response)
    return response


def cotter_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, FlowError):
        return error_response(exc.message, exc.code, exc.status)
    if isinstance(exc, Http404):
        return error_response(_("Not found."), "not_found", 404)
    if isinstance(exc, exceptions.APIException):
        detail = exc.detail
        if isinstance(detail, dict):
            field, errors = next(iter(detail.items()))
            first = errors[0] if isinstance(errors, list) and errors else errors
            msg = f"{field}: {first}"
        elif isinstance(detail, list):
            msg = str(detail[0]) if detail else exc.default_detail
        else:
            msg = str(detail)
        codes = exc.get_codes()
        code = codes if isinstance(codes, str) else "invalid_request"
        headers = {}
        if getattr(exc, "wait", None):
            headers["Retry-After"] = str(int(exc.wait))  # type: ignore[attr-defined]
        if isinstance(exc, exceptions.ParseError):
            code = "invalid_json"
        return error_response(msg, code, exc.status_code, headers)
    return None


# json.loads builds a decoder per call when given parse_constant; these are reusable.
_STRICT_DECODER = stdlib_json.JSONDecoder(parse_constant=drf_json.strict_constant)
_DECODER = stdlib_json.JSONDecoder()


class JSONObjectParser(JSONParser):
    """DRF's JSON parser, also turning absurdly nested input into a 400 (not a 500).

    Reads the body in one piece and decodes it before parsing (DRF wraps the stream in
    an incremental decoder that ``json.load`` then reads in one piece anyway)."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        encoding = get_encoding(parser_context or {})
        try:
            text = stream.read().decode(encoding)
            if text.startswith("\ufeff"):  # what json.loads refuses before parsing
                raise ValueError("Unexpected UTF-8 BOM (decode using utf-8-sig)")
            data = (_STRICT_DECODER if self.strict else _DECODER).decode(text)
            # A lone surrogate can only come from a \uD8xx-\uDFxx escape: look for one
            # only then (rare), so that no string reaches a hash, a database or a message
            # that UTF-8 cannot encode.
            if "\\u" in text and has_lone_surrogate(data):
                raise ValueError("lone surrogate in a string (\\uD800-\\uDFFF)")
            return data
        except RecursionError as exc:
            raise exceptions.ParseError(_("JSON parse error - nested too deeply.")) from exc
        except ValueError as exc:  # includes UnicodeDecodeError, as DRF's own
            raise exceptions.ParseError(f"JSON parse error - {exc}") from exc


class PlainJSONNegotiation(DefaultContentNegotiation):
    """DRF's negotiation, answered at once for what API clients send nearly always (no
    ``Accept``, ``*/*`` or ``application/json``, no ``format`` override in the query): the
    same choice DRF would make, without parsing the header."""

    def select_renderer(  # type: ignore[override]
        self, request: Request, renderers: list[Any], format_suffix: Any = None
    ) -> tuple[Any, str]:
        meta = request.META
        if (
            format_suffix is None
            and len(renderers) == 1
            and renderers[0].media_type == "application/json"
            and "format" not in meta.get("QUERY_STRING", "")
            and meta.get("HTTP_ACCEPT", "*/*") in ("*/*", "application/json")
        ):
            return renderers[0], "application/json"
        return super().select_renderer(request, renderers, format_suffix)

    def select_parser(self, request: Request, parsers: list[Any]) -> Any:
        # Exactly "application/json": DRF would pick the first parser of that type too.
        if parsers and request.content_type == "application/json":
            if parsers[0].media_type == "application/json":
                return parsers[0]
        return super().select_parser(request, parsers)


class CotterAPIView(APIView):
    """Base view for /api/v0: identified by the API_KEY_ID header, JSON in and out.

    No session authentication (so no CSRF): callers prove nothing but the API key here;
    views that act for a user take a bearer token explicitly.
    """

    authentication_classes: list[type] = []
    permission_classes: list[type] = []
    renderer_classes = [JSONRenderer]
    parser_classes = [JSONObjectParser, FormParser]
    content_negotiation_class = PlainJSONNegotiation

    def get_exception_handler(self):  # type: ignore[override]
        return cotter_exception_handler

    cors_methods = "GET, POST, PUT, DELETE, OPTIONS"
    cors_headers = "API_KEY_ID, API_SECRET_KEY, Authorization, Content-Type"

    def options(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """CORS preflight: allowed only for an origin some active application lists."""
        response = Response(status=204)
        origin = request.headers.get("Origin")
        key = kwargs.get("api_key_id")
        app = get_application(key) if key else None
        if origin and (app.origin_allowed(origin) if app else origin_allowed_anywhere(origin)):
            response["Access-Control-Allow-Origin"] = origin
            response["Access-Control-Allow-Credentials"] = "true"
            response["Access-Control-Allow-Methods"] = self.cors_methods
            response["Access-Control-Allow-Headers"] = self.cors_headers
            response["Access-Control-Max-Age"] = "600"
        response["Vary"] = "Origin"
        return response

    def finalize_response(
        self, request: Request, response: Response, *args: Any, **kwargs: Any
    ) -> Response:
        response = super().finalize_response(request, response, *args, **kwargs)
        origin = request.headers.get("Origin")
        app = getattr(request, "_authdevice_application", None)
        if (
            origin
            and app is not None
            and app.origin_allowed(origin)
            and request.method != "OPTIONS"
        ):
            # Exact echo of a listed origin, with credentials; never "*".
            response["Access-Control-Allow-Origin"] = origin
            response["Access-Control-Allow-Credentials"] = "true"
        if origin:
            patch_vary_headers(response, ["Origin"])
        return response

    def get_application(self, request: Request, path_key: str | None = None) -> Application:
        header_key = request.META.get(API_KEY_HEADER)
        if path_key is not None and header_key is not None and header_key != path_key:
            raise InvalidApplication(_("API_KEY_ID header and URL disagree."))
        key = path_key if path_key is not None else header_key
        if isinstance(key, str) and not key.isprintable():
            # NUL and other control characters: never a key, and PostgreSQL refuses NUL.
            raise InvalidApplication(_("Unknown or inactive API key (header API_KEY_ID)."))
        app = get_application(key)
        if app is None:
            raise InvalidApplication(_("Unknown or inactive API key (header API_KEY_ID)."))
        request._authdevice_application = app  # type: ignore[attr-defined]
        return app

    def body(self, request: Request) -> dict[str, Any]:
        data = request.data
        if not hasattr(data, "get"):
            raise exceptions.ParseError(_("Request body must be a JSON object."))
        return data
