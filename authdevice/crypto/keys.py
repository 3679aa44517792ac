"""ES256 signing keys: generation, encryption at rest, JWK export."""

from __future__ import annotations

import base64
import hashlib
import json
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

from ..conf import app_settings


class KeyDecryptionError(Exception):
    """A stored private key could not be decrypted with any configured secret."""


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def generate_p256_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def public_jwk(public_key: ec.EllipticCurvePublicKey) -> dict[str, str]:
    """The public members of a P-256 key as a JWK (no ``kid``/``use``/``alg``)."""
    numbers = public_key.public_numbers()
    return {
        "kty": "EC",
        "crv": "P-256",
        "x": _b64url(numbers.x.to_bytes(32, "big")),
        "y": _b64url(numbers.y.to_bytes(32, "big")),
    }


def jwk_thumbprint(jwk: dict[str, str]) -> str:
    """RFC 7638 thumbprint of an EC public JWK (used as the ``kid``)."""
    canonical = json.dumps(
        {"crv": jwk["crv"], "kty": jwk["kty"], "x": jwk["x"], "y": jwk["y"]},
        separators=(",", ":"),
        sort_keys=True,
    )
    return _b64url(hashlib.sha256(canonical.encode("ascii")).digest())


def public_key_from_jwk(jwk: dict[str, str]) -> ec.EllipticCurvePublicKey:
    def _int(value: str) -> int:
        return int.from_bytes(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)), "big")

    if jwk.get("kty") != "EC" or jwk.get("crv") != "P-256":
        raise ValueError("only P-256 EC keys are supported")
    return ec.EllipticCurvePublicNumbers(
        _int(jwk["x"]), _int(jwk["y"]), ec.SECP256R1()
    ).public_key()


def _kek_secrets() -> list[str]:
    primary = app_settings.KEY_ENCRYPTION_SECRET or settings.SECRET_KEY
    fallbacks = list(getattr(settings, "SECRET_KEY_FALLBACKS", []) or [])
    return [primary, *fallbacks]


def _derive(secret: str, salt: bytes) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=salt, info=b"authdevice signing key v1"
    ).derive(secret.encode("utf-8"))


def encrypt_private_key(private_key: ec.EllipticCurvePrivateKey, kid: str) -> str:
    """Serialise and encrypt a private key with AES-256-GCM; the ``kid`` is bound as AAD."""
    der = private_key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    salt = os.urandom(16)
    nonce = os.urandom(12)
    ciphertext = AESGCM(_derive(_kek_secrets()[0], salt)).encrypt(nonce, der, kid.encode())
    return "v1." + _b64url(salt + nonce + ciphertext)


def decrypt_private_key(blob: str, kid: str) -> ec.EllipticCurvePrivateKey:
    version, _, payload = blob.partition(".")
    if version != "v1":
        raise KeyDecryptionError("unknown key encryption format")
    raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    salt, nonce, ciphertext = raw[:16], raw[16:28], raw[28:]
    for secret in _kek_secrets():
        try:
            der = AESGCM(_derive(secret, salt)).decrypt(nonce, ciphertext, kid.encode())
        except InvalidTag:
            continue
        key = serialization.load_der_private_key(der, password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise KeyDecryptionError("stored key is not an EC key")
        return key
    raise KeyDecryptionError(
        "cannot decrypt signing key: AUTHDEVICE_KEY_ENCRYPTION_SECRET/SECRET_KEY changed?"
    )
