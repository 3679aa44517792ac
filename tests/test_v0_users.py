"""Cotter group A over HTTP (reference/cotter-api.md §1.4, §1.5 A1-A12, §2.4, §4.3):
users, enrolment (with the bearer-token proof), the enrolled check, removal."""

from __future__ import annotations

import base64
import uuid
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from django.contrib.auth import get_user_model

from authdevice.flows.applications import create_application
from authdevice.flows.identities import add_identifier
from authdevice.flows.tokens import issue_token_set, refresh_token_set, verify_access_token
from authdevice.models import AuthEvent, Identifier, RefreshToken, TrustedDevice, UserIdentity
from tests.devicekit import Phone

pytestmark = pytest.mark.django_db

ZERO_UUID = "00000000-0000-0000-0000-000000000000"
USER_KEYS = {
    "ID",
    "client_user_id",
    "created_at",
    "updated_at",
    "update_at",
    "deleted_at",
    "issuer",
    "identifier",
    "identifiers",
    "enrolled",
    "default_method",
}
TOKEN_KEYS = {
    "access_token",
    "id_token",
    "refresh_token",
    "expires_in",
    "token_type",
    "auth_method",
}
# iOS decodes SubjectPublicKeyInfo as this fixed header + the 65-byte uncompressed point.
P256_SPKI_HEADER = bytes.fromhex("3059301306072A8648CE3D020106082A8648CE3D030107034200")
FIXED_SCALAR = 0xC0FFEE_1234_5678_9ABC_DEF0_1357_9BDF_2468_ACE0
# The iOS encoding of that key (base64 wrapped at 64 columns, trailing newline), pinned.
IOS_VECTOR = (
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEMmZz5VHlqYC4XUhQ5QrOmxdS6xK4\n"
    "+IX7zd0fPo9w8o8UPAKecUix9Is5ld9h+qRpWobOXJvXw3p3B6ct0bzfgw==\n"
)
ANDROID_VECTOR = (
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEMmZz5VHlqYC4XUhQ5QrOmxdS6xK4+IX7zd0fPo9w\n"
    "8o8UPAKecUix9Is5ld9h+qRpWobOXJvXw3p3B6ct0bzfgw==\n"
)


# --------------------------------------------------------------------------- helpers


def headers(app: Any, **extra: str) -> dict[str, str]:
    return {"HTTP_API_KEY_ID": app.api_key_id, **extra}


def bearer(identity: UserIdentity, app: Any) -> dict[str, str]:
    tokens = issue_token_set(identity=identity, application=app, auth_method="OTP")
    return {"HTTP_AUTHORIZATION": f"Bearer {tokens.access_token}"}


def enrol_body(phone: Phone, *, enrolled: bool = True, algorithm: Any = "") -> dict[str, Any]:
    return {
        "method": "TRUSTED_DEVICE",
        "enrolled": enrolled,
        "code": phone.public_key,
        "algorithm": phone.algorithm if algorithm == "" else algorithm,
        "device_name": "testdev 1.0",
        "device_type": "TestMaker",
    }


def enrol(
    api: Any,
    app: Any,
    identity: UserIdentity,
    phone: Phone,
    *,
    uid: str | None = None,
    oauth_token: bool = False,
    auth: bool = True,
    enrolled: bool = True,
) -> Any:
    uid = uid or identity.client_user_id
    query = "?oauth_token=true" if oauth_token else ""
    extra = bearer(identity, app) if auth else {}
    return api.put(
        f"/api/v0/user/{uid}{query}",
        enrol_body(phone, enrolled=enrolled),
        format="json",
        **headers(app, **extra),
    )


def cotter_error(response: Any, status: int, type_: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, (response.status_code, response.content[:400])
    assert response["Content-Type"].startswith("application/json")
    data = response.json()
    assert set(data) == {"msg", "type"} and data["msg"] and data["type"], data
    if type_ is not None:
        assert data["type"] == type_, data
    return data


def assert_user(data: dict[str, Any], identity: UserIdentity, app: Any) -> None:
    assert set(data) >= USER_KEYS, data
    assert data["ID"] == str(identity.public_id)
    assert data["client_user_id"] == identity.client_user_id
    assert data["issuer"] == app.api_key_id
    # iOS needs these non-null; the docs spell update_at (sic), so both are sent.
    for key in ("ID", "created_at", "issuer", "client_user_id"):
        assert isinstance(data[key], str) and data[key], key
    assert data["updated_at"] == data["update_at"]
    assert data["created_at"].endswith("Z")


def double_b64(key: str, *, style: str) -> str:
    raw = key.encode()
    if style == "rn":  # Buffer(pubKey).toString('base64') then +->-, /->_ (padding kept)
        return base64.b64encode(raw).decode().replace("+", "-").replace("/", "_")
    if style == "android":  # Base64.URL_SAFE | NO_WRAP
        return base64.urlsafe_b64encode(raw).decode()
    if style == "ios":  # url-safe, '=' stripped
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")
    if style == "flutter":  # standard alphabet, un-escaped in the query string
        return base64.b64encode(raw).decode()
    raise ValueError(style)


@pytest.fixture
def h(application):
    return headers(application)


@pytest.fixture
def legacy_app(db):
    app, secret = create_application(name="Legacy", allow_unauthenticated_enrolment=True)
    app.secret = secret
    return app


@pytest.fixture
def bob(db):
    user = get_user_model().objects.create_user(username="bob", email="bob@example.com")
    add_identifier(user, "EMAIL", "bob@example.com", verified=True)
    return user.authdevice_identity


# --------------------------------------------------------------------------- A1


def test_a1_create_user_by_identifier(api, application, h):
    response = api.post(
        "/api/v0/user/create?oauth_token=true",
        {"identifier": " New@Example.com "},
        format="json",
        **h,
    )
    assert response.status_code == 200, response.content
    data = response.json()
    identity = UserIdentity.objects.get(public_id=data["ID"])
    assert_user(data, identity, application)
    assert data["client_user_id"] == data["ID"]  # users created by identifier
    assert data["identifier"] == "new@example.com"
    assert data["enrolled"] == [] and data["default_method"] is None
    assert "oauth_token" not in data  # creating a user signs nobody in
    row = Identifier.objects.get(value="new@example.com")
    assert row.verified_at is None  # nobody proved they own it
    # Flutter matches this exact message.
    again = api.post("/api/v0/user/create", {"identifier": "new@example.com"}, format="json", **h)
    assert cotter_error(again, 409, "user_exists")["msg"] == "User already exists"


def test_a1_create_user_with_client_user_id_rn_and_ios_shapes(api, application, h):
    rn = api.post(
        "/api/v0/user/create",
        {"client_user_id": "cot-uid-1", "identifiers": ["rn@example.com"]},
        format="json",
        **h,
    )
    assert rn.status_code == 200, rn.content
    assert rn.json()["client_user_id"] == "cot-uid-1"
    assert rn.json()["identifier"] == "rn@example.com"
    ios = api.post(
        "/api/v0/user/create",
        {"client_user_id": "ios-user-7", "identifier": "+14155550123"},
        format="json",
        **h,
    )
    assert ios.status_code == 200, ios.content
    assert ios.json()["identifier"] == "+14155550123"
    # The client user id resolves in every endpoint that takes a user id.
    by_client_id = api.get("/api/v0/user/cot-uid-1", **h)
    assert by_client_id.json()["ID"] == rn.json()["ID"]
    taken = api.post(
        "/api/v0/user/create",
        {"client_user_id": "cot-uid-1", "identifiers": ["other@example.com"]},
        format="json",
        **h,
    )
    cotter_error(taken, 409, "user_exists")
    assert not Identifier.objects.filter(value="other@example.com").exists()


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"identifier": ""},
        {"identifier": "not an email or phone"},
        {"identifier": 42},
        {"identifiers": "a@example.com"},
        {"identifiers": [None]},
        {"client_user_id": "x"},
        {"client_user_id": ZERO_UUID, "identifier": "z@example.com"},
        {"client_user_id": {"a": 1}, "identifier": "z@example.com"},
        {"client_user_id": "x" * 201, "identifier": "z@example.com"},
    ],
)
def test_a1_bad_bodies_are_400(api, h, body):
    response = api.post("/api/v0/user/create", body, format="json", **h)
    cotter_error(response, 400)
    assert not UserIdentity.objects.exists()


def test_a1_respects_signup_switch(api, h, settings):
    settings.AUTHDEVICE_ALLOW_SIGNUP = False
    response = api.post("/api/v0/user/create", {"identifier": "n@example.com"}, format="json", **h)
    cotter_error(response, 403, "signup_closed")


# --------------------------------------------------------------------------- A2, A3, A4


def test_a2_user_by_identifier_and_zero_uuid_when_unknown(api, application, identity, h):
    known = api.get("/api/v0/user", {"identifier": "ALICE@example.com"}, **h)
    assert known.status_code == 200
    assert_user(known.json(), identity, application)
    assert known.json()["identifier"] == "alice@example.com"
    unknown = api.get("/api/v0/user", {"identifier": "nobody@example.com"}, **h)
    assert unknown.status_code == 200
    data = unknown.json()
    assert data["ID"] == ZERO_UUID
    assert set(data) >= USER_KEYS
    for key in ("ID", "created_at", "issuer", "client_user_id"):
        assert data[key] is not None, key  # iOS decodes them as non-optional
    assert api.get("/api/v0/user", **h).json()["ID"] == ZERO_UUID


def test_a1_a2_lookups_with_the_public_key_alone_are_limited_per_ip(
    api, application, identity, h, settings
):
    # Both answer whether an address has an account (security.md J03).
    from django.core.cache import cache

    cache.clear()
    settings.AUTHDEVICE_USER_LOOKUP_LIMIT_PER_IP = 3
    for i in range(3):
        assert api.get("/api/v0/user", {"identifier": f"u{i}@example.com"}, **h).status_code == 200
    blocked = api.get("/api/v0/user", {"identifier": "alice@example.com"}, **h)
    assert blocked.status_code == 429 and 0 < int(blocked["Retry-After"]) <= 300
    assert "alice" not in blocked.content.decode()
    created = api.post("/api/v0/user/create", {"identifier": "new@example.com"}, format="json", **h)
    assert created.status_code == 429
    assert not Identifier.objects.filter(value="new@example.com").exists()
    # Another address (IP) is not limited; a server with the secret key is not counted.
    other_ip = api.get(
        "/api/v0/user", {"identifier": "alice@example.com"}, REMOTE_ADDR="10.9.9.9", **h
    )
    assert other_ip.status_code == 200
    server = {**h, "HTTP_API_SECRET_KEY": application.secret}
    for _ in range(5):
        assert (
            api.get("/api/v0/user", {"identifier": "alice@example.com"}, **server).status_code
            == 200
        )
    wrong_secret = {**h, "HTTP_API_SECRET_KEY": "not-the-secret"}
    assert (
        api.get("/api/v0/user", {"identifier": "x@example.com"}, **wrong_secret).status_code == 429
    )
    cache.clear()


def test_a2_phone_whose_plus_arrived_as_a_space(api, application, user, h):
    add_identifier(user, "PHONE", "+14155550123")
    response = api.get("/api/v0/user?identifier=+14155550123", **h)  # '+' decodes to ' '
    assert response.json()["ID"] == str(user.authdevice_identity.public_id)


def test_a3_user_by_id_or_client_user_id(api, application, identity, h):
    for uid in (str(identity.public_id), identity.client_user_id):
        response = api.get(f"/api/v0/user/{uid}", **h)
        assert response.status_code == 200
        assert_user(response.json(), identity, application)
    cotter_error(api.get("/api/v0/user/no-such-user", **h), 404, "user_not_found")
    cotter_error(api.get(f"/api/v0/user/{uuid.uuid4()}", **h), 404, "user_not_found")


def test_a3_needs_a_known_api_key(api, identity):
    cotter_error(api.get(f"/api/v0/user/{identity.public_id}"), 401, "invalid_client")
    cotter_error(
        api.get(f"/api/v0/user/{identity.public_id}", HTTP_API_KEY_ID="nope"), 401, "invalid_client"
    )


def test_a4_user_list_needs_the_secret_key(api, application, identity, bob, h):
    cotter_error(api.get("/api/v0/user/list", **h), 401, "invalid_client")
    cotter_error(
        api.get("/api/v0/user/list", HTTP_API_SECRET_KEY="wrong", **h), 401, "invalid_client"
    )
    ok = api.get("/api/v0/user/list?page=0", HTTP_API_SECRET_KEY=application.secret, **h)
    assert ok.status_code == 200
    users = ok.json()
    assert [u["ID"] for u in users] == [str(bob.public_id), str(identity.public_id)]
    assert users[0]["identifier"] == "bob@example.com"
    for data in users:
        assert set(data) >= USER_KEYS
    empty = api.get("/api/v0/user/list?page=1", HTTP_API_SECRET_KEY=application.secret, **h)
    assert empty.json() == []
    for page in ("-1", "x", "1e3", "99999999999"):
        cotter_error(
            api.get(f"/api/v0/user/list?page={page}", HTTP_API_SECRET_KEY=application.secret, **h),
            400,
        )


def test_a4_pages_hold_fifty_users(api, application, h):
    model = get_user_model()
    for i in range(51):
        add_identifier(model.objects.create_user(username=f"u{i}"), "EMAIL", f"u{i}@example.com")
    first = api.get("/api/v0/user/list", HTTP_API_SECRET_KEY=application.secret, **h).json()
    second = api.get("/api/v0/user/list?page=1", HTTP_API_SECRET_KEY=application.secret, **h).json()
    assert len(first) == 50 and len(second) == 1
    assert second[0]["identifier"] == "u0@example.com"  # newest first


# --------------------------------------------------------------------------- A5, A6: enrolment


def test_a5_enrolment_with_bearer_token_returns_trusted_device_tokens(
    api, application, identity, h
):
    phone = Phone.new("rn")
    response = enrol(api, application, identity, phone, oauth_token=True)
    assert response.status_code == 200, response.content
    data = response.json()
    assert_user(data, identity, application)
    assert data["enrolled"] == ["TRUSTED_DEVICE"] and data["default_method"] == "TRUSTED_DEVICE"
    assert set(data["oauth_token"]) == TOKEN_KEYS
    assert data["oauth_token"]["auth_method"] == "TRUSTED_DEVICE"
    claims = verify_access_token(data["oauth_token"]["access_token"])
    assert claims["sub"] == str(identity.public_id) and claims["aud"] == application.api_key_id
    device = TrustedDevice.objects.get()
    assert (device.name, device.device_type, device.algorithm) == (
        "testdev 1.0",
        "TestMaker",
        "ED25519",
    )
    assert device.application == application
    # The tokens are tied to the device: removing it ends them.
    row = RefreshToken.objects.get(pk=int(data["oauth_token"]["refresh_token"].split(":")[0]))
    assert row.device_id == device.pk
    assert AuthEvent.objects.filter(event="DEVICE_ENROLLED", user=identity.user).count() == 1
    # Without ?oauth_token=true no tokens; re-enrolling the same key is idempotent.
    again = enrol(api, application, identity, phone)
    assert again.status_code == 200 and "oauth_token" not in again.json()
    assert TrustedDevice.objects.count() == 1


def test_a6_enrolment_by_cotter_user_id(api, application, identity, h):
    phone = Phone.new("rn")
    response = api.put(
        f"/api/v0/user/methods?cotter_user_id={identity.public_id}&oauth_token=true",
        enrol_body(phone),
        format="json",
        **headers(application, **bearer(identity, application)),
    )
    assert response.status_code == 200, response.content
    assert response.json()["oauth_token"]["auth_method"] == "TRUSTED_DEVICE"
    assert TrustedDevice.objects.filter(user=identity.user).count() == 1
    cotter_error(api.put("/api/v0/user/methods", enrol_body(phone), format="json", **h), 400)


def test_enrolment_without_proof_is_refused(api, application, other_application, identity, bob):
    phone = Phone.new("rn")
    url = f"/api/v0/user/{identity.client_user_id}?oauth_token=true"
    body = enrol_body(phone)
    missing = api.put(url, body, format="json", **headers(application))
    cotter_error(missing, 401, "invalid_token")
    assert missing["WWW-Authenticate"].startswith("Bearer")
    for value in ("Bearer", "Bearer x.y.z", "Basic abc", "bearer  "):
        cotter_error(
            api.put(url, body, format="json", **headers(application, HTTP_AUTHORIZATION=value)),
            401,
        )
    # Another user's token: forbidden.
    cotter_error(
        api.put(url, body, format="json", **headers(application, **bearer(bob, application))),
        403,
        "forbidden",
    )
    # The same user's token, issued to another application: refused.
    cotter_error(
        api.put(
            url, body, format="json", **headers(application, **bearer(identity, other_application))
        ),
        401,
    )
    # An ID token is not an access token.
    id_token = issue_token_set(identity=identity, application=application, auth_method="OTP")
    cotter_error(
        api.put(
            url,
            body,
            format="json",
            **headers(application, HTTP_AUTHORIZATION=f"Bearer {id_token.id_token}"),
        ),
        401,
    )
    assert not TrustedDevice.objects.exists()
    assert not AuthEvent.objects.filter(event="DEVICE_ENROLLED").exists()


def test_legacy_application_enrols_without_proof(api, legacy_app, identity, bob):
    phone = Phone.new("rn")
    response = enrol(api, legacy_app, identity, phone, auth=False, oauth_token=True)
    assert response.status_code == 200, response.content
    assert response.json()["oauth_token"]["auth_method"] == "TRUSTED_DEVICE"
    # A token that is sent is still checked.
    wrong = api.put(
        f"/api/v0/user/{identity.client_user_id}",
        enrol_body(Phone.new("rn")),
        format="json",
        **headers(legacy_app, **bearer(bob, legacy_app)),
    )
    cotter_error(wrong, 403)
    assert TrustedDevice.objects.count() == 1


@pytest.mark.parametrize("kind", ["rn", "ios", "android", "rsa"])
def test_enrol_every_sdk_key_encoding(api, application, identity, kind):
    phone = Phone.new(kind)
    response = enrol(api, application, identity, phone)
    assert response.status_code == 200, response.content
    device = TrustedDevice.objects.get()
    assert device.algorithm == phone.algorithm and "\n" not in device.public_key


def test_ios_and_android_p256_vectors_are_byte_exact(api, application, identity):
    """Reference §2.1: SPKI = fixed header + 65-byte point; iOS wraps base64 at 64 columns,
    Android at 76, both with a trailing newline; enrolment as iOS ("EC") then the enrolled
    check with either spelling finds the same device."""
    private = ec.derive_private_key(FIXED_SCALAR, ec.SECP256R1())
    point = private.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    spki = base64.b64encode(P256_SPKI_HEADER + point).decode()
    assert "\n".join(spki[i : i + 64] for i in range(0, len(spki), 64)) + "\n" == IOS_VECTOR
    assert "\n".join(spki[i : i + 76] for i in range(0, len(spki), 76)) + "\n" == ANDROID_VECTOR
    ios, android = Phone("ios", private), Phone("android", private)
    assert (ios.public_key, android.public_key) == (IOS_VECTOR, ANDROID_VECTOR)
    assert enrol(api, application, identity, ios).status_code == 200
    assert TrustedDevice.objects.get().public_key == spki
    for phone, style in ((ios, "ios"), (android, "android")):
        enc = double_b64(phone.public_key, style=style)
        url = f"/api/v0/user/enrolled/{identity.client_user_id}/TRUSTED_DEVICE/{enc}"
        assert api.get(url, **headers(application)).json() == {
            "enrolled": True,
            "method": "TRUSTED_DEVICE",
        }
    # Android's spelling of the same key is the same device (no second row, idempotent).
    assert enrol(api, application, identity, android).status_code == 200
    assert TrustedDevice.objects.count() == 1


def _spki_b64(key: Any) -> str:
    return base64.b64encode(
        key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    ).decode()


def _off_curve_p256() -> str:
    point = bytearray(
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    )
    point[-1] ^= 1
    return base64.b64encode(P256_SPKI_HEADER + bytes(point)).decode()


WEAK_KEYS = {
    "ed25519-31-bytes": (base64.b64encode(b"\x01" * 31).decode(), "ED25519"),
    "ed25519-33-bytes": (base64.b64encode(b"\x01" * 33).decode(), "ED25519"),
    "ed25519-identity": (base64.b64encode(bytes([1]) + bytes(31)).decode(), "ED25519"),
    "ed25519-small-order": (
        base64.b64encode(
            bytes.fromhex("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a")
        ).decode(),
        "ED25519",
    ),
    "p256-off-curve": (_off_curve_p256(), "EC"),
    "p256-infinity": (
        base64.b64encode(
            bytes.fromhex("3019301306072A8648CE3D020106082A8648CE3D030107030200")
        ).decode(),
        "EC",
    ),
    "p384": (_spki_b64(ec.generate_private_key(ec.SECP384R1()).public_key()), "EC"),
    "rsa-1024": (
        _spki_b64(rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key()),
        "RSA",
    ),
    "ed25519-as-ec": (
        base64.b64encode(
            ed25519.Ed25519PrivateKey.generate()
            .public_key()
            .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        ).decode(),
        "EC",
    ),
    "not-base64": ("!!!!", "ED25519"),
    "unknown-algorithm": (Phone.new("rn").public_key, "DSA"),
}


@pytest.mark.parametrize("name", sorted(WEAK_KEYS))
def test_weak_or_malformed_keys_are_refused(api, application, identity, name):
    key, algorithm = WEAK_KEYS[name]
    body = {"method": "TRUSTED_DEVICE", "enrolled": True, "code": key, "algorithm": algorithm}
    response = api.put(
        f"/api/v0/user/{identity.client_user_id}",
        body,
        format="json",
        **headers(application, **bearer(identity, application)),
    )
    cotter_error(response, 400, "invalid_public_key")
    assert not TrustedDevice.objects.exists()


def test_same_key_for_another_user_is_409(api, application, identity, bob):
    phone = Phone.new("ios")
    assert enrol(api, application, identity, phone).status_code == 200
    cotter_error(enrol(api, application, bob, phone), 409, "public_key_taken")
    assert TrustedDevice.objects.get().user == identity.user


@pytest.mark.parametrize(
    "patch",
    [
        {"method": "PIN"},
        {"method": "BIOMETRIC"},
        {"method": None},
        {"enrolled": "true"},
        {"enrolled": None},
        {"code": ""},
        {"code": None},
        {"code": ["a"]},
        {"device_name": {"a": 1}},
        {"device_type": ["x"]},
        {"algorithm": 7},
    ],
)
def test_a5_bad_bodies_are_400(api, application, identity, patch):
    body = {**enrol_body(Phone.new("rn")), **patch}
    response = api.put(
        f"/api/v0/user/{identity.client_user_id}",
        body,
        format="json",
        **headers(application, **bearer(identity, application)),
    )
    cotter_error(response, 400)
    assert not TrustedDevice.objects.exists()


def test_a5_unknown_user_is_404(api, application, identity):
    response = api.put(
        "/api/v0/user/nobody",
        enrol_body(Phone.new("rn")),
        format="json",
        **headers(application, **bearer(identity, application)),
    )
    cotter_error(response, 404, "user_not_found")


# --------------------------------------------------------------------------- removal


def test_removal_revokes_only_the_matching_key(api, application, identity, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    keep, drop = Phone.new("rn"), Phone.new("ios")
    enrol(api, application, identity, keep)
    tokens = enrol(api, application, identity, drop, oauth_token=True).json()["oauth_token"]
    # The real RN removal body: algorithm null.
    body = {**enrol_body(drop, enrolled=False), "algorithm": None}
    url = f"/api/v0/user/{identity.client_user_id}"
    cotter_error(api.put(url, body, format="json", **headers(application)), 401)
    response = api.put(
        url, body, format="json", **headers(application, **bearer(identity, application))
    )
    assert response.status_code == 200, response.content
    assert response.json()["enrolled"] == ["TRUSTED_DEVICE"]  # the other device remains
    dropped = TrustedDevice.objects.get(fingerprint__isnull=False, algorithm="EC")
    assert dropped.revoked_at is not None
    assert dropped.revoked_by == f"user:{identity.public_id}"
    assert TrustedDevice.objects.active().get().algorithm == "ED25519"
    # Its sessions end at once.
    from authdevice.flows.errors import InvalidGrant

    with pytest.raises(InvalidGrant):
        refresh_token_set(tokens["refresh_token"], api_key_id=application.api_key_id)
    assert AuthEvent.objects.filter(event="DEVICE_REMOVED").count() == 1
    # Removing it again, or a key that was never enrolled, changes nothing.
    again = api.put(
        url, body, format="json", **headers(application, **bearer(identity, application))
    )
    assert again.status_code == 200
    stranger = {**enrol_body(Phone.new("rn"), enrolled=False)}
    assert (
        api.put(
            url, stranger, format="json", **headers(application, **bearer(identity, application))
        ).status_code
        == 200
    )
    assert AuthEvent.objects.filter(event="DEVICE_REMOVED").count() == 1
    garbage = {**body, "code": "not a key"}
    cotter_error(
        api.put(
            url, garbage, format="json", **headers(application, **bearer(identity, application))
        ),
        400,
    )


def test_legacy_removal_is_recorded_as_the_api_key(api, legacy_app, identity):
    phone = Phone.new("rn")
    enrol(api, legacy_app, identity, phone, auth=False)
    response = enrol(api, legacy_app, identity, phone, auth=False, enrolled=False)
    assert response.status_code == 200
    assert response.json()["enrolled"] == []
    assert TrustedDevice.objects.get().revoked_by == f"api_key:{legacy_app.api_key_id}"


# --------------------------------------------------------------------------- A7, A8, A9


@pytest.mark.parametrize("kind", ["rn", "ios", "android"])
@pytest.mark.parametrize("style", ["rn", "android", "ios", "flutter"])
def test_a7_enrolled_check_double_base64_every_spelling(api, application, identity, kind, style):
    phone = Phone.new(kind)
    enrol(api, application, identity, phone)
    uid = identity.client_user_id
    enc = double_b64(phone.public_key, style=style)
    url = f"/api/v0/user/enrolled/{uid}/TRUSTED_DEVICE/{enc}"
    assert api.get(url, **headers(application)).json() == {
        "enrolled": True,
        "method": "TRUSTED_DEVICE",
    }
    other = double_b64(Phone.new(kind).public_key, style=style)
    url = f"/api/v0/user/enrolled/{uid}/TRUSTED_DEVICE/{other}"
    assert api.get(url, **headers(application)).json() == {
        "enrolled": False,
        "method": "TRUSTED_DEVICE",
    }


def test_a7_reference_example_path(api, application, identity):
    """The RN path segment of reference §1.8 decodes to the enrolled key."""
    key = "b4+wX7MIamjKzeDt3dDci0IPvW/eBOhHrs8HncSSPVg="
    assert (
        double_b64(key, style="rn")
        == "YjQrd1g3TUlhbWpLemVEdDNkRGNpMElQdlcvZUJPaEhyczhIbmNTU1BWZz0="
    )
    body = {"method": "TRUSTED_DEVICE", "enrolled": True, "code": key, "algorithm": "ED25519"}
    put = api.put(
        f"/api/v0/user/{identity.client_user_id}",
        body,
        format="json",
        **headers(application, **bearer(identity, application)),
    )
    assert put.status_code == 200, put.content
    url = (
        f"/api/v0/user/enrolled/{identity.client_user_id}/TRUSTED_DEVICE/"
        "YjQrd1g3TUlhbWpLemVEdDNkRGNpMElQdlcvZUJPaEhyczhIbmNTU1BWZz0="
    )
    assert api.get(url, **headers(application)).json()["enrolled"] is True


def test_a8_flutter_query_with_plus_as_space(api, application, identity):
    """Flutter puts the standard alphabet in the query unescaped, so a '+' would arrive as a
    space. Base64 of a base64 string never holds '+' or '/' (its bytes are ASCII letters,
    digits, '+', '/', '=', newline), so that case only arises for a key sent single-encoded;
    both spellings work."""
    for _ in range(20):
        assert not set(double_b64(Phone.new("ios").public_key, style="flutter")) & {"+", "/"}
    phone = Phone.new("rn")
    while "+" not in phone.public_key:
        phone = Phone.new("rn")
    enrol(api, application, identity, phone)
    base = f"/api/v0/user/methods?cotter_user_id={identity.public_id}&method=TRUSTED_DEVICE"
    for enc in (double_b64(phone.public_key, style="flutter"), phone.public_key):
        url = f"{base}&public_key={enc}"  # unescaped: '+' becomes ' ' in the QueryDict
        assert api.get(url, **headers(application)).json() == {
            "enrolled": True,
            "method": "TRUSTED_DEVICE",
        }
    # Without a key: does the user have any trusted device.
    url = f"/api/v0/user/methods?cotter_user_id={identity.public_id}&method=TRUSTED_DEVICE"
    assert api.get(url, **headers(application)).json()["enrolled"] is True
    cotter_error(
        api.get(
            f"/api/v0/user/methods?cotter_user_id={identity.public_id}", **headers(application)
        ),
        400,
    )


def test_a7_a9_methods_echo_and_any_device(api, application, identity, bob):
    h = headers(application)
    uid = identity.client_user_id
    assert api.get(f"/api/v0/user/enrolled/{uid}/TRUSTED_DEVICE", **h).json() == {
        "enrolled": False,
        "method": "TRUSTED_DEVICE",
    }
    phone = Phone.new("rn")
    enrol(api, application, identity, phone)
    assert api.get(f"/api/v0/user/enrolled/{uid}/TRUSTED_DEVICE", **h).json()["enrolled"]
    # Methods this server does not offer are "not enrolled", echoing the method.
    assert api.get(f"/api/v0/user/enrolled/{uid}/BIOMETRIC", **h).json() == {
        "enrolled": False,
        "method": "BIOMETRIC",
    }
    any_url = f"/api/v0/user/enrolled/any/{identity.public_id}/TRUSTED_DEVICE"
    assert api.get(any_url, **h).json() == {"enrolled": True, "method": "TRUSTED_DEVICE"}
    assert api.get(f"/api/v0/user/enrolled/any/{bob.public_id}/TRUSTED_DEVICE", **h).json() == {
        "enrolled": False,
        "method": "TRUSTED_DEVICE",
    }
    # Another user's key is not "enrolled" for this user.
    enc = double_b64(phone.public_key, style="rn")
    assert not api.get(
        f"/api/v0/user/enrolled/{bob.client_user_id}/TRUSTED_DEVICE/{enc}", **h
    ).json()["enrolled"]
    cotter_error(api.get("/api/v0/user/enrolled/nobody/TRUSTED_DEVICE", **h), 404)
    # Garbage in the key segment is simply not enrolled.
    for junk in ("%00", "a", "____", "x" * 9000):
        response = api.get(f"/api/v0/user/enrolled/{uid}/TRUSTED_DEVICE/{junk}", **h)
        assert response.status_code == 200 and response.json()["enrolled"] is False


def test_a7_revoked_key_is_not_enrolled(api, application, identity):
    phone = Phone.new("rn")
    enrol(api, application, identity, phone)
    enrol(api, application, identity, phone, enrolled=False)
    enc = double_b64(phone.public_key, style="rn")
    url = f"/api/v0/user/enrolled/{identity.client_user_id}/TRUSTED_DEVICE/{enc}"
    assert api.get(url, **headers(application)).json()["enrolled"] is False


# --------------------------------------------------------------------------- A10-A12


@pytest.mark.parametrize("action", ["start", "request", "verify", "respond"])
def test_pin_reset_is_not_supported(api, application, identity, action):
    response = api.post(
        f"/api/v0/user/reset/{action}/{identity.public_id}",
        {"method": "PIN"},
        format="json",
        **headers(application),
    )
    cotter_error(response, 404, "not_supported")
