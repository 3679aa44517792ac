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

# Django's default 400 view is wrapped in requires_csrf_token, which checks the CSRF token
# again: for a form body Django cannot decode (charset=hex) that raises a second time
# inside the error handler and escapes as a 500. The same page, without the wrapper.
handler400 = "authdevice.web.views.bad_request"
