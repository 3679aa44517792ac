from __future__ import annotations

# Bad input on /api/v0: always a clear 4xx JSON ``{"msg": ..., "type": ...}``, never a 500.
import json
import random
import uuid
from urllib.parse import urlencode

import pytest
from django.test import Client

from authdevice.models import AuthEvent, RefreshToken


@pytest.fixture
def client():
    # Exceptions are rendered as responses, so a 500 shows up as a status, not a raise.
    return Client(raise_request_exception=False)


def post(client, url: str, body: bytes | str, *, content_type: str = "application/json", **extra):
    return client.generic("POST", url, body, content_type=content_type, **extra)


def assert_cotter_error(response, status: int | None = None, type_: str | None = None) -> dict:
    assert 400 <= response.status_code < 500, (response.status_code, response.content[:300])
    if status is not None:
        assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    data = response.json()
    assert isinstance(data, dict)
    assert set(data) == {"msg", "type"}, data
    assert isinstance(data["msg"], str) and data["msg"]
    assert isinstance(data["type"], str) and data["type"]
    if type_ is not None:
        assert data["type"] == type_, data
    return data


@pytest.fixture
def url(application):
    return f"/api/v0/token/{application.api_key_id}"


# --------------------------------------------------------------------------- body shape


@pytest.mark.parametrize(
    "body",
    [
        b"{",
        b"{'grant_type': 'refresh_token'}",
        b'{"grant_type": "refresh_token",}',
        b"\xff\xfe\x00{",
        b"nul\x00l",
        b'{"a": NaN}',
        b'{"a": Infinity}',
        b"[" * 100_000,
        b'{"a":' * 50_000,
    ],
    ids=[
        "truncated",
        "single-quotes",
        "trailing-comma",
        "not-utf8",
        "nul",
        "nan",
        "infinity",
        "deep-array",
        "deep-object",
    ],
)
def test_malformed_json(client, url, body):
    assert_cotter_error(post(client, url, body), 400, "invalid_json")


@pytest.mark.parametrize(
    "body",
    ['[{"grant_type": "refresh_token"}]', "[]", '"refresh_token"', "42", "null", "true"],
)
def test_json_that_is_not_an_object(client, url, body):
    assert_cotter_error(post(client, url, body), 400)


def test_empty_body(client, url):
    assert_cotter_error(post(client, url, b""), 400, "unsupported_grant_type")


@pytest.mark.parametrize(
    "value",
    [
        5,
        0,
        1.5,
        ["1:abc"],
        {"id": 1, "secret": "abc"},
        None,
        True,
        "",
        " ",
        "x" * 10_000,
        "1:" + "a" * 10_000,
        "9" * 5000 + ":abc",
        "1:\x00",
        "\u0661:abc",  # Arabic-Indic digit one: isdigit() but not ASCII
        "1e5:abc",
        "+1:abc",
    ],
    ids=repr,
)
def test_wrong_refresh_token_types_and_sizes(client, url, token_set, value):
    body = json.dumps({"grant_type": "refresh_token", "refresh_token": value})
    assert_cotter_error(post(client, url, body), 400, "invalid_grant")
    assert not AuthEvent.objects.filter(event=AuthEvent.Kind.REFRESH_TOKEN_REUSED).exists()


@pytest.mark.parametrize(
    "body",
    [
        {"refresh_token": "1:abc"},
        {"grant_type": "authorization_code", "refresh_token": "1:abc"},
        {"grant_type": "REFRESH_TOKEN", "refresh_token": "1:abc"},
        {"grant_type": "refresh_token ", "refresh_token": "1:abc"},
        {"grant_type": ["refresh_token"], "refresh_token": "1:abc"},
        {"grant_type": None},
        {"grant_type": 1},
        {"grant_type": "x" * 10_000},
    ],
    ids=repr,
)
def test_missing_or_wrong_grant_type(client, url, body):
    assert_cotter_error(post(client, url, json.dumps(body)), 400, "unsupported_grant_type")


def test_form_encoded_refresh_works_and_bad_form_fails_cleanly(client, url, token_set):
    body = urlencode({"grant_type": "refresh_token", "refresh_token": token_set.refresh_token})
    response = post(client, url, body, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 200
    bad = urlencode({"grant_type": "refresh_token", "refresh_token": "x" * 10_000})
    response = post(client, url, bad, content_type="application/x-www-form-urlencoded")
    assert_cotter_error(response, 400, "invalid_grant")


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/xml", "multipart/form-data; boundary=x", "image/png"],
)
def test_unsupported_media_type(client, url, content_type):
    body = json.dumps({"grant_type": "refresh_token", "refresh_token": "1:abc"})
    assert_cotter_error(post(client, url, body, content_type=content_type), 415)


# --------------------------------------------------------------------------- API keys


def test_unknown_api_key(client, db):
    body = json.dumps({"grant_type": "refresh_token", "refresh_token": "1:abc"})
    for key in [str(uuid.uuid4()), "nope", "x" * 65, "x" * 10_000, "%00", "%20", "..%5C"]:
        response = post(client, f"/api/v0/token/{key}", body)
        assert_cotter_error(response, 401, "invalid_client")
    response = post(client, "/api/v0/token", body, HTTP_API_KEY_ID=str(uuid.uuid4()))
    assert_cotter_error(response, 401, "invalid_client")
    response = post(client, "/api/v0/token", body)  # no header at all
    assert_cotter_error(response, 401, "invalid_client")
    # An encoded slash makes it another path: not found, still JSON.
    assert_cotter_error(post(client, "/api/v0/token/..%2F..%2Fadmin", body), 404, "not_found")


@pytest.mark.parametrize("key", ["\x00", "a\x00b", "\x01\x02", "\u202e"])
def test_api_key_with_control_characters(client, application, key):
    body = json.dumps({"grant_type": "refresh_token", "refresh_token": "1:abc"})
    response = post(client, "/api/v0/token", body, HTTP_API_KEY_ID=key)
    assert_cotter_error(response, 401, "invalid_client")
    response = post(client, "/api/v0/token/revoke", body, HTTP_API_KEY_ID=key)
    assert_cotter_error(response, 401, "invalid_client")


def test_inactive_application_key(client, application):
    application.is_active = False
    application.save()
    body = json.dumps({"grant_type": "refresh_token", "refresh_token": "1:abc"})
    response = post(client, f"/api/v0/token/{application.api_key_id}", body)
    assert_cotter_error(response, 401, "invalid_client")


def test_header_and_path_key_mismatch(client, application, other_application, token_set):
    body = json.dumps({"grant_type": "refresh_token", "refresh_token": token_set.refresh_token})
    response = post(
        client,
        f"/api/v0/token/{application.api_key_id}",
        body,
        HTTP_API_KEY_ID=other_application.api_key_id,
    )
    assert_cotter_error(response, 401, "invalid_client")
    # The token was not spent by the rejected request.
    row = RefreshToken.objects.get(pk=int(token_set.refresh_token.split(":")[0]))
    assert row.used_at is None
    # Matching header and path is fine.
    response = post(
        client,
        f"/api/v0/token/{application.api_key_id}",
        body,
        HTTP_API_KEY_ID=application.api_key_id,
    )
    assert response.status_code == 200


# --------------------------------------------------------------------------- routing


@pytest.mark.parametrize(
    "path",
    [
        "/api/v0/",
        "/api/v0/nope",
        "/api/v0/token/",
        "/api/v0/token/a/b",
        "/api/v0/user/list/extra",
        "/api/v0/../admin/",
        "/api/v0/%00",
        "/api/v0/" + "a" * 5000,
    ],
)
@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "DELETE"])
def test_unknown_paths(client, db, path, method):
    response = client.generic(method, path, b"{}", content_type="application/json")
    data = assert_cotter_error(response, 404, "not_found")
    assert data["msg"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v0/token"),
        ("PUT", "/api/v0/token"),
        ("PATCH", "/api/v0/token/{key}"),
        ("GET", "/api/v0/token/{key}"),
        ("GET", "/api/v0/token/revoke"),
        ("DELETE", "/api/v0/token/revoke"),
        ("POST", "/api/v0/token/jwks"),
        ("DELETE", "/api/v0/token/jwks"),
    ],
)
def test_wrong_methods(client, application, method, path):
    url = path.format(key=application.api_key_id)
    response = client.generic(
        method, url, b"{}", content_type="application/json", HTTP_API_KEY_ID=application.api_key_id
    )
    assert_cotter_error(response, 405)
    assert response["Allow"]


# --------------------------------------------------------------------------- fuzz


def test_fuzz_random_bodies(client, application, token_set):
    rng = random.Random(20240601)
    urls = [
        f"/api/v0/token/{application.api_key_id}",
        "/api/v0/token",
        "/api/v0/token/revoke",
    ]
    content_types = [
        "application/json",
        "application/x-www-form-urlencoded",
        "application/json; charset=latin-1",
        "application/json; charset=utf-16",
        "text/plain",
    ]
    seeds = [
        b'{"grant_type":"refresh_token","refresh_token":"',
        b'{"token":',
        b"grant_type=refresh_token&refresh_token=",
        b"[",
        b"",
    ]
    statuses = []
    for i in range(50):
        body = rng.choice(seeds) + bytes(rng.randrange(256) for _ in range(rng.randrange(0, 400)))
        if i % 5 == 0:
            body = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 3000)))
        response = client.generic(
            "POST",
            urls[i % len(urls)],
            body,
            content_type=content_types[i % len(content_types)],
            HTTP_API_KEY_ID=application.api_key_id,
        )
        assert_cotter_error(response)
        statuses.append(response.status_code)
    assert len(statuses) == 50
    # Nothing was spent or revoked by the noise.
    row = RefreshToken.objects.get(pk=int(token_set.refresh_token.split(":")[0]))
    assert row.used_at is None and row.revoked_at is None


def test_fuzz_random_json_values(client, application, token_set):
    rng = random.Random(7)
    atoms = [None, True, False, 0, -1, 2**70, 1.5, "", "refresh_token", "1:x", "\x00", "é" * 50]

    def value(depth: int = 0):
        kind = rng.randrange(4 if depth < 3 else 1)
        if kind == 0:
            return rng.choice(atoms)
        if kind == 1:
            return [value(depth + 1) for _ in range(rng.randrange(3))]
        if kind == 2:
            return {rng.choice(["grant_type", "refresh_token", "token", "x"]): value(depth + 1)}
        return "".join(chr(rng.randrange(1, 0x2FFF)) for _ in range(rng.randrange(20)))

    for i in range(50):
        body = {
            "grant_type": value() if i % 3 else "refresh_token",
            "refresh_token": value(),
            "token": value(),
            "client_id": value(),
        }
        for url in (f"/api/v0/token/{application.api_key_id}", "/api/v0/token/revoke"):
            response = post(client, url, json.dumps(body), HTTP_API_KEY_ID=application.api_key_id)
            if url.endswith("revoke") and isinstance(body["token"], str) and body["token"]:
                assert response.status_code == 200
                continue
            assert_cotter_error(response)
    row = RefreshToken.objects.get(pk=int(token_set.refresh_token.split(":")[0]))
    assert row.used_at is None and row.revoked_at is None
