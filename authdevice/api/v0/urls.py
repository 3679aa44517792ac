from __future__ import annotations

from django.urls import path, re_path

from ..jwks import jwks_view
from . import verify, views

app_name = "authdevice_v0"


def not_found(request, *args, **kwargs):  # type: ignore[no-untyped-def]
    from django.http import JsonResponse

    return JsonResponse({"msg": "Not found.", "type": "not_found"}, status=404)


urlpatterns = [
    path("token/jwks", jwks_view, name="jwks"),
    path("token/revoke", views.RevokeView.as_view(), name="token-revoke"),
    path("token", views.TokenView.as_view(), name="token"),
    path("token/<str:api_key_id>", views.TokenView.as_view(), name="token-for-key"),
    path("verify/get_identity", verify.GetIdentityView.as_view(), name="get-identity"),
    re_path(r"^.*$", not_found),
]
