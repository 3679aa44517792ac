"""Races, on a real PostgreSQL server (SQLite serialises writers, so it proves little).

Run in the PostgreSQL pass of `make test` (AUTHDEVICE_TEST_DB=postgres)."""

from __future__ import annotations

from collections import Counter

import pytest
from django.db import connection

from authdevice.flows import tokens as token_flows
from authdevice.flows.errors import FlowError, InvalidGrant
from authdevice.flows.keys import keyring, rotate_signing_key
from authdevice.models import RefreshToken, SigningKey
from tests.concurrency import hammer

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _require_postgres():
    if connection.vendor != "postgresql":
        pytest.fail("race tests must run on PostgreSQL (AUTHDEVICE_TEST_DB=postgres)")


def test_concurrent_refreshes_yield_at_most_one_child(token_set, application):
    outcomes = hammer(
        lambda: token_flows.refresh_token_set(
            token_set.refresh_token, api_key_id=application.api_key_id
        ),
        20,
    )
    kinds = Counter(type(o).__name__ for o in outcomes)
    assert set(kinds) <= {"TokenSet", "InvalidGrant"}, outcomes
    assert kinds["TokenSet"] <= 1
    assert len(outcomes) == 20
    # At most one child row was ever created from the presented token.
    parent_id = int(token_set.refresh_token.split(":")[0])
    assert RefreshToken.objects.filter(parent_id=parent_id).count() <= 1
    # The losers were reuse, so the family (including any child) is revoked.
    if kinds["InvalidGrant"]:
        assert not RefreshToken.objects.filter(revoked_at__isnull=True).exists()


def test_concurrent_refreshes_over_http_never_500(live_server_token):
    url, body, headers = live_server_token
    import requests

    outcomes = hammer(
        lambda: requests.post(url, json=body, headers=headers, timeout=20).status_code, 10
    )
    assert all(code in (200, 400) for code in outcomes), outcomes
    assert outcomes.count(200) <= 1


@pytest.fixture
def live_server_token(live_server, token_set, application):
    return (
        f"{live_server.url}/api/v0/token/{application.api_key_id}",
        {"grant_type": "refresh_token", "refresh_token": token_set.refresh_token},
        {},
    )


def test_first_key_bootstrap_race_creates_one_key():
    outcomes = hammer(lambda: keyring.signer()[0], 8)
    assert not [o for o in outcomes if isinstance(o, Exception)], outcomes
    assert SigningKey.objects.count() == 1
    assert set(outcomes) == {SigningKey.objects.get().kid}


def test_concurrent_rotations_never_share_a_generation():
    keyring.signer()
    outcomes = hammer(lambda: rotate_signing_key(actor="race"), 6)
    assert all(isinstance(o, (SigningKey, FlowError)) for o in outcomes), outcomes
    generations = list(SigningKey.objects.values_list("generation", flat=True))
    assert len(generations) == len(set(generations))
    assert SigningKey.objects.count() == 1 + sum(isinstance(o, SigningKey) for o in outcomes)


def test_invalid_grant_is_not_raised_for_other_reasons(token_set, application):
    # Sanity for the classifier above: a sequential reuse is an InvalidGrant.
    token_flows.refresh_token_set(token_set.refresh_token, api_key_id=application.api_key_id)
    with pytest.raises(InvalidGrant):
        token_flows.refresh_token_set(token_set.refresh_token, api_key_id=application.api_key_id)
