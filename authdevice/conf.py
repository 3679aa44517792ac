"""App settings: every ``AUTHDEVICE_*`` Django setting, with typed, documented defaults.

Read them through :data:`app_settings` (``from authdevice.conf import app_settings``); the
object reads ``django.conf.settings`` on every access, so ``override_settings`` works in tests.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed


@dataclass(frozen=True)
class Defaults:
    """Documented defaults. The Django setting name is ``AUTHDEVICE_`` + the field name."""

    #: ``iss`` of every token and the only issuer accepted when verifying. Required: an URL
    #: you control, e.g. ``https://auth.example.com``. No trailing slash is added or removed.
    ISSUER: str | None = None
    #: Lifetime of access tokens (and ``expires_in``), seconds. Cotter used 3600.
    ACCESS_TOKEN_LIFETIME: int = 3600
    #: Lifetime of ID tokens, seconds.
    ID_TOKEN_LIFETIME: int = 3600
    #: A refresh token unused for this long stops working (seconds; default 14 days).
    REFRESH_TOKEN_IDLE_LIFETIME: int = 14 * 24 * 3600
    #: A refresh-token family (one sign-in and all its rotations) ends this long after the
    #: sign-in, however often it is used (seconds; default 90 days).
    REFRESH_TOKEN_ABSOLUTE_LIFETIME: int = 90 * 24 * 3600
    #: Clock leeway when verifying ``exp``/``nbf``/``iat``, seconds. At most 60.
    LEEWAY: int = 30
    #: Audiences (application API key ids) that :class:`AccessTokenAuthentication` accepts.
    #: ``None`` accepts every active application of this server (cached, see
    #: ``APPLICATION_CACHE_SECONDS``).
    ACCEPTED_AUDIENCES: list[str] | None = None
    #: Where verifiers get public keys: dotted path to a key provider class.
    #: ``authdevice.flows.keys.DatabaseKeyProvider`` reads this server's keys;
    #: ``authdevice.crypto.keyprovider.JWKSURLKeyProvider`` fetches ``JWKS_URL`` (for a
    #: separate site that only verifies tokens issued by an authdevice server).
    KEY_PROVIDER: str = "authdevice.flows.keys.DatabaseKeyProvider"
    #: JWKS URL for ``JWKSURLKeyProvider``.
    JWKS_URL: str | None = None
    #: How long verifiers keep public keys before re-reading them, seconds.
    KEY_CACHE_SECONDS: int = 300
    #: An unknown ``kid`` triggers at most one key refresh per this many seconds.
    KEY_MIN_REFRESH_INTERVAL: int = 30
    #: A new signing key is published this long before it signs anything, so every
    #: verifier that caches the JWKS (``JWKS_MAX_AGE``) knows it first. Seconds.
    KEY_PUBLISH_DELAY: int = 600
    #: ``Cache-Control: max-age`` of the JWKS document, seconds. Keep below KEY_PUBLISH_DELAY.
    JWKS_MAX_AGE: int = 300
    #: Rotate the signing key automatically (Celery beat task) after this many days.
    KEY_ROTATION_DAYS: int = 90
    #: Secret used to encrypt signing keys at rest (AES-256-GCM, key derived with HKDF).
    #: Defaults to ``SECRET_KEY``; values in ``SECRET_KEY_FALLBACKS`` still decrypt.
    KEY_ENCRYPTION_SECRET: str | None = None
    #: In-process cache of application settings (api key -> application), seconds.
    APPLICATION_CACHE_SECONDS: int = 30
    #: Largest accepted JWT, bytes. Longer bearer tokens are refused before parsing.
    MAX_TOKEN_LENGTH: int = 8192
    #: Dotted path of the adapter (hooks for user creation and claims).
    ADAPTER: str = "authdevice.adapter.DefaultAdapter"
    #: Public base URL used to build links in messages (magic links). Never taken from the
    #: request's Host header. Defaults to ``ISSUER``.
    BASE_URL: str | None = None
    #: Lifetime of a sign-in challenge (its code and magic link), seconds. At most 600.
    CHALLENGE_LIFETIME: int = 300
    #: Wrong codes accepted per challenge before it dies.
    CODE_MAX_ATTEMPTS: int = 5
    #: Resends per challenge (each replaces the code and link).
    CODE_MAX_RESENDS: int = 3
    #: Consecutive wrong codes per identifier (across challenges and resends) before
    #: verification for that identifier is delayed; a success resets the count. The wrong
    #: code that reaches it kills its challenge and starts the first delay.
    IDENTIFIER_FAILURE_LIMIT: int = 20
    #: First delay, seconds, once IDENTIFIER_FAILURE_LIMIT is reached; every further wrong
    #: code doubles it (NIST SP 800-63B 3.2.2: from about 30 s up to an hour).
    IDENTIFIER_FAILURE_DELAY: int = 30
    #: Longest delay, seconds, and how long the count is kept after the last wrong code.
    IDENTIFIER_FAILURE_WINDOW: int = 3600
    #: Code/link sends allowed per client IP within SEND_WINDOW (Cotter: 10 per 5 min).
    SEND_LIMIT_PER_IP: int = 10
    #: Code/link sends allowed per identifier within SEND_WINDOW (Cotter: 5 per 5 min).
    SEND_LIMIT_PER_IDENTIFIER: int = 5
    #: Window of the send limits, seconds.
    SEND_WINDOW: int = 300
    #: Lookups per client IP within USER_LOOKUP_WINDOW of Cotter's ``GET /user?identifier=``
    #: and ``POST /user/create`` made with the public API key alone: both tell whether an
    #: address has an account. Calls that also send the application's API_SECRET_KEY
    #: (server to server) are not counted.
    USER_LOOKUP_LIMIT_PER_IP: int = 30
    #: Window of USER_LOOKUP_LIMIT_PER_IP, seconds.
    USER_LOOKUP_WINDOW: int = 300
    #: Adding a trusted device (the pages, /api/v1 enrolment and QR binding, Cotter's
    #: ``PUT /user/<id>`` enrolment with a bearer token) needs a sign-in at most this many
    #: seconds old: the access token's ``auth_time`` (kept by refreshes) or the session's
    #: sign-in time (security.md D03), so a stolen old session cannot add the thief's key.
    REAUTHENTICATION_SECONDS: int = 300
    #: Cache alias used for rate limits (must be shared by all processes: Redis in production).
    RATELIMIT_CACHE: str = "default"
    #: Delivery backends per channel (dotted paths); a channel mapped to None is offered
    #: nowhere. Email goes through Django's mail framework by default.
    CHANNELS: dict[str, str | None] | None = None
    #: Lifetime of the authorization code handed to a mobile app or CLI (the hosted page's,
    #: and the native two-step code sign-in's grant), seconds (<= 300).
    AUTHORIZATION_CODE_LIFETIME: int = 300
    #: Create a user on the first sign-in with an unknown email/phone.
    ALLOW_SIGNUP: bool = True
    #: Directory of ``authdevice.channels.file.FileBackend`` (one JSON file per message).
    FILE_CHANNEL_DIR: str | None = None
    #: Twilio-compatible SMS/WhatsApp provider (``authdevice.channels.twilio.TwilioBackend``).
    TWILIO_ACCOUNT_SID: str | None = None
    TWILIO_AUTH_TOKEN: str | None = None
    TWILIO_FROM_NUMBER: str | None = None
    TWILIO_WHATSAPP_FROM: str | None = None
    TWILIO_API_BASE: str = "https://api.twilio.com"
    #: A trusted device's signed timestamp must be within this many seconds of the server
    #: clock (Cotter's wire format carries no server challenge).
    DEVICE_TIMESTAMP_WINDOW: int = 300
    #: A login waiting for approval from a trusted device expires after this many seconds.
    PENDING_EVENT_LIFETIME: int = 180
    #: Pending approval requests a user may have outstanding at once (push-bombing limit).
    MAX_OUTSTANDING_EVENTS: int = 3
    #: Approval requests allowed since the user's last successful sign-in, per hour.
    MAX_REQUESTS_SINCE_SUCCESS: int = 10
    #: Email the user when a trusted device is added or removed.
    NOTIFY_DEVICE_CHANGES: bool = True
    #: Native protocol: lifetime of a server-issued device challenge, seconds.
    DEVICE_CHALLENGE_LIFETIME: int = 120
    #: Number matching: the approver must type the number shown on the requesting screen.
    NUMBER_MATCHING: bool = True
    #: Digits of that number (NIST SP 800-63B-4 asks for at least 6 for a transferred secret).
    MATCH_CODE_LENGTH: int = 6
    #: Wrong numbers before the request is cancelled.
    MATCH_MAX_ATTEMPTS: int = 3
    #: Seconds a requester should wait between polls (RFC 8628 ``interval``); polling faster
    #: answers ``slow_down`` and adds 5 seconds.
    POLL_INTERVAL: int = 2
    #: Lifetime of a QR binding code that adds a device, seconds (at most 600).
    BINDING_LIFETIME: int = 180
    #: Redis URL for real-time notifications across workers (pub/sub). Unset: waiters
    #: re-check the database every 25 ms.
    REDIS_URL: str | None = None
    #: Longest ``?wait=`` a long-poll may ask for, seconds.
    MAX_WAIT: int = 25
    #: Dotted path of a geolocation backend (``locate(ip) -> str``) for approval pages.
    GEOLOCATION_BACKEND: str | None = None
    #: Reverse proxies (CIDRs) whose ``X-Forwarded-For`` is believed for the client IP.
    TRUSTED_PROXIES: tuple[str, ...] = ()
    #: Default region for phone numbers written without ``+country`` (e.g. ``"US"``).
    DEFAULT_PHONE_REGION: str | None = None


DEFAULT_CHANNELS: dict[str, str | None] = {
    "EMAIL": "authdevice.channels.email.EmailBackend",
    "SMS": "authdevice.channels.console.ConsoleBackend",
    "WHATSAPP": None,
}

_DEFAULTS = Defaults()
_NAMES = {f.name for f in fields(Defaults)}


class AppSettings:
    """Reads ``AUTHDEVICE_<NAME>`` from Django settings, falling back to :class:`Defaults`.

    Values are cached (settings are read on hot paths); the cache is dropped whenever a
    setting changes (``override_settings`` and the pytest ``settings`` fixture send
    ``setting_changed``)."""

    prefix = "AUTHDEVICE_"

    def __init__(self) -> None:
        self._cache: dict[str, Any] = {}
        self._holder: object = None

    def __getattr__(self, name: str) -> Any:
        if name not in _NAMES:
            raise AttributeError(f"Unknown authdevice setting {name!r}")
        holder = settings._wrapped
        if holder is not self._holder:  # override_settings swapped the settings object
            self._cache = {}
            self._holder = holder
        try:
            return self._cache[name]
        except KeyError:
            value = getattr(settings, self.prefix + name, getattr(_DEFAULTS, name))
            self._cache[name] = value
            return value

    def reload(self) -> None:
        self._cache = {}

    @property
    def issuer(self) -> str:
        issuer = self.ISSUER
        if not issuer:
            raise ImproperlyConfigured("AUTHDEVICE_ISSUER must be set (the URL of this server).")
        return issuer

    @property
    def leeway(self) -> int:
        return max(0, min(int(self.LEEWAY), 60))

    @property
    def base_url(self) -> str:
        return (self.BASE_URL or self.issuer).rstrip("/")

    @property
    def channels(self) -> dict[str, str | None]:
        configured = self.CHANNELS
        if configured is None:
            return dict(DEFAULT_CHANNELS)
        return {**{k: None for k in DEFAULT_CHANNELS}, **configured}

    @property
    def challenge_lifetime(self) -> int:
        return max(30, min(int(self.CHALLENGE_LIFETIME), 600))

    @property
    def authorization_code_lifetime(self) -> int:
        return max(10, min(int(self.AUTHORIZATION_CODE_LIFETIME), 300))

    @property
    def max_jwt_lifetime(self) -> int:
        return max(int(self.ACCESS_TOKEN_LIFETIME), int(self.ID_TOKEN_LIFETIME))

    @property
    def key_retention(self) -> int:
        """How long a retired key stays published: the longest token lifetime plus the
        largest leeway a verifier may apply, so no unexpired token loses its key."""
        return self.max_jwt_lifetime + 60


app_settings = AppSettings()


def _setting_changed(*, setting: str, **kwargs: Any) -> None:
    # SECRET_KEY and DEBUG feed derived values too; any AUTHDEVICE_* change drops the cache.
    if setting.startswith(AppSettings.prefix) or setting in ("SECRET_KEY", "DEBUG"):
        app_settings.reload()


setting_changed.connect(_setting_changed)
