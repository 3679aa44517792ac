"""security.md M01 [FAULT]: a database error in the middle of a sign-in loses nothing.

The error is injected on one statement (``connection.execute_wrapper``): the INSERT of
the new refresh token, the audit row, or the UPDATE that spends the credential. Each time
a generic error comes back (no trace, no SQL), and afterwards the same code, refresh token
or approval works exactly once. There is never a credential that is spent with no tokens
for it, nor a refresh token rotated without its child stored.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.core.cache import cache
from django.db import OperationalError, connection
from django.test import Client

from authdevice.flows import native
from authdevice.flows import tokens as token_flows
from authdevice.flows.devices import enrol_device
from authdevice.models import AuthEvent, AuthorizationCode, Challenge, RefreshToken
from tests.devicekit import Browser
from tests.test_get_identity import issue

pytestmark = pytest.mark.django_db(transaction=True)

TOKENS = RefreshToken._meta.db_table
EVENTS = AuthEvent._meta.db_table
CHALLENGES = Challenge._meta.db_table
CODES = AuthorizationCode._meta.db_table


@pytest.fixture(autouse=True)
def _setup(settings) -> Iterator[None]:
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.AUTHDEVICE_GEOLOCATION_BACKEND = None
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def client() -> Client:
    # Exceptions become responses: the test sees what a client would.
    return Client(raise_request_exception=False)


class Fault:
    """Raise OperationalError on the first statement that starts with ``verb`` and names
    ``table``; count the matches."""

    def __init__(self, verb: str, table: str) -> None:
        self.pattern = re.compile(rf'^\s*{verb}\b.*?"?{re.escape(table)}"?(\s|$|\()', re.I | re.S)
        self.raised = 0

    def __call__(self, execute: Callable[..., Any], sql: str, params: Any, many: bool, ctx: Any):
        if not self.raised and self.pattern.search(str(sql)):
            self.raised += 1
            raise OperationalError("injected fault")
        return execute(sql, params, many, ctx)


@contextlib.contextmanager
def fault(verb: str, table: str) -> Iterator[Fault]:
    injected = Fault(verb, table)
    with connection.execute_wrapper(injected):
        yield injected
    assert injected.raised == 1, f"no {verb} on {table} was reached"


def assert_generic_error(response: Any) -> None:
    assert response.status_code in (500, 503), response.content
    body = response.content.decode(errors="replace")
    for leak in ("injected fault", "OperationalError", "Traceback", "INSERT", "UPDATE"):
        assert leak not in body, body


#: (verb, table) of each statement a sign-in writes, in the order it writes them.
SIGN_IN_WRITES = [("UPDATE", CHALLENGES), ("INSERT", EVENTS), ("INSERT", TOKENS)]


def post_json(client: Client, path: str, body: Any, **extra: Any) -> Any:
    return client.post(path, data=json.dumps(body), content_type="application/json", **extra)


@pytest.mark.parametrize(("verb", "table"), SIGN_IN_WRITES)
@pytest.mark.parametrize("who", ["new@example.com", "alice@example.com"])
def test_code_verify(client, application, user, verb, table, who):
    headers = {"HTTP_API_KEY_ID": application.api_key_id}
    started = post_json(client, "/api/v1/auth/code", {"identifier": who}, **headers).json()
    code = re.search(r"\b(\d{6})\b", mail.outbox[-1].body).group(1)
    body = {
        "challenge_id": started["challenge_id"],
        "challenge_secret": started["challenge_secret"],
        "code": code,
    }
    tokens_before = RefreshToken.objects.count()
    with fault(verb, table):
        assert_generic_error(post_json(client, "/api/v1/auth/code/verify", body, **headers))
    # Nothing was spent: no tokens, the challenge still pending.
    assert RefreshToken.objects.count() == tokens_before
    assert Challenge.objects.get(pk=int(started["challenge_id"])).state == "pending"
    ok = post_json(client, "/api/v1/auth/code/verify", body, **headers)
    assert ok.status_code == 200, ok.content
    assert token_flows.verify_access_token(ok.json()["access_token"])
    assert RefreshToken.objects.count() == tokens_before + 1
    again = post_json(client, "/api/v1/auth/code/verify", body, **headers)
    assert again.status_code == 400 and again.json()["error"] == "invalid_code"
    assert get_user_model().objects.filter(email__iexact=who).count() <= 1
    assert AuthEvent.objects.filter(event__startswith="LOGIN", state="approved").count() == 1


@pytest.mark.parametrize(("verb", "table"), SIGN_IN_WRITES)
@pytest.mark.parametrize("who", ["new@example.com", "alice@example.com"])
def test_code_grant_verify_and_exchange(client, application, user, verb, table, who):
    """The two-step sign-in: the grant's UPDATE fails (nothing granted, the code works
    again), then one of the exchange's writes fails (nothing spent, the grant works
    exactly once)."""
    import secrets

    from authdevice.flows.pkce import s256

    headers = {"HTTP_API_KEY_ID": application.api_key_id}
    verifier = secrets.token_urlsafe(48)
    request = {"identifier": who, "code_challenge": s256(verifier)}
    started = post_json(client, "/api/v1/auth/code", request, **headers).json()
    code = re.search(r"\b(\d{6})\b", mail.outbox[-1].body).group(1)
    body = {
        "challenge_id": started["challenge_id"],
        "challenge_secret": started["challenge_secret"],
        "code": code,
    }
    pk = int(started["challenge_id"])
    with fault("UPDATE", CHALLENGES):
        assert_generic_error(post_json(client, "/api/v1/auth/code/verify", body, **headers))
    assert Challenge.objects.get(pk=pk).state == "pending"
    granted = post_json(client, "/api/v1/auth/code/verify", body, **headers)
    assert granted.status_code == 200, granted.content
    exchange = {
        "challenge_id": started["challenge_id"],
        "authorization_code": granted.json()["authorization_code"],
        "code_verifier": verifier,
    }
    tokens_before = RefreshToken.objects.count()
    with fault(verb, table):
        assert_generic_error(post_json(client, "/api/v1/auth/code/token", exchange, **headers))
    assert RefreshToken.objects.count() == tokens_before
    assert Challenge.objects.get(pk=pk).state == "granted"
    ok = post_json(client, "/api/v1/auth/code/token", exchange, **headers)
    assert ok.status_code == 200, ok.content
    assert token_flows.verify_access_token(ok.json()["access_token"])
    assert RefreshToken.objects.count() == tokens_before + 1
    assert get_user_model().objects.filter(email__iexact=who).count() <= 1
    assert AuthEvent.objects.filter(event__startswith="LOGIN", state="approved").count() == 1


@pytest.mark.parametrize(("verb", "table"), [("UPDATE", CODES), ("INSERT", TOKENS)])
def test_get_identity(client, application, identity, verb, table):
    body = issue(application, identity)
    row = AuthorizationCode.objects.get(pk=body["challenge_id"])
    url = "/api/v0/verify/get_identity?oauth_token=true"
    headers = {"HTTP_API_KEY_ID": application.api_key_id}
    with fault(verb, table):
        assert_generic_error(post_json(client, url, body, **headers))
    assert not RefreshToken.objects.exists()
    assert AuthorizationCode.objects.get(pk=row.pk).redeemed_at is None
    ok = post_json(client, url, body, **headers)
    assert ok.status_code == 200, ok.content
    refresh_token = ok.json()["oauth_token"]["refresh_token"]
    assert RefreshToken.objects.get(pk=int(refresh_token.split(":")[0])).revoked_at is None
    again = post_json(client, url, body, **headers)
    assert again.status_code == 400 and again.json()["type"] == "invalid_grant"


@pytest.mark.parametrize(("verb", "table"), [("UPDATE", TOKENS), ("INSERT", TOKENS)])
def test_refresh_rotation(client, application, token_set, verb, table):
    url = f"/api/v0/token/{application.api_key_id}"
    body = {"grant_type": "refresh_token", "refresh_token": token_set.refresh_token}
    headers = {"HTTP_API_KEY_ID": application.api_key_id}
    with fault(verb, table):
        assert_generic_error(post_json(client, url, body, **headers))
    # Not rotated, so not "reused" either: the family lives and the token still works once.
    assert RefreshToken.objects.count() == 1
    assert RefreshToken.objects.get().revoked_at is None
    ok = post_json(client, url, body, **headers)
    assert ok.status_code == 200, ok.content
    child = ok.json()["refresh_token"]
    assert RefreshToken.objects.filter(revoked_at__isnull=True).count() == 2  # rotated + child
    assert post_json(client, url, {**body, "refresh_token": child}, **headers).status_code == 200


def test_approval_hand_out(client, application, identity):
    browser = Browser()
    device = enrol_device(
        identity=identity, public_key=browser.public_key, algorithm="EC", application=application
    )
    started = native.start_approval(identity=identity, application=application)
    challenge = native.approval_challenge(device, started.event)
    signature = browser.sign(
        native.signed_message(
            "approve", challenge.value, event_id=started.event.pk, decision="approve"
        )
    )
    native.decide(
        event_id=started.event.pk,
        device=device,
        challenge=challenge.value,
        signature=signature,
        approve=True,
        match_code=started.match_code,
    )
    url = f"/api/v1/approvals/{started.event.pk}"
    headers = {
        "HTTP_API_KEY_ID": application.api_key_id,
        "HTTP_X_POLL_SECRET": started.poll_secret,
    }
    tokens_before = RefreshToken.objects.count()
    with fault("INSERT", TOKENS):
        assert_generic_error(client.get(url, **headers))
    assert RefreshToken.objects.count() == tokens_before
    assert AuthEvent.objects.get(pk=started.event.pk).tokens_handed_out_at is None
    ok = client.get(url, **headers)
    assert ok.status_code == 200 and ok.json()["access_token"], ok.content
    assert RefreshToken.objects.count() == tokens_before + 1
    later = client.get(url, **headers)
    assert later.status_code == 200 and "access_token" not in later.json()


@pytest.mark.parametrize(("verb", "table"), [("UPDATE", CHALLENGES), ("INSERT", EVENTS)])
def test_code_page(verb, table, user):
    browser = Client(enforce_csrf_checks=True, raise_request_exception=False)

    def token(path: str) -> str:
        page = browser.get(path, follow=True)
        found = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page.content)
        assert found, page.content[:300]
        return found.group(1).decode()

    started = browser.post(
        "/signin/", {"identifier": "alice@example.com", "csrfmiddlewaretoken": token("/signin/")}
    )
    assert started.status_code in (302, 303), started.content
    code_page = started["Location"]
    flow = re.search(r"flow=([\w-]+)", code_page).group(1)
    code = re.search(r"\b(\d{6})\b", mail.outbox[-1].body).group(1)
    form = {"code": code, "flow": flow, "csrfmiddlewaretoken": token(code_page)}
    with fault(verb, table):
        assert_generic_error(browser.post("/signin/code/", form))
    assert "_auth_user_id" not in browser.session
    done = browser.post("/signin/code/", form)
    assert done.status_code in (302, 303), done.content
    assert browser.session["_auth_user_id"] == str(user.pk)
