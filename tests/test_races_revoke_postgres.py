"""Sign out everywhere racing the flows that mint sessions, on a real PostgreSQL server
(security.md H07, L01): whatever wins, no unrevoked refresh token of the user survives.

Run in the PostgreSQL pass (AUTHDEVICE_TEST_DB=postgres)."""

from __future__ import annotations

import re
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from authdevice.flows import events as event_flows
from authdevice.flows import tokens as token_flows
from authdevice.flows.errors import InvalidGrant
from authdevice.flows.pkce import (
    InvalidAuthorizationCode,
    Redeemed,
    create_authorization_code,
    redeem_authorization_code,
    s256,
)
from authdevice.models import AuthEvent, RefreshToken
from tests.concurrency import race

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

ROUNDS = 8
REDIRECT = "https://app.example.com/cb"
VERIFIER = "v" * 43


@pytest.fixture(autouse=True)
def _require_postgres():
    if connection.vendor != "postgresql":
        pytest.fail("race tests must run on PostgreSQL (AUTHDEVICE_TEST_DB=postgres)")


def sign_out_everywhere(identity):
    return lambda: token_flows.revoke_user_tokens(identity, reason="logout everywhere")


def assert_signed_out(identity) -> None:
    assert not RefreshToken.objects.filter(identity=identity, revoked_at__isnull=True).exists()


def test_redemption_racing_sign_out_everywhere(application, identity):
    for _ in range(ROUNDS):
        row, code = create_authorization_code(
            application=application,
            identity=identity,
            identifier=identity.identifiers.get(),
            auth_method="OTP",
            redirect_url=REDIRECT,
            code_challenge=s256(VERIFIER),
        )
        redeemed, _revoked = race(
            lambda row=row, code=code: redeem_authorization_code(
                application=application,
                authorization_code=code,
                challenge_id=row.pk,
                code_verifier=VERIFIER,
                redirect_url=REDIRECT,
            ),
            sign_out_everywhere(identity),
        )
        assert isinstance(redeemed, Redeemed | InvalidAuthorizationCode), redeemed
        assert_signed_out(identity)


def test_refresh_racing_sign_out_everywhere(application, identity):
    for _ in range(ROUNDS):
        tokens = token_flows.issue_token_set(
            identity=identity, application=application, auth_method="OTP"
        )
        refreshed, _revoked = race(
            lambda tokens=tokens: token_flows.refresh_token_set(
                tokens.refresh_token, api_key_id=application.api_key_id
            ),
            sign_out_everywhere(identity),
        )
        assert isinstance(refreshed, token_flows.TokenSet | InvalidGrant), refreshed
        assert_signed_out(identity)


def test_sign_out_everywhere_during_a_refresh_revokes_its_child(application, identity, monkeypatch):
    """The refresh has spent its token and not yet committed the child when the sign-out
    starts: the family UPDATE waits for it, and the child (invisible to that statement)
    is revoked by the second pass."""
    tokens = token_flows.issue_token_set(
        identity=identity, application=application, auth_method="OTP"
    )
    persist = token_flows._persist

    def slow_persist(row, token_set):
        time.sleep(0.3)  # the parent is spent and locked; the child comes after this
        return persist(row, token_set)

    monkeypatch.setattr(token_flows, "_persist", slow_persist)

    def late_sign_out():
        time.sleep(0.1)
        return token_flows.revoke_user_tokens(identity, reason="logout everywhere")

    refreshed, revoked = race(
        lambda: token_flows.refresh_token_set(
            tokens.refresh_token, api_key_id=application.api_key_id
        ),
        late_sign_out,
    )
    assert isinstance(refreshed, token_flows.TokenSet), refreshed
    assert revoked == 2  # the parent and its child
    assert_signed_out(identity)


def test_revoking_one_session_during_its_refresh_revokes_the_child(
    application, identity, monkeypatch
):
    """The same race on /token/revoke (one family): the child the in-flight refresh
    inserts is revoked too."""
    tokens = token_flows.issue_token_set(
        identity=identity, application=application, auth_method="OTP"
    )
    persist = token_flows._persist

    def slow_persist(row, token_set):
        time.sleep(0.3)
        return persist(row, token_set)

    monkeypatch.setattr(token_flows, "_persist", slow_persist)

    def late_revoke():
        time.sleep(0.1)
        return token_flows.revoke_token(tokens.refresh_token, api_key_id=application.api_key_id)

    refreshed, revoked = race(
        lambda: token_flows.refresh_token_set(
            tokens.refresh_token, api_key_id=application.api_key_id
        ),
        late_revoke,
    )
    assert isinstance(refreshed, token_flows.TokenSet), refreshed
    assert revoked is True
    family = RefreshToken.objects.get(pk=int(tokens.refresh_token.split(":")[0])).family
    rows = RefreshToken.objects.filter(family=family)
    assert rows.count() == 2 and not rows.filter(revoked_at__isnull=True).exists()


def test_approval_hand_out_racing_sign_out_everywhere(application, identity):
    for _ in range(ROUNDS):
        now = timezone.now()
        event = AuthEvent.objects.create(
            user=identity.user,
            application=application,
            event="LOGIN",
            method="TRUSTED_DEVICE",
            state=AuthEvent.State.APPROVED,
            expires_at=now + timedelta(seconds=60),
            decided_at=now,
        )
        event = AuthEvent.objects.select_related("user__authdevice_identity").get(pk=event.pk)
        handed, _revoked = race(
            lambda event=event: event_flows.hand_out_tokens(event),
            sign_out_everywhere(identity),
        )
        assert handed is None or isinstance(handed, token_flows.TokenSet), handed
        assert_signed_out(identity)


def test_sign_out_everywhere_during_a_hosted_sign_in_ends_its_code(
    application, identity, monkeypatch, settings
):
    """The hosted page's sign-in has consumed its challenge and not yet committed the
    authorization code when "sign out everywhere" starts: the sign-out's challenge UPDATE
    waits for that transaction, and its code UPDATE, after it, ends the new code."""
    from django.core import mail

    from authdevice.flows import codes, pkce

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    started = codes.start_challenge(identifier="alice@example.com", application=application)
    code = re.search(r"\b(\d{6})\b", mail.outbox[-1].body).group(1)
    mint = pkce.create_authorization_code

    def slow_mint(**kwargs):
        time.sleep(0.3)  # the challenge is consumed and locked; the code comes after this
        return mint(**kwargs)

    monkeypatch.setattr(pkce, "create_authorization_code", slow_mint)

    def late_sign_out():
        time.sleep(0.1)
        return token_flows.revoke_user_tokens(identity, reason="logout everywhere")

    signed, _revoked = race(
        lambda: codes.verify_code(
            challenge_id=started.challenge.pk,
            binding=started.binding,
            code=code,
            application=application,
            hosted=pkce.HostedApp(
                application=application, redirect_url=REDIRECT, code_challenge=s256(VERIFIER)
            ),
        ),
        late_sign_out,
    )
    assert isinstance(signed, codes.SignedIn) and signed.authorization is not None, signed
    row, minted = signed.authorization
    with pytest.raises(InvalidAuthorizationCode):
        redeem_authorization_code(
            application=application,
            authorization_code=minted,
            challenge_id=row.pk,
            code_verifier=VERIFIER,
            redirect_url=REDIRECT,
        )
    assert_signed_out(identity)
