"""Public identifiers: random, non-sequential, below 2**53 (safe as JavaScript numbers)."""

from __future__ import annotations

import uuid

from ..crypto.secrets import random_int_below

MAX_SAFE_INTEGER = 2**53


def random_public_int() -> int:
    return random_int_below(MAX_SAFE_INTEGER)


def new_uuid() -> uuid.UUID:
    return uuid.uuid4()


def new_api_key_id() -> str:
    return str(uuid.uuid4())
