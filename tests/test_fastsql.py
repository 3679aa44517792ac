"""authdevice.models.fastsql writes and reads rows exactly as the ORM does."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from django.utils.translation import gettext_lazy

from authdevice.models import AuthEvent, RefreshToken, fastsql

pytestmark = pytest.mark.django_db


def raw_row(model, pk):
    table = connection.ops.quote_name(model._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {fastsql.columns(model)} FROM {table} WHERE id = %s", [pk])
        return cursor.fetchone()


def field_values(instance):
    return {f.attname: getattr(instance, f.attname) for f in type(instance)._meta.concrete_fields}


def event(user, application, **extra):
    now = timezone.now()
    return AuthEvent(
        user=user,
        application=application,
        event=AuthEvent.Kind.LOGIN,  # a TextChoices member: must be stored as its value
        method="OTP",
        state=AuthEvent.State.PENDING,
        ip="::ffff:10.0.0.1",
        user_agent=gettext_lazy("Web browser"),  # lazy strings convert too
        details={"nested": {"a": [1, 2, None]}, "text": "é"},
        expires_at=now + timedelta(minutes=3),
        token_family=uuid.uuid4(),
        match_attempts=2,
        **extra,
    )


def test_insert_stores_what_save_stores(user, application):
    ours, theirs = event(user, application), event(user, application)
    theirs.token_family = ours.token_family
    theirs.expires_at = ours.expires_at
    fastsql.insert(ours)
    theirs.save(force_insert=True)
    assert not ours._state.adding
    mine, orm = list(raw_row(AuthEvent, ours.pk)), list(raw_row(AuthEvent, theirs.pk))
    names = [f.attname for f in AuthEvent._meta.concrete_fields]
    for name in ("id", "created_at", "updated_at"):  # chosen per row
        index = names.index(name)
        mine[index] = orm[index] = None
    assert mine == orm


def test_load_gives_what_the_orm_gives(user, application):
    row = fastsql.insert(event(user, application))
    loaded = fastsql.load(AuthEvent, raw_row(AuthEvent, row.pk))
    orm = AuthEvent.objects.get(pk=row.pk)
    assert field_values(loaded) == field_values(orm)
    assert loaded._state.db == "default" and not loaded._state.adding
    assert loaded.user == user  # relations work on a loaded row
    loaded.state = AuthEvent.State.APPROVED
    loaded.save(update_fields=["state"])  # and it saves like any other
    assert AuthEvent.objects.get(pk=row.pk).state == "approved"


def test_prepared_insert_runs_later(identity, application):
    now = timezone.now()
    row = RefreshToken(
        secret_hash="0" * 64,
        application=application,
        identity=identity,
        auth_method="OTP",
        auth_time=now,
        created_at=now,
        family_expires_at=now + timedelta(days=1),
    )
    prepared = fastsql.prepare_insert(row)
    assert not RefreshToken.objects.filter(pk=row.pk).exists()
    fastsql.run_insert(row, prepared)
    stored = RefreshToken.objects.get(pk=row.pk)
    assert field_values(stored) == field_values(row)


def test_loading_respects_init_receivers(user, application, monkeypatch):
    from django.db.models.signals import post_init

    seen = []

    def receiver(sender, instance, **kwargs):
        seen.append(instance.pk)

    row = fastsql.insert(event(user, application))
    post_init.connect(receiver, sender=AuthEvent)
    try:
        fastsql.load(AuthEvent, raw_row(AuthEvent, row.pk))
    finally:
        post_init.disconnect(receiver, sender=AuthEvent)
    assert seen == [row.pk]
