"""``POST /api/v0/verify/get_identity``: Cotter's Identity response and the PKCE rules
(reference/cotter-api.md §1.4, D1; security.md H03-H07, H13)."""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import threading
import uuid
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from django.db import connection, connections
from django.test import Client
from django.utils import timezone
from jwt.algorithms import ECAlgorithm

from authdevice.api.v0.serializers import IDENTIFIER_ID_NAMESPACE, IDENTITY_TOKEN_CONTEXT
from authdevice.flows import tokens as token_flows
from authdevice.flows.pkce import create_authorization_code, s256
from authdevice.models import AuthEvent, AuthorizationCode, RefreshToken

URL = "/api/v0/verify/get_identity?oauth_token=true"
REDIRECT = "https://app.example.com/cb"
UA = "Mozilla/5.0 (X11; Linux x86_64) authdevice-tests"
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$")
GENERIC_MESSAGE = "The authorization code is invalid, expired or already used."

# RFC 7636 Appendix B.
RFC7636_VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
RFC7636_CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


@pytest.fixture
def client() -> Client:
    # Exceptions become responses, so a 500 shows up as a status code, not a raise.
    return Client(raise_request_exception=False)


def issue(
    application: Any,
    identity: Any,
    *,
    verifier: str | None = None,
    redirect_url: str = REDIRECT,
    auth_method: str = "OTP",
) -> dict[str, Any]:
    """A fresh authorization code as the hosted page would mint it; returns the D1 body."""
    verifier = verifier if verifier is not None else secrets.token_urlsafe(32)
    row, code = create_authorization_code(
        application=application,
        identity=identity,
        identifier=identity.identifiers.get(),
        auth_method=auth_method,
        redirect_url=redirect_url,
        code_challenge=s256(verifier),
    )
    return {
        "code_verifier": verifier,
        "authorization_code": code,
        "challenge_id": row.pk,
        "redirect_url": redirect_url,
    }


def redeem(
    client: Client, api_key: str | None, body: Any, *, url: str = URL, raw: bytes | None = None
):
    extra = {"HTTP_USER_AGENT": UA}
    if api_key is not None:
        extra["HTTP_API_KEY_ID"] = api_key
    data = raw if raw is not None else json.dumps(body)
    return client.generic("POST", url, data, content_type="application/json", **extra)


def assert_invalid_grant(response) -> None:
    assert response.status_code == 400, response.content
    assert response["Content-Type"].startswith("application/json")
    assert response.json() == {"msg": GENERIC_MESSAGE, "type": "invalid_grant"}
    assert "no-store" in response["Cache-Control"]


def refresh(client: Client, application: Any, refresh_token: str):
    return client.post(
        f"/api/v0/token/{application.api_key_id}",
        data=json.dumps({"grant_type": "refresh_token", "refresh_token": refresh_token}),
        content_type="application/json",
        HTTP_API_KEY_ID=application.api_key_id,
    )


def verify_identity_signature(client: Client, token: dict[str, str]) -> bool:
    """Check ``token.signature`` as a consumer would: against every key of the JWKS."""
    raw = base64.b64decode(token["signature"], validate=True)
    assert len(raw) == 64
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    message = (
        IDENTITY_TOKEN_CONTEXT
        + (
            token["identifier"] + token["identifier_type"] + token["receiver"] + token["expire_at"]
        ).encode()
    )
    for jwk in client.get("/api/v0/token/jwks").json()["keys"]:
        key = ECAlgorithm.from_jwk(json.dumps(jwk))
        try:
            key.verify(der, message, ec.ECDSA(hashes.SHA256()))
            return True
        except InvalidSignature:
            continue
    return False


# --------------------------------------------------------------------------- happy path


@pytest.mark.django_db
def test_identity_response_shape(client, application, identity):
    body = issue(application, identity)
    response = redeem(client, application.api_key_id, body)
    assert response.status_code == 200, response.content
    assert "no-store" in response["Cache-Control"] and response["Pragma"] == "no-cache"
    data = response.json()
    assert set(data) == {"identifier", "token", "user", "oauth_token"}
    identifier_row = identity.identifiers.get()

    ident = data["identifier"]
    assert set(ident) == {
        "ID",
        "created_at",
        "deleted_at",
        "update_at",
        "identifier",
        "identifier_type",
        "public_key",
        "device_type",
        "device_name",
        "expiry",
        "timestamp",
    }
    assert ident["ID"] == str(
        uuid.uuid5(IDENTIFIER_ID_NAMESPACE, f"identifier:{identifier_row.pk}")
    )
    assert ident["identifier"] == "alice@example.com" and ident["identifier_type"] == "EMAIL"
    assert ident["public_key"] == "" and ident["device_type"] == "BROWSER"
    assert ident["device_name"] == UA
    assert ident["deleted_at"] is None
    for key in ("created_at", "update_at", "expiry", "timestamp"):
        assert RFC3339.match(ident[key]), (key, ident[key])

    token = data["token"]
    assert set(token) == {
        "identifier_id",
        "expire_at",
        "identifier",
        "identifier_type",
        "receiver",
        "signature",
        "timestamp",
    }
    assert all(isinstance(v, str) for v in token.values()), token
    assert token["identifier_id"] == ident["ID"]
    assert token["identifier"] == "alice@example.com" and token["identifier_type"] == "EMAIL"
    assert token["receiver"] == application.api_key_id
    assert token["expire_at"].isdigit() and token["timestamp"].isdigit()
    assert int(token["expire_at"]) > int(token["timestamp"])
    assert verify_identity_signature(client, token)
    forged = {**token, "receiver": "someone-else"}
    assert not verify_identity_signature(client, forged)

    user = data["user"]
    assert set(user) == {
        "ID",
        "client_user_id",
        "created_at",
        "updated_at",
        "update_at",
        "deleted_at",
        "issuer",
        "identifier",
        "identifiers",
        "enrolled",
        "default_method",
    }
    assert user["ID"] == str(identity.public_id)
    assert user["client_user_id"] == identity.client_user_id
    assert user["issuer"] == application.api_key_id
    assert user["identifier"] == "alice@example.com"
    assert user["identifiers"] is None and user["deleted_at"] is None
    assert user["enrolled"] == [] and user["default_method"] is None
    assert user["updated_at"] == user["update_at"]
    for key in ("created_at", "updated_at"):
        assert RFC3339.match(user[key]), (key, user[key])

    oauth = data["oauth_token"]
    assert set(oauth) == {
        "access_token",
        "id_token",
        "refresh_token",
        "expires_in",
        "token_type",
        "auth_method",
    }
    assert oauth["token_type"] == "Bearer" and oauth["auth_method"] == "OTP"
    assert oauth["expires_in"] == 3600
    claims = token_flows.verify_access_token(oauth["access_token"])
    assert claims["sub"] == user["ID"] and claims["aud"] == application.api_key_id
    assert claims["identifier"] == "alice@example.com"
    assert re.match(r"^\d+:\S+$", oauth["refresh_token"])


@pytest.mark.django_db
def test_ios_required_keys_are_present_and_non_null(client, application, identity):
    """iOS decodes these as non-optional Swift fields (§1.4), and sends no query string."""
    response = redeem(
        client, application.api_key_id, issue(application, identity), url=URL.split("?")[0]
    )
    assert response.status_code == 200, response.content
    data = response.json()
    required = {
        "identifier": [
            "ID",
            "created_at",
            "identifier",
            "identifier_type",
            "public_key",
            "device_type",
            "device_name",
            "expiry",
        ],
        "token": ["identifier", "identifier_type", "receiver", "expire_at", "signature"],
        "user": ["ID", "created_at", "issuer", "client_user_id"],
        "oauth_token": [
            "access_token",
            "id_token",
            "refresh_token",
            "expires_in",
            "token_type",
            "auth_method",
        ],
    }
    for obj, keys in required.items():
        for key in keys:
            assert data[obj].get(key) is not None, (obj, key)
    assert isinstance(data["oauth_token"]["expires_in"], int)


@pytest.mark.django_db
def test_oauth_token_omitted_when_the_query_says_false(client, application, identity):
    url = URL.replace("oauth_token=true", "oauth_token=false")
    response = redeem(client, application.api_key_id, issue(application, identity), url=url)
    assert response.status_code == 200, response.content
    assert set(response.json()) == {"identifier", "token", "user"}


@pytest.mark.django_db
def test_identifier_id_is_stable_and_challenge_id_may_be_a_string(client, application, identity):
    first = redeem(client, application.api_key_id, issue(application, identity)).json()
    body = issue(application, identity, auth_method="MAGIC_LINK")
    body["challenge_id"] = str(body["challenge_id"])  # some clients send it as a string
    second = redeem(client, application.api_key_id, body)
    assert second.status_code == 200, second.content
    second_data = second.json()
    assert second_data["identifier"]["ID"] == first["identifier"]["ID"]
    assert second_data["user"]["ID"] == first["user"]["ID"]
    assert second_data["oauth_token"]["auth_method"] == "MAGIC_LINK"


@pytest.mark.django_db
def test_phone_identifier(client, application, user):
    from authdevice.flows.identities import add_identifier

    phone = add_identifier(user, "PHONE", "+14155552671", verified=True, primary=False)
    verifier = secrets.token_urlsafe(32)
    row, code = create_authorization_code(
        application=application,
        identity=user.authdevice_identity,
        identifier=phone,
        auth_method="OTP",
        redirect_url=REDIRECT,
        code_challenge=s256(verifier),
    )
    body = {
        "code_verifier": verifier,
        "authorization_code": code,
        "challenge_id": row.pk,
        "redirect_url": REDIRECT,
    }
    data = redeem(client, application.api_key_id, body).json()
    assert data["identifier"]["identifier"] == "+14155552671"
    assert data["identifier"]["identifier_type"] == "PHONE"
    assert data["token"]["identifier_type"] == "PHONE"
    assert data["user"]["identifier"] == "+14155552671"
    assert verify_identity_signature(client, data["token"])


# --------------------------------------------------------------------------- verifier formats


def _standard_base64_verifier() -> str:
    # 32 bytes whose standard base64 has '+', '/' and '=' (React Native's format).
    value = base64.b64encode(b"\xfb\xff\xbf" * 10 + os.urandom(2)).decode()
    assert "+" in value and "/" in value and value.endswith("=")
    return value


@pytest.mark.django_db
@pytest.mark.parametrize(
    "make_verifier",
    [
        pytest.param(
            lambda: base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=").decode(),
            id="python-b64url-43",
        ),
        pytest.param(_standard_base64_verifier, id="react-native-std-b64"),
        pytest.param(lambda: secrets.token_hex(28), id="web-hex-56"),
        pytest.param(lambda: RFC7636_VERIFIER, id="rfc7636-appendix-b"),
    ],
)
def test_every_sdk_verifier_format_works(client, application, identity, make_verifier):
    verifier = make_verifier()
    response = redeem(
        client, application.api_key_id, issue(application, identity, verifier=verifier)
    )
    assert response.status_code == 200, (verifier, response.content)


def test_rfc7636_appendix_b_vector():
    assert s256(RFC7636_VERIFIER) == RFC7636_CHALLENGE


@pytest.mark.django_db
def test_rfc7636_vector_through_the_endpoint(client, application, identity):
    row, code = create_authorization_code(
        application=application,
        identity=identity,
        identifier=identity.identifiers.get(),
        auth_method="OTP",
        redirect_url=REDIRECT,
        code_challenge=RFC7636_CHALLENGE,
    )
    body = {
        "code_verifier": RFC7636_VERIFIER,
        "authorization_code": code,
        "challenge_id": row.pk,
        "redirect_url": REDIRECT,
    }
    wrong = {**body, "code_verifier": RFC7636_VERIFIER[:-1] + "j"}
    assert_invalid_grant(redeem(client, application.api_key_id, wrong))
    assert redeem(client, application.api_key_id, body).status_code == 200


# --------------------------------------------------------------------------- H03-H07


@pytest.mark.django_db
@pytest.mark.parametrize(
    "mutation",
    [
        pytest.param({"code_verifier": "x" * 43}, id="wrong-verifier"),
        pytest.param({"code_verifier": ""}, id="empty-verifier"),
        pytest.param({"code_verifier": None}, id="null-verifier"),
        pytest.param({"code_verifier": "a" * 5000}, id="oversized-verifier"),
        pytest.param({"code_verifier": 12345}, id="number-verifier"),
        pytest.param({"authorization_code": "not-the-code"}, id="wrong-code"),
        pytest.param({"authorization_code": ["x"]}, id="list-code"),
        pytest.param({"redirect_url": REDIRECT + "/"}, id="trailing-slash"),
        pytest.param({"redirect_url": REDIRECT.upper()}, id="case"),
        pytest.param({"redirect_url": "http://localhost:18555"}, id="other-allowed-url"),
        pytest.param({"redirect_url": None}, id="null-redirect"),
    ],
)
def test_any_mismatch_is_one_generic_invalid_grant(client, application, identity, mutation):
    body = issue(application, identity)
    assert_invalid_grant(redeem(client, application.api_key_id, {**body, **mutation}))
    # The code itself was not spent by a request that failed before redemption.
    assert AuthorizationCode.objects.get(pk=body["challenge_id"]).redeemed_at is None


@pytest.mark.django_db
def test_missing_fields_are_invalid_grant(client, application, identity):
    body = issue(application, identity)
    for field in body:
        partial = {k: v for k, v in body.items() if k != field}
        assert_invalid_grant(redeem(client, application.api_key_id, partial))


@pytest.mark.django_db
def test_code_is_bound_to_its_application(client, application, other_application, identity):
    body = issue(application, identity)
    assert_invalid_grant(redeem(client, other_application.api_key_id, body))
    assert redeem(client, application.api_key_id, body).status_code == 200


@pytest.mark.django_db
def test_unknown_or_missing_api_key_is_401(client, application, identity):
    body = issue(application, identity)
    for key in (None, "nope", "\x00"):
        response = redeem(client, key, body)
        assert response.status_code == 401, response.content
        assert response.json()["type"] == "invalid_client"


@pytest.mark.django_db
def test_code_expires(client, application, identity):
    late = issue(application, identity)
    in_time = issue(application, identity)
    with time_machine.travel(timezone.now() + timedelta(seconds=290)):
        assert redeem(client, application.api_key_id, in_time).status_code == 200
    with time_machine.travel(timezone.now() + timedelta(seconds=301)):
        assert_invalid_grant(redeem(client, application.api_key_id, late))


@pytest.mark.django_db
def test_disabled_user_cannot_redeem(client, application, identity, user):
    body = issue(application, identity)
    user.is_active = False
    user.save()
    assert_invalid_grant(redeem(client, application.api_key_id, body))


@pytest.mark.django_db
def test_second_redemption_fails_and_revokes_the_first_tokens(client, application, identity):
    body = issue(application, identity)
    first = redeem(client, application.api_key_id, body)
    assert first.status_code == 200
    tokens = first.json()["oauth_token"]
    assert_invalid_grant(redeem(client, application.api_key_id, body))
    # RFC 6749 4.1.2: tokens issued from the first redemption are revoked.
    response = refresh(client, application, tokens["refresh_token"])
    assert response.status_code == 400 and response.json()["type"] == "invalid_grant"
    assert not RefreshToken.objects.filter(revoked_at__isnull=True).exists()
    assert AuthEvent.objects.filter(event=AuthEvent.Kind.TOKENS_REVOKED).count() == 1


@pytest.mark.django_db
def test_unreplayed_tokens_refresh(client, application, identity):
    tokens = redeem(client, application.api_key_id, issue(application, identity)).json()[
        "oauth_token"
    ]
    response = refresh(client, application, tokens["refresh_token"])
    assert response.status_code == 200, response.content


# --------------------------------------------------------------------------- bad input


@pytest.mark.django_db
@pytest.mark.parametrize(
    "challenge_id",
    [
        "abc",
        "",
        None,
        1.5,
        [1],
        {"id": 1},
        True,
        -1,
        0,
        2**64,
        10**40,
        "9" * 30,
        "9" * 5000,
        "1e3",
        " 12",
        "\u0661\u0662\u0663",  # Arabic-Indic digits: int() would accept them
        "12\x00",
    ],
)
def test_garbage_challenge_id_is_400_never_500(client, application, identity, challenge_id):
    body = {**issue(application, identity), "challenge_id": challenge_id}
    assert_invalid_grant(redeem(client, application.api_key_id, body))


@pytest.mark.django_db
@pytest.mark.parametrize("field", ["authorization_code", "code_verifier", "redirect_url"])
def test_lone_surrogates_are_invalid_grant_never_500(client, application, identity, field):
    # A JSON string may hold a lone surrogate, which no hash can encode: the JSON parser
    # refuses it (400 invalid_json) before anything reads the body; non-ASCII that is
    # valid text is an invalid grant.
    body = issue(application, identity)
    body[field] = "\ud800" + body[field][1:]
    response = redeem(client, application.api_key_id, body)
    assert response.status_code == 400 and response.json()["type"] == "invalid_json"
    body[field] = "\u00e9" + body[field][1:]
    assert_invalid_grant(redeem(client, application.api_key_id, body))


@pytest.mark.django_db
def test_wrong_challenge_id_for_a_real_code(client, application, identity):
    body = issue(application, identity)
    other = issue(application, identity)
    assert_invalid_grant(
        redeem(client, application.api_key_id, {**body, "challenge_id": other["challenge_id"]})
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    "raw", [b"", b"{", b"[]", b'"x"', b"null", b"\xff\xfe", b"[" * 100_000, b'{"a":' * 50_000]
)
def test_garbage_bodies_are_4xx_json(client, application, raw):
    response = redeem(client, application.api_key_id, None, raw=raw)
    assert 400 <= response.status_code < 500, (raw[:20], response.status_code)
    assert set(response.json()) == {"msg", "type"}


@pytest.mark.django_db
def test_get_is_405_json(client, application):
    response = client.get(URL, HTTP_API_KEY_ID=application.api_key_id)
    assert response.status_code == 405
    assert set(response.json()) == {"msg", "type"}


# --------------------------------------------------------------------------- race (PostgreSQL)


def hammer(fn, n: int) -> list[object]:
    barrier = threading.Barrier(n)
    outcomes: list[object] = []
    lock = threading.Lock()

    def worker() -> None:
        try:
            barrier.wait()
            result: object = fn()
        except Exception as exc:
            result = exc
        finally:
            connections.close_all()
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=worker) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return outcomes


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_ten_concurrent_redemptions_have_one_winner(application, identity):
    if connection.vendor != "postgresql":
        pytest.fail("race tests must run on PostgreSQL (AUTHDEVICE_TEST_DB=postgres)")
    body = issue(application, identity)

    def attempt() -> int:
        return redeem(
            Client(raise_request_exception=False), application.api_key_id, body
        ).status_code

    outcomes = hammer(attempt, 10)
    assert Counter(outcomes) == Counter({200: 1, 400: 9}), outcomes
    assert AuthorizationCode.objects.get(pk=body["challenge_id"]).redeemed_at is not None
    # The losers were replays: the winner's tokens are revoked too (H05).
    assert RefreshToken.objects.count() == 1
    assert not RefreshToken.objects.filter(revoked_at__isnull=True).exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_redemption_does_not_lock_out_other_users_of_the_application(application, identity):
    """Two people signing in to one app must not queue behind each other's redemption."""
    if connection.vendor != "postgresql":
        pytest.fail("race tests must run on PostgreSQL (AUTHDEVICE_TEST_DB=postgres)")
    from django.contrib.auth import get_user_model
    from django.db import transaction

    from authdevice.flows.identities import add_identifier
    from authdevice.flows.pkce import redeem_authorization_code

    bob = get_user_model().objects.create_user(username="bob", email="bob@example.com")
    add_identifier(bob, "EMAIL", "bob@example.com", verified=True)
    first = issue(application, identity)
    second = issue(application, bob.authdevice_identity)
    # The server's first signing key exists already (as after any first sign-in): made
    # inside the open transaction below, it would rightly make Bob wait for its commit.
    token_flows.keyring.signer()

    def redeem_second() -> object:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL lock_timeout = '1s'")
            return redeem_authorization_code(
                application=application,
                authorization_code=second["authorization_code"],
                challenge_id=second["challenge_id"],
                code_verifier=second["code_verifier"],
                redirect_url=REDIRECT,
            )

    with transaction.atomic():  # the first redemption's transaction is still open ...
        redeem_authorization_code(
            application=application,
            authorization_code=first["authorization_code"],
            challenge_id=first["challenge_id"],
            code_verifier=first["code_verifier"],
            redirect_url=REDIRECT,
        )
        # ... while Bob redeems his own code for the same application.
        [outcome] = hammer(redeem_second, 1)
    assert not isinstance(outcome, Exception), repr(outcome)
