from __future__ import annotations

import pytest
from django.core.checks import run_checks

from authdevice.flows.applications import create_application


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
