"""Server-rendered pages for end users."""

from __future__ import annotations

from django.urls import path

from . import devices, views

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
    # The browser as a trusted device (web/devices.py, static/authdevice/device.js).
    path("signin/device/challenge/", devices.device_login_challenge, name="device-challenge"),
    path("signin/device/", devices.device_login, name="device-login"),
    path("signin/approve/", devices.approval_start, name="approval-start"),
    path("signin/approve/finish/", devices.approval_finish, name="approval-finish"),
    # The only endpoints that wait: serve /signin/approval/ with uvicorn (README, "Web
    # servers"); under gunicorn they answer at once and the page polls.
    path("signin/approval/events", devices.approval_events, name="approval-events"),
    path("signin/approval/status", devices.approval_status, name="approval-status"),
    path("devices/", devices.manage, name="devices"),
    path("devices/enrol/challenge/", devices.enrol_challenge, name="enrol-challenge"),
    path("devices/enrol/", devices.enrol, name="enrol"),
    path("devices/<int:pk>/rename/", devices.rename, name="device-rename"),
    path("devices/<int:pk>/remove/", devices.remove, name="device-remove"),
    path("devices/approve/", devices.approvals, name="approvals"),
    path("devices/approve/challenge/", devices.approval_challenge, name="approve-challenge"),
    path("devices/approve/decide/", devices.approval_decide, name="approve-decide"),
    path("devices/add/", devices.binding_start, name="binding-start"),
    path("devices/add/<int:pk>/", devices.binding, name="binding"),
    path("devices/add/<int:pk>/status/", devices.binding_status, name="binding-status"),
    path("devices/add/<int:pk>/confirm/", devices.binding_confirm, name="binding-confirm"),
    path("devices/add/<int:pk>/cancel/", devices.binding_cancel, name="binding-cancel"),
    # What the QR code holds: this server's origin + /d/<single-use binding code>.
    path("d/<str:code>", devices.bind, name="bind"),
    path("d/<str:code>/redeem", devices.bind_redeem, name="bind-redeem"),
]
