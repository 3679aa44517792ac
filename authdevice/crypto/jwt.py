"""ES256 JWT signing and strict verification.

Written out over ``cryptography`` rather than through PyJWT: on the hot path PyJWT's generic
checks cost as much as the signature itself. The tests decode our tokens with PyJWT and
python-jose and feed this verifier tokens forged with both."""

from __future__ import annotations

import base64
import functools
import json
import re
import time
from collections.abc import Callable, Collection
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

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
# What json.dumps(..., separators=(",", ":")) builds on every call.
_COMPACT = json.JSONEncoder(separators=(",", ":"))


_B64URL = re.compile(r"[A-Za-z0-9_-]*")


def _b64decode(part: str) -> bytes:
    # Strict base64url (RFC 7515 2): Python's decoder would skip stray characters.
    if not _B64URL.fullmatch(part) or len(part) % 4 == 1:
        raise TokenError("malformed token")
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _json_part(part: str) -> dict[str, Any]:
    try:
        value = json.loads(_b64decode(part))
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        # RecursionError: thousands of nested brackets fit in a token's 8 KB.
        raise TokenError("malformed token") from exc
    if not isinstance(value, dict):
        raise TokenError("malformed token")
    return value


def _numeric_date(value: object) -> float:
    # RFC 7519 2: a JSON number. Booleans and strings are refused.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TokenError("invalid date claim")
    return float(value)


def sign(
    claims: dict[str, Any], private_key: ec.EllipticCurvePrivateKey, kid: str, typ: str
) -> str:
    """An ES256 JWS (RFC 7515 compact form, RFC 7518 3.4 raw R||S signature).

    Written out rather than through ``jwt.encode``: PyJWT re-validates the key and the
    headers on every call, which is most of the cost of issuing a token set; the output
    is the same and the tests verify it with PyJWT and python-jose."""
    signing_input = _encoded_header(kid, typ) + b"." + _b64(_COMPACT.encode(claims).encode())
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
    head, body, sig = token.split(".")
    header = _json_part(head)
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
    raw_sig = _b64decode(sig)
    if len(raw_sig) != 64:
        raise TokenError("invalid signature")
    der = encode_dss_signature(
        int.from_bytes(raw_sig[:32], "big"), int.from_bytes(raw_sig[32:], "big")
    )
    try:
        key.verify(der, f"{head}.{body}".encode("ascii"), _ES256)
    except InvalidSignature as exc:
        raise TokenError("invalid signature") from exc
    # The signature holds: now the claims (RFC 7519 4.1; RFC 8725 3.8, 3.9).
    claims = _json_part(body)
    for name in REQUIRED_CLAIMS:
        if name not in claims:
            raise TokenError(f"missing claim {name}")
    now = time.time()
    if _numeric_date(claims["exp"]) <= now - leeway:
        raise TokenError("token expired")
    if _numeric_date(claims["iat"]) > now + leeway:
        raise TokenError("token not yet valid (iat)")
    if "nbf" in claims and _numeric_date(claims["nbf"]) > now + leeway:
        raise TokenError("token not yet valid (nbf)")
    if claims["iss"] != issuer:
        raise TokenError("invalid issuer")
    aud = claims["aud"]
    aud_values = [aud] if isinstance(aud, str) else aud
    if (
        not isinstance(aud_values, list)
        or not aud_values
        or not all(isinstance(a, str) for a in aud_values)
        or not any(a in audiences for a in aud_values)
    ):
        raise TokenError("invalid audience")
    if not isinstance(claims["jti"], str):
        raise TokenError("invalid jti")
    if not isinstance(claims.get("sub"), str):
        raise TokenError("invalid subject")
    return claims
