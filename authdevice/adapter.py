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
