from __future__ import annotations

import io
import json

import jwt
import pytest
from django.core.management import CommandError, call_command

from authdevice.flows.tokens import verify_access_token
from authdevice.models import Application, AuthEvent, RefreshToken


def run(*args):
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_create_application_json():
    data = json.loads(
        run(
            "authdevice_create_application",
            "--name",
            "CLI",
            "--redirect-url",
            "http://localhost:18555",
            "--redirect-url",
            "com.example.app:/callback",
            "--origin",
            "https://www.example.com/",
            "--json",
        )
    )
    app = Application.objects.get(api_key_id=data["api_key_id"])
    assert app.check_secret(data["secret_key"])
    assert app.redirect_urls == ["http://localhost:18555", "com.example.app:/callback"]
    assert app.allowed_origins == ["https://www.example.com"]
    assert data["secret_key"] not in app.secret_hash


@pytest.mark.django_db
def test_issue_tokens_for_existing_user(user, application):
    data = json.loads(
        run(
            "authdevice_issue_tokens",
            "--identifier",
            "ALICE@example.com",
            "--application",
            application.api_key_id,
            "--json",
        )
    )
    assert set(data) == {
        "access_token",
        "id_token",
        "refresh_token",
        "expires_in",
        "token_type",
        "auth_method",
    }
    claims = verify_access_token(data["access_token"])
    assert claims["sub"] == str(user.authdevice_identity.public_id)
    assert claims["identifier"] == "alice@example.com"
    assert claims["authentication_method"] == "OPERATOR"
    assert RefreshToken.objects.count() == 1
    assert AuthEvent.objects.filter(event="TOKENS_ISSUED", user=user).exists()
    assert jwt.get_unverified_header(data["id_token"])["typ"] == "JWT"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("identifier", "key", "message"),
    [
        ("nobody@example.com", None, "No user"),
        ("not-an-identifier", None, "Not an email"),
        ("alice@example.com", "no-such-key", "No active application"),
    ],
)
def test_issue_tokens_errors(user, application, identifier, key, message):
    with pytest.raises(CommandError, match=message):
        run(
            "authdevice_issue_tokens",
            "--identifier",
            identifier,
            "--application",
            key or application.api_key_id,
        )
    assert RefreshToken.objects.count() == 0


@pytest.mark.django_db
def test_demo_command_is_idempotent():
    first = run("authdevice_demo")
    second = run("authdevice_demo")
    assert "secret" in first and "secret" not in second
    assert Application.objects.count() == 1
    key = Application.objects.get().api_key_id
    assert key in first and key in second
