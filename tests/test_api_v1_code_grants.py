"""The native API's two-step code sign-in (RFC 7636 PKCE): ``/auth/code`` with a
``code_challenge``, ``/auth/code/verify`` answering a right code with a one-use
authorization code, ``/auth/code/token`` exchanging it with the ``code_verifier``."""

from __future__ import annotations

import json
import re
import secrets
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.core import mail
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from authdevice.channels import locmem
from authdevice.flows import tokens as token_flows
from authdevice.flows.pkce import s256
from authdevice.models import AuthEvent, Challenge, Identifier, RefreshToken

pytestmark = pytest.mark.django_db(transaction=True)

REQUEST = "/api/v1/auth/code"
VERIFY = "/api/v1/auth/code/verify"
TOKEN = "/api/v1/auth/code/token"


@pytest.fixture(autouse=True)
def _setup(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.AUTHDEVICE_CHANNELS = {"EMAIL": "authdevice.channels.email.EmailBackend"}
    cache.clear()
    locmem.outbox.clear()
    yield
    cache.clear()


@pytest.fixture
def client() -> Client:
    return Client(raise_request_exception=False)


def post(client: Client, url: str, body: Any, application: Any) -> Any:
    return client.post(
        url,
        data=json.dumps(body),
        content_type="application/json",
        HTTP_API_KEY_ID=application.api_key_id,
    )


def sent_code() -> str:
    return re.search(r"\b(\d{6})\b", mail.outbox[-1].body).group(1)


def assert_error(response: Any, status: int, code: str) -> None:
    assert response.status_code == status, response.content
    data = response.json()
    assert set(data) == {"error", "message"} and data["error"] == code, data
    assert data["message"]


class Flow:
    """One client's sign-in: its verifier, challenge and (after verify) grant."""

    def __init__(self, client: Client, application: Any, identifier: str) -> None:
        self.client, self.application = client, application
        self.verifier = secrets.token_urlsafe(48)
        response = post(
            client,
            REQUEST,
            {
                "identifier": identifier,
                "code_challenge": s256(self.verifier),
                "code_challenge_method": "S256",
            },
            application,
        )
        assert response.status_code == 202, response.content
        self.started = response.json()
        self.code = sent_code()

    def verify(self, code: str | None = None) -> Any:
        body = {
            "challenge_id": self.started["challenge_id"],
            "challenge_secret": self.started["challenge_secret"],
            "code": code or self.code,
        }
        return post(self.client, VERIFY, body, self.application)

    def grant(self) -> dict[str, Any]:
        response = self.verify()
        assert response.status_code == 200, response.content
        return response.json()

    def exchange(self, grant: dict[str, Any], application: Any = None, **override: Any) -> Any:
        body = {
            "challenge_id": grant["challenge_id"],
            "authorization_code": grant["authorization_code"],
            "code_verifier": self.verifier,
            **override,
        }
        return post(self.client, TOKEN, body, application or self.application)


# --------------------------------------------------------------------------- round trips


def test_new_user_signs_in_only_at_the_exchange(client, application):
    flow = Flow(client, application, "New@Example.com")
    assert set(flow.started) == {"challenge_id", "challenge_secret", "expires_in", "channel"}
    response = flow.verify()
    assert response.status_code == 200, response.content
    assert "no-store" in response["Cache-Control"]
    grant = response.json()
    assert set(grant) == {"authorization_code", "challenge_id", "expires_in"}
    assert grant["challenge_id"] == flow.started["challenge_id"]
    assert grant["expires_in"] == 300 and len(grant["authorization_code"]) >= 43
    # Nobody is signed in yet: no user, no token, no audit row; the grant is stored hashed.
    challenge = Challenge.objects.get()
    assert challenge.state == Challenge.State.GRANTED and challenge.identity_id is None
    assert challenge.grant_hash and grant["authorization_code"] not in challenge.grant_hash
    assert not get_user_model().objects.exists()
    assert not RefreshToken.objects.exists() and not AuthEvent.objects.exists()

    response = flow.exchange(grant)
    assert response.status_code == 200, response.content
    assert "no-store" in response["Cache-Control"]
    data = response.json()
    assert set(data) == {
        "access_token",
        "id_token",
        "refresh_token",
        "expires_in",
        "token_type",
        "auth_method",
        "user",
    }
    claims = token_flows.verify_access_token(data["access_token"])
    assert claims["aud"] == application.api_key_id and claims["sub"] == data["user"]["ID"]
    assert data["user"]["identifier"] == "new@example.com" and data["auth_method"] == "OTP"
    identifier = Identifier.objects.get(value="new@example.com")
    assert identifier.verified_at is not None
    challenge.refresh_from_db()
    assert challenge.state == Challenge.State.VERIFIED
    assert challenge.identity_id == identifier.identity_id
    assert challenge.token_family == RefreshToken.objects.get().family
    login = AuthEvent.objects.get(event=AuthEvent.Kind.LOGIN)
    assert login.user_id == identifier.identity.user_id and login.details["new_user"] is True
    rotated = token_flows.refresh_token_set(
        data["refresh_token"], api_key_id=application.api_key_id
    )
    assert rotated.refresh_token != data["refresh_token"]


def test_returning_user(client, application, user):
    flow = Flow(client, application, "alice@example.com")
    data = flow.exchange(flow.grant()).json()
    assert data["user"]["ID"] == str(user.authdevice_identity.public_id)
    assert token_flows.verify_access_token(data["access_token"])["sub"] == data["user"]["ID"]
    assert AuthEvent.objects.get(event=AuthEvent.Kind.LOGIN).details["new_user"] is False


def test_verify_of_a_pkce_challenge_is_one_read_and_one_update(client, application, user):
    flow = Flow(client, application, "alice@example.com")
    with CaptureQueriesContext(connection) as queries:
        assert flow.verify().status_code == 200
    statements = [q["sql"].split()[0] for q in queries.captured_queries]
    # The application (cached after the code request), the challenge, the grant.
    assert statements == ["SELECT", "UPDATE"], queries.captured_queries


# --------------------------------------------------------------------------- the grant


def test_second_verify_is_refused(client, application):
    flow = Flow(client, application, "new@example.com")
    flow.grant()
    assert_error(flow.verify(), 400, "invalid_code")


def test_wrong_code_counts_as_usual(client, application):
    flow = Flow(client, application, "new@example.com")
    wrong = "000000" if flow.code != "000000" else "111111"
    assert_error(flow.verify(wrong), 400, "invalid_code")
    assert Challenge.objects.get().attempts == 1
    assert flow.verify().status_code == 200


def test_wrong_verifier_application_or_code_is_invalid_grant_and_spends_nothing(
    client, application, other_application
):
    flow = Flow(client, application, "new@example.com")
    grant = flow.grant()
    bad = [
        flow.exchange(grant, code_verifier=secrets.token_urlsafe(48)),
        flow.exchange(grant, authorization_code=secrets.token_urlsafe(32)),
        flow.exchange(grant, challenge_id=str(int(grant["challenge_id"]) + 1)),
        flow.exchange(grant, application=other_application),
    ]
    for response in bad:
        assert_error(response, 400, "invalid_grant")
    assert Challenge.objects.get().state == Challenge.State.GRANTED
    assert flow.exchange(grant).status_code == 200


def test_grant_expires(client, application):
    flow = Flow(client, application, "new@example.com")
    grant = flow.grant()
    with time_machine.travel(timezone.now() + timedelta(seconds=301)):
        assert_error(flow.exchange(grant), 400, "invalid_grant")


def test_replay_revokes_the_tokens_of_the_first_exchange(client, application):
    flow = Flow(client, application, "new@example.com")
    grant = flow.grant()
    first = flow.exchange(grant).json()
    assert_error(flow.exchange(grant), 400, "invalid_grant")
    assert RefreshToken.objects.get().revoked_at is not None
    with pytest.raises(token_flows.InvalidGrant):
        token_flows.refresh_token_set(first["refresh_token"], api_key_id=application.api_key_id)
    revoked = AuthEvent.objects.get(event=AuthEvent.Kind.TOKENS_REVOKED)
    assert revoked.details["reason"] == "authorization code replay"
    assert revoked.user_id == Identifier.objects.get(value="new@example.com").identity.user_id


def test_sign_out_everywhere_ends_an_unexchanged_grant(client, application, user):
    flow = Flow(client, application, "alice@example.com")
    grant = flow.grant()
    token_flows.revoke_user_tokens(user.authdevice_identity, reason="test")
    assert Challenge.objects.get().state == Challenge.State.DEAD
    assert_error(flow.exchange(grant), 400, "invalid_grant")


def test_disabled_account_is_refused_at_the_exchange(client, application, user):
    flow = Flow(client, application, "alice@example.com")
    grant = flow.grant()
    user.is_active = False
    user.save()
    assert_error(flow.exchange(grant), 403, "account_disabled")
    assert not RefreshToken.objects.exists()


def test_signup_closed_is_refused_at_the_exchange(client, application, settings):
    settings.AUTHDEVICE_ALLOW_SIGNUP = False
    flow = Flow(client, application, "stranger@example.com")
    assert_error(flow.exchange(flow.grant()), 403, "signup_closed")
    assert not get_user_model().objects.exists()


def test_a_pkce_challenge_never_signs_in_in_one_step():
    """The pages' and django-otp's verify (one step) refuse a challenge that has a
    code_challenge, even with the right code: only its client's exchange signs in."""
    from authdevice.flows import codes

    verifier = secrets.token_urlsafe(48)
    started = codes.start_challenge(identifier="new@example.com", code_challenge=s256(verifier))
    with pytest.raises(codes.InvalidCode):
        codes.verify_code(
            challenge_id=started.challenge.pk, binding=started.binding, code=sent_code()
        )
    assert Challenge.objects.get().state == Challenge.State.PENDING


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "extra",
    [
        {"code_challenge": "short"},
        {"code_challenge": "a" * 42 + "="},
        {"code_challenge": "a" * 44},
        {"code_challenge": 42},
        {"code_challenge": None},
        {"code_challenge": "a" * 43, "code_challenge_method": "plain"},
        {"code_challenge": "a" * 43, "code_challenge_method": "s256"},
        {"code_challenge_method": "S256"},
    ],
)
def test_bad_code_challenge_is_a_clear_400(client, application, extra):
    response = post(client, REQUEST, {"identifier": "new@example.com", **extra}, application)
    assert_error(response, 400, "invalid_request")
    assert not Challenge.objects.exists() and not mail.outbox


@pytest.mark.parametrize(
    "override",
    [
        {"code_verifier": "x" * 42},
        {"code_verifier": "x" * 129},
        {"code_verifier": "é" * 43},
        {"code_verifier": 42},
        {"authorization_code": ""},
        {"authorization_code": "é" * 43},
        {"authorization_code": "x" * 201},
        {"authorization_code": ["x"]},
        {"challenge_id": "x"},
        {"challenge_id": 2**64},
        {"challenge_id": -1},
    ],
)
def test_bad_exchange_input_is_a_clear_400(client, application, override):
    flow = Flow(client, application, "new@example.com")
    grant = flow.grant()
    response = flow.exchange(grant, **override)
    assert response.status_code == 400, response.content
    assert response.json()["error"] in {"invalid_request", "invalid_grant"}
    assert flow.exchange(grant).status_code == 200


def test_exchange_needs_json_and_a_known_application(client, application):
    response = client.post(
        TOKEN,
        data="a=b",
        content_type="application/x-www-form-urlencoded",
        HTTP_API_KEY_ID=application.api_key_id,
    )
    assert_error(response, 415, "unsupported_media_type")
    response = client.post(
        TOKEN, data="{}", content_type="application/json", HTTP_API_KEY_ID="nope"
    )
    assert_error(response, 401, "invalid_client")
