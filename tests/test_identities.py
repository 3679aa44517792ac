from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from authdevice.flows.errors import IdentifierTaken, InvalidIdentifier
from authdevice.flows.identities import (
    add_identifier,
    find_identity,
    identity_for_user,
    normalise_email,
    normalise_phone,
)
from authdevice.models import Identifier


def test_email_normalisation():
    assert normalise_email("  Alice@Example.COM ") == "alice@example.com"
    for bad in ["", "nope", "a@", "@b.c", "a b@c.d", "x" * 250 + "@e.com", 42]:
        with pytest.raises(InvalidIdentifier):
            normalise_email(bad)


@pytest.mark.parametrize(
    "variant",
    [
        "alice@\uff45\uff58\uff41\uff4d\uff50\uff4c\uff45.com",  # full-width letters
        "ALICE@EXAMPLE.COM",
    ],
)
def test_email_look_alikes_of_one_mailbox_are_one_identifier(variant):
    assert normalise_email(variant) == "alice@example.com"


@pytest.mark.parametrize(
    "bad",
    [
        "alice@example.com\u200b",  # zero-width space
        "alice@e\u200bxample.com",
        "alice@exam\u00adple.com",  # soft hyphen
        "al\u200dice@example.com",  # zero-width joiner in the local part
        "alice\u202e@example.com",  # bidi override
        "alice@example.com\x00",
        "alice@[127.0.0.1]",
        "alice@[IPv6:::1]",
        "ali ce@example.com",
        "alice@exa\tmple.com",
    ],
)
def test_email_with_hidden_characters_or_ip_literals_is_refused(bad):
    with pytest.raises(InvalidIdentifier):
        normalise_email(bad)


def test_international_domains_keep_one_form():
    # The ASCII (IDNA) form mail is delivered to; composed and decomposed letters agree.
    assert normalise_email("Juergen@M\u00fcnchen.de") == "juergen@xn--mnchen-3ya.de"
    assert normalise_email("juergen@mu\u0308nchen.de") == "juergen@xn--mnchen-3ya.de"
    assert normalise_email("juergen@xn--mnchen-3ya.de") == "juergen@xn--mnchen-3ya.de"


def test_phone_normalisation_to_e164(settings):
    assert normalise_phone("+1 (415) 555-2671") == "+14155552671"
    assert normalise_phone("+44 20 7946 0958") == "+442079460958"
    settings.AUTHDEVICE_DEFAULT_PHONE_REGION = "US"
    assert normalise_phone("415-555-2671") == "+14155552671"
    for bad in ["", "12", "+1 555", "not a phone", "+" + "9" * 70]:
        with pytest.raises(InvalidIdentifier):
            normalise_phone(bad)


@pytest.mark.django_db
def test_identity_has_random_public_id_not_pk():
    User = get_user_model()
    a = User.objects.create_user(username="a")
    b = User.objects.create_user(username="b")
    ia, ib = identity_for_user(a), identity_for_user(b)
    assert ia.public_id != ib.public_id
    assert str(ia.public_id) != str(a.pk)
    assert ia.client_user_id == str(ia.public_id)
    assert identity_for_user(a) == ia  # idempotent


@pytest.mark.django_db
def test_identifiers_are_unique_per_kind_and_value():
    User = get_user_model()
    a = User.objects.create_user(username="a")
    b = User.objects.create_user(username="b")
    row = add_identifier(a, "EMAIL", "Same@Example.com", verified=True)
    assert row.value == "same@example.com" and row.verified_at is not None
    assert add_identifier(a, "EMAIL", "same@example.com") == row
    with pytest.raises(IdentifierTaken):
        add_identifier(b, "EMAIL", "SAME@example.com")
    add_identifier(b, "PHONE", "+14155552671")
    assert Identifier.objects.count() == 2
    assert find_identity("same@EXAMPLE.com") == a.authdevice_identity
    assert find_identity("+1 415 555 2671") == b.authdevice_identity
    assert find_identity("nobody@example.com") is None
    assert find_identity("garbage") is None
