"""security.md B04: the device-signature helper (``authdevice.crypto.devicekeys.verify``)
against the classes of malformed signatures that Wycheproof catalogues, written here from
the curve parameters: special values of r and s (0, 1, n - 1, n, n + 1, p, p + 1, all
ones), r or s shifted by n or by a power of two, the wrong size, every truncation and
extension, the other encoding, and (Hypothesis) any byte changed anywhere. Ed25519: S
shifted by the group order, and the same random mutations.

Exactly the valid signatures verify, and nothing raises. The Wycheproof JSON files are
not vendored (their data are not ours to copy in); these cases are built from the same
definitions.
"""

from __future__ import annotations

import base64
import itertools

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from authdevice.crypto.devicekeys import parse_public_key, verify

N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551  # P-256 order
P = 0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF  # P-256 field
L = 2**252 + 27742317777372353535851937790883648493  # Ed25519 group order
MESSAGE = b"authdevice/v1\x00login\x00https://auth.example.com\x00challenge\x00\x00\x00"
SPECIAL = [0, 1, N - 1, N, N + 1, P, P + 1, 2**256 - 1]

_ec_private = ec.derive_private_key(0x1234567890ABCDEF1234567890ABCDEF, ec.SECP256R1())
EC_KEY = parse_public_key(
    base64.b64encode(
        _ec_private.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    ).decode(),
    "EC",
)
R, S = decode_dss_signature(_ec_private.sign(MESSAGE, ec.ECDSA(hashes.SHA256())))
#: Both (r, s) and (r, n - s) verify: ECDSA's own malleability (the replay cache treats
#: the twin as the same signature, B03).
VALID_RS = {(R, S), (R, N - S)}

_ed_private = ed25519.Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
ED_KEY = parse_public_key(
    base64.b64encode(
        _ed_private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
    ).decode(),
    "ED25519",
)
ED_SIG = _ed_private.sign(MESSAGE)


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def raw_rs(r: int, s: int, size: int = 32) -> bytes:
    return r.to_bytes(size, "big") + s.to_bytes(size, "big")


def _der_length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def der_rs(r: int, s: int) -> bytes:
    """DER ``SEQUENCE { INTEGER r, INTEGER s }`` for any integers, negative ones included
    (two's complement, as DER writes them; ``encode_dss_signature`` refuses those)."""

    def integer(v: int) -> bytes:
        body = v.to_bytes(max(1, (v.bit_length() + 8) // 8), "big", signed=True)
        return b"\x02" + _der_length(len(body)) + body

    content = integer(r) + integer(s)
    return b"\x30" + _der_length(len(content)) + content


def check(key, signature: bytes, encoding: str = "der") -> bool:
    """verify(), which must answer and never raise."""
    return verify(key, MESSAGE, b64(signature), ec_encoding=encoding)


def test_the_valid_signatures_verify():
    for r, s in VALID_RS:
        assert check(EC_KEY, encode_dss_signature(r, s), "der")
        assert check(EC_KEY, raw_rs(r, s), "raw")
    assert check(ED_KEY, ED_SIG)
    assert not verify(EC_KEY, MESSAGE + b"x", b64(encode_dss_signature(R, S)))
    assert not verify(ED_KEY, MESSAGE + b"x", b64(ED_SIG))


@pytest.mark.parametrize(
    ("r", "s"),
    [rs for rs in itertools.product([*SPECIAL, R], [*SPECIAL, S]) if rs not in VALID_RS],
)
def test_special_values_of_r_and_s_are_refused(r, s):
    assert not check(EC_KEY, der_rs(r, s), "der")
    if r < 2**256 and s < 2**256:
        assert not check(EC_KEY, raw_rs(r, s), "raw")


@pytest.mark.parametrize(
    ("r", "s"),
    [
        (R + N, S),
        (R, S + N),
        (R + 256 * N, S),
        (R, S + 256 * N),
        (R + 2**256, S),
        (R, S + 2**256),
        (R + 2**320, S),
        (N - R, S),
        (R - N, S),
        (R, S - N),
        (-R, S),
        (R, -S),
    ],
)
def test_r_and_s_out_of_range_or_shifted_are_refused(r, s):
    assert not check(EC_KEY, der_rs(r, s), "der")


def test_wrong_sizes_and_the_other_encoding_are_refused():
    der = encode_dss_signature(R, S)
    raw = raw_rs(R, S)
    assert not check(EC_KEY, raw, "der") and not check(EC_KEY, der, "raw")
    # r and s in fewer or more bytes than 32 each (P1363 "SignatureSize").
    assert not check(EC_KEY, raw_rs(R, S, 33), "raw")
    assert not check(EC_KEY, raw[1:] + raw[:1], "raw")
    for size in range(len(raw)):
        assert not check(EC_KEY, raw[:size], "raw")
    for size in range(len(der)):
        assert not check(EC_KEY, der[:size], "der")
    for extra in (b"\x00", b"\x05\x00", bytes(32)):
        assert not check(EC_KEY, der + extra, "der")
        assert not check(EC_KEY, raw + extra, "raw")
        assert not check(ED_KEY, ED_SIG + extra)
    for size in range(len(ED_SIG)):
        assert not check(ED_KEY, ED_SIG[:size])
    # DER that BER would accept: a long-form length, a leading zero on r.
    r_bytes = b"\x00" + der[4 : 4 + der[3]]  # one leading zero byte more than DER allows
    body = b"\x02" + bytes([len(r_bytes)]) + r_bytes + der[4 + der[3] :]
    assert not check(EC_KEY, b"\x30" + bytes([len(body)]) + body, "der")
    assert not check(EC_KEY, b"\x30\x81" + bytes([len(der) - 2]) + der[2:], "der")


def test_ed25519_s_shifted_by_the_group_order_is_refused():
    s = int.from_bytes(ED_SIG[32:], "little")
    for shifted in (s + L, s + 2 * L, s + 8 * L):
        if shifted < 2**256:
            assert not check(ED_KEY, ED_SIG[:32] + shifted.to_bytes(32, "little"))
    assert not check(ED_KEY, bytes(64))
    assert not check(ED_KEY, ED_SIG[:32] + bytes(32))


def _mutated(original: bytes, data: st.DataObject) -> bytes:
    index = data.draw(st.integers(min_value=0, max_value=len(original) - 1))
    flip = data.draw(st.integers(min_value=1, max_value=255))
    mutated = bytearray(original)
    mutated[index] ^= flip
    return bytes(mutated)


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(data=st.data())
def test_any_changed_byte_is_refused(data):
    der = encode_dss_signature(R, S)
    for key, original, encoding in (
        (EC_KEY, der, "der"),
        (EC_KEY, raw_rs(R, S), "raw"),
        (ED_KEY, ED_SIG, "der"),
    ):
        mutated = _mutated(original, data)
        if key is EC_KEY:
            try:
                rs = (
                    decode_dss_signature(mutated)
                    if encoding == "der"
                    else (int.from_bytes(mutated[:32], "big"), int.from_bytes(mutated[32:], "big"))
                )
            except ValueError:
                rs = None
            if rs in VALID_RS and (encoding == "raw" or mutated == encode_dss_signature(*rs)):
                continue  # the change produced the other valid signature
        assert not check(key, mutated, encoding)


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(junk=st.binary(max_size=200))
def test_arbitrary_bytes_never_verify_nor_raise(junk):
    for encoding in ("der", "raw"):
        assert not check(EC_KEY, junk, encoding)
    assert not check(ED_KEY, junk)
