"""Cotter's wire objects (reference/cotter-api.md §1.4): the User object and the Identity
response of ``POST /verify/get_identity``. Shared by every v0 endpoint that returns a user.

Output only: these functions turn domain rows into Cotter's JSON; they change nothing.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from ...conf import app_settings
from ...flows.identities import primary_identifier
from ...flows.keys import keyring
from ...flows.pkce import Redeemed
from ...models import Identifier, UserIdentity

#: ``Identifier`` rows have no UUID of their own; Cotter's identifier ``ID`` is a UUID, so
#: we derive a stable one: ``uuid5(IDENTIFIER_ID_NAMESPACE, "identifier:<pk>")``. Never
#: change this constant: clients may have stored the IDs.
IDENTIFIER_ID_NAMESPACE = uuid.UUID("c4b83932-cfdd-4ada-971b-4433ca7cfb9c")

#: Domain-separation prefix of the identity-token signature (see :func:`identity_token`).
IDENTITY_TOKEN_CONTEXT = b"authdevice-identity-token-v1\n"


def rfc3339(value: datetime | None) -> str | None:
    """``2020-08-01T05:55:57.480314Z`` (UTC, ``Z``; fraction only when non-zero)."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def identifier_id(identifier: Identifier) -> str:
    """The stable UUID string Cotter clients see as the identifier's ``ID``."""
    return str(uuid.uuid5(IDENTIFIER_ID_NAMESPACE, f"identifier:{identifier.pk}"))


def user_object(
    identity: UserIdentity,
    *,
    issuer: str,
    identifier: str | None = None,
    enrolled: Iterable[str] = (),
    default_method: str | None = None,
) -> dict[str, Any]:
    """Cotter's User object. iOS needs ``ID``, ``created_at``, ``issuer`` and
    ``client_user_id`` non-null; both ``updated_at`` and ``update_at`` (sic) are sent."""
    updated = rfc3339(identity.updated_at)
    return {
        "ID": str(identity.public_id),
        "client_user_id": identity.client_user_id,
        "created_at": rfc3339(identity.created_at),
        "updated_at": updated,
        "update_at": updated,
        "deleted_at": None,
        "issuer": issuer,
        "identifier": identifier if identifier is not None else primary_identifier(identity),
        "identifiers": None,
        "enrolled": list(enrolled),
        "default_method": default_method,
    }


def sign_identity_token(
    identifier: str, identifier_type: str, receiver: str, expire_at: str
) -> str:
    """ES256 signature of an identity token, standard base64 of the raw ``r || s`` (64 bytes).

    Signed message (UTF-8): ``IDENTITY_TOKEN_CONTEXT + identifier + identifier_type +
    receiver + expire_at`` (Cotter's concatenation, §2.6, behind a domain-separation
    prefix), with the key that currently signs JWTs: any key of the JWKS verifies it.
    Cotter used Ed25519 under its own key, which no self-hosted server can reproduce.
    """
    _kid, private_key = keyring.signer()
    message = (
        IDENTITY_TOKEN_CONTEXT + f"{identifier}{identifier_type}{receiver}{expire_at}".encode()
    )
    der = private_key.sign(message, ec.ECDSA(hashes.SHA256()))
    r, s = decode_dss_signature(der)
    return base64.b64encode(r.to_bytes(32, "big") + s.to_bytes(32, "big")).decode("ascii")


def identity_response(
    redeemed: Redeemed,
    *,
    receiver: str,
    device_name: str,
    now: datetime,
) -> dict[str, Any]:
    """Cotter's Identity response without ``oauth_token`` (the view adds it).

    ``timestamp`` is the redemption time; ``expiry``/``expire_at`` is that plus the ID
    token lifetime (the identity token is an identity assertion, like the ID token).
    """
    row = redeemed.identifier
    ident_id = identifier_id(row)
    issued = now.replace(microsecond=0)
    expiry = issued + timedelta(seconds=int(app_settings.ID_TOKEN_LIFETIME))
    expire_at = str(int(expiry.timestamp()))
    return {
        "identifier": {
            "ID": ident_id,
            "created_at": rfc3339(row.created_at),
            "deleted_at": None,
            "update_at": rfc3339(row.verified_at or row.created_at),
            "identifier": row.value,
            "identifier_type": row.kind,
            "public_key": "",
            "device_type": "BROWSER",
            "device_name": device_name,
            "expiry": rfc3339(expiry),
            "timestamp": rfc3339(issued),
        },
        "token": {
            "identifier_id": ident_id,
            "expire_at": expire_at,
            "identifier": row.value,
            "identifier_type": row.kind,
            "receiver": receiver,
            "signature": sign_identity_token(row.value, row.kind, receiver, expire_at),
            "timestamp": str(int(issued.timestamp())),
        },
        "user": user_object(redeemed.identity, issuer=receiver, identifier=row.value),
    }
