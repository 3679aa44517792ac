from __future__ import annotations

import re
from collections.abc import Collection
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.db import models
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from ..crypto.secrets import constant_time_equals, sha256_hex
from .ids import new_api_key_id

StrOrPromise = str | Promise

LOOPBACK_HOSTS = {"127.0.0.1", "[::1]", "localhost"}
#: Schemes no application URL may use, whatever the registry says.
NEVER_REDIRECT_SCHEMES = frozenset({"javascript", "data", "file", "vbscript", "blob"})
MAX_URL_LENGTH = 2000

# RFC 3986 3.1: scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ), then ":".
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):")
_SCHEME_LIKE = re.compile(r"([^:/?#]+):")
# RFC 8252 7.1: a private-use scheme is a domain name in reverse order (com.example.app).
_DNS_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?")
# A host (DNS name, IPv4 or a bracketed IPv6 literal) and an optional port: nothing else.
_HOST_PORT = re.compile(
    r"(?P<host>(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)*"
    r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])"
    r"(?::(?P<port>[0-9]{1,5}))?"
)
# RFC 3986 2: characters that never appear in a URI (besides controls, space and non-ASCII).
_NOT_IN_URIS = frozenset('"<>\\^`{|}')


def _shown(value: str) -> str:
    """``value`` for an error message: printable ASCII as is, anything else escaped."""
    shown = value if value.isascii() and value.isprintable() else ascii(value)[1:-1]
    return shown if len(shown) <= 200 else shown[:200] + "..."


def _invalid(message: StrOrPromise, code: str, value: str, **params: str) -> ValidationError:
    return ValidationError(message, code=code, params={"value": _shown(value), **params})


def _check_characters(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(_("Enter each URL as a non-empty string."), code="invalid_item")
    if len(value) > MAX_URL_LENGTH:
        raise _invalid(_("“%(value)s” is too long."), "too_long", value)
    if (
        not value.isascii()
        or not value.isprintable()
        or any(ch.isspace() or ch in _NOT_IN_URIS for ch in value)
    ):
        raise _invalid(
            _(
                "“%(value)s” contains characters that are not allowed in a URL (spaces, "
                "controls, non-ASCII, quotes, backslashes…): percent-encode them, or use "
                "the punycode form of the host name."
            ),
            "invalid_characters",
            value,
        )
    if "*" in value:
        raise _invalid(
            _("“%(value)s”: wildcards (*) are not allowed. Register each exact URL."),
            "wildcard",
            value,
        )
    if "#" in value:
        raise _invalid(
            _("“%(value)s”: a URL with a fragment (#…) cannot be registered (RFC 6749 3.1.2)."),
            "fragment",
            value,
        )
    return value


def _scheme_of(value: str) -> tuple[str, str]:
    """``(lower-case scheme, the rest after ":")``, or a ValidationError."""
    match = _SCHEME.match(value)
    if match is None:
        like = _SCHEME_LIKE.match(value)
        if like is None:
            raise _invalid(
                _("“%(value)s” is not an absolute URL: it must start with a scheme (https://…)."),
                "relative",
                value,
            )
        if "_" in like.group(1):
            message = _(
                "“%(value)s”: “%(scheme)s” is not a valid URL scheme: a scheme cannot contain "
                "an underscore (RFC 3986). Use letters, digits, “+”, “-” and “.” only."
            )
        else:
            message = _(
                "“%(value)s”: “%(scheme)s” is not a valid URL scheme. A scheme has letters, "
                "digits, “+”, “-” and “.” only, and starts with a letter (RFC 3986)."
            )
        raise _invalid(message, "invalid_scheme", value, scheme=_shown(like.group(1)))
    return match.group(1).lower(), value[match.end() :]


def _authority(value: str, rest: str) -> str | None:
    """The ``//authority`` part of ``rest`` (None when there is none), without userinfo."""
    if not rest.startswith("//"):
        return None
    authority = re.split(r"[/?]", rest[2:], maxsplit=1)[0]
    if "@" in authority:
        raise _invalid(
            _("“%(value)s”: a URL with user information (user@host) cannot be registered."),
            "userinfo",
            value,
        )
    return authority


def _web_host(value: str, scheme: str, authority: str | None) -> str:
    """Check an ``http``/``https`` authority; returns the host. Plain ``http`` only for
    loopback (RFC 8252 7.3, 8.3; security.md H08)."""
    match = _HOST_PORT.fullmatch(authority or "")
    port = match and match.group("port")
    if match is None or (port is not None and not 0 < int(port) < 65536):
        raise _invalid(
            _("“%(value)s” does not have a valid host name (and optional port)."),
            "invalid_host",
            value,
        )
    host = match.group("host")
    # Exactly as the loopback port matching (_without_port) spells them.
    if scheme == "http" and host not in LOOPBACK_HOSTS:
        raise _invalid(
            _(
                "“%(value)s”: plain http is only allowed for loopback addresses "
                "(127.0.0.1, [::1], localhost). Use https."
            ),
            "insecure",
            value,
        )
    return host


def validate_redirect_url(value: object) -> None:
    """Refuse a redirect URL that cannot be registered (security.md H08, H09):
    https, http on loopback only (any port then matches, RFC 8252 7.3), or a private-use
    scheme in reverse-DNS form (``com.example.app:/callback``, RFC 8252 7.1). Never a
    fragment, a wildcard, user information or a ``javascript:``/``data:``/``file:``/
    ``vbscript:`` URL."""
    url = _check_characters(value)
    scheme, rest = _scheme_of(url)
    if scheme in NEVER_REDIRECT_SCHEMES:
        raise _invalid(
            _("“%(value)s”: the “%(scheme)s:” scheme cannot be used for redirects."),
            "forbidden_scheme",
            url,
            scheme=scheme,
        )
    authority = _authority(url, rest)
    if scheme in ("http", "https"):
        _web_host(url, scheme, authority)
        return
    labels = scheme.split(".")
    if len(labels) < 2 or not all(_DNS_LABEL.fullmatch(label) for label in labels):
        raise _invalid(
            _(
                "“%(value)s”: “%(scheme)s:” is not a private-use scheme in reverse domain "
                "name form. Use one based on a domain you control, such as "
                "com.example.app:/callback (RFC 8252 7.1), or an https URL."
            ),
            "private_scheme",
            url,
            scheme=scheme,
        )


def validate_origin(value: object) -> None:
    """Refuse an allowed origin that is not exactly ``scheme://host[:port]`` with https,
    or http on a loopback host."""
    origin = _check_characters(value)
    scheme, rest = _scheme_of(origin)
    if scheme not in ("http", "https"):
        raise _invalid(
            _("“%(value)s”: an origin uses https (or http for loopback addresses)."),
            "origin_scheme",
            origin,
        )
    authority = _authority(origin, rest)
    if authority is None or rest != f"//{authority}":
        raise _invalid(
            _("“%(value)s” is not an origin: write scheme://host[:port], without a path."),
            "origin_form",
            origin,
        )
    _web_host(origin, scheme, authority)


def _string_list(value: object) -> list[str]:
    if not isinstance(value, list | tuple):
        raise ValidationError(_("Enter a list of strings."), code="invalid_list")
    return [v.strip() if isinstance(v, str) else v for v in value]


def clean_redirect_urls(value: object) -> list[str]:
    """The redirect URLs to store (each stripped), or a ValidationError for the first bad one."""
    urls = _string_list(value)
    for url in urls:
        validate_redirect_url(url)
    return urls


def clean_allowed_origins(value: object) -> list[str]:
    """The origins to store (stripped, one trailing "/" dropped), or a ValidationError."""
    origins = [o[:-1] if isinstance(o, str) and o.endswith("/") else o for o in _string_list(value)]
    for origin in origins:
        validate_origin(origin)
    return origins


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

    def clean_fields(self, exclude: Collection[str] | None = None) -> None:
        """Also apply the registration rules to ``redirect_urls`` and ``allowed_origins``
        (on the model, not as field validators: those would need a migration)."""
        errors: dict[str, list[ValidationError]] = {}
        try:
            super().clean_fields(exclude=exclude)
        except ValidationError as exc:
            errors = exc.update_error_dict(errors)
        for name, clean in (
            ("redirect_urls", clean_redirect_urls),
            ("allowed_origins", clean_allowed_origins),
        ):
            if (exclude and name in exclude) or name in errors:
                continue
            try:
                setattr(self, name, clean(getattr(self, name)))
            except ValidationError as exc:
                errors[name] = exc.error_list
        if errors:
            raise ValidationError(errors)

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
