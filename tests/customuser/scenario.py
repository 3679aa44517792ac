"""Run only through tests/test_custom_user_model.py (a subprocess with a custom
AUTH_USER_MODEL); the file name keeps pytest from collecting it on its own."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from authdevice.flows.applications import create_application
from authdevice.flows.identities import add_identifier, find_identity
from authdevice.flows.tokens import issue_token_set, refresh_token_set, verify_access_token


@pytest.mark.django_db
def test_tokens_for_a_custom_user_model(client):
    User = get_user_model()
    assert User.__name__ == "EmailUser"
    user = User.objects.create_user(email="carol@example.com")
    add_identifier(user, "EMAIL", "Carol@Example.com", verified=True)
    identity = find_identity("carol@example.com")
    assert identity.user == user
    app, _ = create_application(name="Custom")
    tokens = issue_token_set(identity=identity, application=app, auth_method="OTP")
    claims = verify_access_token(tokens.access_token)
    assert claims["sub"] == str(identity.public_id) != str(user.pk)
    again = refresh_token_set(tokens.refresh_token, api_key_id=app.api_key_id)
    assert verify_access_token(again.access_token)["sub"] == claims["sub"]
    response = client.get("/demo/api/me", HTTP_AUTHORIZATION=f"Bearer {again.access_token}")
    assert response.status_code == 200 and response.json()["sub"] == claims["sub"]
