"""Short-lived authenticated encryption for secrets that must travel through the task
broker (a code on its way to the mail/SMS task): the broker only ever sees ciphertext."""

from __future__ import annotations

import base64
import functools
import json
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings


class SealError(Exception):
    pass


@functools.lru_cache(maxsize=8)
def _aead(secret: str) -> AESGCM:
    # Derived once per secret (SECRET_KEY and its fallbacks): HKDF on every message cost
    # as much as the encryption.
    return AESGCM(
        HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"authdevice seal v1").derive(
            secret.encode("utf-8")
        )
    )


def seal(payload: dict[str, str], context: str) -> str:
    nonce = os.urandom(12)
    data = json.dumps(payload).encode()
    ct = _aead(settings.SECRET_KEY).encrypt(nonce, data, context.encode())
    return base64.urlsafe_b64encode(nonce + ct).decode("ascii")


def unseal(blob: str, context: str) -> dict[str, str]:
    try:
        raw = base64.urlsafe_b64decode(blob.encode("ascii"))
    except (ValueError, UnicodeEncodeError) as exc:
        raise SealError("malformed") from exc
    for secret in [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]:
        try:
            return json.loads(_aead(secret).decrypt(raw[:12], raw[12:], context.encode()))
        except InvalidTag:
            continue
    raise SealError("cannot open")
