"""security.md I01/I02: exact origins, credentials never with a wildcard."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db

ALLOWED = "https://app.example.com"
BAD = [
    "null",
    "https://app.example.com.evil.io",
    "https://evilapp.example.com",
    "http://app.example.com",
    "https://app.example.com:444",
]


def refresh(client, app, origin):
    return client.post(
        f"/api/v0/token/{app.api_key_id}",
        {"grant_type": "refresh_token", "refresh_token": "1:x"},
        content_type="application/json",
        HTTP_ORIGIN=origin,
    )


def test_allowed_origin_is_echoed_exactly(client, application):
    response = refresh(client, application, ALLOWED)
    assert response.status_code == 400
    assert response["Access-Control-Allow-Origin"] == ALLOWED
    assert response["Access-Control-Allow-Credentials"] == "true"
    assert "Origin" in response["Vary"]


@pytest.mark.parametrize("origin", BAD)
def test_other_origins_get_no_cors_headers(client, application, origin):
    response = refresh(client, application, origin)
    assert "Access-Control-Allow-Origin" not in response
    preflight = client.options(
        f"/api/v0/token/{application.api_key_id}",
        HTTP_ORIGIN=origin,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
    )
    assert not [h for h in preflight.headers if h.lower().startswith("access-control-allow")]


def test_preflight_for_allowed_origin(client, application):
    for path in (f"/api/v0/token/{application.api_key_id}", "/api/v0/token"):
        response = client.options(
            path,
            HTTP_ORIGIN=ALLOWED,
            HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
            HTTP_ACCESS_CONTROL_REQUEST_HEADERS="api_key_id, content-type",
        )
        assert response.status_code == 204
        assert response["Access-Control-Allow-Origin"] == ALLOWED
        assert "API_KEY_ID" in response["Access-Control-Allow-Headers"]


def test_origin_of_another_application_is_not_echoed(client, application, other_application):
    other_application.allowed_origins = ["https://other.example.com"]
    other_application.save()
    response = refresh(client, application, "https://other.example.com")
    assert "Access-Control-Allow-Origin" not in response


def test_wildcard_only_on_public_jwks(client, application):
    jwks = client.get("/.well-known/jwks.json", HTTP_ORIGIN="https://anyone.example")
    assert jwks["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Allow-Credentials" not in jwks
    token = refresh(client, application, ALLOWED)
    assert token["Access-Control-Allow-Origin"] != "*"
