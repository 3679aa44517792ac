from __future__ import annotations

# JWT issuance and validation (security.md section F, vectors V6, V7, V9).
#
# Every forged token is built here by hand with real keys (ours, read from the database
# through the key ring, or fresh attacker keys) and presented both to the example site's
# ``GET /demo/api/me`` (DRF ``AccessTokenAuthentication``) and to ``verify_access_token``.
# Each family of forgeries has a positive control built the same way, so a helper bug cannot
# make the rejections pass vacuously.
import base64
import hashlib
import hmac
import io
import json
import socket
import time
import uuid
from datetime import UTC, datetime, timedelta

import jwt as pyjwt
import pytest
import time_machine
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client
from jose import jwt as jose_jwt
from jose.exceptions import JWTClaimsError

from authdevice.conf import app_settings
from authdevice.crypto import jwt as jwtcrypto
from authdevice.crypto import keys as keycrypto
from authdevice.crypto.keyprovider import CachingKeyProvider
from authdevice.flows import applications as app_flows
from authdevice.flows import tokens as token_flows
from authdevice.flows.errors import InvalidToken, SigningUnavailable
from authdevice.flows.keys import keyring, revoke_signing_key, rotate_signing_key
from authdevice.models import RefreshToken, SigningKey

ME = "/demo/api/me"
JWKS_URLS = ["/api/v0/token/jwks", "/.well-known/jwks.json"]
P256_N = int("FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551", 16)


# --------------------------------------------------------------------------- helpers


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64u(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def b64u_json(obj: object) -> str:
    return b64u(json.dumps(obj, separators=(",", ":")).encode())


def header_of(token: str) -> dict:
    return json.loads(unb64u(token.split(".")[0]))


def payload_of(token: str) -> dict:
    return json.loads(unb64u(token.split(".")[1]))


def raw_rs(der: bytes) -> bytes:
    r, s = decode_dss_signature(der)
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def es256(header: dict, claims: dict, private_key: ec.EllipticCurvePrivateKey) -> str:
    """A JWS signed by hand (independent of the app's signer), raw R||S as RFC 7518 3.4."""
    signing_input = f"{b64u_json(header)}.{b64u_json(claims)}"
    der = private_key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
    return f"{signing_input}.{b64u(raw_rs(der))}"


def hs256(header: dict, claims: dict, secret: bytes) -> str:
    signing_input = f"{b64u_json(header)}.{b64u_json(claims)}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64u(mac)}"


def with_signature(token: str, signature: bytes) -> str:
    head, body, _ = token.split(".")
    return f"{head}.{body}.{b64u(signature)}"


def at_header(kid: str, **extra: object) -> dict:
    return {"alg": "ES256", "kid": kid, "typ": "at+jwt", **extra}


def access_claims(identity, application, *, now: int | None = None, **overrides) -> dict:
    """The claims our server puts in an access token, valid now."""
    now = int(time.time()) if now is None else now
    claims = {
        "iss": app_settings.issuer,
        "aud": application.api_key_id,
        "sub": str(identity.public_id),
        "iat": now,
        "nbf": now,
        "exp": now + 3600,
        "jti": str(uuid.uuid4()),
        "client_user_id": identity.client_user_id,
        "identifier": "alice@example.com",
        "authentication_method": "OTP",
        "amr": ["otp"],
        "auth_time": now,
        "type": token_flows.ACCESS_TOKEN_TYPE,
        "scope": "access",
        "sid": str(uuid.uuid4()),
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not Ellipsis}


def me(api, token: str):
    return api.get(ME, HTTP_AUTHORIZATION=f"Bearer {token}")


def assert_rejected(api, token: str) -> None:
    """401 at the site's API with DRF's normal error body, and InvalidToken from the helper."""
    response = me(api, token)
    assert response.status_code == 401, response.content
    assert response.json() == {"detail": "Invalid access token."}
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'
    with pytest.raises(InvalidToken):
        token_flows.verify_access_token(token)


def assert_accepted(api, token: str, identity) -> None:
    response = me(api, token)
    assert response.status_code == 200, response.content
    assert response.json()["sub"] == str(identity.public_id)
    assert token_flows.verify_access_token(token)["sub"] == str(identity.public_id)


def jwks(api) -> dict:
    response = api.get("/.well-known/jwks.json")
    assert response.status_code == 200
    return response.json()


def jwks_kids(api) -> list[str]:
    return [k["kid"] for k in jwks(api)["keys"]]


def current_private_key(kid: str) -> ec.EllipticCurvePrivateKey:
    row = SigningKey.objects.get(kid=kid)
    return keycrypto.decrypt_private_key(row.private_key_encrypted, row.kid)


class MonotonicClock:
    """Moves ``time.monotonic`` (the caches' clock, which time-machine leaves alone)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def advance(self, seconds: float) -> None:
        self.offset += seconds


# --------------------------------------------------------------------------- fixtures


@pytest.fixture
def signing(token_set):
    """``(kid, private key)`` of the key signing now (the token_set fixture created it)."""
    kid = header_of(token_set.access_token)["kid"]
    return kid, current_private_key(kid)


@pytest.fixture
def good(identity, application, signing):
    """A factory of tokens signed with our real key; ``good()`` is a valid access token."""
    kid, key = signing

    def make(header: dict | None = None, **claim_overrides) -> str:
        return es256(
            header if header is not None else at_header(kid),
            access_claims(identity, application, **claim_overrides),
            key,
        )

    return make


@pytest.fixture
def warm(api, token_set, identity):
    """One verified request: key and audience caches are loaded."""
    assert_accepted(api, token_set.access_token, identity)


@pytest.fixture
def mono(monkeypatch):
    clock = MonotonicClock()
    real = time.monotonic
    monkeypatch.setattr(time, "monotonic", lambda: real() + clock.offset)
    return clock


@pytest.fixture
def no_network(monkeypatch):
    """Every outbound connection attempt (or name lookup) is recorded and refused."""
    attempts: list[object] = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", lambda self, *a: refuse(*a))
    monkeypatch.setattr(socket.socket, "connect_ex", lambda self, *a: refuse(*a))
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    return attempts


@pytest.fixture
def attacker_key():
    return ec.generate_private_key(ec.SECP256R1())


# --------------------------------------------------------------------------- controls


def test_control_hand_signed_token_with_our_key_is_accepted(api, good, identity):
    assert_accepted(api, good(), identity)


def test_control_issued_access_token_is_accepted(api, token_set, identity):
    assert_accepted(api, token_set.access_token, identity)


def test_no_token_is_401_and_garbage_bearer_is_401(api, db):
    assert api.get(ME).status_code == 401
    for value in ["Bearer", "Bearer a b", "Bearer x.y.z", "Bearer ..", "Bearer " + "a" * 9000]:
        response = api.get(ME, HTTP_AUTHORIZATION=value)
        assert response.status_code == 401, value


@pytest.mark.parametrize("part", ["header", "payload"])
def test_deeply_nested_json_in_a_token_is_401_not_500(api, db, part):
    # 5,000 nested brackets fit under the 8 KB token limit and exceed Python's recursion
    # limit in json.loads: refused as malformed, before any signature check.
    nested = b64u(b"[" * 5000)
    header = nested if part == "header" else b64u_json({"alg": "ES256", "typ": "at+jwt"})
    payload = nested if part == "payload" else b64u_json({})
    token = f"{header}.{payload}.{b64u(b'x' * 64)}"
    assert len(token) < 8192
    assert api.get(ME, HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 401


def test_non_ascii_bearer_is_401(api, db):
    response = api.get(ME, HTTP_AUTHORIZATION="Bearer \u00e9t\u00e9.a.b".encode().decode("latin-1"))
    assert response.status_code == 401


# --------------------------------------------------------------------------- F01


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
@pytest.mark.parametrize("typ", ["at+jwt", "JWT"])
def test_f01_alg_none_rejected(api, signing, identity, application, alg, typ):
    kid, _ = signing
    claims = access_claims(identity, application)
    unsigned = f"{b64u_json({'alg': alg, 'typ': typ, 'kid': kid})}.{b64u_json(claims)}."
    assert_rejected(api, unsigned)
    # Also with a junk signature and without a kid.
    assert_rejected(api, unsigned + "AAAA")
    assert_rejected(api, f"{b64u_json({'alg': alg, 'typ': typ})}.{b64u_json(claims)}.")


def _public_secrets(kid: str, api) -> dict[str, bytes]:
    public = keycrypto.public_key_from_jwk(SigningKey.objects.get(kid=kid).public_jwk)
    numbers = public.public_numbers()
    served = next(k for k in jwks(api)["keys"] if k["kid"] == kid)
    return {
        "pem": public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        "der": public.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        "jwk_json": json.dumps(served).encode(),
        "jwk_json_spaced": json.dumps(served, separators=(", ", ": ")).encode(),
        "jwks_json": api.get("/.well-known/jwks.json").content,
        "raw_xy": numbers.x.to_bytes(32, "big") + numbers.y.to_bytes(32, "big"),
        "uncompressed_point": public.public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        ),
        "x_b64u": served["x"].encode(),
    }


def test_f01_hs256_with_public_key_material_as_secret_rejected(
    api, signing, identity, application, no_network
):
    kid, _ = signing
    claims = access_claims(identity, application)
    secrets = _public_secrets(kid, api)
    assert len(secrets) == 8
    for name, secret in secrets.items():
        for alg in ["HS256", "HS384", "HS512"]:
            token = hs256({"alg": alg, "typ": "at+jwt", "kid": kid}, claims, secret)
            response = me(api, token)
            assert response.status_code == 401, (name, alg)
            with pytest.raises(InvalidToken):
                token_flows.verify_access_token(token)
    assert no_network == []


def test_f01_rs256_and_eddsa_tokens_rejected(api, signing, identity, application):
    kid, _ = signing
    claims = access_claims(identity, application)
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ed_key = ed25519.Ed25519PrivateKey.generate()
    tokens = [
        pyjwt.encode(claims, rsa_key, algorithm="RS256", headers={"kid": kid, "typ": "at+jwt"}),
        pyjwt.encode(claims, rsa_key, algorithm="PS256", headers={"kid": kid, "typ": "at+jwt"}),
        pyjwt.encode(claims, ed_key, algorithm="EdDSA", headers={"kid": kid, "typ": "at+jwt"}),
        pyjwt.encode(
            claims,
            ec.generate_private_key(ec.SECP384R1()),
            algorithm="ES384",
            headers={"kid": kid, "typ": "at+jwt"},
        ),
    ]
    for token in tokens:
        assert_rejected(api, token)


def test_f01_helper_never_looks_up_a_key_for_other_algorithms(signing, identity, application):
    """The ES256 allowlist is applied before any key is chosen (RFC 8725 3.1)."""
    kid, key = signing
    public = key.public_key()
    claims = access_claims(identity, application)
    looked_up: list[str] = []

    def get_key(k: str):
        looked_up.append(k)
        return public

    def verify(token: str) -> dict:
        return jwtcrypto.verify(
            token,
            get_key=get_key,
            audiences=[application.api_key_id],
            issuer=app_settings.issuer,
            leeway=30,
            typ="at+jwt",
            max_length=8192,
        )

    pem = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    forged = [
        f"{b64u_json({'alg': 'none', 'typ': 'at+jwt', 'kid': kid})}.{b64u_json(claims)}.",
        hs256({"alg": "HS256", "typ": "at+jwt", "kid": kid}, claims, pem),
    ]
    for token in forged:
        with pytest.raises(jwtcrypto.TokenError):
            verify(token)
    assert looked_up == []
    # Control: the same helper accepts the ES256 token and looked the kid up once.
    assert verify(es256(at_header(kid), claims, key))["sub"] == claims["sub"]
    assert looked_up == [kid]


# --------------------------------------------------------------------------- F02


def test_f02_any_flipped_bit_is_rejected(api, good, identity):
    token = good()
    assert_accepted(api, token, identity)
    head, body, sig = token.split(".")
    raw = {"head": unb64u(head), "body": unb64u(body), "sig": unb64u(sig)}
    tried = 0
    for part, data in raw.items():
        for bit in range(0, len(data) * 8, 29):
            flipped = bytearray(data)
            flipped[bit // 8] ^= 1 << (bit % 8)
            parts = {**raw, part: bytes(flipped)}
            forged = ".".join(b64u(parts[p]) for p in ("head", "body", "sig"))
            response = me(api, forged)
            assert response.status_code == 401, (part, bit)
            tried += 1
    assert tried > 50


def test_f02_zero_signature_der_signature_and_truncations_rejected(api, good, identity):
    token = good()
    sig = unb64u(token.split(".")[2])
    assert len(sig) == 64
    r, s = int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big")
    der = encode_dss_signature(r, s)
    for signature in [
        b"\x00" * 64,
        der,
        sig[:63],
        sig + b"\x00",
        b"",
        sig[32:] + sig[:32],
        (0).to_bytes(32, "big") + sig[32:],
        sig[:32] + P256_N.to_bytes(32, "big"),
    ]:
        assert_rejected(api, with_signature(token, signature))


def test_f02_signature_from_key_not_in_jwks_rejected(api, signing, identity, application):
    kid, _ = signing
    attacker = ec.generate_private_key(ec.SECP256R1())
    attacker_kid = keycrypto.jwk_thumbprint(keycrypto.public_jwk(attacker.public_key()))
    claims = access_claims(identity, application)
    assert_rejected(api, es256(at_header(kid), claims, attacker))
    assert_rejected(api, es256(at_header(attacker_kid), claims, attacker))
    assert attacker_kid not in jwks_kids(api)


# RFC 7515 Appendix A.3 (security.md V6).
A3_JWK = {
    "kty": "EC",
    "crv": "P-256",
    "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
    "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0",
}
A3_D = "jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI"
A3_JWS = (
    "eyJhbGciOiJFUzI1NiJ9"
    ".eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ"
    ".DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q"
)
A3_THUMBPRINT = "oKIywvGUpTVTyxMQ3bwIIeQUudfr_CkLMjCE19ECD-U"
A3_EXP = 1300819380


class RFC7515A3KeyProvider(CachingKeyProvider):
    """A configured key provider that trusts the RFC 7515 A.3 key (and only it)."""

    def load(self):
        return {A3_THUMBPRINT: dict(A3_JWK)}


def _a3_private_key() -> ec.EllipticCurvePrivateKey:
    d = int.from_bytes(unb64u(A3_D), "big")
    return ec.derive_private_key(d, ec.SECP256R1())


def test_v6_vector_is_authentic_but_expired():
    assert keycrypto.jwk_thumbprint(A3_JWK) == A3_THUMBPRINT
    public = keycrypto.public_key_from_jwk(A3_JWK)
    assert _a3_private_key().public_key().public_numbers() == public.public_numbers()
    payload = pyjwt.decode(A3_JWS, public, algorithms=["ES256"], options={"verify_exp": False})
    assert payload == {"iss": "joe", "exp": A3_EXP, "http://example.com/is_root": True}
    with pytest.raises(pyjwt.ExpiredSignatureError):
        pyjwt.decode(A3_JWS, public, algorithms=["ES256"])


def test_v6_vector_rejected_by_our_api(api, warm):
    assert_rejected(api, A3_JWS)


def test_v6_key_trusted_by_provider_still_rejected_because_expired(api, settings, db):
    """With the A.3 key configured, an A.3-signed token fails for ``exp`` and only for it."""
    settings.AUTHDEVICE_KEY_PROVIDER = f"{__name__}.RFC7515A3KeyProvider"
    settings.AUTHDEVICE_ISSUER = "joe"
    settings.AUTHDEVICE_ACCEPTED_AUDIENCES = ["a3-audience"]
    claims = {
        "iss": "joe",
        "exp": A3_EXP,
        "http://example.com/is_root": True,
        "aud": "a3-audience",
        "sub": "a3-subject",
        "iat": A3_EXP - 600,
        "jti": "a3",
        "type": token_flows.ACCESS_TOKEN_TYPE,
    }
    token = es256(at_header(A3_THUMBPRINT), claims, _a3_private_key())
    with pytest.raises(jwtcrypto.TokenError, match="expired"):
        jwtcrypto.verify(
            token,
            get_key=token_flows.key_provider().get,
            audiences=["a3-audience"],
            issuer="joe",
            leeway=app_settings.leeway,
            typ="at+jwt",
            max_length=8192,
        )
    assert me(api, token).status_code == 401
    # Control: the same token is accepted in March 2011, before its exp.
    with time_machine.travel(datetime.fromtimestamp(A3_EXP - 60, UTC), tick=False):
        response = me(api, token)
        assert response.status_code == 200, response.content
        assert response.json()["sub"] == "a3-subject"


# --------------------------------------------------------------------------- F03


@pytest.mark.parametrize(
    "extra",
    [
        {"jku": "https://attacker.example/jwks.json"},
        {"jku": "http://169.254.169.254/latest/meta-data/"},
        {"x5u": "https://attacker.example/cert.pem"},
        {"x5c": ["MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA"]},
    ],
    ids=["jku", "jku-ssrf", "x5u", "x5c"],
)
def test_f03_remote_key_headers_rejected_without_network(
    api, signing, identity, application, attacker_key, no_network, warm, extra
):
    kid, key = signing
    claims = access_claims(identity, application)
    attacker_kid = keycrypto.jwk_thumbprint(keycrypto.public_jwk(attacker_key.public_key()))
    # Signed by the attacker, naming the attacker's key location ...
    assert_rejected(api, es256(at_header(attacker_kid, **extra), claims, attacker_key))
    assert_rejected(api, es256(at_header(kid, **extra), claims, attacker_key))
    # ... and even signed by our own key: such headers are refused outright.
    assert_rejected(api, es256(at_header(kid, **extra), claims, key))
    assert no_network == []


def test_f03_embedded_jwk_rejected(api, signing, identity, application, attacker_key, no_network):
    kid, key = signing
    claims = access_claims(identity, application)
    attacker_jwk = keycrypto.public_jwk(attacker_key.public_key())
    attacker_kid = keycrypto.jwk_thumbprint(attacker_jwk)
    for header_kid in [attacker_kid, kid]:
        header = at_header(header_kid, jwk={**attacker_jwk, "kid": header_kid})
        assert_rejected(api, es256(header, claims, attacker_key))
    our_jwk = SigningKey.objects.get(kid=kid).public_jwk
    assert_rejected(api, es256(at_header(kid, jwk=our_jwk), claims, key))
    # Without a kid at all, the embedded key is not a fallback either.
    header = {"alg": "ES256", "typ": "at+jwt", "jwk": attacker_jwk}
    assert_rejected(api, es256(header, claims, attacker_key))
    assert no_network == []


@pytest.mark.parametrize(
    "extra",
    [
        {"crit": ["exp-x"], "exp-x": 1},
        {"crit": ["b64"], "b64": False},
        {"crit": []},
        {"crit": "x"},
    ],
)
def test_f03_crit_header_rejected(api, signing, identity, application, extra):
    kid, key = signing
    claims = access_claims(identity, application)
    assert_rejected(api, es256(at_header(kid, **extra), claims, key))
    # Control: the same token without the crit header passes.
    assert_accepted(api, es256(at_header(kid), claims, key), identity)


# --------------------------------------------------------------------------- F04

KID_PAYLOADS = [
    "../../dev/null",
    "../../../../../../etc/passwd",
    "' OR '1'='1",
    "'; DROP TABLE authdevice_signingkey; --",
    "a\x00b",
    "\x00",
    "x" * 10_000,
    "x" * 129,
    "https://evil.example/jwks.json",
    "",
    "%00",
    "\u202e\ufeff",
    "SPACE_JWT_PUBLIC:8028AAA3-EC2D-4BAA-BE7A-7C8359CCB9F9",
    123,
    None,
    ["kid"],
    {"$ne": ""},
    True,
]


def test_f04_kid_injection_rejected_without_queries(
    api, signing, identity, application, warm, django_assert_num_queries
):
    _, key = signing
    claims = access_claims(identity, application)
    tokens = [es256(at_header(kid), claims, key) for kid in KID_PAYLOADS]
    tokens.append(es256({"alg": "ES256", "typ": "at+jwt"}, claims, key))  # no kid: no default key
    with django_assert_num_queries(0):
        for token in tokens:
            response = me(api, token)
            assert response.status_code == 401
            assert response.json() == {"detail": "Invalid access token."}
            with pytest.raises(InvalidToken):
                token_flows.verify_access_token(token)
    # Control: the very same claims and key, with the right kid, pass with no query either.
    kid = signing[0]
    with django_assert_num_queries(0):
        assert me(api, es256(at_header(kid), claims, key)).status_code == 200


def test_f04_kid_is_not_tried_against_every_key(api, signing, identity, application, warm):
    """A token signed by a real key of ours but naming an unknown kid is refused."""
    _, key = signing
    claims = access_claims(identity, application)
    assert_rejected(api, es256(at_header("unknown-but-well-formed"), claims, key))


def test_f04_unknown_kid_reloads_keys_at_most_once_per_interval(
    api, settings, application, signing, identity, token_set, mono, django_assert_num_queries
):
    settings.AUTHDEVICE_ACCEPTED_AUDIENCES = [application.api_key_id]  # no audience queries
    settings.AUTHDEVICE_KEY_MIN_REFRESH_INTERVAL = 30
    _, key = signing
    claims = access_claims(identity, application)
    assert_accepted(api, token_set.access_token, identity)  # warm-up: keys loaded now
    unknown = [es256(at_header(f"unknown-{i}"), claims, key) for i in range(10)]
    with django_assert_num_queries(0):
        for token in unknown:
            assert me(api, token).status_code == 401
    mono.advance(31)
    with django_assert_num_queries(1):  # one reload for the whole burst
        for token in unknown:
            assert me(api, token).status_code == 401
    mono.advance(10)
    with django_assert_num_queries(0):
        for token in unknown:
            assert me(api, token).status_code == 401
    mono.advance(25)
    with django_assert_num_queries(1):
        for token in unknown:
            assert me(api, token).status_code == 401
    # Known keys are re-read only every KEY_CACHE_SECONDS.
    with django_assert_num_queries(0):
        assert me(api, token_set.access_token).status_code == 200
    mono.advance(app_settings.KEY_CACHE_SECONDS)
    with django_assert_num_queries(1):
        assert me(api, token_set.access_token).status_code == 200


# --------------------------------------------------------------------------- F05


@pytest.mark.parametrize("claim", ["exp", "iat", "iss", "aud", "sub", "jti"])
def test_f05_required_claims(api, good, identity, claim):
    assert_rejected(api, good(**{claim: ...}))


@pytest.mark.parametrize(
    "overrides",
    [
        {"sub": 42},
        {"sub": None},
        {"exp": "9999999999x"},
        {"iat": "yesterday"},
        {"nbf": "soon"},
        {"aud": None},
        {"aud": []},
        {"aud": [42]},
        {"aud": {"x": 1}},
        {"iss": None},
        {"type": ...},
        {"exp": True},
        {"exp": "9999999999"},
        {"iat": [0]},
        {"jti": 7},
    ],
    ids=lambda o: "-".join(f"{k}={v!r}" for k, v in o.items()),
)
def test_f05_malformed_claims(api, good, overrides):
    assert_rejected(api, good(**overrides))


def test_f02_non_base64url_characters_rejected(api, good, identity):
    """Python's base64 decoder skips characters outside the alphabet; ours refuses them, so
    no two different strings are the same valid token."""
    token = good()
    head, body, sig = token.split(".")
    assert_accepted(api, token, identity)
    for bad in (
        f"{head}.{body}.{sig[:10]}+{sig[11:]}",
        f"{head}.{body}.{sig}=",
        f"{head}.{body}.{sig[:20]}*{sig[20:]}",
        f"{head}.{body}.{sig[:-1]}",
        f"{head}.{body}.{sig}AAAA",
    ):
        assert_rejected(api, bad)


def test_f05_exp_in_the_past(api, good):
    now = int(time.time())
    assert_rejected(api, good(iat=now - 7200, nbf=now - 7200, exp=now - 3600))
    assert_rejected(api, good(exp=0))


@pytest.mark.parametrize(
    ("leeway", "offset", "accepted"),
    [
        (None, -30, True),
        (None, -1, True),
        (None, 20, True),  # default leeway 30 s
        (None, 31, False),
        (None, 61, False),
        (60, 59, True),
        (60, 61, False),
        (3600, 61, False),  # configured leeway is capped at 60 s
        (0, 1, False),
    ],
)
def test_f05_exp_leeway(api, settings, identity, application, token_set, leeway, offset, accepted):
    if leeway is not None:
        settings.AUTHDEVICE_LEEWAY = leeway
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
    with time_machine.travel(start, tick=False) as traveller:
        tokens = token_flows.issue_token_set(
            identity=identity, application=application, auth_method="OTP"
        )
        exp = payload_of(tokens.access_token)["exp"]
        assert exp == int(start.timestamp()) + 3600
        traveller.move_to(datetime.fromtimestamp(exp + offset, UTC))
        response = me(api, tokens.access_token)
        assert response.status_code == (200 if accepted else 401), response.content


def test_f05_nbf_and_iat_in_the_future(api, good, identity):
    now = int(time.time())
    assert_rejected(api, good(nbf=now + 120))
    assert_rejected(api, good(nbf=now + 61))
    assert_rejected(api, good(iat=now + 120, nbf=now))
    assert_rejected(api, good(iat=now + 10 * 365 * 86400, nbf=now, exp=now + 11 * 365 * 86400))
    # Control: a few seconds of clock skew are within the leeway.
    assert_accepted(api, good(nbf=now + 20, iat=now + 20), identity)


# --------------------------------------------------------------------------- F06


@pytest.mark.parametrize(
    "iss",
    [
        "http://127.0.0.1:8000.evil.example",
        "http://127.0.0.1:8000/",
        "http://127.0.0.1:8000/evil",
        "http://127.0.0.1:800",
        "HTTP://127.0.0.1:8000",
        "https://127.0.0.1:8000",
        " http://127.0.0.1:8000",
        "https://www.cotter.app",
        ["http://127.0.0.1:8000"],
    ],
)
def test_f06_issuer_must_match_exactly(api, good, iss):
    assert app_settings.issuer == "http://127.0.0.1:8000"
    assert_rejected(api, good(iss=iss))


def test_f06_prefix_issuer_configured(api, settings, good, identity):
    settings.AUTHDEVICE_ISSUER = "https://auth.example"
    assert_rejected(api, good(iss="https://auth.example.evil"))
    assert_accepted(api, good(iss="https://auth.example"), identity)


def test_f06_token_for_app_a_rejected_where_only_app_b_accepted(
    api, settings, token_set, application, other_application, identity
):
    settings.AUTHDEVICE_ACCEPTED_AUDIENCES = [other_application.api_key_id]
    assert_rejected(api, token_set.access_token)
    settings.AUTHDEVICE_ACCEPTED_AUDIENCES = []
    assert_rejected(api, token_set.access_token)
    settings.AUTHDEVICE_ACCEPTED_AUDIENCES = [application.api_key_id]
    assert_accepted(api, token_set.access_token, identity)


def test_f06_audience_must_be_an_application(api, good, application, other_application):
    assert_rejected(api, good(aud="some-other-api"))
    assert_rejected(api, good(aud=[f"{application.api_key_id}x"]))


def test_f06_inactive_application_tokens_rejected(api, token_set, application, identity):
    assert_accepted(api, token_set.access_token, identity)
    application.is_active = False
    application.save()
    app_flows.clear_application_cache()
    assert_rejected(api, token_set.access_token)


def test_f06_claims_are_opaque_and_hold_no_secret(token_set, identity, user):
    for token in (token_set.access_token, token_set.id_token):
        claims = payload_of(token)
        assert claims["sub"] == str(identity.public_id)
        assert "@" not in claims["sub"]
        assert str(user.pk) != claims["sub"]
        secret = token_set.refresh_token.split(":", 1)[1]
        assert secret not in json.dumps(claims)
        assert token_set.refresh_token.split(":")[0] not in json.dumps(claims)


# --------------------------------------------------------------------------- F07


def test_f07_id_token_is_not_an_access_token(api, token_set, identity):
    assert header_of(token_set.id_token)["typ"] == "JWT"
    assert payload_of(token_set.id_token)["type"] == token_flows.ID_TOKEN_TYPE
    assert_rejected(api, token_set.id_token)
    assert_accepted(api, token_set.access_token, identity)


@pytest.mark.parametrize(
    ("typ", "type_claim", "accepted"),
    [
        ("at+jwt", "client_access_token", True),
        ("at+jwt", "client_id_token", False),
        ("at+jwt", "access_token", False),
        ("at+jwt", ..., False),
        ("JWT", "client_access_token", False),
        ("jwt", "client_access_token", False),
        ("application/at+jwt", "client_access_token", False),
        (None, "client_access_token", False),
    ],
)
def test_f07_typ_header_and_type_claim_both_checked(
    api, signing, identity, application, typ, type_claim, accepted
):
    kid, key = signing
    header = {"alg": "ES256", "kid": kid}
    if typ is not None:
        header["typ"] = typ
    token = es256(header, access_claims(identity, application, type=type_claim), key)
    if accepted:
        assert_accepted(api, token, identity)
    else:
        assert_rejected(api, token)


# --------------------------------------------------------------------------- F08


@pytest.fixture
def two_keys(token_set, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        rotate_signing_key()
    return list(SigningKey.objects.values_list("kid", flat=True))


@pytest.mark.parametrize("url", JWKS_URLS)
def test_f08_jwks_public_members_only(api, url, two_keys):
    response = api.get(url)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    document = response.json()
    assert set(document) == {"keys"}
    kids = [k["kid"] for k in document["keys"]]
    assert len(kids) == 2 and len(set(kids)) == 2
    assert sorted(kids) == sorted(two_keys)
    for key in document["keys"]:
        assert set(key) == {"kty", "crv", "x", "y", "kid", "use", "alg"}
        assert key["kty"] == "EC" and key["crv"] == "P-256"
        assert key["use"] == "sig" and key["alg"] == "ES256"
        assert len(unb64u(key["x"])) == 32 and len(unb64u(key["y"])) == 32
        assert "d" not in key


@pytest.mark.parametrize("url", JWKS_URLS)
def test_f08_jwks_caching_and_cors(api, url, token_set):
    response = api.get(url)
    assert response["Cache-Control"] == f"public, max-age={app_settings.JWKS_MAX_AGE}"
    assert 0 < app_settings.JWKS_MAX_AGE < app_settings.KEY_PUBLISH_DELAY
    assert response["Access-Control-Allow-Origin"] == "*"
    etag = response["ETag"]
    assert etag.startswith('"') and etag.endswith('"')
    again = api.get(url, HTTP_IF_NONE_MATCH=etag)
    assert again.status_code == 304
    assert again.content == b""
    assert again["ETag"] == etag
    assert api.get(url, HTTP_IF_NONE_MATCH='"something-else"').status_code == 200
    preflight = api.options(url, HTTP_ORIGIN="https://rp.example")
    assert preflight.status_code == 204
    assert preflight["Access-Control-Allow-Origin"] == "*"
    head = api.head(url)
    assert head.status_code == 200
    assert api.post(url).status_code == 405


def test_f08_jwks_etag_changes_on_rotation(api, token_set, django_capture_on_commit_callbacks):
    first = api.get("/.well-known/jwks.json")["ETag"]
    with django_capture_on_commit_callbacks(execute=True):
        rotate_signing_key()
    response = api.get("/.well-known/jwks.json", HTTP_IF_NONE_MATCH=first)
    assert response.status_code == 200
    assert response["ETag"] != first


# --------------------------------------------------------------------------- F09


def test_f09_immediate_rotation(
    api, token_set, identity, application, django_capture_on_commit_callbacks
):
    old_kid = header_of(token_set.access_token)["kid"]
    assert_accepted(api, token_set.access_token, identity)
    with django_capture_on_commit_callbacks(execute=True):
        new = rotate_signing_key(immediate=True)
    assert new.kid != old_kid
    fresh = token_flows.issue_token_set(
        identity=identity, application=application, auth_method="OTP"
    )
    assert header_of(fresh.access_token)["kid"] == new.kid
    assert header_of(fresh.id_token)["kid"] == new.kid
    # Both the new and the old tokens verify in this very process, at once.
    assert_accepted(api, fresh.access_token, identity)
    assert_accepted(api, token_set.access_token, identity)
    kids = jwks_kids(api)
    assert kids[0] == new.kid  # Cotter's Python SDK uses keys[0]
    assert old_kid in kids


def test_f09_retired_key_published_for_token_lifetime_then_refused(
    api, identity, application, mono, django_capture_on_commit_callbacks
):
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=3)
    # The longest token lifetime plus the largest verifier leeway.
    lifetime = app_settings.key_retention
    assert lifetime >= app_settings.max_jwt_lifetime + app_settings.leeway
    with time_machine.travel(start, tick=False) as traveller:

        def advance(seconds: int) -> None:
            traveller.shift(timedelta(seconds=seconds))
            mono.advance(seconds)

        old = token_flows.issue_token_set(
            identity=identity, application=application, auth_method="OTP"
        )
        old_kid = header_of(old.access_token)["kid"]
        old_key = current_private_key(old_kid)
        advance(10)
        with django_capture_on_commit_callbacks(execute=True):
            new = rotate_signing_key(immediate=True)
        retired_at = SigningKey.objects.get(kid=old_kid).retired_at
        assert retired_at == start + timedelta(seconds=10)

        def forged_with_old_key() -> str:
            return es256(at_header(old_kid), access_claims(identity, application), old_key)

        advance(lifetime - 600)
        assert old_kid in jwks_kids(api)
        assert_accepted(api, old.access_token, identity)
        assert_accepted(api, forged_with_old_key(), identity)  # control for the end

        # Up to retired_at + longest token lifetime (+ leeway) the old key stays published.
        traveller.move_to(retired_at + timedelta(seconds=lifetime - 1))
        mono.advance(app_settings.KEY_CACHE_SECONDS + 1)
        assert old_kid in jwks_kids(api)
        assert_accepted(api, forged_with_old_key(), identity)

        traveller.move_to(retired_at + timedelta(seconds=lifetime + 1))
        mono.advance(app_settings.KEY_CACHE_SECONDS + 1)
        assert jwks_kids(api) == [new.kid]
        assert_rejected(api, forged_with_old_key())
        assert_rejected(api, old.access_token)


def test_f09_publish_before_use(
    api, identity, application, mono, django_capture_on_commit_callbacks
):
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=5)
    delay = app_settings.KEY_PUBLISH_DELAY
    assert delay > app_settings.JWKS_MAX_AGE

    def issue_and_check() -> str:
        tokens = token_flows.issue_token_set(
            identity=identity, application=application, auth_method="OTP"
        )
        kid = header_of(tokens.access_token)["kid"]
        assert kid in jwks_kids(api), "token signed with a kid absent from the JWKS"
        assert_accepted(api, tokens.access_token, identity)
        return kid

    with time_machine.travel(start, tick=False) as traveller:
        old_kid = issue_and_check()
        with django_capture_on_commit_callbacks(execute=True):
            new = rotate_signing_key()
        assert new.not_before == start + timedelta(seconds=delay)
        # Published at once, first in the JWKS only once it signs.
        assert jwks_kids(api) == [old_kid, new.kid]
        assert issue_and_check() == old_kid
        traveller.move_to(new.not_before - timedelta(seconds=1))
        mono.advance(delay)
        assert issue_and_check() == old_kid
        traveller.move_to(new.not_before)
        mono.advance(1)
        assert issue_and_check() == new.kid
        assert jwks_kids(api) == [new.kid, old_kid]


def test_f09_revoked_key_refused_at_once(
    api, token_set, identity, django_capture_on_commit_callbacks
):
    kid = header_of(token_set.access_token)["kid"]
    assert_accepted(api, token_set.access_token, identity)
    with django_capture_on_commit_callbacks(execute=True):
        revoke_signing_key(kid)
    assert kid not in jwks_kids(api)
    assert_rejected(api, token_set.access_token)


def _private_forms(kid: str) -> dict[str, str]:
    key = current_private_key(kid)
    d = key.private_numbers().private_value
    der = key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    sec1 = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    return {
        "d_b64u": b64u(d.to_bytes(32, "big")),
        "d_hex": format(d, "064x"),
        "d_HEX": format(d, "064X"),
        "d_dec": str(d),
        "der_b64": base64.b64encode(der).decode(),
        "der_b64u": b64u(der),
        "der_hex": der.hex(),
        "sec1_b64": base64.b64encode(sec1).decode(),
        "pem_body": "".join(pem.strip().splitlines()[1:-1])[:40],
    }


def test_f09_private_key_absent_from_jwks_admin_and_dumpdata(api, token_set, settings):
    kid = header_of(token_set.access_token)["kid"]
    row = SigningKey.objects.get(kid=kid)
    forms = _private_forms(kid)
    blob = row.private_key_encrypted
    assert blob.startswith("v1.")

    # The stored blob is ciphertext: no form of the private key is inside it.
    raw_blob = unb64u(blob[3:])
    der = unb64u(forms["der_b64u"])
    assert der not in raw_blob and unb64u(forms["d_b64u"]) not in raw_blob
    for value in forms.values():
        assert value not in blob

    jwks_text = api.get("/.well-known/jwks.json").content.decode()
    v0_jwks_text = api.get("/api/v0/token/jwks").content.decode()

    staff = get_user_model().objects.create_superuser("root", "root@example.com", "pw")
    client = Client()
    client.force_login(staff)
    change = client.get(f"/admin/authdevice/signingkey/{row.pk}/change/")
    assert change.status_code == 200
    assert kid in change.content.decode()  # the page does show the key
    changelist = client.get("/admin/authdevice/signingkey/")
    assert changelist.status_code == 200

    out = io.StringIO()
    call_command("dumpdata", "authdevice.signingkey", stdout=out)
    dump = out.getvalue()
    assert kid in dump

    for where, text in [
        ("jwks", jwks_text),
        ("v0 jwks", v0_jwks_text),
        ("admin change page", change.content.decode()),
        ("admin changelist", changelist.content.decode()),
        ("dumpdata", dump),
    ]:
        assert "PRIVATE KEY" not in text, where
        for name, value in forms.items():
            assert value not in text, (where, name)
        if where != "dumpdata":
            assert blob not in text, where
            assert blob[3:40] not in text, where

    # The dump alone is useless without the key-encryption secret.
    settings.AUTHDEVICE_KEY_ENCRYPTION_SECRET = "not-the-secret-the-key-was-sealed-with"
    with pytest.raises(keycrypto.KeyDecryptionError):
        keycrypto.decrypt_private_key(blob, kid)


def test_f09_signing_unavailable_gives_503_never_a_token(api, settings, token_set, application):
    rows_before = RefreshToken.objects.count()
    keyring._private.clear()  # a fresh process: the key must be decrypted
    settings.AUTHDEVICE_KEY_ENCRYPTION_SECRET = "rotated-away-without-re-encrypting"
    body = {"grant_type": "refresh_token", "refresh_token": token_set.refresh_token}
    response = api.post(f"/api/v0/token/{application.api_key_id}", body, format="json")
    assert response.status_code == 503
    data = response.json()
    assert set(data) == {"msg", "type"}
    assert data["type"] == "temporarily_unavailable"
    assert "no-store" in response["Cache-Control"]
    assert b"eyJ" not in response.content
    with pytest.raises(SigningUnavailable):
        token_flows.issue_token_set(
            identity=token_set_identity(token_set), application=application, auth_method="OTP"
        )
    # Nothing half-written: no new row, and the presented refresh token is still unspent.
    assert RefreshToken.objects.count() == rows_before
    parent = RefreshToken.objects.get(pk=int(token_set.refresh_token.split(":")[0]))
    assert parent.used_at is None and parent.revoked_at is None
    del settings.AUTHDEVICE_KEY_ENCRYPTION_SECRET
    response = api.post(f"/api/v0/token/{application.api_key_id}", body, format="json")
    assert response.status_code == 200
    assert header_of(response.json()["access_token"])["alg"] == "ES256"


def token_set_identity(token_set):
    row = RefreshToken.objects.get(pk=int(token_set.refresh_token.split(":")[0]))
    return row.identity


# --------------------------------------------------------------------------- F10 / V7

V7_X = int("C9AFA9D845BA75166B5C215767B1D6934E50C3DB36E89B127B8A622B120F6721", 16)
V7_UX = int("60FED4BA255A9D31C961EB74C6356D68C049B8923B61FA6CE669622E60F29FB6", 16)
V7_UY = int("7903FE1008B8BC99A41AE9E95628BC64F2F1B20C2D7E9F5177A3C294D4462299", 16)
V7_R = int("EFD48B2AACB6A8FD1140DD9CD45E81D69D2C877B56AAF991C34D0EA84EAF3716", 16)
V7_S = int("F7CB1C942D657C41D436C7A1B6E29F65F3E900DBB9AFF4064DC4AB2F843ACDA8", 16)
V7_TWIN_S = int("0834E36AD29A83BF2BC9385E491D6099C8FDF9D1ED67AA7EA5F51F93782857A9", 16)


def test_v7_rfc6979_vector_and_its_high_s_twin_both_verify():
    key = ec.derive_private_key(V7_X, ec.SECP256R1())
    assert key.public_key().public_numbers().x == V7_UX
    assert key.public_key().public_numbers().y == V7_UY
    assert P256_N - V7_S == V7_TWIN_S
    public = key.public_key()
    for s in (V7_S, V7_TWIN_S):
        public.verify(encode_dss_signature(V7_R, s), b"sample", ec.ECDSA(hashes.SHA256()))


def _twin(token: str) -> str:
    sig = unb64u(token.split(".")[2])
    s = int.from_bytes(sig[32:], "big")
    return with_signature(token, sig[:32] + (P256_N - s).to_bytes(32, "big"))


def test_f10_revocation_is_keyed_by_claims_not_token_bytes(api, token_set, application):
    """Revoking with the malleated twin of the access token hits the same grant (``sid``)."""
    twin = _twin(token_set.access_token)
    assert twin != token_set.access_token
    assert payload_of(twin) == payload_of(token_set.access_token)
    response = api.post(
        "/api/v0/token/revoke",
        {"token": twin},
        format="json",
        HTTP_API_KEY_ID=application.api_key_id,
    )
    assert response.status_code == 200
    row = RefreshToken.objects.get(pk=int(token_set.refresh_token.split(":")[0]))
    assert row.revoked_at is not None
    refresh = api.post(
        f"/api/v0/token/{application.api_key_id}",
        {"grant_type": "refresh_token", "refresh_token": token_set.refresh_token},
        format="json",
    )
    assert refresh.status_code == 400


# --------------------------------------------------------------------------- Cotter SDKs


def test_issued_tokens_accepted_by_pyjwt_and_python_jose(api, token_set, identity, application):
    document = jwks(api)
    first = document["keys"][0]  # Cotter's Python SDK: jwt.decode(token, keys[0], ...)
    issuer = app_settings.issuer
    api_key = application.api_key_id

    access_jose = jose_jwt.decode(
        token_set.access_token, first, algorithms="ES256", audience=api_key
    )
    id_jose = jose_jwt.decode(token_set.id_token, first, algorithms="ES256", audience=api_key)

    pyjwk = pyjwt.PyJWK(first)
    options = {"require": ["exp", "iat", "iss", "aud", "sub", "jti"]}
    access = pyjwt.decode(
        token_set.access_token,
        pyjwk.key,
        algorithms=["ES256"],
        audience=api_key,
        issuer=issuer,
        options=options,
    )
    id_claims = pyjwt.decode(
        token_set.id_token,
        pyjwk.key,
        algorithms=["ES256"],
        audience=api_key,
        issuer=issuer,
        options=options,
    )
    assert access == access_jose and id_claims == id_jose

    # Headers (cotter-api.md 3.1).
    for token, typ in [(token_set.access_token, "at+jwt"), (token_set.id_token, "JWT")]:
        header = header_of(token)
        assert header == {"alg": "ES256", "kid": first["kid"], "typ": typ}

    # Access token claims (cotter-api.md 3.2).
    assert access["aud"] == api_key
    assert access["iss"] == issuer
    assert access["sub"] == str(identity.public_id)
    assert uuid.UUID(access["sub"])
    assert access["client_user_id"] == identity.client_user_id == access["sub"]
    assert access["authentication_method"] == "OTP"
    assert access["amr"] == ["otp"]
    assert access["identifier"] == "alice@example.com"
    assert access["type"] == "client_access_token"
    assert access["scope"] == "access"
    assert isinstance(access["iat"], int) and isinstance(access["exp"], int)
    assert access["exp"] == access["iat"] + 3600
    assert access["nbf"] == access["iat"]
    assert uuid.UUID(access["jti"])
    assert isinstance(access["auth_time"], int)
    assert access["auth_time"] <= access["iat"]
    assert uuid.UUID(access["sid"])
    # iOS CotterAccessTokenJWT requires these.
    for claim in [
        "aud",
        "authentication_method",
        "client_user_id",
        "exp",
        "iat",
        "iss",
        "scope",
        "sub",
        "type",
    ]:
        assert claim in access

    # ID token claims (cotter-api.md 3.3).
    assert id_claims["aud"] == api_key
    assert id_claims["iss"] == issuer
    assert id_claims["sub"] == access["sub"]
    assert id_claims["client_user_id"] == access["client_user_id"]
    assert id_claims["identifier"] == "alice@example.com"
    assert id_claims["type"] == "client_id_token"
    assert id_claims["exp"] == id_claims["iat"] + 3600
    assert uuid.UUID(id_claims["jti"]) and id_claims["jti"] != access["jti"]
    assert isinstance(id_claims["auth_time"], str)
    assert int(id_claims["auth_time"]) == access["auth_time"]
    assert "scope" not in id_claims


def test_python_jose_rejects_issued_token_for_another_audience(api, token_set, other_application):
    first = jwks(api)["keys"][0]
    with pytest.raises(JWTClaimsError, match=r"(?i)audience"):
        jose_jwt.decode(
            token_set.access_token,
            first,
            algorithms="ES256",
            audience=other_application.api_key_id,
        )
