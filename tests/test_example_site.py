from __future__ import annotations

import io

import pytest
from django.urls import path

from project.urls import urlpatterns as site_urlpatterns


@pytest.mark.django_db
def test_home_page_links_to_sign_in(client, user):
    page = client.get("/")
    assert page.status_code == 200 and b"/signin/" in page.content
    client.force_login(user)
    signed_in = client.get("/")
    assert b"alice" in signed_in.content and b"/signout/" in signed_in.content


def _boom(request):
    raise RuntimeError("secret detail: sk_live_do_not_show")


# The example site's URLs and one view that fails (a forced 500).
urlpatterns = [path("boom/", _boom), *site_urlpatterns]


def _assert_security_headers(response) -> None:
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Frame-Options"] == "DENY"
    assert "Server" not in response or "Django" not in response["Server"]


@pytest.mark.django_db
def test_error_pages_carry_security_headers_and_no_detail(settings):
    """security.md K05/K06: a 404 and an unhandled exception under DEBUG=False get the
    same headers as every page, and a generic body that shows nothing of the failure."""
    from django.test import Client

    settings.DEBUG = False
    settings.ROOT_URLCONF = __name__
    client = Client(raise_request_exception=False)
    missing = client.get("/no/such/page/")
    assert missing.status_code == 404
    _assert_security_headers(missing)
    failed = client.get("/boom/")
    assert failed.status_code == 500
    _assert_security_headers(failed)
    body = failed.content.decode()
    assert "secret detail" not in body and "Traceback" not in body and "RuntimeError" not in body


def _production_env(tmp_path, **extra: str) -> dict[str, str]:
    import os
    import secrets

    env = {k: v for k, v in os.environ.items() if not k.startswith(("AUTHDEVICE_", "DJANGO_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="project.settings",
        DEBUG="0",
        SECURE_SSL="1",
        SECURE_HSTS_PRELOAD="1",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="auth.example.com",
        AUTHDEVICE_ISSUER="https://auth.example.com",
        REDIS_URL="redis://127.0.0.1:6399/0",  # named, never contacted by the checks
        DATABASE_URL=f"sqlite:///{tmp_path / 'deploy.sqlite3'}",
        **extra,
    )
    return env


def test_production_settings_pass_check_deploy(tmp_path):
    """security.md K05: the README's production settings pass Django's deployment checks
    and authdevice's own, with warnings as failures; without Redis, authdevice warns."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    command = [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"]
    ok = subprocess.run(
        command, cwd=root, env=_production_env(tmp_path), capture_output=True, text=True
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "no issues" in ok.stdout
    env = _production_env(tmp_path)
    del env["REDIS_URL"]
    local = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True)
    assert local.returncode != 0
    assert "authdevice.W004" in local.stdout + local.stderr


@pytest.mark.django_db
def test_session_and_csrf_cookies_are_httponly_where_they_can_be_and_lax(client, settings):
    """security.md K03 (the example site's defaults; Secure comes with SECURE_SSL=1)."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    page = client.get("/signin/")
    csrf = page.cookies["csrftoken"]
    assert csrf["samesite"] == "Lax"
    started = client.post(
        "/signin/",
        {"identifier": "ann@example.com", "method": "OTP", "csrfmiddlewaretoken": csrf.value},
    )
    assert started.status_code == 303
    session = started.cookies["sessionid"]
    assert session["httponly"] is True and session["samesite"] == "Lax"
    assert not session["secure"]  # SECURE_SSL off in tests; the deploy check covers it


@pytest.mark.django_db
def test_an_undecodable_form_body_is_a_400_not_a_crash():
    """A form POST whose charset Django cannot decode, to a CSRF-protected page: the CSRF
    check raises BadRequest; the site's handler400 must not raise it again."""
    from django.core.handlers.wsgi import WSGIHandler
    from django.test import RequestFactory

    body = b"name=x&csrfmiddlewaretoken=" + b"a" * 64
    environ = RequestFactory()._base_environ(
        REQUEST_METHOD="POST",
        PATH_INFO="/signin/",
        CONTENT_TYPE="application/x-www-form-urlencoded; charset=hex",
        CONTENT_LENGTH=str(len(body)),
        HTTP_COOKIE="csrftoken=" + "a" * 32,
        HTTP_X_CSRFTOKEN="a" * 32,
    )
    environ["wsgi.input"] = io.BytesIO(body)
    statuses: list[str] = []
    WSGIHandler()(environ, lambda status, headers, exc_info=None: statuses.append(status))
    assert statuses and statuses[0].startswith("400"), statuses
