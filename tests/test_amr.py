"""security.md A11: tokens say how the user authenticated. A code or magic link names its
channel in ``amr`` next to ``otp`` (an email code is not an out-of-band authenticator,
NIST 800-63B 5.1.3.1), through every door that issues tokens for one, and refreshing
keeps it; ``auth_time`` is the sign-in's."""

from __future__ import annotations

import json
import secrets
from typing import Any

import jwt
import pytest
from django.core.cache import cache
from django.test import Client

from authdevice.channels import locmem
from authdevice.flows import codes, pkce
from authdevice.flows import tokens as token_flows
from authdevice.flows.pkce import s256

pytestmark = pytest.mark.django_db(transaction=True)

EMAIL, PHONE = "amr@example.com", "+14155552671"
REDIRECT = "https://app.example.com/cb"


@pytest.fixture(autouse=True)
def _setup(settings):
    settings.AUTHDEVICE_CHANNELS = {
        "EMAIL": "authdevice.channels.locmem.LocmemBackend",
        "SMS": "authdevice.channels.locmem.LocmemBackend",
        "WHATSAPP": "authdevice.channels.locmem.LocmemBackend",
    }
    cache.clear()
    locmem.outbox.clear()


def post(path: str, body: dict[str, Any], application: Any) -> Any:
    response = Client().post(
        path,
        data=json.dumps(body),
        content_type="application/json",
        HTTP_API_KEY_ID=application.api_key_id,
    )
    assert response.status_code in (200, 202), response.content
    return response.json()


def claims_of(token_set: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    access = token_flows.verify_access_token(token_set["access_token"])
    key = jwt.PyJWK(Client().get("/.well-known/jwks.json").json()["keys"][0])
    id_claims = jwt.decode(
        token_set["id_token"], key.key, algorithms=["ES256"], audience=access["aud"]
    )
    return access, id_claims


def assert_amr(token_set: dict[str, Any], amr: list[str], method: str) -> None:
    for claims in claims_of(token_set):
        assert claims["amr"] == amr, claims
        assert claims["authentication_method"] == method
        assert int(claims["auth_time"]) <= claims["iat"]


@pytest.mark.parametrize(
    ("identifier", "channel", "amr"),
    [
        (EMAIL, "EMAIL", ["otp", "email"]),
        (PHONE, "SMS", ["otp", "sms"]),
        (PHONE, "WHATSAPP", ["otp", "whatsapp"]),
    ],
)
@pytest.mark.parametrize("two_step", [False, True])
def test_native_code_sign_in_names_the_channel(application, identifier, channel, amr, two_step):
    verifier = secrets.token_urlsafe(48)
    body = {"identifier": identifier, "channel": channel}
    if two_step:
        body["code_challenge"] = s256(verifier)
    started = post("/api/v1/auth/code", body, application)
    verify = {
        "challenge_id": started["challenge_id"],
        "challenge_secret": started["challenge_secret"],
        "code": locmem.outbox[-1].context["code"],
    }
    result = post("/api/v1/auth/code/verify", verify, application)
    if two_step:
        exchange = {
            "challenge_id": result["challenge_id"],
            "authorization_code": result["authorization_code"],
            "code_verifier": verifier,
        }
        result = post("/api/v1/auth/code/token", exchange, application)
    assert_amr(result, amr, "OTP")
    # Refreshing keeps how the session started.
    refreshed = token_flows.refresh_token_set(
        result["refresh_token"], api_key_id=application.api_key_id
    )
    assert_amr(refreshed.as_cotter(), amr, "OTP")
    first, later = claims_of(result)[0], claims_of(refreshed.as_cotter())[0]
    assert later["auth_time"] == first["auth_time"]


@pytest.mark.parametrize("method", ["OTP", "MAGIC_LINK"])
def test_hosted_page_sign_in_names_the_channel_through_get_identity(application, method):
    started = codes.start_challenge(identifier=EMAIL, application=application, method=method)
    hosted = pkce.HostedApp(
        application=application, redirect_url=REDIRECT, code_challenge=s256("v" * 43)
    )
    if method == "OTP":
        signed = codes.verify_code(
            challenge_id=started.challenge.pk,
            binding=started.binding,
            code=locmem.outbox[-1].context["code"],
            hosted=hosted,
        )
    else:
        link = locmem.outbox[-1].context["link_url"]
        signed = codes.verify_link(
            token=link.rstrip("/").rsplit("/", 1)[-1], binding=started.binding, hosted=hosted
        )
    assert signed.authorization is not None
    row, code = signed.authorization
    redeemed = pkce.redeem_authorization_code(
        application=application,
        authorization_code=code,
        challenge_id=row.pk,
        code_verifier="v" * 43,
        redirect_url=REDIRECT,
    )
    assert_amr(redeemed.tokens.as_cotter(), ["otp", "email"], method)


def test_other_methods_name_no_channel(application, identity):
    tokens = token_flows.issue_token_set(
        identity=identity, application=application, auth_method="TRUSTED_DEVICE"
    )
    assert_amr(tokens.as_cotter(), ["pop", "hwk"], "TRUSTED_DEVICE")
    assert token_flows.amr_for("OTP", "CARRIER_PIGEON") == ["otp"]
