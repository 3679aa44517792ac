"""The staff console for trusted devices, auth events and users: reference/security.md
L01-L04 and C09 (attacker-chosen device names are escaped)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib import admin as django_admin
from django.contrib.admin.models import LogEntry
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client

from authdevice.admin import USER_INLINES, install_user_inlines
from authdevice.flows.applications import create_application
from authdevice.flows.tokens import verify_access_token
from authdevice.models import AuthEvent, RefreshToken, TrustedDevice
from tests.devicekit import Phone
from tests.test_v0_events import login_body, pending_body, post, respond_body
from tests.test_v0_users import cotter_error, enrol_body, headers

pytestmark = pytest.mark.django_db

XSS = "<img src=x onerror=alert(1)>"
DEVICES = "/admin/authdevice/trusteddevice/"
EVENTS = "/admin/authdevice/authevent/"


def staff(username: str, *perms: str) -> Any:
    user = get_user_model().objects.create_user(username=username, password="pw", is_staff=True)
    for codename in perms:
        user.user_permissions.add(Permission.objects.get(codename=codename))
    return user


def logged_in(user: Any, *, csrf: bool = False) -> Client:
    client = Client(enforce_csrf_checks=csrf)
    client.force_login(user)
    return client


def csrf_token(client: Client, url: str) -> str:
    page = client.get(url)
    assert page.status_code == 200
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode())
    assert match, "no CSRF token on the page"
    return match.group(1)


def revoke_via_admin(client: Client, *devices: TrustedDevice) -> Any:
    token = csrf_token(client, DEVICES)
    return client.post(
        DEVICES,
        {
            "action": "revoke",
            "_selected_action": [str(d.pk) for d in devices],
            "csrfmiddlewaretoken": token,
        },
        follow=True,
    )


@pytest.fixture
def enrolled(api, application, identity):
    """Alice's phone, enrolled through the API with an attacker-chosen name, plus the token
    set of a sign-in with it."""
    phone = Phone.new("rn")
    from tests.test_v0_users import bearer

    body = {**enrol_body(phone), "device_name": XSS, "device_type": XSS}
    put = api.put(
        f"/api/v0/user/{identity.client_user_id}",
        body,
        format="json",
        **headers(application, **bearer(identity, application)),
    )
    assert put.status_code == 200, put.content
    signed = post(
        api,
        application,
        "/api/v0/event/create?oauth_token=true",
        login_body(application, identity.client_user_id, phone),
    )
    assert signed.status_code == 200, signed.content
    return phone, TrustedDevice.objects.get(), signed.json()["oauth_token"]


# --------------------------------------------------------------------------- L01


def test_l01_revoke_in_the_admin_cascades(api, application, identity, enrolled):
    phone, device, tokens = enrolled
    other = Phone.new("ios")
    from tests.test_v0_users import enrol

    enrol(api, application, identity, other)
    uid = identity.client_user_id
    pending = post(api, application, "/api/v0/event/create_pending", pending_body(application, uid))
    officer = staff("officer", "view_trusteddevice", "revoke_trusteddevice")
    response = revoke_via_admin(logged_in(officer, csrf=True), device)
    assert response.status_code == 200
    assert "Revoked 1 device" in response.content.decode()
    device.refresh_from_db()
    assert device.revoked_at is not None and device.revoked_by == "officer"
    assert device.revoke_reason == "revoked by staff"
    # Its signatures fail on the very next request...
    cotter_error(
        post(api, application, "/api/v0/event/create", login_body(application, uid, phone)),
        401,
        "device_not_trusted",
    )
    # ...it can no longer approve a pending request (another device still can)...
    event = pending.json()
    cotter_error(
        post(
            api,
            application,
            f"/api/v0/event/respond/{event['ID']}",
            respond_body(application, uid, phone, event),
        ),
        401,
    )
    # ...and its refresh tokens are dead.
    refresh = api.post(
        f"/api/v0/token/{application.api_key_id}",
        {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        format="json",
    )
    cotter_error(refresh, 400, "invalid_grant")
    # Access tokens already issued stay valid until they expire (verified locally, without
    # a database query); their lifetime is the exposure window, pinned here.
    claims = verify_access_token(tokens["access_token"])
    assert claims["exp"] - claims["iat"] == 3600
    # Audited: who and what.
    removal = AuthEvent.objects.get(event="DEVICE_REMOVED")
    assert removal.actor == "officer" and removal.details["device"] == device.pk
    entry = LogEntry.objects.get(object_id=str(device.pk))
    assert entry.user == officer and "Revoked" in entry.get_change_message()
    # Revoking again is a no-op.
    again = revoke_via_admin(logged_in(officer, csrf=True), device)
    assert "Revoked 0 device" in again.content.decode()
    assert AuthEvent.objects.filter(event="DEVICE_REMOVED").count() == 1


def test_l01_revoke_action_needs_csrf(enrolled):
    _, device, _ = enrolled
    officer = staff("officer", "view_trusteddevice", "revoke_trusteddevice")
    client = logged_in(officer, csrf=True)
    response = client.post(DEVICES, {"action": "revoke", "_selected_action": [str(device.pk)]})
    assert response.status_code == 403
    device.refresh_from_db()
    assert device.revoked_at is None


# --------------------------------------------------------------------------- L03


def test_l03_viewing_is_not_revoking(enrolled):
    _, device, _ = enrolled
    viewer = staff("viewer", "view_trusteddevice")
    client = logged_in(viewer, csrf=True)
    page = client.get(DEVICES)
    assert page.status_code == 200
    assert 'value="revoke"' not in page.content.decode()
    response = revoke_via_admin(client, device)
    assert response.status_code == 200
    device.refresh_from_db()
    assert device.revoked_at is None
    assert not AuthEvent.objects.filter(event="DEVICE_REMOVED").exists()


def test_l03_no_permission_no_page_and_no_add_delete_or_edit(admin_client, enrolled):
    _, device, _ = enrolled
    nobody = logged_in(staff("nobody"))
    assert nobody.get(DEVICES).status_code == 403
    assert nobody.get(EVENTS).status_code == 403
    # Even a superuser cannot add, edit or delete devices (revoke is the only change) ...
    assert admin_client.get(f"{DEVICES}add/").status_code == 403
    assert admin_client.get(f"{DEVICES}{device.pk}/delete/").status_code == 403
    change = admin_client.get(f"{DEVICES}{device.pk}/change/")
    assert change.status_code == 200 and 'name="_save"' not in change.content.decode()
    assert admin_client.post(f"{DEVICES}{device.pk}/change/", {"name": "x"}).status_code == 403
    page = admin_client.get(DEVICES).content.decode()
    assert 'value="delete_selected"' not in page and 'value="revoke"' in page
    # ... nor touch the audit log.
    event = AuthEvent.objects.first()
    assert admin_client.get(f"{EVENTS}add/").status_code == 403
    assert admin_client.get(f"{EVENTS}{event.pk}/delete/").status_code == 403
    assert admin_client.post(f"{EVENTS}{event.pk}/change/", {"event": "X"}).status_code == 403
    assert 'name="_save"' not in admin_client.get(f"{EVENTS}{event.pk}/change/").content.decode()


# --------------------------------------------------------------------------- L04, C09


def test_l04_admin_pages_show_no_secrets_and_c09_names_are_escaped(
    admin_client, application, identity, enrolled
):
    _, device, tokens = enrolled
    secret = tokens["refresh_token"].split(":", 1)[1]
    refresh_row = RefreshToken.objects.get(pk=int(tokens["refresh_token"].split(":")[0]))
    user_page = f"/admin/{identity.user._meta.app_label}/{identity.user._meta.model_name}/"
    pages = [
        DEVICES,
        f"{DEVICES}{device.pk}/change/",
        EVENTS,
        f"{EVENTS}{AuthEvent.objects.filter(event='LOGIN').first().pk}/change/",
        "/admin/authdevice/refreshtoken/",
        f"/admin/authdevice/refreshtoken/{refresh_row.pk}/change/",
        "/admin/authdevice/application/",
        f"/admin/authdevice/application/{application.pk}/change/",
        f"{user_page}{identity.user.pk}/change/",
    ]
    for url in pages:
        response = admin_client.get(url)
        assert response.status_code == 200, url
        html = response.content.decode()
        for value in (secret, tokens["access_token"], tokens["id_token"], application.secret):
            assert value not in html, url
        assert device.public_key not in html, url  # shown truncated only
        assert XSS not in html, url
    change = admin_client.get(f"{DEVICES}{device.pk}/change/").content.decode()
    assert "&lt;img src=x onerror=alert(1)&gt;" in change
    assert device.public_key[:16] in change
    listing = admin_client.get(DEVICES).content.decode()
    assert "&lt;img src=x onerror=alert(1)&gt;" in listing
    # Token values are not search terms that find anything.
    found = admin_client.get("/admin/authdevice/refreshtoken/", {"q": secret}).content.decode()
    assert f"{refresh_row.pk}/change/" not in found


# --------------------------------------------------------------------------- lists


def test_device_and_event_lists_filter_and_search(admin_client, identity, enrolled):
    _, device, _ = enrolled
    user_pk = identity.user.pk
    for params in (
        {"status": "active"},
        {"status": "revoked"},
        {"algorithm": "ED25519"},
        {"user": str(user_pk)},
        {"user": "not-a-pk"},
        {"q": "alice"},
        {"q": identity.client_user_id},
        {"q": device.fingerprint},
        {"last_used_at__gte": "2000-01-01 00:00:00+00:00"},
    ):
        response = admin_client.get(DEVICES, params)
        assert response.status_code == 200, params
    page = admin_client.get(DEVICES, {"user": str(user_pk), "status": "active"}).content.decode()
    assert f"{device.pk}/change/" in page and "alice" in page
    assert (
        f"{device.pk}/change/"
        not in admin_client.get(DEVICES, {"status": "revoked"}).content.decode()
    )
    login = AuthEvent.objects.filter(event="LOGIN").first()
    for params in (
        {"user": str(user_pk)},
        {"state": "approved"},
        {"event": "LOGIN"},
        {"method": "TRUSTED_DEVICE"},
        {"application__id__exact": str(login.application_id)},
        {"created_at__gte": "2000-01-01 00:00:00+00:00"},
        {"q": "alice"},
        {"q": str(login.pk)},
        {"q": "127.0.0.1"},
        {"q": XSS[:8]},
    ):
        response = admin_client.get(EVENTS, params)
        assert response.status_code == 200, params
    by_id = admin_client.get(EVENTS, {"q": str(login.pk)}).content.decode()
    assert f"{login.pk}/change/" in by_id
    by_user = admin_client.get(EVENTS, {"user": str(user_pk)}).content.decode()
    assert f"{login.pk}/change/" in by_user and "alice" in by_user


def test_user_page_shows_identifiers_devices_and_recent_events(admin_client, identity, enrolled):
    _, device, _ = enrolled
    for _ in range(25):
        AuthEvent.objects.create(user=identity.user, event="LOGIN", state="approved")
    user = identity.user
    url = f"/admin/{user._meta.app_label}/{user._meta.model_name}/{user.pk}/change/"
    html = admin_client.get(url).content.decode()
    assert str(identity.public_id) in html
    assert "alice@example.com" in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html  # the device, escaped
    assert f"/admin/authdevice/trusteddevice/{device.pk}/change/" in html
    shown = set(re.findall(r"/admin/authdevice/authevent/(\d+)/change/", html))
    assert len(shown) == 20


def test_user_inlines_only_extend_a_registered_user_admin():
    user_model = get_user_model()
    registered = django_admin.site._registry[user_model]
    assert all(inline in registered.inlines for inline in USER_INLINES)
    assert install_user_inlines() is True  # idempotent
    assert django_admin.site._registry[user_model].__class__ is registered.__class__
    other_site = django_admin.AdminSite(name="other")
    assert install_user_inlines(other_site) is False
    other_site.register(user_model, django_admin.ModelAdmin)
    assert install_user_inlines(other_site) is False
    assert list(other_site._registry[user_model].inlines) == []


# --------------------------------------------------------------------------- legacy switch


def test_legacy_enrolment_switch_is_prominent(admin_client, application):
    listing = admin_client.get("/admin/authdevice/application/").content.decode()
    assert "LEGACY" not in listing and "bearer token required" in listing
    legacy, _ = create_application(name="Old app", allow_unauthenticated_enrolment=True)
    listing = admin_client.get("/admin/authdevice/application/").content.decode()
    assert "LEGACY: no proof needed (unsafe)" in listing
    assert "Unauthenticated trusted-device enrolment (legacy Cotter behaviour) is ON" in listing
    change = admin_client.get(f"/admin/authdevice/application/{legacy.pk}/change/")
    assert "is ON for: Old app" in change.content.decode()
    normal = admin_client.get(f"/admin/authdevice/application/{application.pk}/change/")
    assert "legacy Cotter behaviour) is ON" not in normal.content.decode()


@pytest.mark.parametrize("selection", [["abc"], ["\x00"], ["1", "x"], [str(2**64)], ["-1e9"]])
def test_a_tampered_selection_is_a_message_not_a_500(enrolled, selection):
    _phone, device, _tokens = enrolled
    officer = staff("officer", "view_trusteddevice", "revoke_trusteddevice")
    client = logged_in(officer)
    client.raise_request_exception = False
    response = client.post(
        DEVICES, {"action": "revoke", "_selected_action": selection}, follow=True
    )
    assert response.status_code == 200
    assert "The selection is not valid" in response.content.decode()
    device.refresh_from_db()
    assert device.revoked_at is None


AUTHDEVICE_CHANGELISTS = [
    f"/admin/authdevice/{model._meta.model_name}/"
    for model in django_admin.site._registry
    if model._meta.app_label == "authdevice"
]


@pytest.mark.parametrize(
    "query",
    [
        "created_at__year=99999",
        "created_at__year=0",
        "created_at__year__gt=99999",
        "created_at__month=13",
        "created_at__gte=2026-13-45",
        "id=99999999999999999999999",
        "id__in=1,x",
    ],
)
def test_every_changelist_answers_a_bad_filter_without_a_500(query, admin_user):
    """Bad input is a 4xx or the admin's "invalid lookup" redirect, never a 500."""
    assert len(AUTHDEVICE_CHANGELISTS) >= 6
    client = Client(raise_request_exception=False)
    client.force_login(admin_user)
    for url in AUTHDEVICE_CHANGELISTS:
        response = client.get(f"{url}?{query}")
        assert response.status_code in (200, 302, 400), (url, response.status_code)
        if response.status_code == 302:
            assert response["Location"].endswith("?e=1"), (url, response["Location"])
            assert client.get(response["Location"]).status_code == 200, url
