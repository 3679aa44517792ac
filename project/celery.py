from __future__ import annotations

import os

from celery import Celery
from celery.schedules import crontab

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")

app = Celery("project")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
app.conf.beat_schedule = {
    "authdevice-rotate-signing-key": {
        "task": "authdevice.rotate_signing_key_if_due",
        "schedule": crontab(minute=17),
    },
    "authdevice-expire-events": {
        "task": "authdevice.expire_events",
        "schedule": 60.0,
    },
    "authdevice-purge-old-challenges": {
        "task": "authdevice.purge_old_challenges",
        "schedule": crontab(minute=51, hour=3),
    },
    "authdevice-purge-refresh-tokens": {
        "task": "authdevice.purge_expired_refresh_tokens",
        "schedule": crontab(minute=43, hour=3),
    },
}
