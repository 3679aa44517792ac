from __future__ import annotations

from django.contrib import admin
from django.urls import include, path
from django.views.generic import TemplateView

from . import views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("demo/api/hello", views.HelloView.as_view(), name="demo-hello"),
    path("demo/api/me", views.MeView.as_view(), name="demo-me"),
    path("", TemplateView.as_view(template_name="home.html"), name="home"),
    # authdevice at the site root: /api/v0/ (Cotter-compatible), /.well-known/jwks.json, pages.
    path("", include("authdevice.urls")),
]
