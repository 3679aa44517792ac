"""The schema: migrations match the models, the one-child rule of refresh tokens holds,
and the partial indexes (written only where a value is set) serve the lookups that need
them, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.db import IntegrityError, connection, transaction

from authdevice.crypto.secrets import sha256_hex
from authdevice.models import AuthEvent, Challenge, RefreshToken, fastsql

pytestmark = pytest.mark.django_db


def test_migrations_match_the_models():
    call_command("makemigrations", "authdevice", "--check", "--dry-run", verbosity=0)


def _token(parent: RefreshToken | None, identity, application) -> RefreshToken:
    from django.utils import timezone

    now = timezone.now()
    family = {"family": parent.family} if parent else {}  # else the field's default
    return fastsql.insert(
        fastsql.new(
            RefreshToken,
            **family,
            secret_hash=sha256_hex(str(now)),
            parent=parent,
            application=application,
            identity=identity,
            auth_method="OTP",
            auth_time=now,
            created_at=now,
            family_expires_at=now,
        )
    )


def test_a_token_has_at_most_one_child_and_families_start_freely(identity, application):
    first = _token(None, identity, application)
    _token(None, identity, application)  # many tokens without a parent
    _token(first, identity, application)
    with pytest.raises(IntegrityError), transaction.atomic():
        _token(first, identity, application)
    assert RefreshToken.objects.filter(parent=first).count() == 1


def _plan(sql: str, params: list) -> str:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL enable_seqscan = off")  # tiny tables: show the index
        cursor.execute(
            "EXPLAIN " + sql if connection.vendor == "postgresql" else "EXPLAIN QUERY PLAN " + sql,
            params,
        )
        return " ".join(str(part) for row in cursor.fetchall() for part in row)


@pytest.mark.parametrize(
    ("queryset", "index"),
    [
        (lambda: AuthEvent.objects.filter(requesting_device_id=5), "authdevice_event_requesting"),
        (lambda: AuthEvent.objects.filter(approving_device_id=5), "authdevice_event_approving"),
        (lambda: RefreshToken.objects.filter(device_id=5), "authdevice_token_device"),
        (lambda: Challenge.objects.filter(identity_id=5), "authdevice_challenge_identity"),
        (
            lambda: Challenge.objects.filter(identifier="a@example.com", state="pending").order_by(
                "-created_at"
            ),
            "authdevice_challenge_ident",
        ),
    ],
    ids=["requesting", "approving", "token-device", "challenge-identity", "identifier"],
)
def test_partial_indexes_serve_their_lookups(queryset, index):
    sql, params = queryset().query.sql_with_params()
    with transaction.atomic():
        assert index in _plan(sql, list(params))


def test_magic_link_lookup_uses_its_partial_index():
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        assert Challenge.objects.by_link_hash("ab" * 32) is None
    (query,) = queries.captured_queries  # the statement as run, its parameters inlined
    with transaction.atomic():
        assert "authdevice_challenge_link" in _plan(query["sql"], [])
