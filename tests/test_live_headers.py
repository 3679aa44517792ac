"""API_KEY_ID (an underscore header) must reach Django under every documented server."""

from __future__ import annotations

import pytest
import requests

from tests.live import live_site


@pytest.mark.parametrize("server", ["runserver", "gunicorn"])
def test_underscore_api_key_header_reaches_django(server):
    with live_site(server) as site:
        body = {"grant_type": "refresh_token", "refresh_token": "1:nope"}
        # With the header the application is found, so the error is about the token...
        ok = requests.post(
            f"{site.url}/api/v0/token",
            json=body,
            headers={"API_KEY_ID": site.api_key_id},
            timeout=10,
        )
        assert ok.status_code == 400, ok.text
        assert ok.json() == {"msg": "The refresh token is not valid.", "type": "invalid_grant"}
        # ...without it the application is unknown.
        missing = requests.post(f"{site.url}/api/v0/token", json=body, timeout=10)
        assert missing.status_code == 401
        assert missing.json()["type"] == "invalid_client"
        jwks = requests.get(f"{site.url}/.well-known/jwks.json", timeout=10)
        assert jwks.status_code == 200 and jwks.json()["keys"][0]["alg"] == "ES256"


def test_runserver_drops_other_underscore_headers_and_dashed_twins():
    from django.core.management import load_command_class

    cmd = load_command_class("authdevice", "runserver")
    handler = cmd.server_cls.__mro__[0]
    assert handler.__name__ == "UnderscoreHeaderWSGIServer"
    with live_site("runserver") as site:
        # A dashed spelling cannot shadow or merge into the underscore header.
        r = requests.post(
            f"{site.url}/api/v0/token",
            json={"grant_type": "refresh_token", "refresh_token": "1:x"},
            headers={"API_KEY_ID": site.api_key_id, "API-KEY-ID": "spoofed"},
            timeout=10,
        )
        assert r.status_code == 400 and r.json()["type"] == "invalid_grant"
