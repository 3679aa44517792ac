"""Settings of the example site. Everything comes from the environment, with safe defaults
for local development (``make run``). See README "Configuration"."""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url
from django.core.management.utils import get_random_secret_key

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG", False)


def _secret_key() -> str:
    value = os.environ.get("SECRET_KEY")
    if value:
        return value
    # Development only: a random key kept in a git-ignored file so signing keys stay readable.
    path = BASE_DIR / ".secret_key"
    if not path.exists():
        path.write_text(get_random_secret_key() + get_random_secret_key())
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret_key()
SECRET_KEY_FALLBACKS = env_list("SECRET_KEY_FALLBACKS")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]")

INSTALLED_APPS = [
    # authdevice first: its runserver keeps the API_KEY_ID header.
    "authdevice",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_otp",
    *env_list("EXTRA_INSTALLED_APPS"),
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "project.urls"
WSGI_APPLICATION = "project.wsgi.application"
ASGI_APPLICATION = "project.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# SQLite by default (WAL, synchronous=NORMAL, IMMEDIATE transactions: no "database is
# locked" on lock upgrades); DATABASE_URL=postgres://... for PostgreSQL.
DATABASE_URL = os.environ.get("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}")
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=600)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Django's backend, but waiting for the write lock in 50 µs steps rather than
    # SQLite's 1 ms-and-up busy handler (authdevice/db/backends/sqlite3/base.py).
    DATABASES["default"]["ENGINE"] = "authdevice.db.backends.sqlite3"
    DATABASES["default"]["CONN_MAX_AGE"] = None
    DATABASES["default"]["OPTIONS"] = {
        # Checkpoint every 10,000 WAL pages (~40 MB) rather than 1,000: the pages every
        # sign-in rewrites (index leaves, the tables' last pages) are copied back once per
        # checkpoint, so fewer checkpoints write much less (benchmarks/README.md).
        "init_command": (
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA wal_autocheckpoint=10000;"
        ),
        "transaction_mode": "IMMEDIATE",
        "timeout": 5,
    }
    DATABASES["default"]["TEST"] = (
        {"NAME": os.environ.get("SQLITE_TEST_NAME")} if os.environ.get("SQLITE_TEST_NAME") else {}
    )

AUTH_USER_MODEL = os.environ.get("AUTH_USER_MODEL", "auth.User")
LOGIN_URL = "authdevice_web:signin"
LOGIN_REDIRECT_URL = "/"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
# Serve straight from the finders in development and tests (no collectstatic needed).
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

# Redis: shared cache (rate limits, replay caches) and Celery broker. Unset: local memory
# cache and Celery in eager mode (tasks run in the web process, after commit).
REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", REDIS_URL or "memory://")
CELERY_TASK_ALWAYS_EAGER = not (os.environ.get("CELERY_BROKER_URL") or REDIS_URL)
# Eager mode behaves like a worker: a failed send retries (at once) instead of failing
# the web request that enqueued it.
CELERY_TASK_EAGER_PROPAGATES = False
CELERY_TASK_ACKS_LATE = True
CELERY_BROKER_CONNECTION_TIMEOUT = 3
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A broker outage must answer the sign-in request quickly with a clear error.
CELERY_TASK_PUBLISH_RETRY = False
# Publishing (the web process enqueueing a send): one quick retry, then the caller gets
# 503 at once; kombu's default (retry until CELERY_BROKER_CONNECTION_TIMEOUT) took ~6 s.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "socket_connect_timeout": 2,
    "socket_timeout": 2,
    "max_retries": 1,
    "interval_start": 0.2,
    "interval_step": 0.2,
    "interval_max": 0.5,
}

# Codes and links: email through Django mail, SMS printed to the console unless a provider
# is configured (AUTHDEVICE_SMS_BACKEND=authdevice.channels.twilio.TwilioBackend + TWILIO_*).
AUTHDEVICE_CHANNELS = {
    "EMAIL": os.environ.get("AUTHDEVICE_EMAIL_BACKEND", "authdevice.channels.email.EmailBackend"),
    "SMS": os.environ.get("AUTHDEVICE_SMS_BACKEND", "authdevice.channels.console.ConsoleBackend"),
    "WHATSAPP": os.environ.get("AUTHDEVICE_WHATSAPP_BACKEND") or None,
}
EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "authdevice <no-reply@localhost>")

REST_FRAMEWORK = {
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_AUTHENTICATION_CLASSES": ["authdevice.api.authentication.AccessTokenAuthentication"],
    "UNAUTHENTICATED_USER": None,
}

# Security headers. HTTPS-only settings switch on with SECURE_SSL=1 (behind TLS).
SECURE_SSL = env_bool("SECURE_SSL", False)
SECURE_SSL_REDIRECT = SECURE_SSL
SESSION_COOKIE_SECURE = SECURE_SSL
CSRF_COOKIE_SECURE = SECURE_SSL
SECURE_HSTS_SECONDS = 31536000 if SECURE_SSL else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_SSL
# Asking browsers to preload HSTS for the whole domain is hard to undo: opt in.
SECURE_HSTS_PRELOAD = SECURE_SSL and env_bool("SECURE_HSTS_PRELOAD", False)
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_X_FORWARDED_PROTO", "https") if env_bool("BEHIND_PROXY", False) else None
)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

# authdevice: every AUTHDEVICE_* variable in the environment becomes a setting.
AUTHDEVICE_ISSUER = os.environ.get("AUTHDEVICE_ISSUER", "http://127.0.0.1:8000")


def _authdevice_from_env() -> dict[str, object]:
    """Every AUTHDEVICE_<NAME> environment variable, parsed by the type of its default."""
    from dataclasses import fields

    from authdevice.conf import Defaults

    values: dict[str, object] = {}
    for field in fields(Defaults):
        raw = os.environ.get(f"AUTHDEVICE_{field.name}")
        if raw is None or field.name in ("ISSUER", "CHANNELS"):
            continue
        default = getattr(Defaults, field.name)
        if isinstance(default, bool):
            values[field.name] = env_bool(f"AUTHDEVICE_{field.name}", default)
        elif isinstance(default, int):
            values[field.name] = int(raw)
        elif isinstance(default, tuple) or field.name == "ACCEPTED_AUDIENCES":
            values[field.name] = tuple(env_list(f"AUTHDEVICE_{field.name}"))
        else:
            values[field.name] = raw
    return values


for _name, _value in _authdevice_from_env().items():
    globals()[f"AUTHDEVICE_{_name}"] = _value

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {
        "authdevice": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")}
    },
}
