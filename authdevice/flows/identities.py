from __future__ import annotations

import unicodedata
from typing import Any

import phonenumbers
from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator
from django.db import IntegrityError, transaction
from django.utils import timezone

from ..conf import app_settings
from ..models import Identifier, UserIdentity
from .errors import FlowError, IdentifierTaken, InvalidIdentifier


class UserExists(FlowError):
    """User already exists"""  # Flutter matches this exact text (cotter-api.md §1.3).

    code = "user_exists"
    status = 409


class SignupClosed(FlowError):
    """Sign-up is closed."""

    code = "signup_closed"
    status = 403


_email_validator = EmailValidator()


# Invisible and control characters (zero-width spaces, soft hyphens, bidi controls...)
# that would make a second identifier for the same mailbox.
_HIDDEN = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp", "Zs"})


def normalise_email(value: str) -> str:
    """The canonical form of an email address: trimmed, lower-case, the domain in its
    ASCII (IDNA) form, as mail is delivered to it, so that look-alikes (full-width
    letters) of one mailbox are one identifier. Raise
    InvalidIdentifier if it is not an address, holds invisible or control characters, or
    names an IP literal instead of a domain."""
    if not isinstance(value, str):
        raise InvalidIdentifier()
    email = value.strip()
    if not email.isascii():
        if len(email) > 254 or any(unicodedata.category(ch) in _HIDDEN for ch in email):
            raise InvalidIdentifier()
        local, at, domain = email.rpartition("@")
        if not at:
            raise InvalidIdentifier()
        try:
            domain = domain.encode("idna").decode("ascii")
        except UnicodeError as exc:
            raise InvalidIdentifier() from exc
        email = f"{local}@{domain}"  # a non-ASCII local part: refused by the validator
    email = email.lower()
    if len(email) > 254 or email.endswith("]"):
        raise InvalidIdentifier()
    try:
        _email_validator(email)
    except ValidationError as exc:
        raise InvalidIdentifier() from exc
    return email


def normalise_phone(value: str, region: str | None = None) -> str:
    """A phone number in E.164 (``+14155550123``); raise InvalidIdentifier if invalid."""
    if not isinstance(value, str) or len(value) > 64:
        raise InvalidIdentifier()
    try:
        number = phonenumbers.parse(value, region or app_settings.DEFAULT_PHONE_REGION)
    except phonenumbers.NumberParseException as exc:
        raise InvalidIdentifier() from exc
    if not phonenumbers.is_valid_number(number):
        raise InvalidIdentifier()
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def guess_kind(value: str) -> str:
    return Identifier.Kind.EMAIL if "@" in (value or "") else Identifier.Kind.PHONE


def normalise_identifier(kind: str, value: str) -> str:
    if kind == Identifier.Kind.EMAIL:
        return normalise_email(value)
    if kind == Identifier.Kind.PHONE:
        return normalise_phone(value)
    raise InvalidIdentifier()


def identity_for_user(user: Any) -> UserIdentity:
    """The user's identity row, created on first use."""
    try:
        return user.authdevice_identity
    except UserIdentity.DoesNotExist:
        pass
    try:
        with transaction.atomic():
            identity = UserIdentity.objects.create(user=user)
    except IntegrityError:
        identity = UserIdentity.objects.get(user=user)
    user.authdevice_identity = identity
    return identity


def add_identifier(
    user: Any, kind: str, value: str, *, verified: bool = False, primary: bool = True
) -> Identifier:
    """Attach an email/phone to a user (normalised). Raises IdentifierTaken if another owns it."""
    normalised = normalise_identifier(kind, value)
    identity = identity_for_user(user)
    existing = Identifier.objects.filter(kind=kind, value=normalised).first()
    if existing is not None:
        if existing.identity_id != identity.pk:
            raise IdentifierTaken()
        if verified and existing.verified_at is None:
            existing.verified_at = timezone.now()
            existing.save(update_fields=["verified_at"])
        return existing
    try:
        with transaction.atomic():
            return Identifier.objects.create(
                identity=identity,
                kind=kind,
                value=normalised,
                is_primary=primary and not identity.identifiers.filter(is_primary=True).exists(),
                verified_at=timezone.now() if verified else None,
            )
    except IntegrityError as exc:
        raise IdentifierTaken() from exc


def find_identity(value: str, kind: str | None = None) -> UserIdentity | None:
    """The identity owning an email/phone (any spelling that normalises the same), or None."""
    kind = kind or guess_kind(value)
    try:
        normalised = normalise_identifier(kind, value)
    except InvalidIdentifier:
        return None
    row = (
        Identifier.objects.select_related("identity__user")
        .filter(kind=kind, value=normalised)
        .first()
    )
    return row.identity if row is not None else None


def primary_identifier(identity: UserIdentity) -> str:
    """The identifier tokens name the user by: the primary one, else the oldest; "" if none."""
    return Identifier.objects.primary_value(identity.pk)


def create_user(
    values: list[tuple[str, str]], *, client_user_id: str | None = None
) -> UserIdentity:
    """Create a user with unverified identifiers (Cotter's ``POST /user/create``) and, if
    given, a chosen client user id. Nothing here signs anybody in: the identifiers stay
    unverified until a code or link proves them."""
    from ..adapter import get_adapter
    from .devices import resolve_identity

    adapter = get_adapter()
    kind, value = values[0]
    if not adapter.is_signup_allowed(kind, value):
        raise SignupClosed()
    try:
        with transaction.atomic():
            if any(find_identity(v, k) is not None for k, v in values):
                raise UserExists()
            if client_user_id and resolve_identity(client_user_id) is not None:
                raise UserExists()
            user = adapter.create_user(kind, value)
            if client_user_id:
                UserIdentity.objects.create(user=user, client_user_id=client_user_id)
            for k, v in values:
                add_identifier(user, k, v, verified=False)
            return identity_for_user(user)
    except IntegrityError as exc:  # a concurrent create of the same user
        raise UserExists() from exc
    except IdentifierTaken as exc:
        raise UserExists() from exc
