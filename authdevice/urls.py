"""Mount with ``path("", include("authdevice.urls"))``: the Cotter-compatible API then
lives at ``/api/v0/`` and the JWKS at ``/.well-known/jwks.json``."""

from __future__ import annotations

from django.urls import include, path

from .api.jwks import jwks_view

urlpatterns = [
    path("api/v0/", include("authdevice.api.v0.urls")),
    path("api/v1/", include("authdevice.api.v1.urls")),
    path(".well-known/jwks.json", jwks_view, name="authdevice-jwks"),
    path("", include("authdevice.web.urls")),
]
