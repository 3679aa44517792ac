from __future__ import annotations

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
