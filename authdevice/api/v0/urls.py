from __future__ import annotations

from django.urls import path, re_path
from django.views.decorators.csrf import csrf_exempt

from ..jwks import jwks_view
from . import events, users, verify, views, wait

app_name = "authdevice_v0"


@csrf_exempt
def not_found(request, *args, **kwargs):  # type: ignore[no-untyped-def]
    from django.http import JsonResponse

    return JsonResponse({"msg": "Not found.", "type": "not_found"}, status=404)


urlpatterns = [
    path("token/jwks", jwks_view, name="jwks"),
    path("token/revoke", views.RevokeView.as_view(), name="token-revoke"),
    path("token", views.TokenView.as_view(), name="token"),
    path("token/<str:api_key_id>", views.TokenView.as_view(), name="token-for-key"),
    path("verify/get_identity", verify.GetIdentityView.as_view(), name="get-identity"),
    # Group A: users and enrolled methods (specific paths before ``user/<id>``).
    path("user/create", users.CreateUserView.as_view(), name="user-create"),
    path("user/list", users.UserListView.as_view(), name="user-list"),
    path("user/methods", users.UserMethodsView.as_view(), name="user-methods"),
    re_path(
        r"^user/enrolled/any/(?P<user_id>[^/]+)/(?P<method>[A-Z_]+)$",
        users.EnrolledAnyView.as_view(),
        name="user-enrolled-any",
    ),
    path(
        "user/enrolled/<str:user_id>/<str:method>",
        users.EnrolledView.as_view(),
        name="user-enrolled",
    ),
    path(
        "user/enrolled/<str:user_id>/<str:method>/<path:encoded_key>",
        users.EnrolledView.as_view(),
        name="user-enrolled-key",
    ),
    re_path(
        r"^user/reset/(?P<action>start|request|verify|respond)/(?P<user_id>[^/]+)$",
        users.PinResetView.as_view(),
        name="user-reset",
    ),
    path("user/<str:user_id>", users.UserView.as_view(), name="user"),
    path("user", users.UserByIdentifierView.as_view(), name="user-by-identifier"),
    # Group B: authentication events (trusted devices).
    path("event/create", events.CreateEventView.as_view(), name="event-create"),
    path(
        "event/create_pending",
        events.CreatePendingEventView.as_view(),
        name="event-create-pending",
    ),
    path("event/respond/<str:event_id>", events.RespondEventView.as_view(), name="event-respond"),
    # Async: ``?wait=N`` long-polls (uvicorn), then answers as events.GetEventView.
    path("event/get/<str:event_id>", wait.get_event, name="event-get"),
    path("event/new", events.NewEventQueryView.as_view(), name="event-new-query"),
    path("event/new/<str:user_id>", events.NewEventView.as_view(), name="event-new"),
    re_path(r"^.*$", not_found),
]
