from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from authdevice.flows import applications as app_flows
from authdevice.flows import tokens as token_flows
from authdevice.flows.applications import create_application
from authdevice.flows.identities import add_identifier
from authdevice.flows.keys import keyring


@pytest.fixture(autouse=True)
def _fresh_caches():
    """In-process caches must not leak keys or applications between tests."""
    keyring.invalidate()
    keyring._private.clear()
    app_flows.clear_application_cache()
    token_flows._provider = None
    yield
    keyring.invalidate()
    token_flows._provider = None
    app_flows.clear_application_cache()


@pytest.fixture
def application(db):
    app, secret = create_application(
        name="Test app",
        redirect_urls=["http://localhost:18555", "https://app.example.com/cb"],
        allowed_origins=["https://app.example.com"],
    )
    app.secret = secret
    return app


@pytest.fixture
def other_application(db):
    app, secret = create_application(name="Other app")
    app.secret = secret
    return app


@pytest.fixture
def user(db):
    user = get_user_model().objects.create_user(username="alice", email="alice@example.com")
    add_identifier(user, "EMAIL", "alice@example.com", verified=True)
    return user


@pytest.fixture
def identity(user):
    return user.authdevice_identity


@pytest.fixture
def api():
    return APIClient()


@pytest.fixture
def token_set(identity, application):
    return token_flows.issue_token_set(
        identity=identity, application=application, auth_method="OTP"
    )


@pytest.fixture
def celery_broker(settings):
    """``celery_broker(url)`` takes Celery out of eager mode to publish to ``url`` and
    returns the Celery app. Celery keeps its producer pool (even in eager mode), and
    authdevice a producer per thread: both are dropped before and after, so publishing
    connects to the broker configured now."""
    from authdevice.tasks import _drop_held_producer
    from project.celery import app as celery_app

    def forget() -> None:
        _drop_held_producer()
        celery_app._pool = None
        celery_app.amqp._producer_pool = None

    def use(url: str):
        forget()
        settings.CELERY_TASK_ALWAYS_EAGER = False
        settings.CELERY_BROKER_URL = url
        return celery_app

    yield use
    forget()
