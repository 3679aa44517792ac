"""gunicorn settings for the WSGI part of authdevice (every endpoint that does not wait).

``header_map = "dangerous"``: gunicorn >= 22 drops headers with underscores by default, and
Cotter's SDKs send ``API_KEY_ID``. The header only names a public API key; authdevice never
trusts a header for identity, so the dash/underscore ambiguity gives an attacker nothing.
"""

import os

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "sync"
header_map = "dangerous"
accesslog = "-" if os.environ.get("GUNICORN_ACCESS_LOG") else None
