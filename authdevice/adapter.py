"""The adapter: hooks a site overrides by subclassing and naming its class in
``AUTHDEVICE_ADAPTER`` (dotted path)."""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any

from django.utils.module_loading import import_string

from .conf import app_settings

if TYPE_CHECKING:
    from .models import Application, UserIdentity


class DefaultAdapter:
    """Default behaviour. Every method is a public hook."""

    def is_signup_allowed(self, kind: str, value: str) -> bool:
        """Whether a first sign-in with an unknown identifier may create a user."""
        return bool(app_settings.ALLOW_SIGNUP)

    def create_user(self, kind: str, value: str) -> Any:
        """Create the Django user for a first sign-in with ``value`` (normalised email or
        E.164 phone). The default fills ``USERNAME_FIELD`` (and ``email`` for emails) and
        sets an unusable password. Runs inside the sign-in transaction."""
        from django.contrib.auth import get_user_model
        from django.db import IntegrityError, transaction

        from .crypto.secrets import random_token

        user_model = get_user_model()
        field_names = {f.name for f in user_model._meta.get_fields()}
        fields: dict[str, Any] = {}
        if kind == "EMAIL" and "email" in field_names:
            fields["email"] = value
        username_field = user_model.USERNAME_FIELD
        for candidate in (value, f"{value[:120]}-{random_token(6)}"):
            fields[username_field] = candidate
            user = user_model(**fields)
            user.set_unusable_password()
            try:
                with transaction.atomic():
                    user.save()
                return user
            except IntegrityError:
                continue
        raise RuntimeError("could not create a user")

    def extra_access_token_claims(
        self, *, identity: UserIdentity, application: Application, auth_method: str
    ) -> dict[str, Any]:
        """Custom claims merged into every access token (they cannot override standard ones)."""
        return {}

    def extra_id_token_claims(
        self, *, identity: UserIdentity, application: Application, auth_method: str
    ) -> dict[str, Any]:
        """Custom claims merged into every ID token (they cannot override standard ones)."""
        return {}


@lru_cache(maxsize=8)
def _load(path: str) -> DefaultAdapter:
    return import_string(path)()


def get_adapter() -> DefaultAdapter:
    """The configured adapter instance (one per process and dotted path)."""
    return _load(app_settings.ADAPTER)
