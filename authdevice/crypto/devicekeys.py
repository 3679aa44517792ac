"""Trusted-device public keys and signatures, in the encodings Cotter's SDKs use.

* ``ED25519``: standard base64 of the raw 32-byte key; signature = base64 of 64 bytes.
* ``EC`` (also sent as ``ECDSA``): base64 of the P-256 SubjectPublicKeyInfo DER, as iOS and
  Android send it (wrapped lines allowed); signature = base64 ASN.1 DER ``(r, s)`` over
  SHA-256 of the message.
* ``RSA`` (old Android): base64 SPKI DER, at least 2048 bits; PKCS#1 v1.5 with SHA-256.

Keys are validated on parsing (length, curve, on-curve, no small-order Ed25519 points) and
normalised (whitespace removed, canonical base64) so one key has exactly one stored form.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

ALGORITHMS = {"ED25519": "ED25519", "EC": "EC", "ECDSA": "EC", "RSA": "RSA"}
MAX_KEY_CHARS = 2000
MAX_SIGNATURE_CHARS = 1200

# Ed25519 encodings of small-order points (libsodium's blocklist, incl. non-canonical forms);
# a key among them would let any signature verify for some messages.
_SMALL_ORDER = {
    bytes.fromhex(h)
    for h in (
        "0100000000000000000000000000000000000000000000000000000000000000",
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "0000000000000000000000000000000000000000000000000000000000000000",
        "0000000000000000000000000000000000000000000000000000000000000080",
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
        "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
        "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",
        "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
        "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
        "0100000000000000000000000000000000000000000000000000000000000080",
    )
}
_P = 2**255 - 19


class InvalidDeviceKey(ValueError):
    """The public key is malformed, of an unsupported kind, or weak."""


@dataclass(frozen=True)
class DeviceKey:
    algorithm: str  # ED25519 | EC | RSA
    normalized: str  # canonical base64 (what we store and compare)
    key: ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey | rsa.RSAPublicKey

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256(self.normalized.encode("ascii")).hexdigest()


def b64decode_loose(value: str) -> bytes:
    """Base64 or base64url, any whitespace (wrapped lines), padding optional; '+' may have
    arrived as a space in a query string."""
    compact = (
        "".join(value.replace(" ", "+").split()) if " " in value.strip() else "".join(value.split())
    )
    compact = compact.replace("-", "+").replace("_", "/")
    compact += "=" * (-len(compact) % 4)
    try:
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidDeviceKey("not base64") from exc


def normalize_algorithm(algorithm: object) -> str | None:
    if algorithm is None or algorithm == "":
        return None
    if not isinstance(algorithm, str):
        raise InvalidDeviceKey("algorithm must be a string")
    normalized = ALGORITHMS.get(algorithm.strip().upper())
    if normalized is None:
        raise InvalidDeviceKey("unsupported algorithm")
    return normalized


def _ed25519(raw: bytes) -> DeviceKey:
    if len(raw) != 32:
        raise InvalidDeviceKey("an Ed25519 key is 32 bytes")
    y = int.from_bytes(raw, "little") & ((1 << 255) - 1)
    if raw in _SMALL_ORDER or y >= _P:
        raise InvalidDeviceKey("weak or non-canonical Ed25519 key")
    try:
        key = ed25519.Ed25519PublicKey.from_public_bytes(raw)
    except ValueError as exc:
        raise InvalidDeviceKey("invalid Ed25519 key") from exc
    return DeviceKey("ED25519", base64.b64encode(raw).decode("ascii"), key)


def _spki(raw: bytes, algorithm: str | None) -> DeviceKey:
    try:
        key = serialization.load_der_public_key(raw)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise InvalidDeviceKey("invalid SubjectPublicKeyInfo") from exc
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    normalized = base64.b64encode(der).decode("ascii")
    if isinstance(key, ec.EllipticCurvePublicKey):
        if not isinstance(key.curve, ec.SECP256R1) or algorithm not in (None, "EC"):
            raise InvalidDeviceKey("only P-256 EC keys are supported")
        return DeviceKey("EC", normalized, key)
    if isinstance(key, rsa.RSAPublicKey):
        numbers = key.public_numbers()
        if (
            algorithm not in (None, "RSA")
            or key.key_size < 2048
            or numbers.e < 65537
            or numbers.e % 2 == 0
        ):
            raise InvalidDeviceKey("RSA keys must be 2048 bits or more with e >= 65537")
        return DeviceKey("RSA", normalized, key)
    if isinstance(key, ed25519.Ed25519PublicKey) and algorithm in (None, "ED25519"):
        return _ed25519(
            key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        )
    raise InvalidDeviceKey("unsupported key type")


def parse_public_key(value: object, algorithm: object = None) -> DeviceKey:
    """Parse and validate a device public key as an SDK sent it."""
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_KEY_CHARS:
        raise InvalidDeviceKey("public key missing or too long")
    algo = normalize_algorithm(algorithm)
    raw = b64decode_loose(value)
    if algo == "ED25519" or (algo is None and len(raw) == 32):
        return _ed25519(raw)
    return _spki(raw, algo)


def verify(
    device_key: DeviceKey, message: bytes, signature: object, *, ec_encoding: str = "der"
) -> bool:
    """Check a base64 signature over ``message`` with the pinned algorithm. Never raises
    on bad input: malformed, truncated or wrong-kind signatures are simply invalid.

    ``ec_encoding`` pins the ECDSA signature format: ``"der"`` (Cotter's SDKs) or ``"raw"``
    (64-byte R||S, as WebCrypto and JOSE produce; the native protocol)."""
    if (
        not isinstance(signature, str)
        or not signature.strip()
        or len(signature) > MAX_SIGNATURE_CHARS
    ):
        return False
    try:
        sig = b64decode_loose(signature)
    except InvalidDeviceKey:
        return False
    try:
        if device_key.algorithm == "ED25519":
            if len(sig) != 64:
                return False
            device_key.key.verify(sig, message)  # type: ignore[union-attr, call-arg]
        elif device_key.algorithm == "EC":
            if ec_encoding == "raw":
                if len(sig) != 64:
                    return False
                r, s = int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big")
                sig = encode_dss_signature(r, s)
            else:
                r, s = decode_dss_signature(sig)  # DER only; raw R||S is refused
            if not (0 < r and 0 < s):
                return False
            device_key.key.verify(sig, message, ec.ECDSA(hashes.SHA256()))  # type: ignore[union-attr, call-arg]
        elif device_key.algorithm == "RSA":
            device_key.key.verify(sig, message, padding.PKCS1v15(), hashes.SHA256())  # type: ignore[union-attr, call-arg]
        else:
            return False
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True
