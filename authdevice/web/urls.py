"""Server-rendered pages for end users (sign-in pages arrive with the code flow)."""

from __future__ import annotations

from django.urls import URLPattern

app_name = "authdevice_web"
urlpatterns: list[URLPattern] = []
