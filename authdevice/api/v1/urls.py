from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.urls import path, re_path

from . import codes

app_name = "authdevice_v1"


def not_found(request: HttpRequest, *args: object, **kwargs: object) -> JsonResponse:
    return JsonResponse({"error": "not_found", "message": "Not found."}, status=404)


urlpatterns = [
    path("auth/code", codes.CodeRequestView.as_view(), name="auth-code"),
    path("auth/code/resend", codes.CodeResendView.as_view(), name="auth-code-resend"),
    path("auth/code/verify", codes.CodeVerifyView.as_view(), name="auth-code-verify"),
    re_path(r"^.*$", not_found),
]
