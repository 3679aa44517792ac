from __future__ import annotations

import pytest

from authdevice.flows.applications import (
    create_application,
    get_application,
    reset_application_secret,
)
from authdevice.flows.errors import FlowError
from authdevice.models import Application

REGISTERED = "https://app.example.com/cb"

# security.md V11: every mutation is refused when only REGISTERED is registered.
MUTATIONS = [
    "https://app.example.com/cb/",
    "https://app.example.com/cb?x=1",
    "https://app.example.com/cb#f",
    "https://APP.example.com/cb",
    "http://app.example.com/cb",
    "https://app.example.com:443/cb",
    "https://app.example.com/CB",
    "https://app.example.com/cb/../cb",
    "https://app.example.com/cb%2F..%2Fx",
    "https://app.example.com.evil.io/cb",
    "https://evil.io/cb?https://app.example.com/cb",
    "https://app.example.com@evil.io/cb",
    "https://evil.io\\@app.example.com/cb",
    "https://app.example.com%2F@evil.io/cb",
    "https://app.ex\u0430mple.com/cb",
    "//evil.io/cb",
    "javascript:alert(1)//app.example.com/cb",
    "",
]


@pytest.mark.django_db
def test_secret_is_stored_hashed_and_checked_in_constant_time():
    app, secret = create_application(name="A")
    row = Application.objects.get(pk=app.pk)
    assert secret not in row.secret_hash and len(row.secret_hash) == 64
    assert row.check_secret(secret)
    assert not row.check_secret(secret[:-1] + ("A" if secret[-1] != "A" else "B"))
    assert not row.check_secret("")
    assert len(secret) >= 43  # 256 bits, base64url


@pytest.mark.django_db
def test_reset_secret_invalidates_the_old_one():
    app, old = create_application(name="A")
    new = reset_application_secret(app)
    app.refresh_from_db()
    assert new != old and app.check_secret(new) and not app.check_secret(old)


@pytest.mark.django_db
@pytest.mark.parametrize("url", MUTATIONS)
def test_redirect_url_mutations_are_refused(url):
    app, _ = create_application(name="A", redirect_urls=[REGISTERED])
    assert app.redirect_url_allowed(REGISTERED)
    assert not app.redirect_url_allowed(url)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("registered", "candidate", "allowed"),
    [
        ("http://127.0.0.1/cb", "http://127.0.0.1:51234/cb", True),
        ("http://localhost:18555", "http://localhost:1234", True),
        ("http://[::1]/cb", "http://[::1]:8080/cb", True),
        ("http://127.0.0.1/cb", "http://127.0.0.1:51234/other", False),
        ("http://127.0.0.1/cb", "https://127.0.0.1:51234/cb", False),
        ("http://127.0.0.1/cb", "http://127.0.0.2:51234/cb", False),
        ("http://127.0.0.1/cb", "http://evil@127.0.0.1:5/cb", False),
        ("https://app.example.com/cb", "https://app.example.com:8443/cb", False),
    ],
)
def test_loopback_redirects_match_any_port(registered, candidate, allowed):
    app, _ = create_application(name="A", redirect_urls=[registered])
    assert app.redirect_url_allowed(candidate) is allowed


@pytest.mark.django_db
def test_relative_urls_are_refused_at_creation():
    with pytest.raises(FlowError):
        create_application(name="A", redirect_urls=["/cb"])


@pytest.mark.django_db
def test_inactive_application_is_not_found(django_assert_num_queries):
    app, _ = create_application(name="A")
    assert get_application(app.api_key_id) == app
    with django_assert_num_queries(0):
        assert get_application(app.api_key_id) == app  # cached in process
    Application.objects.filter(pk=app.pk).update(is_active=False)
    from authdevice.flows.applications import clear_application_cache

    clear_application_cache()
    assert get_application(app.api_key_id) is None
    assert get_application("x" * 65) is None
    assert get_application(None) is None


@pytest.mark.django_db
def test_admin_never_shows_the_secret_after_creation(admin_client):
    response = admin_client.post(
        "/admin/authdevice/application/add/",
        {
            "name": "Admin-made",
            "is_active": "on",
            "allowed_origins": "[]",
            "redirect_urls": '["https://x.example/cb"]',
        },
    )
    assert response.status_code == 200
    app = Application.objects.get(name="Admin-made")
    html = response.content.decode()
    start = html.index('id="secret-key">') + len('id="secret-key">')
    secret = html[start : html.index("<", start)]
    assert app.check_secret(secret)
    assert "no-store" in response["Cache-Control"]
    change = admin_client.get(f"/admin/authdevice/application/{app.pk}/change/")
    assert change.status_code == 200
    assert secret not in change.content.decode()
    assert app.secret_hash not in change.content.decode()
