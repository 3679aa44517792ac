from __future__ import annotations

from urllib.parse import urlsplit

from django.db import models
from django.utils.translation import gettext_lazy as _

from ..crypto.secrets import constant_time_equals, sha256_hex
from .ids import new_api_key_id

LOOPBACK_HOSTS = {"127.0.0.1", "[::1]", "localhost"}


def _without_port(url: str) -> str | None:
    """``http://127.0.0.1:PORT/path`` -> ``http://127.0.0.1/path`` for loopback URLs only."""
    try:
        parts = urlsplit(url)
        port = parts.port  # raises ValueError on a malformed port
    except ValueError:
        return None
    if parts.scheme != "http" or parts.hostname is None:
        return None
    host = parts.netloc.rsplit("@", 1)[-1]
    if "@" in parts.netloc:
        return None
    bare_host = host if port is None else host[: -len(f":{port}")]
    if bare_host not in LOOPBACK_HOSTS:
        return None
    rest = url[len(f"{parts.scheme}://{host}") :]
    return f"http://{bare_host}{rest}"


class Application(models.Model):
    """A site, mobile app or CLI that uses this server (Cotter's "API key")."""

    name = models.CharField(_("name"), max_length=200)
    api_key_id = models.CharField(
        _("API key ID"),
        max_length=64,
        unique=True,
        default=new_api_key_id,
        editable=False,
        help_text=_("Public identifier sent by clients as API_KEY_ID; the token audience."),
    )
    secret_hash = models.CharField(max_length=64, editable=False)
    secret_hint = models.CharField(
        _("secret key hint"), max_length=8, editable=False, help_text=_("First characters.")
    )
    allowed_origins = models.JSONField(
        _("allowed origins"),
        default=list,
        blank=True,
        help_text=_('Exact origins, e.g. ["https://www.example.com"] (scheme://host[:port]).'),
    )
    redirect_urls = models.JSONField(
        _("allowed redirect URLs"),
        default=list,
        blank=True,
        help_text=_(
            "Exact URLs. A loopback http URL (127.0.0.1, [::1], localhost) matches any port."
        ),
    )
    is_active = models.BooleanField(_("active"), default=True)
    allow_unauthenticated_enrolment = models.BooleanField(
        _("allow unauthenticated device enrolment"),
        default=False,
        help_text=_(
            "Legacy Cotter behaviour: enrol trusted devices without a bearer token. Unsafe."
        ),
    )
    access_token_lifetime = models.PositiveIntegerField(
        _("access token lifetime (seconds)"),
        null=True,
        blank=True,
        help_text=_("Leave empty to use AUTHDEVICE_ACCESS_TOKEN_LIFETIME."),
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("application")
        verbose_name_plural = _("applications")
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.api_key_id})"

    def check_secret(self, secret: str) -> bool:
        """Constant-time check of an API secret key against the stored hash."""
        if not self.secret_hash or not isinstance(secret, str):
            return False
        return constant_time_equals(sha256_hex(secret), self.secret_hash)

    def redirect_url_allowed(self, url: str) -> bool:
        """Exact string match, except that loopback ``http`` URLs match on any port (RFC 8252)."""
        if not isinstance(url, str) or not url:
            return False
        if url in self.redirect_urls:
            return True
        candidate = _without_port(url)
        if candidate is None:
            return False
        return any(_without_port(allowed) == candidate for allowed in self.redirect_urls)

    def origin_allowed(self, origin: str) -> bool:
        return isinstance(origin, str) and origin in self.allowed_origins
