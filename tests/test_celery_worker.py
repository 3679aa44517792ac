"""Task delivery through a real Redis broker and a real Celery worker process."""

from __future__ import annotations

import os
import subprocess
import time
from datetime import timedelta

import pytest
from celery import Celery
from django.conf import settings
from django.db import connection
from django.utils import timezone

from authdevice.flows.keys import keyring
from authdevice.models import SigningKey
from tests.live import CELERY_WORKER, ROOT
from tests.services import require

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def worker():
    if connection.vendor != "postgresql":
        pytest.fail("the worker shares the test database: run in the PostgreSQL pass")
    redis_url = require("redis")
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "REDIS_URL": redis_url,
        # The worker must decrypt the signing keys the test process wrote.
        "SECRET_KEY": settings.SECRET_KEY,
    }
    proc = subprocess.Popen(
        CELERY_WORKER,
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    # Not the current app: the rest of the suite keeps the eager project app.
    client = Celery(broker=redis_url, set_as_current=False)
    try:
        yield client
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_worker_runs_scheduled_key_rotation(worker):
    keyring.signer()
    SigningKey.objects.update(created_at=timezone.now() - timedelta(days=400))
    worker.send_task("authdevice.rotate_signing_key_if_due")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and SigningKey.objects.count() < 2:
        time.sleep(0.2)
    assert SigningKey.objects.count() == 2
    # Idempotent: a duplicate or late delivery does not rotate again.
    worker.send_task("authdevice.rotate_signing_key_if_due")
    worker.send_task("authdevice.purge_expired_refresh_tokens")
    time.sleep(3)
    assert SigningKey.objects.count() == 2
