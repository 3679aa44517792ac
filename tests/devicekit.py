"""Test helpers that play a phone: key pairs and signatures in each SDK's encoding
(reference §2.1: RN/Flutter Ed25519; iOS/Android P-256 SPKI, wrapped base64, DER sigs)."""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa


def _wrap(b64: str, width: int) -> str:
    return "\n".join(b64[i : i + width] for i in range(0, len(b64), width)) + "\n"


@dataclass
class Phone:
    kind: str  # "rn" (Ed25519), "ios" (P-256, 64-col wrap), "android" (P-256, 76-col), "rsa"
    private: object

    @classmethod
    def new(cls, kind: str = "rn") -> Phone:
        if kind == "rn":
            return cls(kind, ed25519.Ed25519PrivateKey.generate())
        if kind in ("ios", "android"):
            return cls(kind, ec.generate_private_key(ec.SECP256R1()))
        if kind == "rsa":
            return cls(kind, rsa.generate_private_key(public_exponent=65537, key_size=2048))
        raise ValueError(kind)

    @property
    def algorithm(self) -> str:
        return {"rn": "ED25519", "ios": "EC", "android": "EC", "rsa": "RSA"}[self.kind]

    @property
    def public_key(self) -> str:
        pub = self.private.public_key()  # type: ignore[attr-defined]
        if self.kind == "rn":
            raw = pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
            return base64.b64encode(raw).decode()
        der = pub.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        b64 = base64.b64encode(der).decode()
        return _wrap(b64, 64 if self.kind == "ios" else 76)

    def sign(self, message: str) -> str:
        data = message.encode()
        if self.kind == "rn":
            sig = self.private.sign(data)  # type: ignore[attr-defined]
        elif self.kind in ("ios", "android"):
            sig = self.private.sign(data, ec.ECDSA(hashes.SHA256()))  # type: ignore[attr-defined]
        else:
            sig = self.private.sign(data, padding.PKCS1v15(), hashes.SHA256())  # type: ignore[attr-defined]
        b64 = base64.b64encode(sig).decode()
        return _wrap(b64, 76) if self.kind == "android" else b64


def now_ts() -> str:
    return str(int(time.time()))


def login_message(uid: str, key: str, event: str, ts: str, approved: str = "true") -> str:
    return f"{uid}{key}{event}{ts}TRUSTED_DEVICE{approved}"


class Browser:
    """A WebCrypto-style trusted device: P-256, SPKI public key, raw R||S signatures
    (what ``crypto.subtle.sign({name: "ECDSA", hash: "SHA-256"})`` returns)."""

    def __init__(self) -> None:
        self.private = ec.generate_private_key(ec.SECP256R1())

    @property
    def public_key(self) -> str:
        der = self.private.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return base64.b64encode(der).decode()

    algorithm = "EC"

    def sign(self, message: bytes) -> str:
        from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

        r, s = decode_dss_signature(self.private.sign(message, ec.ECDSA(hashes.SHA256())))
        raw = r.to_bytes(32, "big") + s.to_bytes(32, "big")
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
