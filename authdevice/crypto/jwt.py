"""ES256 JWT signing and strict verification (PyJWT underneath)."""

from __future__ import annotations

import base64
import functools
import json
from collections.abc import Callable, Collection
from typing import Any

import jwt
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

ACCESS_TOKEN_TYP = "at+jwt"
ID_TOKEN_TYP = "JWT"
REQUIRED_CLAIMS = ["exp", "iat", "iss", "aud", "sub", "jti"]
# Header members that name key material; we only ever use our own keys (RFC 8725 3.10).
FORBIDDEN_HEADERS = frozenset({"jku", "jwk", "x5u", "x5c", "crit"})


class TokenError(Exception):
    """The token is malformed, forged, expired or not meant for us."""


def _b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


@functools.lru_cache(maxsize=64)
def _encoded_header(kid: str, typ: str) -> bytes:
    # Sorted members, compact separators: byte for byte what PyJWT's encode produces.
    return _b64(
        json.dumps(
            {"alg": "ES256", "kid": kid, "typ": typ}, sort_keys=True, separators=(",", ":")
        ).encode()
    )


_ES256 = ec.ECDSA(hashes.SHA256())


def sign(
    claims: dict[str, Any], private_key: ec.EllipticCurvePrivateKey, kid: str, typ: str
) -> str:
    """An ES256 JWS (RFC 7515 compact form, RFC 7518 3.4 raw R||S signature).

    Written out rather than through ``jwt.encode``: PyJWT re-validates the key and the
    headers on every call, which is most of the cost of issuing a token set; the output
    is the same and the tests verify it with PyJWT and python-jose."""
    signing_input = (
        _encoded_header(kid, typ) + b"." + _b64(json.dumps(claims, separators=(",", ":")).encode())
    )
    r, s = decode_dss_signature(private_key.sign(signing_input, _ES256))
    return (signing_input + b"." + _b64(r.to_bytes(32, "big") + s.to_bytes(32, "big"))).decode()


def verify(
    token: object,
    *,
    get_key: Callable[[str], ec.EllipticCurvePublicKey | None],
    audiences: Collection[str],
    issuer: str,
    leeway: int,
    typ: str,
    max_length: int,
) -> dict[str, Any]:
    """Verify an ES256 token and return its claims, or raise :class:`TokenError`.

    Only ES256; ``kid`` is just a lookup key into our own key set; ``typ`` must match;
    ``exp``, ``iat``, ``iss``, ``aud``, ``sub`` and ``jti`` are required; ``iss`` exact.
    """
    if not isinstance(token, str) or not token or len(token) > max_length:
        raise TokenError("malformed token")
    if token.count(".") != 2:
        raise TokenError("malformed token")
    # Read the header ourselves (PyJWT would parse the whole token twice): it only picks
    # the key; jwt.decode below verifies everything, header included.
    head = token.partition(".")[0]
    try:
        header = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    except (ValueError, TypeError, UnicodeDecodeError) as exc:
        raise TokenError("malformed token") from exc
    if not isinstance(header, dict):
        raise TokenError("malformed token")
    if header.get("alg") != "ES256":
        raise TokenError("unsupported algorithm")
    if header.get("typ") != typ:
        raise TokenError("wrong token type")
    if FORBIDDEN_HEADERS.intersection(header):
        raise TokenError("unsupported header")
    kid = header.get("kid")
    if not isinstance(kid, str) or not 0 < len(kid) <= 128:
        raise TokenError("unknown key")
    key = get_key(kid)
    if key is None:
        raise TokenError("unknown key")
    if not audiences:
        raise TokenError("no accepted audience")
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=["ES256"],
            audience=list(audiences),
            issuer=issuer,
            leeway=leeway,
            options={"require": REQUIRED_CLAIMS, "strict_aud": False},
        )
    except (jwt.PyJWTError, ValueError, TypeError) as exc:
        raise TokenError(str(exc) or "invalid token") from exc
    if not isinstance(claims.get("sub"), str):
        raise TokenError("invalid subject")
    return claims
