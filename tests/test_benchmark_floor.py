"""The benchmark's floor endpoint (F, ``benchmarks/floor.py``) does a real sign-in.

(F) is measured as the ceiling for code verify (f): its ratio only means something if it
does the same job. So its answer must be the same shape as (f)'s, its tokens must be ones
authdevice accepts (the refresh token rotates through the product), the challenge must be
consumed once, and the audit row must name the user.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from django.core import mail
from django.core.cache import cache
from django.test import Client, override_settings

from authdevice.flows import tokens as token_flows
from authdevice.models import AuthEvent, Challenge, RefreshToken

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("_bench_urls"),
]

FLOOR = "/bench/floor/code-verify"
VERIFY = "/api/v1/auth/code/verify"


@pytest.fixture
def _bench_urls(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    cache.clear()
    with override_settings(ROOT_URLCONF="benchmarks.urls"):
        yield
    cache.clear()


def _post(client: Client, url: str, body: Any, application: Any) -> Any:
    return client.post(
        url,
        data=json.dumps(body),
        content_type="application/json",
        HTTP_API_KEY_ID=application.api_key_id,
    )


def _started(client: Client, application: Any, identifier: str) -> dict[str, str]:
    response = _post(client, "/api/v1/auth/code", {"identifier": identifier}, application)
    assert response.status_code == 202, response.content
    started = response.json()
    code = re.search(r"\b(\d{6})\b", mail.outbox[-1].body).group(1)
    return {
        "challenge_id": started["challenge_id"],
        "challenge_secret": started["challenge_secret"],
        "code": code,
    }


def test_floor_signs_in_like_code_verify(application, identity):
    client = Client(raise_request_exception=False)
    product = _post(client, VERIFY, _started(client, application, "alice@example.com"), application)
    assert product.status_code == 200, product.content

    body = _started(client, application, "alice@example.com")
    response = _post(client, FLOOR, body, application)
    assert response.status_code == 200, response.content
    assert "no-store" in response["Cache-Control"]
    data = response.json()
    expected = product.json()
    assert set(data) == set(expected)
    assert set(data["user"]) <= set(expected["user"])
    assert data["user"]["ID"] == expected["user"]["ID"] == str(identity.public_id)

    # Tokens authdevice accepts, with the claims the product puts in them.
    claims = token_flows.verify_access_token(data["access_token"])
    product_claims = token_flows.verify_access_token(expected["access_token"])
    assert set(claims) == set(product_claims)
    assert claims["sub"] == str(identity.public_id) and claims["aud"] == application.api_key_id
    rotated = token_flows.refresh_token_set(
        data["refresh_token"], api_key_id=application.api_key_id
    )
    assert rotated.access_token and rotated.refresh_token != data["refresh_token"]

    # Consumed once, and audited.
    challenge = Challenge.objects.get(pk=int(body["challenge_id"]))
    assert challenge.state == Challenge.State.VERIFIED
    assert challenge.identity_id == identity.pk and challenge.verified_at is not None
    event = AuthEvent.objects.filter(details__challenge_id=int(body["challenge_id"])).get()
    assert event.user_id == identity.user_id and event.event == AuthEvent.Kind.LOGIN
    assert event.state == AuthEvent.State.APPROVED and event.application_id == application.pk
    row = RefreshToken.objects.get(pk=int(data["refresh_token"].split(":")[0]))
    assert row.identity_id == identity.pk and row.parent_id is None
    assert _post(client, FLOOR, body, application).status_code == 400


def test_floor_refuses_wrong_code_secret_and_application(application, identity):
    from authdevice.flows.applications import create_application

    client = Client(raise_request_exception=False)
    body = _started(client, application, "alice@example.com")
    wrong_code = {**body, "code": "000000" if body["code"] != "000000" else "111111"}
    assert _post(client, FLOOR, wrong_code, application).status_code == 400
    assert _post(client, FLOOR, {**body, "challenge_secret": "x"}, application).status_code == 400
    other, _secret = create_application(name="other", redirect_urls=[])
    assert _post(client, FLOOR, body, other).status_code == 400
    assert _post(client, FLOOR, {"challenge_id": "nope"}, application).status_code == 400
    assert Challenge.objects.get(pk=int(body["challenge_id"])).state == Challenge.State.PENDING
    assert _post(client, FLOOR, body, application).status_code == 200
