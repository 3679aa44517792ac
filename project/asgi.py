"""ASGI entry point of the example site: the same Django project as ``project.wsgi``.

Run it only for the endpoints that wait (server-sent events and ``?wait=`` long-polls):
``/api/v1/approvals/<id>`` with ``?wait=`` or ``Accept: text/event-stream``, and
``/api/v0/event/get/<id>?wait=``. Django serves ordinary views several times slower
under ASGI than under WSGI, so everything else goes to gunicorn (``project.wsgi``); see
README "Serving: gunicorn and uvicorn behind one proxy".

    python -m uvicorn project.asgi:application --workers 2 --lifespan off \\
        --host 127.0.0.1 --port 8001

With several workers set ``AUTHDEVICE_REDIS_URL``: an approval handled by any process
(gunicorn or another uvicorn worker) wakes the waiter at once through Redis pub/sub;
without it, waiters re-check the database every 25 ms.
"""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

from authdevice.asgi import keep_api_key_headers

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
django_application = get_asgi_application()

# Django's ASGI handler drops underscore headers; Cotter's SDKs send API_KEY_ID.
application = keep_api_key_headers(django_application)
