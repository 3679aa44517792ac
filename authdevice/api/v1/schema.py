"""The OpenAPI document of ``/api/v1`` (drf-spectacular), served by every site that
includes ``authdevice.urls``: ``/api/v1/schema`` (JSON; ``?format=yaml`` for YAML) and a
plain HTML summary at ``/api/v1/docs`` (no JavaScript, nothing loaded from elsewhere).

It works without any ``SPECTACULAR_SETTINGS`` or ``DEFAULT_SCHEMA_CLASS`` in the site's
settings: the native views carry :class:`NativeSchema` themselves and the schema view
applies its own settings while it generates.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

from django.http import HttpRequest, HttpResponse
from django.utils.cache import patch_cache_control
from django.utils.html import format_html, format_html_join
from drf_spectacular.extensions import (
    OpenApiAuthenticationExtension,
    OpenApiSerializerFieldExtension,
    OpenApiViewExtension,
)
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import build_bearer_security_scheme_object
from drf_spectacular.renderers import OpenApiJsonRenderer, OpenApiYamlRenderer
from drf_spectacular.settings import patched_settings
from drf_spectacular.utils import OpenApiResponse, PolymorphicProxySerializer
from drf_spectacular.views import SpectacularAPIView
from rest_framework import serializers
from rest_framework.permissions import AllowAny

DESCRIPTION = """\
authdevice's native protocol: sign in with a one-time code, with a trusted device's key,
or by approving the sign-in on a trusted device (number matching, RFC 8628 polling), and
add devices by QR code.

Every request names the application with the `API_KEY_ID` header. Endpoints that act for
a signed-in user also take `Authorization: Bearer <access token>`. Bodies are JSON
(`Content-Type: application/json`); errors are `{"error": <stable code>, "message": <text>}`
with a 4xx status (429 carries `Retry-After`).

**Signed messages.** A device signs the exact bytes

    authdevice/v1 NUL purpose NUL origin NUL challenge NUL event_id NUL decision NUL extra

(UTF-8, NUL = one zero byte): `purpose` is `enrol`, `login`, `approve` or `bind`; `origin`
is this server's base URL as the device knows it (never take it from a response);
`challenge` is the server-issued challenge (for `bind`, the binding code); `event_id` the
approval's id as a decimal number without leading zeros (else empty); `decision` is
`approve` or `reject` (else empty); `extra` is the new key's fingerprint for `enrol` and
`bind` (else empty). ECDSA P-256 signatures are raw 64-byte R||S (what WebCrypto
returns), Ed25519 signatures 64 bytes; both base64url. A device is named by its
*handle*: the lowercase hex SHA-256 of its public key in standard base64 with padding
(SubjectPublicKeyInfo DER for P-256 and RSA, the raw 32 bytes for Ed25519).

**Waiting for an approval.** `GET /api/v1/approvals/{event_id}` is a plain poll, a
long-poll with `?wait=N` (at most 25 s) or a server-sent-events stream with
`Accept: text/event-stream`; serve it with an ASGI server (uvicorn) for waiting.
"""

F = TypeVar("F", bound=Callable[..., Any])

SCHEMA_SETTINGS: dict[str, Any] = {
    "TITLE": "authdevice native API",
    "DESCRIPTION": DESCRIPTION,
    "VERSION": "1",
    "SCHEMA_PATH_PREFIX": r"/(?:[^/]+/)*api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    "PREPROCESSING_HOOKS": ["authdevice.api.v1.schema.only_native_api"],
    "APPEND_COMPONENTS": {
        "securitySchemes": {
            "apiKey": {"type": "apiKey", "in": "header", "name": "API_KEY_ID"},
            "pollSecret": {"type": "apiKey", "in": "header", "name": "X-Poll-Secret"},
        }
    },
}


def only_native_api(endpoints: list[tuple[Any, ...]], **kwargs: Any) -> list[tuple[Any, ...]]:
    """Keep the ``/api/v1/`` operations (the site may have other DRF views)."""
    return [
        endpoint
        for endpoint in endpoints
        if "/api/v1/" in endpoint[0]
        and not issubclass(getattr(endpoint[3], "cls", object), SchemaView)
    ]


def document(**spec: Any) -> Callable[[F], F]:
    """Describe one handler (``summary``, ``description``, ``request``, ``responses``,
    ``parameters``, ``auth``, as in drf-spectacular's ``extend_schema``) for
    :class:`NativeSchema`. Unlike ``extend_schema`` this needs no ``DEFAULT_SCHEMA_CLASS``
    in the site's settings."""

    def mark(handler: F) -> F:
        handler.openapi = spec  # type: ignore[attr-defined]
        return handler

    return mark


class NativeSchema(AutoSchema):
    """drf-spectacular's inspector, reading :func:`document` specs (or a view's
    ``openapi_methods`` dict); every native operation also needs the ``API_KEY_ID`` header."""

    def _spec(self) -> dict[str, Any]:
        method = (self.method or "").lower()
        per_class = getattr(self.view, "openapi_methods", {}).get(method)
        if per_class is not None:
            return per_class
        return getattr(getattr(self.view, method, None), "openapi", {})

    def get_summary(self) -> str | None:
        return self._spec().get("summary") or super().get_summary()

    def get_description(self) -> str:
        spec = self._spec()
        if "description" in spec:
            return spec["description"]
        from .base import NativeAPIView

        for cls in type(self.view).__mro__:
            if cls is NativeAPIView or not issubclass(cls, NativeAPIView):
                break
            if cls.__dict__.get("__doc__"):
                return inspect.cleandoc(cls.__dict__["__doc__"])
        return ""

    def get_request_serializer(self) -> Any:
        spec = self._spec()
        return spec["request"] if "request" in spec else super().get_request_serializer()

    def get_response_serializers(self) -> Any:
        spec = self._spec()
        return spec["responses"] if "responses" in spec else super().get_response_serializers()

    def get_override_parameters(self) -> list[Any]:
        return [*super().get_override_parameters(), *self._spec().get("parameters", [])]

    def get_auth(self) -> list[dict[str, list[Any]]]:
        spec = self._spec()
        if "auth" in spec:
            return spec["auth"]
        auths = [auth for auth in super().get_auth() if auth]
        if not auths:
            return [{"apiKey": []}]
        return [{**auth, "apiKey": []} for auth in auths]


class ChallengeIdFieldSchema(OpenApiSerializerFieldExtension):
    target_class = "authdevice.api.v1.serializers.ChallengeIdField"

    def map_serializer_field(self, auto_schema: AutoSchema, direction: str) -> dict[str, Any]:
        return {"type": "string", "pattern": r"^[0-9]{1,19}$"}


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = "authdevice.api.authentication.AccessTokenAuthentication"
    match_subclasses = True
    name = "bearerAuth"

    def get_security_definition(self, auto_schema: AutoSchema) -> dict[str, str]:
        return build_bearer_security_scheme_object("Authorization", "Bearer", "JWT")


# -- the code sign-in views (authdevice.api.v1.codes), described from here ---------------


class ErrorSerializer(serializers.Serializer):
    error = serializers.CharField(help_text="Stable machine-readable code.")
    message = serializers.CharField(help_text="Text for people.")


class TokenSetSerializer(serializers.Serializer):
    access_token = serializers.CharField()
    id_token = serializers.CharField()
    refresh_token = serializers.CharField()
    expires_in = serializers.IntegerField()
    token_type = serializers.CharField()
    auth_method = serializers.CharField()
    user = serializers.DictField(help_text="Cotter's User object.")


class CodeGrantSerializer(serializers.Serializer):
    authorization_code = serializers.CharField(
        help_text="Single use; exchange it with the code_verifier at /api/v1/auth/code/token."
    )
    challenge_id = serializers.CharField()
    expires_in = serializers.IntegerField()


class CodeChallengeSerializer(serializers.Serializer):
    challenge_id = serializers.CharField()
    challenge_secret = serializers.CharField()
    expires_in = serializers.IntegerField()
    channel = serializers.CharField()


def error_responses(*statuses: int) -> dict[int, OpenApiResponse]:
    text = {
        400: "Invalid input (see `error`).",
        401: "Not authenticated, or the signature or device is not accepted.",
        404: "Not found.",
        409: "Already decided, or the key is already enrolled.",
        415: "The body is not JSON.",
        429: "Too many requests (`Retry-After`).",
    }
    return {
        status: OpenApiResponse(ErrorSerializer, description=text.get(status, ""))
        for status in statuses
    }


def _code_view_schema(
    view: str, request_serializer: str, summary: str, status: int, response: Any
) -> type[OpenApiViewExtension]:
    """The schema of one /api/v1/auth/code view: a POST with a JSON body."""

    def view_replacement(self: OpenApiViewExtension) -> type:
        from . import serializers as api_serializers

        class Described(self.target_class):  # type: ignore[name-defined, misc]
            schema = NativeSchema()
            openapi_methods: ClassVar[dict[str, Any]] = {
                "post": dict(
                    summary=summary,
                    request=getattr(api_serializers, request_serializer),
                    responses={status: response, **error_responses(400, 415, 429)},
                )
            }

        return Described

    # Subclassing registers the extension with drf-spectacular.
    return type(
        f"{view}Schema",
        (OpenApiViewExtension,),
        {"target_class": f"authdevice.api.v1.codes.{view}", "view_replacement": view_replacement},
    )


CodeViewsSchema = _code_view_schema(
    "CodeRequestView",
    "CodeRequestSerializer",
    "Send a sign-in code or magic link",
    202,
    CodeChallengeSerializer,
)
CodeResendSchema = _code_view_schema(
    "CodeResendView",
    "ChallengeSerializer",
    "Send a new code for the same challenge",
    202,
    CodeChallengeSerializer,
)
CodeVerifySchema = _code_view_schema(
    "CodeVerifyView",
    "CodeVerifySerializer",
    "Verify the code; returns a token set, or an authorization code for a challenge "
    "started with a code_challenge",
    200,
    PolymorphicProxySerializer(
        component_name="CodeVerifyResult",
        serializers=[TokenSetSerializer, CodeGrantSerializer],
        resource_type_field_name=None,
    ),
)
CodeTokenSchema = _code_view_schema(
    "CodeTokenView",
    "CodeExchangeSerializer",
    "Exchange an authorization code and its PKCE code_verifier for a token set",
    200,
    TokenSetSerializer,
)


# -- serving -------------------------------------------------------------------------------


def build_schema(request: Any = None) -> dict[str, Any]:
    with patched_settings(SCHEMA_SETTINGS):
        return SchemaGenerator().get_schema(request=request, public=True)


class SchemaView(SpectacularAPIView):
    """``GET /api/v1/schema``: the OpenAPI 3 document (JSON; ``?format=yaml``)."""

    authentication_classes: list[type] = []
    permission_classes = [AllowAny]
    renderer_classes = [OpenApiJsonRenderer, OpenApiYamlRenderer]
    custom_settings = SCHEMA_SETTINGS
    serve_public = True
    throttle_classes: list[type] = []

    def finalize_response(self, request: Any, response: Any, *args: Any, **kwargs: Any) -> Any:
        response = super().finalize_response(request, response, *args, **kwargs)
        patch_cache_control(response, public=True, max_age=300)
        return response


def docs_view(request: HttpRequest) -> HttpResponse:
    """``GET /api/v1/docs``: the operations of the schema as a plain HTML page."""
    schema = build_schema()
    rows = []
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            if method.startswith("x-") or not isinstance(operation, dict):
                continue
            responses = ", ".join(sorted(operation.get("responses", {})))
            rows.append(
                (
                    method.upper(),
                    path,
                    operation.get("summary", ""),
                    operation.get("description", ""),
                    responses,
                )
            )
    table = format_html_join(
        "\n",
        "<tr><td><code>{}</code></td><td><code>{}</code></td><td><strong>{}</strong>"
        '<div class="d">{}</div></td><td>{}</td></tr>',
        rows,
    )
    page = format_html(
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<title>{title}</title><style>"
        "body{{font:15px/1.45 system-ui,sans-serif;max-width:70rem;margin:2rem auto;"
        "padding:0 1rem}}table{{border-collapse:collapse;width:100%}}"
        "td,th{{border-top:1px solid #ddd;padding:.4rem;vertical-align:top;text-align:left}}"
        ".d{{white-space:pre-wrap;color:#444}}pre{{white-space:pre-wrap}}</style></head><body>"
        "<h1>{title}</h1><p>Machine-readable: <a href=schema>OpenAPI 3 (JSON)</a>, "
        '<a href="schema?format=yaml">YAML</a>.</p><pre>{description}</pre>'
        "<table><tr><th>Method</th><th>Path</th><th>What</th><th>Statuses</th></tr>"
        "{table}</table></body></html>",
        title=schema["info"]["title"],
        description=schema["info"].get("description", ""),
        table=table,
    )
    response = HttpResponse(page, content_type="text/html; charset=utf-8")
    response["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'"
    patch_cache_control(response, public=True, max_age=300)
    return response
