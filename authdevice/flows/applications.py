from __future__ import annotations

import threading
import time
from collections.abc import Iterable

from django.core.exceptions import ValidationError
from django.db import transaction

from ..conf import app_settings
from ..crypto.secrets import random_token, sha256_hex
from ..models import Application
from ..models.applications import clean_allowed_origins, clean_redirect_urls
from .errors import FlowError

_cache_lock = threading.Lock()
_by_key: dict[str, tuple[float, Application]] = {}
_audiences: tuple[float, frozenset[str]] | None = None


def _new_secret(app: Application) -> str:
    secret = random_token(32)
    app.secret_hash = sha256_hex(secret)
    app.secret_hint = secret[:6]
    return secret


def _as_list(values: Iterable[str]) -> object:
    # A lone string is a mistake (it would be iterated character by character): refuse it.
    return values if isinstance(values, str) else list(values)


def validated_redirect_urls(values: Iterable[str]) -> list[str]:
    """Redirect URLs as they will be stored, or FlowError ``invalid_redirect_uri`` naming
    the first one that breaks the registration rules (security.md H08, H09; RFC 8252):
    https; http for loopback hosts only; private-use schemes in reverse-DNS form only
    (``com.example.app:/callback``); no fragment, wildcard, user information, invalid
    scheme, or ``javascript:``/``data:``/``file:``/``vbscript:``."""
    try:
        return clean_redirect_urls(_as_list(values))
    except ValidationError as exc:
        raise FlowError(exc.messages[0], code="invalid_redirect_uri") from exc


def validated_origins(values: Iterable[str]) -> list[str]:
    """Allowed origins as they will be stored (``scheme://host[:port]``, https or loopback
    http, trailing "/" dropped), or FlowError ``invalid_client_metadata``."""
    try:
        return clean_allowed_origins(_as_list(values))
    except ValidationError as exc:
        raise FlowError(exc.messages[0], code="invalid_client_metadata") from exc


def create_application(
    *,
    name: str,
    redirect_urls: Iterable[str] = (),
    allowed_origins: Iterable[str] = (),
    allow_unauthenticated_enrolment: bool = False,
) -> tuple[Application, str]:
    """Create an application; returns it with its secret key, which is never shown again."""
    app = Application(
        name=name.strip()[:200],
        redirect_urls=validated_redirect_urls(redirect_urls),
        allowed_origins=validated_origins(allowed_origins),
        allow_unauthenticated_enrolment=allow_unauthenticated_enrolment,
    )
    secret = _new_secret(app)
    app.save()
    return app, secret


def reset_application_secret(app: Application) -> str:
    """Replace an application's secret key; returns the new one (shown once)."""
    secret = _new_secret(app)
    app.save(update_fields=["secret_hash", "secret_hint", "updated_at"])
    transaction.on_commit(clear_application_cache)
    return secret


def get_application(api_key_id: str | None) -> Application | None:
    """The active application with this API key id, from a short in-process cache."""
    if not isinstance(api_key_id, str) or not api_key_id or len(api_key_id) > 64:
        return None
    if not api_key_id.isprintable() or not api_key_id.isascii():
        return None  # NUL and friends: PostgreSQL refuses them in queries
    now = time.monotonic()
    hit = _by_key.get(api_key_id)
    if hit is not None and now - hit[0] < app_settings.APPLICATION_CACHE_SECONDS:
        return hit[1]
    app = Application.objects.filter(api_key_id=api_key_id, is_active=True).first()
    with _cache_lock:
        if app is None:
            _by_key.pop(api_key_id, None)
        else:
            _by_key[api_key_id] = (now, app)
    return app


def accepted_audiences() -> frozenset[str]:
    """API key ids whose tokens this site accepts (``AUTHDEVICE_ACCEPTED_AUDIENCES``)."""
    global _audiences
    configured = app_settings.ACCEPTED_AUDIENCES
    if configured is not None:
        return frozenset(configured)
    now = time.monotonic()
    if _audiences is not None and now - _audiences[0] < app_settings.APPLICATION_CACHE_SECONDS:
        return _audiences[1]
    ids = frozenset(Application.objects.filter(is_active=True).values_list("api_key_id", flat=True))
    _audiences = (now, ids)
    return ids


_origins: tuple[float, frozenset[str]] | None = None


def origin_allowed_anywhere(origin: str) -> bool:
    """Whether any active application lists ``origin`` (for CORS preflights, which do not
    carry the API_KEY_ID header's value). Cached like the applications."""
    global _origins
    now = time.monotonic()
    if _origins is None or now - _origins[0] >= app_settings.APPLICATION_CACHE_SECONDS:
        allowed: set[str] = set()
        for origins in Application.objects.filter(is_active=True).values_list(
            "allowed_origins", flat=True
        ):
            allowed.update(o for o in origins or [] if isinstance(o, str))
        _origins = (now, frozenset(allowed))
    return origin in _origins[1]


def clear_application_cache() -> None:
    global _audiences, _origins
    with _cache_lock:
        _by_key.clear()
        _audiences = None
        _origins = None
