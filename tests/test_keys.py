from __future__ import annotations

import base64
from datetime import timedelta

import pytest
import time_machine
from cryptography.hazmat.primitives import serialization
from django.db import transaction
from django.utils import timezone

from authdevice.conf import app_settings
from authdevice.crypto import keys as keycrypto
from authdevice.flows import keys as key_flows
from authdevice.flows.keys import keyring, rotate_signing_key
from authdevice.models import AuthEvent, SigningKey


def jwks_kids():
    keyring.invalidate()
    return [k["kid"] for k in keyring.jwks()["keys"]]


@pytest.mark.django_db
def test_first_key_is_created_on_demand_and_encrypted_at_rest():
    assert SigningKey.objects.count() == 0
    kid, private = keyring.signer()
    row = SigningKey.objects.get()
    assert row.kid == kid and row.generation == 1
    der = private.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    blob = row.private_key_encrypted
    assert blob.startswith("v1.")
    raw = base64.urlsafe_b64decode(blob[3:] + "==")
    assert der not in raw and der[-32:] not in raw  # neither the DER nor the scalar
    d = private.private_numbers().private_value.to_bytes(32, "big")
    assert base64.urlsafe_b64encode(d).rstrip(b"=").decode() not in blob
    assert "d" not in row.public_jwk
    assert AuthEvent.objects.filter(event="KEY_ROTATED").count() == 1
    assert kid not in repr(private) and "v1." not in repr(row)


@pytest.mark.django_db(transaction=True)
def test_a_first_key_made_in_a_transaction_that_rolls_back_never_signs_again():
    """security.md M01: found by fault injection. The first key is made on demand, inside
    whatever transaction asked for a signature; when that rolls back, the key is gone, and
    the process must not go on signing with it (no verifier could check those tokens)."""

    class Failed(Exception):
        pass

    keyring.invalidate()
    with pytest.raises(Failed), transaction.atomic():
        phantom, _ = keyring.signer()
        raise Failed
    assert not SigningKey.objects.exists()
    kid, _ = keyring.signer()
    assert kid != phantom
    assert SigningKey.objects.filter(kid=kid).exists() and jwks_kids() == [kid]


@pytest.mark.django_db
def test_encryption_is_bound_to_kid_and_secret(settings):
    private = keycrypto.generate_p256_key()
    blob = keycrypto.encrypt_private_key(private, "kid-1")
    assert (
        keycrypto.decrypt_private_key(blob, "kid-1").private_numbers() == private.private_numbers()
    )
    with pytest.raises(keycrypto.KeyDecryptionError):
        keycrypto.decrypt_private_key(blob, "kid-2")
    old_secret = settings.SECRET_KEY
    settings.SECRET_KEY = "a-new-secret-key-that-is-long-enough-0123456789"
    with pytest.raises(keycrypto.KeyDecryptionError):
        keycrypto.decrypt_private_key(blob, "kid-1")
    settings.SECRET_KEY_FALLBACKS = [old_secret]
    assert (
        keycrypto.decrypt_private_key(blob, "kid-1").private_numbers() == private.private_numbers()
    )


@pytest.mark.django_db
def test_rotation_publishes_before_signing_and_retires_after_max_lifetime():
    old_kid, _ = keyring.signer()
    new = rotate_signing_key()
    delay = app_settings.KEY_PUBLISH_DELAY
    assert new.not_before > timezone.now() + timedelta(seconds=delay - 5)
    # Published at once, but the old key keeps signing (and stays first in the JWKS).
    assert jwks_kids() == [old_kid, new.kid]
    assert keyring.signer()[0] == old_kid
    with time_machine.travel(new.not_before + timedelta(seconds=1)):
        keyring.invalidate()
        assert keyring.signer()[0] == new.kid
        assert jwks_kids() == [new.kid, old_kid]
    lifetime = app_settings.key_retention
    with time_machine.travel(new.not_before + timedelta(seconds=lifetime - 1)):
        assert old_kid in jwks_kids()
    with time_machine.travel(new.not_before + timedelta(seconds=lifetime + 1)):
        assert jwks_kids() == [new.kid]


@pytest.mark.django_db
def test_immediate_rotation_and_revocation():
    old_kid, _ = keyring.signer()
    new = rotate_signing_key(immediate=True)
    keyring.invalidate()
    assert keyring.signer()[0] == new.kid
    assert set(jwks_kids()) == {old_kid, new.kid}
    key_flows.revoke_signing_key(old_kid, actor="test")
    assert jwks_kids() == [new.kid]
    assert SigningKey.objects.get(kid=old_kid).private_key_encrypted == ""
    # Revoking the only signing key: the next signature comes from a fresh key.
    key_flows.revoke_signing_key(new.kid, actor="test")
    keyring.invalidate()
    third, _ = keyring.signer()
    assert third not in (old_kid, new.kid)
    assert AuthEvent.objects.filter(event="KEY_REVOKED").count() == 2


@pytest.mark.django_db
def test_scheduled_rotation_and_purge():
    keyring.signer()
    assert key_flows.rotate_if_due() is None
    later = timezone.now() + timedelta(days=app_settings.KEY_ROTATION_DAYS + 1)
    with time_machine.travel(later):
        new = key_flows.rotate_if_due()
        assert new is not None
        assert key_flows.rotate_if_due() is None  # the new key is young
    with time_machine.travel(later + timedelta(days=1)):
        assert key_flows.purge_retired_private_keys() == 1
    assert SigningKey.objects.get(generation=1).private_key_encrypted == ""


@pytest.mark.django_db
def test_undecryptable_key_makes_signing_unavailable(settings):
    from authdevice.flows.errors import SigningUnavailable

    keyring.signer()
    keyring.invalidate()
    keyring._private.clear()
    settings.AUTHDEVICE_KEY_ENCRYPTION_SECRET = "another-secret-that-is-long-enough-000000"
    with pytest.raises(SigningUnavailable):
        keyring.signer()


def test_rotate_command_and_admin_action(db, admin_client):
    import io
    import json

    from django.core.management import call_command

    keyring.signer()
    out = io.StringIO()
    call_command("authdevice_rotate_keys", "--json", stdout=out)
    data = json.loads(out.getvalue())
    assert SigningKey.objects.filter(kid=data["kid"], generation=2).exists()
    first = SigningKey.objects.get(generation=1)
    response = admin_client.post(
        "/admin/authdevice/signingkey/",
        {"action": "rotate", "_selected_action": [first.pk]},
    )
    assert response.status_code == 302
    assert SigningKey.objects.filter(generation=3).exists()
    page = admin_client.get(f"/admin/authdevice/signingkey/{first.pk}/change/").content.decode()
    assert first.kid in page
    assert first.private_key_encrypted not in page
