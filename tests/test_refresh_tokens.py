from __future__ import annotations

# Refresh tokens over the Cotter-compatible API (security.md section G, cotter-api.md 3.6).
#
# C1 ``POST /api/v0/token/<API_KEY_ID>``, C2 ``POST /api/v0/token`` (header ``API_KEY_ID``),
# C3 ``DELETE /api/v0/token/<API_KEY_ID>`` and RFC 7009 ``POST /api/v0/token/revoke``.
import base64
import io
import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import pytest
import time_machine
from django.core.management import call_command

from authdevice.crypto.secrets import sha256_hex
from authdevice.flows import tokens as token_flows
from authdevice.models import AuthEvent, RefreshToken

REFRESH_TOKEN_RE = re.compile(r"^[1-9][0-9]{0,15}:[A-Za-z0-9_-]{43}$")
INVALID_GRANT = {"msg": "The refresh token is not valid.", "type": "invalid_grant"}


def claims_of(token: str) -> dict:
    body = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))


def row_of(refresh_token: str) -> RefreshToken:
    return RefreshToken.objects.get(pk=int(refresh_token.split(":")[0]))


def refresh(api, application, refresh_token: object, *, via: str = "path", **extra):
    body = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    if via == "path":
        url = f"/api/v0/token/{application.api_key_id}"
        return api.post(url, body, format="json", **extra)
    return api.post(
        "/api/v0/token", body, format="json", HTTP_API_KEY_ID=application.api_key_id, **extra
    )


def revoke(api, application, token: object, **extra):
    return api.post(
        "/api/v0/token/revoke",
        {"token": token},
        format="json",
        HTTP_API_KEY_ID=application.api_key_id,
        **extra,
    )


def assert_invalid_grant(response) -> None:
    assert response.status_code == 400, response.content
    assert response.json() == INVALID_GRANT
    assert "not valid" in response.json()["msg"]  # the web SDK stops retrying on this
    assert "no-store" in response["Cache-Control"]


def assert_no_store(response) -> None:
    cache_control = response["Cache-Control"]
    assert "no-store" in cache_control and "max-age=0" in cache_control
    assert response["Pragma"] == "no-cache"


def me(api, token: str):
    return api.get("/demo/api/me", HTTP_AUTHORIZATION=f"Bearer {token}")


# --------------------------------------------------------------------------- response shape


@pytest.mark.parametrize("via", ["path", "header"])
def test_refresh_response_is_cotter_oauth_token(api, application, token_set, identity, via):
    response = refresh(api, application, token_set.refresh_token, via=via)
    assert response.status_code == 200, response.content
    assert_no_store(response)
    data = response.json()
    assert set(data) == {
        "access_token",
        "id_token",
        "refresh_token",
        "expires_in",
        "token_type",
        "auth_method",
    }
    assert data["expires_in"] == 3600
    assert data["token_type"] == "Bearer"
    assert data["auth_method"] == "OTP"
    assert REFRESH_TOKEN_RE.match(data["refresh_token"])
    assert data["refresh_token"] != token_set.refresh_token
    access = claims_of(data["access_token"])
    assert access["exp"] == access["iat"] + 3600
    assert access["aud"] == application.api_key_id
    assert access["sub"] == str(identity.public_id)
    assert access["authentication_method"] == "OTP"
    # The family (``sid``) and the original sign-in time carry over.
    original = claims_of(token_set.access_token)
    assert access["sid"] == original["sid"]
    assert access["auth_time"] == original["auth_time"]
    assert access["jti"] != original["jti"]
    assert claims_of(data["id_token"])["auth_time"] == str(original["auth_time"])
    assert me(api, data["access_token"]).status_code == 200


def test_issued_refresh_token_format(token_set):
    assert REFRESH_TOKEN_RE.match(token_set.refresh_token)
    assert token_set.as_cotter()["refresh_token"] == token_set.refresh_token


def test_logout_delete_answers_2xx_no_store(api, application, db):
    response = api.delete(f"/api/v0/token/{application.api_key_id}")
    assert response.status_code == 200
    assert_no_store(response)
    response = api.delete("/api/v0/token", HTTP_API_KEY_ID=application.api_key_id)
    assert response.status_code == 200


# --------------------------------------------------------------------------- G01 / G02


@pytest.mark.parametrize("via", ["path", "header"])
def test_g01_rotation(api, application, token_set, via):
    rt1 = token_set.refresh_token
    first = refresh(api, application, rt1, via=via)
    assert first.status_code == 200
    rt2 = first.json()["refresh_token"]
    assert rt2 != rt1
    assert row_of(rt1).used_at is not None
    assert row_of(rt2).parent_id == row_of(rt1).pk
    assert row_of(rt2).family == row_of(rt1).family
    assert_invalid_grant(refresh(api, application, rt1, via=via))


def test_g01_chain_of_rotations(api, application, token_set):
    rt = token_set.refresh_token
    seen = {rt}
    for _ in range(5):
        response = refresh(api, application, rt)
        assert response.status_code == 200
        rt = response.json()["refresh_token"]
        assert rt not in seen
        seen.add(rt)
    assert RefreshToken.objects.filter(family=row_of(rt).family).count() == 6


def test_g02_reuse_revokes_the_whole_family(api, application, token_set, user):
    rt1 = token_set.refresh_token
    rt2 = refresh(api, application, rt1).json()["refresh_token"]
    rt3 = refresh(api, application, rt2).json()["refresh_token"]
    family = row_of(rt1).family
    assert not AuthEvent.objects.filter(event=AuthEvent.Kind.REFRESH_TOKEN_REUSED).exists()

    assert_invalid_grant(refresh(api, application, rt1))  # the thief (or the victim) replays

    assert_invalid_grant(refresh(api, application, rt3))  # the live child is dead too
    assert_invalid_grant(refresh(api, application, rt2))
    rows = RefreshToken.objects.filter(family=family)
    assert rows.count() == 3
    assert all(r.revoked_at is not None and r.revoke_reason == "reuse" for r in rows)
    events = AuthEvent.objects.filter(event=AuthEvent.Kind.REFRESH_TOKEN_REUSED)
    assert events.count() >= 1
    event = events.order_by("created_at").first()
    assert event.user == user
    assert event.application_id == application.pk
    assert event.state == AuthEvent.State.REJECTED
    assert event.details["family"] == str(family)
    assert event.details["refresh_token_id"] == row_of(rt1).pk


def test_g02_reuse_does_not_touch_other_families(api, application, identity, token_set):
    other = token_flows.issue_token_set(
        identity=identity, application=application, auth_method="OTP"
    )
    refresh(api, application, token_set.refresh_token)
    assert_invalid_grant(refresh(api, application, token_set.refresh_token))
    assert refresh(api, application, other.refresh_token).status_code == 200


# --------------------------------------------------------------------------- G04


@pytest.mark.parametrize("via", ["path", "header"])
def test_g04_refresh_token_bound_to_its_application(
    api, application, other_application, token_set, via
):
    assert_invalid_grant(refresh(api, other_application, token_set.refresh_token, via=via))
    row = row_of(token_set.refresh_token)
    assert row.used_at is None and row.revoked_at is None
    assert not AuthEvent.objects.filter(event=AuthEvent.Kind.REFRESH_TOKEN_REUSED).exists()
    # The rightful client can still refresh: a foreign client cannot burn the family.
    assert refresh(api, application, token_set.refresh_token, via=via).status_code == 200


def test_g04_inactive_application_cannot_refresh(api, application, token_set):
    application.is_active = False
    application.save()
    response = refresh(api, application, token_set.refresh_token)
    assert response.status_code == 401
    assert response.json()["type"] == "invalid_client"
    assert row_of(token_set.refresh_token).used_at is None


# --------------------------------------------------------------------------- G05


@pytest.fixture
def short_lifetimes(settings):
    settings.AUTHDEVICE_REFRESH_TOKEN_IDLE_LIFETIME = 3 * 86400
    settings.AUTHDEVICE_REFRESH_TOKEN_ABSOLUTE_LIFETIME = 10 * 86400


def _start() -> datetime:
    return datetime.now(UTC).replace(microsecond=0) + timedelta(days=30)


def test_g05_absolute_expiry(api, application, identity, short_lifetimes):
    start = _start()
    with time_machine.travel(start, tick=False) as traveller:
        rt = token_flows.issue_token_set(
            identity=identity, application=application, auth_method="OTP"
        ).refresh_token
        for day in (2, 4, 6, 8):  # refreshing every two days keeps the family alive ...
            traveller.move_to(start + timedelta(days=day))
            response = refresh(api, application, rt)
            assert response.status_code == 200, day
            rt = response.json()["refresh_token"]
        traveller.move_to(start + timedelta(days=10) - timedelta(seconds=1))
        response = refresh(api, application, rt)
        assert response.status_code == 200
        rt = response.json()["refresh_token"]
        # ... until the absolute limit, counted from the sign-in, not from the last refresh.
        traveller.move_to(start + timedelta(days=10))
        assert_invalid_grant(refresh(api, application, rt))
        assert row_of(rt).family_expires_at == start + timedelta(days=10)


def test_g05_idle_expiry(api, application, identity, short_lifetimes):
    start = _start()
    with time_machine.travel(start, tick=False) as traveller:
        rt = token_flows.issue_token_set(
            identity=identity, application=application, auth_method="OTP"
        ).refresh_token
        traveller.move_to(start + timedelta(days=3) - timedelta(seconds=1))
        response = refresh(api, application, rt)
        assert response.status_code == 200
        rt2 = response.json()["refresh_token"]
        # Idle time restarts with each rotation; three idle days kill the token.
        traveller.move_to(start + timedelta(days=6))
        assert_invalid_grant(refresh(api, application, rt2))
        assert row_of(rt2).used_at is None


def test_g05_expiry_is_decided_by_the_server_clock(api, application, identity, short_lifetimes):
    start = _start()
    with time_machine.travel(start, tick=False) as traveller:
        rt = token_flows.issue_token_set(
            identity=identity, application=application, auth_method="OTP"
        ).refresh_token
        traveller.move_to(start + timedelta(days=4))
        # Client-supplied hints of time change nothing.
        body = {"grant_type": "refresh_token", "refresh_token": rt, "timestamp": start.timestamp()}
        response = api.post(f"/api/v0/token/{application.api_key_id}", body, format="json")
        assert_invalid_grant(response)


# --------------------------------------------------------------------------- G06


def test_g06_inactive_user_cannot_refresh(api, application, token_set, user):
    user.is_active = False
    user.save()
    assert_invalid_grant(refresh(api, application, token_set.refresh_token))
    assert row_of(token_set.refresh_token).used_at is None
    user.is_active = True
    user.save()
    assert refresh(api, application, token_set.refresh_token).status_code == 200


def test_g06_revoke_refresh_token_revokes_family(api, application, token_set, user):
    rt2 = refresh(api, application, token_set.refresh_token).json()["refresh_token"]
    response = revoke(api, application, rt2)
    assert response.status_code == 200
    assert response.json() == {}
    assert_no_store(response)
    family = RefreshToken.objects.filter(family=row_of(rt2).family)
    assert all(r.revoked_at is not None for r in family)
    assert_invalid_grant(refresh(api, application, rt2))
    event = AuthEvent.objects.get(event=AuthEvent.Kind.TOKENS_REVOKED)
    assert event.user == user and event.details["family"] == str(row_of(rt2).family)
    # Revocation is not reuse: no reuse alarm was raised.
    assert not AuthEvent.objects.filter(event=AuthEvent.Kind.REFRESH_TOKEN_REUSED).exists()


def test_g06_revoke_access_token_revokes_family(api, application, token_set):
    response = revoke(api, application, token_set.access_token)
    assert response.status_code == 200
    assert row_of(token_set.refresh_token).revoked_at is not None
    assert_invalid_grant(refresh(api, application, token_set.refresh_token))


def test_g06_revoke_with_client_id_field(api, application, token_set):
    response = api.post(
        "/api/v0/token/revoke",
        {"token": token_set.refresh_token, "client_id": application.api_key_id},
        format="json",
    )
    assert response.status_code == 200
    assert row_of(token_set.refresh_token).revoked_at is not None


def test_g06_revoke_form_encoded(api, application, token_set):
    response = api.post(
        "/api/v0/token/revoke",
        urlencode({"token": token_set.refresh_token, "token_type_hint": "refresh_token"}),
        content_type="application/x-www-form-urlencoded",
        HTTP_API_KEY_ID=application.api_key_id,
    )
    assert response.status_code == 200
    assert row_of(token_set.refresh_token).revoked_at is not None


@pytest.mark.parametrize(
    "token",
    [
        "garbage",
        "1:nope",
        "999999999:" + "A" * 43,
        "0:abc",
        "-5:abc",
        "eyJhbGciOiJub25lIn0.e30.",
        "a.b.c",
        "x" * 10_000,
        "123",
        ":",
        "\x00:\x00",
    ],
)
def test_g06_revoke_unknown_or_garbage_is_200_and_changes_nothing(
    api, application, token_set, token
):
    response = revoke(api, application, token)
    assert response.status_code == 200
    assert response.json() == {}
    assert row_of(token_set.refresh_token).revoked_at is None
    assert not AuthEvent.objects.filter(event=AuthEvent.Kind.TOKENS_REVOKED).exists()


@pytest.mark.parametrize("secret", ["\ud800", "\udfff\udfff", "\u00e9t\u00e9"])
def test_non_ascii_secret_of_a_real_token_is_refused_never_500(api, application, token_set, secret):
    # A JSON string may hold a lone surrogate, which cannot be hashed: refused up front.
    forged = f"{token_set.refresh_token.split(':')[0]}:{secret}"

    def post(url: str, body: dict[str, str]):
        # json.dumps escapes the surrogate (APIClient's renderer cannot encode it).
        return api.generic(
            "POST",
            url,
            json.dumps(body),
            content_type="application/json",
            HTTP_API_KEY_ID=application.api_key_id,
        )

    response = post(
        f"/api/v0/token/{application.api_key_id}",
        {"grant_type": "refresh_token", "refresh_token": forged},
    )
    # A lone surrogate is refused by the JSON parser; other non-ASCII is an invalid grant.
    expected = "invalid_grant" if secret.isascii() or secret == "\u00e9t\u00e9" else "invalid_json"
    assert response.status_code == 400 and response.json()["type"] == expected
    revoked = post("/api/v0/token/revoke", {"token": forged})
    assert revoked.status_code == (200 if expected == "invalid_grant" else 400)
    assert row_of(token_set.refresh_token).revoked_at is None
    assert row_of(token_set.refresh_token).used_at is None


def test_g06_revoke_twice_is_200(api, application, token_set):
    assert revoke(api, application, token_set.refresh_token).status_code == 200
    first = row_of(token_set.refresh_token).revoked_at
    second = revoke(api, application, token_set.refresh_token)
    assert second.status_code == 200
    assert second.json() == {}
    assert row_of(token_set.refresh_token).revoked_at == first
    assert AuthEvent.objects.filter(event=AuthEvent.Kind.TOKENS_REVOKED).count() == 1


def test_g06_revoke_wrong_secret_with_valid_id_is_200_and_revokes_nothing(
    api, application, token_set
):
    pk = token_set.refresh_token.split(":")[0]
    assert revoke(api, application, f"{pk}:{'B' * 43}").status_code == 200
    assert row_of(token_set.refresh_token).revoked_at is None


def test_g06_other_application_cannot_revoke(api, application, other_application, token_set):
    for token in (token_set.refresh_token, token_set.access_token):
        response = revoke(api, other_application, token)
        assert response.status_code == 200
        assert response.json() == {}
    assert row_of(token_set.refresh_token).revoked_at is None
    assert refresh(api, application, token_set.refresh_token).status_code == 200


def test_g06_revoke_requires_a_known_application(api, token_set):
    response = api.post("/api/v0/token/revoke", {"token": token_set.refresh_token}, format="json")
    assert response.status_code == 401
    assert set(response.json()) == {"msg", "type"}
    assert row_of(token_set.refresh_token).revoked_at is None
    response = revoke(api, type("App", (), {"api_key_id": str(uuid.uuid4())}), "x")
    assert response.status_code == 401


def test_g06_revoke_missing_token_is_400(api, application, db):
    for body in [{}, {"token": ""}, {"token": 5}, {"token": ["a"]}, {"token": None}]:
        response = api.post(
            "/api/v0/token/revoke",
            body,
            format="json",
            HTTP_API_KEY_ID=application.api_key_id,
        )
        assert response.status_code == 400, body
        assert response.json()["type"] == "invalid_request"


def test_g06_revoking_all_user_tokens(api, application, identity, token_set):
    other = token_flows.issue_token_set(
        identity=identity, application=application, auth_method="OTP"
    )
    assert token_flows.revoke_user_tokens(identity, reason="logout everywhere") == 2
    assert_invalid_grant(refresh(api, application, token_set.refresh_token))
    assert_invalid_grant(refresh(api, application, other.refresh_token))


# --------------------------------------------------------------------------- G07


def test_g07_database_stores_sha256_only(token_set):
    pk, secret = token_set.refresh_token.split(":")
    row = RefreshToken.objects.get(pk=int(pk))
    assert row.secret_hash == sha256_hex(secret)
    values = RefreshToken.objects.filter(pk=int(pk)).values().get()
    dumped = json.dumps(values, default=str)
    assert secret not in dumped
    assert token_set.refresh_token not in dumped
    out = io.StringIO()
    call_command("dumpdata", "authdevice.refreshtoken", stdout=out)
    assert secret not in out.getvalue()
    assert row.secret_hash in out.getvalue()


def test_g07_a_database_dump_gives_no_usable_token(api, application, token_set):
    """Presenting the stored hash (what a dump reveals) as the secret does not work."""
    row = row_of(token_set.refresh_token)
    assert_invalid_grant(refresh(api, application, f"{row.pk}:{row.secret_hash}"))
    assert row_of(token_set.refresh_token).used_at is None


def test_g07_all_failures_look_the_same(
    api, application, other_application, identity, token_set, user, short_lifetimes
):
    pk, secret = token_set.refresh_token.split(":")
    spent = token_flows.issue_token_set(
        identity=identity, application=application, auth_method="OTP"
    )
    refresh(api, application, spent.refresh_token)
    revoked = token_flows.issue_token_set(
        identity=identity, application=application, auth_method="OTP"
    )
    revoke(api, application, revoked.refresh_token)
    candidates = [
        f"{pk}:{'A' * len(secret)}",  # valid id, wrong secret
        f"{pk}:{secret[:-1]}",
        f"{pk}:{secret}x",
        "random-string",
        "8:" + secret,  # right secret, wrong id
        str(uuid.uuid4()),
        "99999999999:" + "Z" * 43,
        spent.refresh_token,  # spent (reuse)
        revoked.refresh_token,  # revoked
        "x" * 201,
    ]
    bodies = set()
    for candidate in candidates:
        response = refresh(api, application, candidate)
        assert response.status_code == 400, candidate
        bodies.add(response.content)
    assert bodies == {json.dumps(INVALID_GRANT, separators=(",", ":")).encode()}
    # And the token those guesses were aimed at still works.
    assert refresh(api, application, token_set.refresh_token).status_code == 200


# --------------------------------------------------------------------------- cost


def test_refresh_query_budget(
    api, application, token_set, django_assert_max_num_queries, django_assert_num_queries
):
    # Warm the application and key caches with a first refresh.
    rt = refresh(api, application, token_set.refresh_token).json()["refresh_token"]
    # Measured: one SELECT (row + application + identity + user), the conditional UPDATE,
    # the INSERT of the child; plus SAVEPOINT/RELEASE of the atomic block inside the test
    # transaction. No application, key or identifier lookups once caches are warm.
    with django_assert_max_num_queries(5):
        response = refresh(api, application, rt)
    assert response.status_code == 200
    # Reuse detection: SELECT, family UPDATE twice (the second catches a refresh in
    # flight, flows.tokens.revoke_families), audit INSERT (+ savepoints).
    with django_assert_max_num_queries(6):
        assert_invalid_grant(refresh(api, application, rt))
    # A failed refresh with a malformed token costs nothing.
    with django_assert_num_queries(0):
        assert_invalid_grant(refresh(api, application, "not-a-token"))


# ------------------------------------------------- H07/L01: sign out everywhere cascades
#
# revoke_user_tokens also ends what could still mint a session: unredeemed authorization
# codes, pending sign-in challenges, pending (and approved but uncollected) approval
# requests and unredeemed QR binding codes -- of that user only.

GET_IDENTITY = "/api/v0/verify/get_identity?oauth_token=true"
CODE_REDIRECT = "https://app.example.com/cb"
INVALID_CODE = {
    "msg": "The authorization code is invalid, expired or already used.",
    "type": "invalid_grant",
}


@pytest.fixture
def bob(db):
    from django.contrib.auth import get_user_model

    from authdevice.flows.identities import add_identifier

    user = get_user_model().objects.create_user(username="bob", email="bob@example.com")
    add_identifier(user, "EMAIL", "bob@example.com", verified=True)
    return user.authdevice_identity


def authorization_code(application, identity) -> dict:
    """A code as the hosted page mints it, as the app would redeem it (D1 body)."""
    from authdevice.flows.pkce import create_authorization_code, s256

    verifier = "v" * 43
    row, code = create_authorization_code(
        application=application,
        identity=identity,
        identifier=identity.identifiers.get(),
        auth_method="OTP",
        redirect_url=CODE_REDIRECT,
        code_challenge=s256(verifier),
    )
    return {
        "code_verifier": verifier,
        "authorization_code": code,
        "challenge_id": row.pk,
        "redirect_url": CODE_REDIRECT,
    }


def redeem_code(api, application, body: dict):
    return api.post(GET_IDENTITY, body, format="json", HTTP_API_KEY_ID=application.api_key_id)


def test_h07_code_issued_before_sign_out_everywhere_cannot_be_redeemed(
    api, application, identity, token_set
):
    body = authorization_code(application, identity)
    token_flows.revoke_user_tokens(identity, reason="logout everywhere")
    issued = RefreshToken.objects.count()
    response = redeem_code(api, application, body)
    # The same answer as any invalid code: nothing tells the caller why.
    assert response.status_code == 400, response.content
    assert response.json() == INVALID_CODE
    garbage = redeem_code(api, application, {**body, "authorization_code": "x" * 43})
    assert (garbage.status_code, garbage.json()) == (400, INVALID_CODE)
    assert RefreshToken.objects.count() == issued  # no session was minted
    assert not RefreshToken.objects.filter(revoked_at__isnull=True).exists()


def test_h07_redeemed_code_tokens_are_revoked_and_the_code_stays_spent(api, application, identity):
    body = authorization_code(application, identity)
    first = redeem_code(api, application, body)
    assert first.status_code == 200, first.content
    token_flows.revoke_user_tokens(identity, reason="logout everywhere")
    assert_invalid_grant(refresh(api, application, first.json()["oauth_token"]["refresh_token"]))
    assert redeem_code(api, application, body).json() == INVALID_CODE


def test_h07_codes_of_other_users_are_untouched(api, application, identity, bob):
    mine = authorization_code(application, identity)
    theirs = authorization_code(application, bob)
    token_flows.revoke_user_tokens(identity, reason="logout everywhere")
    assert redeem_code(api, application, mine).json() == INVALID_CODE
    response = redeem_code(api, application, theirs)
    assert response.status_code == 200, response.content
    row = RefreshToken.objects.get(pk=int(response.json()["oauth_token"]["refresh_token"][:-44]))
    assert row.identity_id == bob.pk and row.revoked_at is None


@pytest.fixture
def outbox(settings, django_capture_on_commit_callbacks):
    """Codes are sent after commit: run those callbacks and keep the mail in memory."""
    from django.core import mail
    from django.core.cache import cache

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    cache.clear()  # the send limits

    def start(identifier: str, method: str = "OTP"):
        from authdevice.flows import codes

        with django_capture_on_commit_callbacks(execute=True):
            started = codes.start_challenge(identifier=identifier, method=method)
        body = mail.outbox[-1].body
        code = re.search(r"\b(\d{6})\b", body).group(1)
        link = re.search(r"/signin/link/([^/\s]+)/", body)
        return started, code, link.group(1) if link else None

    return start


def test_h07_pending_challenge_no_longer_signs_in(identity, bob, outbox):
    from authdevice.flows import codes
    from authdevice.models import Challenge

    mine, my_code, my_link = outbox("alice@example.com", "MAGIC_LINK")
    theirs, their_code, _ = outbox("bob@example.com")
    token_flows.revoke_user_tokens(identity, reason="logout everywhere")
    assert Challenge.objects.get(pk=mine.challenge.pk).state == Challenge.State.DEAD
    with pytest.raises(codes.InvalidCode):
        codes.verify_code(challenge_id=mine.challenge.pk, binding=mine.binding, code=my_code)
    assert my_link is not None
    assert codes.preview_link(my_link) is None
    with pytest.raises(codes.InvalidCode):
        codes.verify_link(token=my_link, binding=mine.binding)
    assert not AuthEvent.objects.filter(event="LOGIN", user=identity.user).exists()
    # Bob's challenge was not touched.
    signed = codes.verify_code(
        challenge_id=theirs.challenge.pk, binding=theirs.binding, code=their_code
    )
    assert signed.identity == bob
    # A challenge started after the sign-out works as usual.
    again, code, _ = outbox("alice@example.com")
    assert codes.verify_code(challenge_id=again.challenge.pk, binding=again.binding, code=code)


@pytest.fixture
def trusted_phone(api, application, identity):
    from tests.devicekit import Phone
    from tests.test_v0_users import enrol

    phone = Phone.new("rn")
    assert enrol(api, application, identity, phone).status_code == 200
    return phone


def ask_approval(api, application, identity) -> dict:
    from tests.test_v0_events import pending_body, post

    response = post(
        api,
        application,
        "/api/v0/event/create_pending",
        pending_body(application, identity.client_user_id),
    )
    assert response.status_code == 200, response.content
    return response.json()


def test_h07_pending_approval_can_no_longer_be_approved(api, application, identity, trusted_phone):
    from tests.test_v0_events import get, post, respond_body

    pending = ask_approval(api, application, identity)
    token_flows.revoke_user_tokens(identity, reason="logout everywhere")
    row = AuthEvent.objects.get(pk=pending["ID"])
    assert row.state == AuthEvent.State.REJECTED and row.decided_at is not None
    approve = post(
        api,
        application,
        f"/api/v0/event/respond/{pending['ID']}",
        respond_body(application, identity.client_user_id, trusted_phone, pending),
    )
    assert approve.status_code == 409, approve.content
    assert approve.json()["type"] == "already_decided"
    assert AuthEvent.objects.get(pk=pending["ID"]).state == AuthEvent.State.REJECTED
    issued = RefreshToken.objects.count()
    poll = get(api, application, f"/api/v0/event/get/{pending['ID']}?oauth_token=true")
    assert poll.json()["approved"] is False and "oauth_token" not in poll.json()
    assert RefreshToken.objects.count() == issued
    assert not RefreshToken.objects.filter(revoked_at__isnull=True).exists()


def test_h07_approved_but_uncollected_request_hands_out_no_tokens(
    api, application, identity, trusted_phone
):
    from tests.test_v0_events import get, post, respond_body

    pending = ask_approval(api, application, identity)
    approve = post(
        api,
        application,
        f"/api/v0/event/respond/{pending['ID']}",
        respond_body(application, identity.client_user_id, trusted_phone, pending),
    )
    assert approve.status_code == 200, approve.content
    token_flows.revoke_user_tokens(identity, reason="logout everywhere")
    issued = RefreshToken.objects.count()
    poll = get(api, application, f"/api/v0/event/get/{pending['ID']}?oauth_token=true")
    assert poll.status_code == 200 and "oauth_token" not in poll.json()
    assert RefreshToken.objects.count() == issued
    assert not RefreshToken.objects.filter(revoked_at__isnull=True).exists()


def test_h07_approval_requests_of_other_users_are_untouched(application, identity, bob):
    from authdevice.flows import events as event_flows
    from tests.devicekit import now_ts

    mine = event_flows.create_pending_event(
        identity=identity, application=application, event="LOGIN", client_timestamp=now_ts()
    )
    theirs = event_flows.create_pending_event(
        identity=bob, application=application, event="LOGIN", client_timestamp=now_ts()
    )
    token_flows.revoke_user_tokens(identity, reason="logout everywhere")
    assert AuthEvent.objects.get(pk=mine.pk).state == AuthEvent.State.REJECTED
    assert AuthEvent.objects.get(pk=theirs.pk).state == AuthEvent.State.PENDING


def test_h07_unredeemed_qr_binding_codes_are_cancelled(identity, bob):
    from authdevice.flows import native

    mine = native.start_binding(identity)
    theirs = native.start_binding(bob)
    token_flows.revoke_user_tokens(identity, reason="logout everywhere")
    assert native.preview_binding(mine.code) is None
    assert native.preview_binding(theirs.code) is not None


def test_h07_nothing_outstanding_is_a_no_op(identity, application):
    assert token_flows.revoke_user_tokens(identity, reason="logout everywhere") == 0
    ended = token_flows.end_pending_grants(identity, datetime.now(UTC))
    assert ended == token_flows.EndedGrants(0, 0, 0, 0, 0)
