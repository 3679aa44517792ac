"""Server-rendered pages for end users."""

from __future__ import annotations

from django.urls import path

from . import views

app_name = "authdevice_web"
urlpatterns = [
    path("signin/", views.signin, name="signin"),
    path("signin/code/", views.code, name="code"),
    path("signin/resend/", views.resend, name="resend"),
    path("signin/link/<str:token>/", views.link, name="link"),
    path("signin/done/", views.done, name="done"),
    path("signout/", views.signout, name="signout"),
    # Cotter's hosted page for mobile apps and CLIs (PKCE): /app?api_key=...&redirect_url=...
    path("app", views.hosted_app, name="hosted-app"),
    path("app/cancel/", views.hosted_cancel, name="hosted-cancel"),
]
