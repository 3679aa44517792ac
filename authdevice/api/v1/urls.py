from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.urls import path, re_path

from . import codes, devices, schema

app_name = "authdevice_v1"

HANDLE = devices.HANDLE_PATTERN
ID = devices.PUBLIC_ID_PATTERN


def not_found(request: HttpRequest, *args: object, **kwargs: object) -> JsonResponse:
    return JsonResponse({"error": "not_found", "message": "Not found."}, status=404)


urlpatterns = [
    path("auth/code", codes.CodeRequestView.as_view(), name="auth-code"),
    path("auth/code/resend", codes.CodeResendView.as_view(), name="auth-code-resend"),
    path("auth/code/verify", codes.CodeVerifyView.as_view(), name="auth-code-verify"),
    path("auth/code/token", codes.CodeTokenView.as_view(), name="auth-code-token"),
    # Trusted devices: enrol, sign in, list, remove.
    path("devices", devices.DeviceListView.as_view(), name="devices"),
    path(
        "devices/enrol/challenge",
        devices.EnrolChallengeView.as_view(),
        name="device-enrol-challenge",
    ),
    path("devices/enrol", devices.EnrolView.as_view(), name="device-enrol"),
    path(
        "devices/login/challenge",
        devices.LoginChallengeView.as_view(),
        name="device-login-challenge",
    ),
    path("devices/login", devices.LoginView.as_view(), name="device-login"),
    re_path(rf"^devices/(?P<handle>{HANDLE})$", devices.DeviceView.as_view(), name="device"),
    # Approval from another device (number matching, RFC 8628 statuses).
    path("approvals", devices.StartApprovalView.as_view(), name="approvals"),
    path("approvals/pending", devices.PendingApprovalsView.as_view(), name="approvals-pending"),
    # Async (ASGI): plain poll, ?wait=N long-poll, or text/event-stream.
    re_path(rf"^approvals/(?P<event_id>{ID})$", devices.approval_status, name="approval"),
    re_path(
        rf"^approvals/(?P<event_id>{ID})/challenge$",
        devices.ApprovalChallengeView.as_view(),
        name="approval-challenge",
    ),
    re_path(
        rf"^approvals/(?P<event_id>{ID})/decision$",
        devices.DecisionView.as_view(),
        name="approval-decision",
    ),
    # Adding a device by QR code.
    path("bindings", devices.StartBindingView.as_view(), name="bindings"),
    path("bindings/preview", devices.BindingPreviewView.as_view(), name="binding-preview"),
    path("bindings/redeem", devices.BindingRedeemView.as_view(), name="binding-redeem"),
    re_path(rf"^bindings/(?P<binding_id>{ID})$", devices.BindingView.as_view(), name="binding"),
    re_path(
        rf"^bindings/(?P<binding_id>{ID})/confirm$",
        devices.BindingConfirmView.as_view(),
        name="binding-confirm",
    ),
    re_path(
        rf"^bindings/(?P<binding_id>{ID})/cancel$",
        devices.BindingCancelView.as_view(),
        name="binding-cancel",
    ),
    # The OpenAPI document of this API, and a plain page listing it.
    path("schema", schema.SchemaView.as_view(), name="schema"),
    path("docs", schema.docs_view, name="docs"),
    re_path(r"^.*$", not_found),
]
