"""System checks that refuse dangerous configurations."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register
from django.db import DatabaseError
from django.utils.module_loading import import_string
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

from .conf import app_settings

REDIS_HINT = _(
    "Point AUTHDEVICE_RATELIMIT_CACHE at a cache every process shares, e.g. Redis: "
    "{'BACKEND': 'django.core.cache.backends.redis.RedisCache', 'LOCATION': 'redis://…'}."
)


@register(Tags.security)
def check_settings(app_configs: Any = None, **kwargs: Any) -> list:
    errors: list = []
    issuer = app_settings.ISSUER
    if not issuer:
        errors.append(
            Error(
                "AUTHDEVICE_ISSUER is not set.",
                hint="Set it to this server's public URL, e.g. 'https://auth.example.com'.",
                id="authdevice.E001",
            )
        )
    elif not settings.DEBUG and not str(issuer).startswith("https://"):
        errors.append(
            Warning(
                "AUTHDEVICE_ISSUER is not an https URL while DEBUG is off.",
                id="authdevice.W001",
            )
        )
    if not 0 <= int(app_settings.LEEWAY) <= 60:
        errors.append(
            Error("AUTHDEVICE_LEEWAY must be between 0 and 60 seconds.", id="authdevice.E002")
        )
    for name in ("ACCESS_TOKEN_LIFETIME", "ID_TOKEN_LIFETIME"):
        value = int(getattr(app_settings, name))
        if not 60 <= value <= 24 * 3600:
            errors.append(
                Error(
                    f"AUTHDEVICE_{name} must be between 60 and 86400 seconds.", id="authdevice.E003"
                )
            )
    if int(app_settings.REFRESH_TOKEN_IDLE_LIFETIME) > int(
        app_settings.REFRESH_TOKEN_ABSOLUTE_LIFETIME
    ):
        errors.append(
            Error(
                "AUTHDEVICE_REFRESH_TOKEN_IDLE_LIFETIME exceeds the absolute lifetime.",
                id="authdevice.E004",
            )
        )
    if int(app_settings.KEY_PUBLISH_DELAY) < int(app_settings.KEY_CACHE_SECONDS) + int(
        app_settings.JWKS_MAX_AGE
    ):
        errors.append(
            Warning(
                "AUTHDEVICE_KEY_PUBLISH_DELAY is shorter than KEY_CACHE_SECONDS + JWKS_MAX_AGE.",
                hint="Verifiers with a cached JWKS may see tokens signed by a key they do not know yet.",
                id="authdevice.W002",
            )
        )
    try:
        provider = import_string(app_settings.KEY_PROVIDER)
    except ImportError:
        errors.append(Error("AUTHDEVICE_KEY_PROVIDER cannot be imported.", id="authdevice.E005"))
    else:
        if provider.__name__ == "JWKSURLKeyProvider" and not app_settings.JWKS_URL:
            errors.append(
                Error("JWKSURLKeyProvider needs AUTHDEVICE_JWKS_URL.", id="authdevice.E006")
            )
    for name, low, high in (
        ("CHALLENGE_LIFETIME", 30, 600),
        ("AUTHORIZATION_CODE_LIFETIME", 10, 300),
    ):
        value = int(getattr(app_settings, name))
        if not low <= value <= high:
            errors.append(
                Warning(
                    f"AUTHDEVICE_{name} is {value} seconds; {max(low, min(value, high))} is "
                    "used instead.",
                    hint=f"Codes are short-lived by design: from {low} to {high} seconds.",
                    id="authdevice.W005",
                )
            )
    if not 1 <= int(app_settings.IDENTIFIER_FAILURE_LIMIT) <= 100:
        errors.append(
            Warning(
                "AUTHDEVICE_IDENTIFIER_FAILURE_LIMIT should be between 1 and 100.",
                hint="NIST SP 800-63B 3.2.2 caps consecutive failures at 100.",
                id="authdevice.W006",
            )
        )
    if (
        settings.SECRET_KEY
        and len(str(app_settings.KEY_ENCRYPTION_SECRET or settings.SECRET_KEY)) < 32
    ):
        errors.append(
            Warning(
                "The key-encryption secret (AUTHDEVICE_KEY_ENCRYPTION_SECRET or SECRET_KEY) "
                "is shorter than 32 characters.",
                id="authdevice.W003",
            )
        )
    return errors


@register(Tags.security, Tags.database)
def check_legacy_enrolment(app_configs: Any = None, **kwargs: Any) -> list:
    """Warn while any application allows Cotter's unauthenticated device enrolment."""
    from .models import Application

    try:
        names = list(
            Application.objects.filter(
                allow_unauthenticated_enrolment=True, is_active=True
            ).values_list("name", flat=True)[:10]
        )
    except (DatabaseError, RuntimeError):
        # No database yet (before migrate), or database access is blocked (tests).
        return []
    if not names:
        return []
    return [
        Warning(
            "Applications allow unauthenticated trusted-device enrolment: " + ", ".join(names),
            hint="Anyone who knows a user id can enrol a device for them. Turn it off once "
            "your apps send a bearer token when enrolling.",
            id="authdevice.W010",
        )
    ]


@register(Tags.security, Tags.database)
def check_application_urls(app_configs: Any = None, **kwargs: Any) -> list:
    """Warn about applications whose redirect URLs or origins break today's registration
    rules (saved before they existed, or written to the database directly): ``/app``
    still redirects to an exact match of them."""
    from django.core.exceptions import ValidationError

    from .models import Application
    from .models.applications import validate_origin, validate_redirect_url

    try:
        rows = list(
            Application.objects.filter(is_active=True).values_list(
                "name", "redirect_urls", "allowed_origins"
            )
        )
    except (DatabaseError, RuntimeError):
        return []
    found: list = []
    for name, urls, origins in rows:
        for values, validate in ((urls, validate_redirect_url), (origins, validate_origin)):
            for value in values or []:
                try:
                    validate(value)
                except ValidationError as exc:
                    found.append(
                        Warning(
                            f"Application {name!r}: {' '.join(exc.messages)}",
                            hint="Change it in the admin: RFC 8252 redirect URLs (https, "
                            "loopback http, com.example.app:/callback).",
                            id="authdevice.W011",
                        )
                    )
    return found[:20]


@register(Tags.security, Tags.caches)
def check_ratelimit_cache(app_configs: Any = None, **kwargs: Any) -> list:
    """Rate limits (code guesses, sends) only hold if every process counts in one store:
    refuse a per-process or non-counting cache for AUTHDEVICE_RATELIMIT_CACHE in production
    (security.md J04). With DEBUG on (``make run``) a local cache is fine; an alias missing
    from CACHES is an error either way."""
    from django.core.cache.backends.dummy import DummyCache
    from django.core.cache.backends.locmem import LocMemCache

    alias = app_settings.RATELIMIT_CACHE
    config = getattr(settings, "CACHES", {}).get(alias)
    if config is None:
        return [
            Error(
                _("AUTHDEVICE_RATELIMIT_CACHE names a cache that is not in CACHES: %(alias)r.")
                % {"alias": alias},
                hint=format_lazy(
                    "{} {}",
                    _("Every code verification would answer 503 (rate limits fail closed)."),
                    REDIS_HINT,
                ),
                id="authdevice.E008",
            )
        ]
    if settings.DEBUG:
        return []
    try:
        backend = import_string(config.get("BACKEND", ""))
    except ImportError:
        return []  # Django reports a cache it cannot load when the cache is first used
    if not isinstance(backend, type):
        return []
    if issubclass(backend, DummyCache):
        return [
            Error(
                _(
                    "AUTHDEVICE_RATELIMIT_CACHE (%(alias)r) is a DummyCache: it stores nothing, "
                    "so rate limits never apply (unlimited code guesses)."
                )
                % {"alias": alias},
                hint=REDIS_HINT,
                id="authdevice.E007",
            )
        ]
    if issubclass(backend, LocMemCache):
        return [
            Warning(
                _(
                    "AUTHDEVICE_RATELIMIT_CACHE (%(alias)r) is a LocMemCache: each process "
                    "counts on its own, so with several workers (or after a restart) rate "
                    "limits undercount."
                )
                % {"alias": alias},
                hint=REDIS_HINT,
                id="authdevice.W004",
            )
        ]
    return []
