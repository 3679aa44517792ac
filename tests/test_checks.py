from __future__ import annotations

import pytest
from django.core import checks
from django.core.cache.backends.locmem import LocMemCache
from django.core.checks import run_checks

from authdevice.flows.applications import create_application


class TunedLocMemCache(LocMemCache):
    """A project's own LocMemCache: still one store per process."""


def ids(**kwargs):
    return {m.id for m in run_checks(tags=["security"], **kwargs) if m.id.startswith("authdevice.")}


def test_defaults_of_the_example_site_pass(settings):
    settings.DEBUG = True
    assert ids() == set()


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("AUTHDEVICE_ISSUER", None, "authdevice.E001"),
        ("AUTHDEVICE_LEEWAY", 120, "authdevice.E002"),
        ("AUTHDEVICE_ACCESS_TOKEN_LIFETIME", 10, "authdevice.E003"),
        ("AUTHDEVICE_ID_TOKEN_LIFETIME", 10 * 86400, "authdevice.E003"),
        ("AUTHDEVICE_REFRESH_TOKEN_IDLE_LIFETIME", 10**9, "authdevice.E004"),
        ("AUTHDEVICE_KEY_PUBLISH_DELAY", 0, "authdevice.W002"),
        ("AUTHDEVICE_KEY_PROVIDER", "no.such.Provider", "authdevice.E005"),
        (
            "AUTHDEVICE_KEY_PROVIDER",
            "authdevice.crypto.keyprovider.JWKSURLKeyProvider",
            "authdevice.E006",
        ),
        ("AUTHDEVICE_KEY_ENCRYPTION_SECRET", "short", "authdevice.W003"),
        ("AUTHDEVICE_CHALLENGE_LIFETIME", 3600, "authdevice.W005"),
        ("AUTHDEVICE_AUTHORIZATION_CODE_LIFETIME", 3600, "authdevice.W005"),
        ("AUTHDEVICE_IDENTIFIER_FAILURE_LIMIT", 1000, "authdevice.W006"),
    ],
)
def test_dangerous_settings_are_reported(settings, name, value, expected):
    settings.DEBUG = True
    setattr(settings, name, value)
    assert expected in ids()


def test_plain_http_issuer_warns_in_production(settings):
    settings.DEBUG = False
    assert "authdevice.W001" in ids()
    settings.AUTHDEVICE_ISSUER = "https://auth.example.com"
    assert "authdevice.W001" not in ids()


@pytest.mark.django_db
def test_legacy_enrolment_switch_warns(settings):
    settings.DEBUG = True
    create_application(name="Modern")
    assert "authdevice.W010" not in ids(databases=["default"])
    create_application(name="Old app", allow_unauthenticated_enrolment=True)
    assert "authdevice.W010" in ids(databases=["default"])


@pytest.mark.django_db
def test_saved_urls_that_break_the_rules_warn(settings):
    from authdevice.models import Application

    settings.DEBUG = True
    app, _secret = create_application(name="Fine", redirect_urls=["https://app.example.com/cb"])
    assert "authdevice.W011" not in ids(databases=["default"])
    # Saved before the rules (or straight into the database): /app would still use them.
    Application.objects.filter(pk=app.pk).update(
        redirect_urls=["myapp://callback"], allowed_origins=["http://app.example.com"]
    )
    messages = [m for m in run_checks(databases=["default"]) if m.id == "authdevice.W011"]
    assert len(messages) == 2 and all("'Fine'" in m.msg for m in messages)


# --------------------------------------------------------------------------- J04

LOCMEM = {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
DUMMY = {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}
REDIS = {
    "BACKEND": "django.core.cache.backends.redis.RedisCache",
    "LOCATION": "redis://127.0.0.1:1/0",  # never connected to: checks only read CACHES
}


def ratelimit_messages():
    return [
        m
        for m in run_checks(tags=["security"])
        if m.id in {"authdevice.W004", "authdevice.E007", "authdevice.E008"}
    ]


@pytest.mark.parametrize(
    ("backend", "expected"),
    [(LOCMEM, "authdevice.W004"), (DUMMY, "authdevice.E007"), (REDIS, None)],
)
def test_per_process_ratelimit_cache_is_reported_in_production(settings, backend, expected):
    settings.DEBUG = False
    settings.CACHES = {"default": backend}
    found = ratelimit_messages()
    assert [m.id for m in found] == ([expected] if expected else [])
    for message in found:
        assert "AUTHDEVICE_RATELIMIT_CACHE" in message.msg
        assert "django.core.cache.backends.redis.RedisCache" in str(message.hint)
    if expected == "authdevice.W004":
        assert found[0].level == checks.WARNING
    if expected == "authdevice.E007":
        assert found[0].is_serious()  # a DummyCache never counts: limits never apply


@pytest.mark.parametrize("backend", [LOCMEM, DUMMY])
def test_local_ratelimit_cache_is_fine_with_debug_on(settings, backend):
    """``make run`` (DEBUG=1, no REDIS_URL) uses LocMemCache: no message."""
    settings.DEBUG = True
    settings.CACHES = {"default": backend}
    assert ratelimit_messages() == []


def test_the_ratelimit_alias_is_the_one_checked(settings):
    settings.DEBUG = False
    settings.CACHES = {"default": LOCMEM, "limits": REDIS}
    settings.AUTHDEVICE_RATELIMIT_CACHE = "limits"
    assert ratelimit_messages() == []
    settings.CACHES = {"default": REDIS, "limits": DUMMY}
    assert [m.id for m in ratelimit_messages()] == ["authdevice.E007"]


def test_a_locmem_subclass_is_still_per_process(settings):
    settings.DEBUG = False
    settings.CACHES = {"default": {"BACKEND": "tests.test_checks.TunedLocMemCache"}}
    assert [m.id for m in ratelimit_messages()] == ["authdevice.W004"]


@pytest.mark.parametrize("debug", [True, False])
def test_unknown_ratelimit_alias_is_an_error(settings, debug):
    settings.DEBUG = debug
    settings.AUTHDEVICE_RATELIMIT_CACHE = "nope"
    assert [m.id for m in ratelimit_messages()] == ["authdevice.E008"]


def test_example_site_test_settings_raise_no_ratelimit_error():
    """The settings the suite runs with (DEBUG off, LocMemCache unless REDIS_URL is set)
    get at most the warning: nothing that stops ``migrate`` or ``runserver``."""
    assert not any(m.is_serious() for m in ratelimit_messages())
