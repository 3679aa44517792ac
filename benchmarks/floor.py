"""Endpoint (F): the least that any implementation of code verify (f) has to do here.

Benchmark only (served by ``benchmarks.settings``; the example site has no such URL). It
answers the same request as ``POST /api/v1/auth/code/verify`` with the same kind of result
(a real sign-in: the challenge consumed, an audit row, a refresh-token row, an access and
an ID token that authdevice accepts), but written as directly as this stack allows: one
SELECT of just the columns it needs, the binding and code compared, two ES256 signatures,
then one write transaction (the consuming UPDATE and two INSERTs whose values were built
before it). No model instances, no adapter hooks, no signals, no serializer: everything a
product needs beyond the work itself is left out, so (F) is a ceiling for (f).

Its ratio to (a) in the same run tells how far (f) is from that ceiling, and whether (f)'s
target can be met by making the view faster at all (benchmarks/README.md, "Where the time
goes"). ``tests/test_benchmarks_smoke.py`` checks that its tokens and rows are real.
"""

from __future__ import annotations

import json
import secrets
import uuid
from datetime import timedelta
from typing import Any

from django.db import connection, transaction
from django.utils import timezone
from rest_framework.request import Request
from rest_framework.response import Response

from authdevice.api.v0.base import API_KEY_HEADER
from authdevice.api.v1.base import NativeAPIView
from authdevice.conf import app_settings
from authdevice.crypto import jwt as jwtcrypto
from authdevice.crypto.secrets import constant_time_equals, server_hmac_hex, sha256_hex
from authdevice.flows.applications import get_application
from authdevice.flows.codes import _failure_state
from authdevice.flows.tokens import ACCESS_TOKEN_TYPE, ID_TOKEN_TYPE, amr_for, keyring
from authdevice.http import client_ip, no_store
from authdevice.models import AuthEvent, Challenge, Identifier, RefreshToken, UserIdentity
from authdevice.models.ids import random_public_int

_plan: dict[str, Any] = {}


def _insert(model: type[Any], varying: tuple[str, ...]) -> tuple[str, list[Any], list[int]]:
    """The model's INSERT, its column defaults converted once, and where ``varying`` go."""
    fields = list(model._meta.concrete_fields)
    q = connection.ops.quote_name
    sql = "INSERT INTO {} ({}) VALUES ({})".format(
        q(model._meta.db_table),
        ", ".join(q(f.column) for f in fields),
        ", ".join(["%s"] * len(fields)),
    )
    defaults = []
    for f in fields:
        value = f.get_default()
        defaults.append(None if value is None else f.get_db_prep_save(value, connection))
    at = [next(i for i, f in enumerate(fields) if f.attname == name) for name in varying]
    return sql, defaults, at


def plan() -> dict[str, Any]:
    """Statements built once per process."""
    if _plan:
        return _plan
    q = connection.ops.quote_name
    from django.contrib.auth import get_user_model

    user_model = get_user_model()
    _plan["select"] = (
        f"SELECT ch.{q('application_id')}, ch.{q('purpose')}, ch.{q('code_hash')}, "
        f"ch.{q('binding_hash')}, ch.{q('version')}, ch.{q('state')}, ch.{q('expires_at')}, "
        f"ch.{q('identifier')}, ch.{q('channel')}, idt.{q('id')}, idt.{q('public_id')}, "
        f"idt.{q('client_user_id')}, usr.{q(user_model._meta.pk.column)}, "
        f"usr.{q('is_active')} "
        f"FROM {q(Challenge._meta.db_table)} ch "
        f"JOIN {q(Identifier._meta.db_table)} idf "
        f"ON idf.{q('kind')} = ch.{q('kind')} AND idf.{q('value')} = ch.{q('identifier')} "
        f"JOIN {q(UserIdentity._meta.db_table)} idt ON idt.{q('id')} = idf.{q('identity_id')} "
        f"JOIN {q(user_model._meta.db_table)} usr "
        f"ON usr.{q(user_model._meta.pk.column)} = idt.{q('user_id')} "
        f"WHERE ch.{q('id')} = %s"
    )
    _plan["consume"] = (
        f"UPDATE {q(Challenge._meta.db_table)} SET {q('state')} = %s, {q('verified_at')} = %s, "
        f"{q('identity_id')} = %s WHERE {q('id')} = %s AND {q('state')} = %s "
        f"AND {q('version')} = %s"
    )
    _plan["event"] = _insert(
        AuthEvent,
        (
            "id",
            "user_id",
            "application_id",
            "event",
            "method",
            "state",
            "ip",
            "details",
            "created_at",
            "updated_at",
        ),
    )
    _plan["token"] = _insert(
        RefreshToken,
        (
            "id",
            "secret_hash",
            "family",
            "application_id",
            "identity_id",
            "auth_method",
            "auth_time",
            "identifier",
            "channel",
            "scope",
            "created_at",
            "family_expires_at",
        ),
    )
    _plan["uuid"] = RefreshToken._meta.get_field("family")
    return _plan


def _refused() -> Response:
    return no_store(Response({"error": "invalid_code", "message": "Invalid code."}, status=400))


class CodeVerifyFloorView(NativeAPIView):
    """``POST /bench/floor/code-verify``: the body and headers of (f); the same answer.
    The native API's view settings (parser, renderer, no authentication classes)."""

    def post(self, request: Request) -> Response:
        p = plan()
        application = get_application(request.META.get(API_KEY_HEADER))
        data = request.data
        if application is None or type(data) is not dict:
            return _refused()
        try:
            pk = int(data["challenge_id"])
            secret, code = str(data["challenge_secret"]), str(data["code"]).strip()
        except (KeyError, TypeError, ValueError):
            return _refused()
        with connection.cursor() as cursor:
            cursor.execute(p["select"], [pk])
            row = cursor.fetchone()
        if row is None:
            return _refused()
        (app_id, purpose, code_hash, binding_hash, version, state, expires_at, value, channel) = (
            row[:9]
        )
        identity_id, public_id, client_user_id, user_id, is_active = row[9:]
        now = timezone.now()
        at = connection.ops.adapt_datetimefield_value(now)
        if not (
            app_id == application.pk
            and state == Challenge.State.PENDING
            # SQLite's converter gives naive UTC datetimes, PostgreSQL aware ones.
            and expires_at > (now if expires_at.tzinfo else now.replace(tzinfo=None))
            and is_active
            and constant_time_equals(sha256_hex(secret), binding_hash)
            and not _failure_state(value)[1]
            and constant_time_equals(server_hmac_hex(f"{pk}:{purpose}:{code}", "code"), code_hash)
        ):
            return _refused()
        # The token set, as authdevice.flows.tokens signs it.
        kid, private_key = keyring.signer()
        iat = int(now.timestamp())
        family = uuid.uuid4()
        public_id = str(uuid.UUID(str(public_id)))
        common = {
            "iss": app_settings.issuer,
            "aud": application.api_key_id,
            "sub": public_id,
            "iat": iat,
            "nbf": iat,
            "client_user_id": client_user_id,
            "identifier": value,
            "authentication_method": "OTP",
            "amr": amr_for("OTP", channel),
        }
        lifetime = application.access_token_lifetime or int(app_settings.ACCESS_TOKEN_LIFETIME)
        access = jwtcrypto.sign(
            {
                **common,
                "exp": iat + lifetime,
                "jti": str(uuid.uuid4()),
                "auth_time": iat,
                "type": ACCESS_TOKEN_TYPE,
                "scope": "access",
                "sid": str(family),
            },
            private_key,
            kid,
            jwtcrypto.ACCESS_TOKEN_TYP,
        )
        id_token = jwtcrypto.sign(
            {
                **common,
                "exp": iat + int(app_settings.ID_TOKEN_LIFETIME),
                "jti": str(uuid.uuid4()),
                "auth_time": str(iat),
                "type": ID_TOKEN_TYPE,
            },
            private_key,
            kid,
            jwtcrypto.ID_TOKEN_TYP,
        )
        refresh_secret = secrets.token_urlsafe(32)
        token_id = random_public_int()
        family_expires = now + timedelta(seconds=app_settings.REFRESH_TOKEN_ABSOLUTE_LIFETIME)
        event_sql, event_params, event_at = p["event"]
        event_params = list(event_params)
        for i, v in zip(
            event_at,
            (
                random_public_int(),
                user_id,
                application.pk,
                AuthEvent.Kind.LOGIN.value,
                "OTP",
                AuthEvent.State.APPROVED.value,
                client_ip(request),
                json.dumps({"challenge_id": pk, "channel": channel, "new_user": False}),
                at,
                at,
            ),
            strict=True,
        ):
            event_params[i] = v
        token_sql, token_params, token_at = p["token"]
        token_params = list(token_params)
        for i, v in zip(
            token_at,
            (
                token_id,
                sha256_hex(refresh_secret),
                p["uuid"].get_db_prep_save(family, connection),
                application.pk,
                identity_id,
                "OTP",
                at,
                value,
                channel,
                "access",
                at,
                connection.ops.adapt_datetimefield_value(family_expires),
            ),
            strict=True,
        ):
            token_params[i] = v
        with transaction.atomic(), connection.cursor() as cursor:
            consume = [Challenge.State.VERIFIED.value, at, identity_id, pk]
            cursor.execute(p["consume"], [*consume, Challenge.State.PENDING.value, version])
            if cursor.rowcount != 1:
                return _refused()
            cursor.execute(event_sql, event_params)
            cursor.execute(token_sql, token_params)
        return no_store(
            Response(
                {
                    "access_token": access,
                    "id_token": id_token,
                    "refresh_token": f"{token_id}:{refresh_secret}",
                    "expires_in": lifetime,
                    "token_type": "Bearer",
                    "auth_method": "OTP",
                    "user": {
                        "ID": public_id,
                        "client_user_id": client_user_id,
                        "issuer": application.api_key_id,
                        "identifier": value,
                    },
                }
            )
        )
