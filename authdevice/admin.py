"""The staff console: applications, keys, tokens, trusted devices, users and the audit log.

Staff act only through flows (a revoke is ``flows.devices.remove_device``, exactly like a
removal by the user). Nothing secret is shown: devices hold public keys only (shown
truncated), secrets are stored hashed.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from .flows import applications as app_flows
from .flows import devices as device_flows
from .flows import keys as key_flows
from .flows import tokens as token_flows
from .models import (
    Application,
    AuthEvent,
    Identifier,
    RefreshToken,
    SigningKey,
    TrustedDevice,
    UserIdentity,
)

#: ``user__<USERNAME_FIELD>``: search by the site's user name, whatever its user model.
USERNAME_LOOKUP = f"user__{get_user_model().USERNAME_FIELD}"
RECENT_EVENTS = 20


class SelectionCheckMixin:
    """Tampered admin input gets an answer, never a 500: actions on a selection that is not
    a list of this model's primary keys (``abc``, ``2**64``) get a message, and a list
    filtered by a value the database cannot take (``?created_at__year=99999``) gets the
    admin's "invalid lookup" redirect (``?e=1``)."""

    def get_changelist_instance(self, request: HttpRequest) -> Any:
        from django.contrib.admin.options import IncorrectLookupParameters

        try:
            return super().get_changelist_instance(request)  # type: ignore[misc]
        except (ValueError, OverflowError) as exc:  # raised when the count is computed
            raise IncorrectLookupParameters(exc) from exc

    def response_action(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        from django.contrib.admin import helpers

        pk = self.model._meta.pk  # type: ignore[attr-defined]
        try:
            for value in request.POST.getlist(helpers.ACTION_CHECKBOX_NAME):
                converted = pk.to_python(value)
                if isinstance(converted, int) and not -(2**63) <= converted < 2**63:
                    raise ValidationError("out of range")
        except (ValidationError, ValueError, TypeError):
            self.message_user(  # type: ignore[attr-defined]
                request, _("The selection is not valid. Select the rows again."), messages.ERROR
            )
            return None
        return super().response_action(request, queryset)  # type: ignore[misc]


class UserFilter(admin.SimpleListFilter):
    """Filter by user (``?user=<pk>``), linked from the user's page. It offers no list of
    all users (that would not scale); when active it shows who is selected."""

    title = _("user")
    parameter_name = "user"

    def _user(self) -> Any:
        value = self.value()
        if not value:
            return None
        try:
            return get_user_model()._default_manager.filter(pk=value).first()
        except (ValueError, TypeError, ValidationError):
            return None

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        user = self._user()
        return [(str(self.value()), str(user))] if user is not None else []

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if not self.value():
            return queryset
        user = self._user()
        return queryset.filter(user=user) if user is not None else queryset.none()


def _show_secret(request: HttpRequest, app: Application, secret: str) -> HttpResponse:
    # Rendered directly (never via the messages framework, which may store it in a cookie).
    response = TemplateResponse(
        request,
        "authdevice/admin/secret_created.html",
        {
            "title": _("Secret key for %(name)s") % {"name": app.name},
            "application": app,
            "secret": secret,
            "opts": Application._meta,
        },
    )
    response["Cache-Control"] = "no-store"
    return response


class ApplicationForm(forms.ModelForm):
    """The registration rules for redirect URLs and origins are enforced by
    ``Application.clean_fields`` (run by this form); the help texts spell them out."""

    class Meta:
        model = Application
        fields = [
            "name",
            "is_active",
            "allowed_origins",
            "redirect_urls",
            "access_token_lifetime",
            "allow_unauthenticated_enrolment",
        ]
        help_texts = {
            "redirect_urls": _(
                'A JSON list of exact URLs, e.g. ["https://app.example.com/callback", '
                '"com.example.app:/callback", "http://127.0.0.1/callback"]. Use https; http '
                "only for loopback (127.0.0.1, [::1], localhost), which then matches any "
                "port; an app's own scheme must be a reverse domain name (RFC 8252). No "
                "fragments (#), wildcards (*) or user@host."
            ),
            "allowed_origins": _(
                'A JSON list of exact origins, e.g. ["https://www.example.com"] '
                "(scheme://host[:port], https, or http for loopback)."
            ),
        }


@admin.register(Application)
class ApplicationAdmin(SelectionCheckMixin, admin.ModelAdmin):
    form = ApplicationForm
    list_display = [
        "name",
        "api_key_id",
        "is_active",
        "enrolment_mode",
        "created_at",
    ]
    list_filter = ["is_active", "allow_unauthenticated_enrolment"]
    search_fields = ["name", "api_key_id"]
    readonly_fields = ["api_key_id", "secret_hint", "created_at", "updated_at"]
    fields = [
        "name",
        "api_key_id",
        "secret_hint",
        "is_active",
        "allowed_origins",
        "redirect_urls",
        "access_token_lifetime",
        "allow_unauthenticated_enrolment",
        "created_at",
        "updated_at",
    ]
    actions = ["reset_secret"]

    @admin.display(description=_("device enrolment"), ordering="allow_unauthenticated_enrolment")
    def enrolment_mode(self, obj: Application) -> str:
        if obj.allow_unauthenticated_enrolment:
            return format_html(
                '<strong style="color:#ba2121">{}</strong>',
                _("LEGACY: no proof needed (unsafe)"),
            )
        return str(_("bearer token required"))

    def _warn_legacy(self, request: HttpRequest, names: list[str]) -> None:
        if names:
            messages.warning(
                request,
                _(
                    "Unauthenticated trusted-device enrolment (legacy Cotter behaviour) is ON "
                    "for: %(names)s. Anyone who knows a user id can enrol a device for that "
                    "user. Turn it off once your apps send a bearer token when enrolling."
                )
                % {"names": ", ".join(names)},
            )

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        if request.method == "GET":
            self._warn_legacy(
                request,
                list(
                    Application.objects.filter(
                        allow_unauthenticated_enrolment=True, is_active=True
                    ).values_list("name", flat=True)[:10]
                ),
            )
        return super().changelist_view(request, extra_context)

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        if request.method == "GET":
            app = self.get_object(request, object_id)
            if app is not None and app.allow_unauthenticated_enrolment:
                self._warn_legacy(request, [app.name])
        return super().change_view(request, object_id, form_url, extra_context)

    def save_model(self, request: HttpRequest, obj: Application, form: Any, change: bool) -> None:
        if not change:
            request._authdevice_secret = app_flows._new_secret(obj)  # type: ignore[attr-defined]
        super().save_model(request, obj, form, change)
        app_flows.clear_application_cache()

    def response_add(
        self, request: HttpRequest, obj: Application, post_url_continue: Any = None
    ) -> HttpResponse:
        secret = getattr(request, "_authdevice_secret", None)
        if secret:
            return _show_secret(request, obj, secret)
        return super().response_add(request, obj, post_url_continue)

    @admin.action(description=_("Reset the secret key (shown once)"), permissions=["change"])
    def reset_secret(
        self, request: HttpRequest, queryset: QuerySet[Application]
    ) -> HttpResponse | None:
        if queryset.count() != 1:
            self.message_user(request, _("Select exactly one application."), messages.WARNING)
            return None
        app = queryset.get()
        return _show_secret(request, app, app_flows.reset_application_secret(app))


@admin.register(SigningKey)
class SigningKeyAdmin(SelectionCheckMixin, admin.ModelAdmin):
    list_display = [
        "kid",
        "generation",
        "status",
        "created_at",
        "not_before",
        "retired_at",
        "revoked_at",
    ]
    fields = [
        "kid",
        "generation",
        "algorithm",
        "public_jwk",
        "created_at",
        "not_before",
        "retired_at",
        "revoked_at",
    ]
    readonly_fields = fields
    actions = ["rotate", "revoke"]

    @admin.display(description=_("status"))
    def status(self, obj: SigningKey) -> str:
        return obj.status(timezone.now())

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.action(
        description=_("Rotate: publish a new key, switch after the publish delay"),
        permissions=["change"],
    )
    def rotate(self, request: HttpRequest, queryset: QuerySet[SigningKey]) -> None:
        key = key_flows.rotate_signing_key(actor=request.user.get_username())
        self.message_user(
            request,
            _("New key %(kid)s published; it signs from %(when)s.")
            % {"kid": key.kid, "when": key.not_before},
        )

    @admin.action(
        description=_("Revoke now (emergency: tokens it signed stop working)"),
        permissions=["change"],
    )
    def revoke(self, request: HttpRequest, queryset: QuerySet[SigningKey]) -> None:
        for key in queryset:
            key_flows.revoke_signing_key(key.kid, actor=request.user.get_username())
        self.message_user(request, _("Revoked %(n)d key(s).") % {"n": queryset.count()})


class IdentifierInline(admin.TabularInline):
    model = Identifier
    extra = 0
    fields = ["kind", "value", "is_primary", "verified_at", "created_at"]
    readonly_fields = ["created_at"]


@admin.register(UserIdentity)
class UserIdentityAdmin(SelectionCheckMixin, admin.ModelAdmin):
    list_display = ["public_id", "user", "client_user_id", "created_at"]
    search_fields = ["public_id", "client_user_id", "identifiers__value"]
    readonly_fields = ["public_id", "created_at", "updated_at"]
    raw_id_fields = ["user"]
    inlines = [IdentifierInline]


@admin.register(RefreshToken)
class RefreshTokenAdmin(SelectionCheckMixin, admin.ModelAdmin):
    list_display = [
        "id",
        "identity",
        "application",
        "auth_method",
        "created_at",
        "used_at",
        "revoked_at",
    ]
    list_filter = ["application", "auth_method", ("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["identity__public_id", "identifier", "=family"]
    exclude = ["secret_hash"]
    actions = ["revoke_family"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [f.name for f in RefreshToken._meta.fields if f.name != "secret_hash"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(
        description=_("Revoke the whole family (sign the session out)"), permissions=["change"]
    )
    def revoke_family(self, request: HttpRequest, queryset: QuerySet[RefreshToken]) -> None:
        families = list(queryset.values_list("family", flat=True).distinct())
        count = token_flows.revoke_families(families, "staff")
        self.message_user(request, _("Revoked %(n)d token(s).") % {"n": count})


@admin.register(AuthEvent)
class AuthEventAdmin(SelectionCheckMixin, admin.ModelAdmin):
    """The audit log: read-only."""

    list_display = [
        "id",
        "created_at",
        "event",
        "state",
        "method",
        "user",
        "application",
        "ip",
        "requesting_device",
        "approving_device",
        "actor",
    ]
    list_filter = [
        UserFilter,
        "application",
        "event",
        "method",
        "state",
        ("created_at", admin.DateFieldListFilter),
    ]
    search_fields = [
        "=id",
        USERNAME_LOOKUP,
        "=user__authdevice_identity__client_user_id",
        "ip",
        "reported_ip",
        "reported_location",
        "actor",
        "requesting_device__name",
        "approving_device__name",
    ]
    list_select_related = ["user", "application", "requesting_device", "approving_device"]
    date_hierarchy = "created_at"

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [f.name for f in AuthEvent._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


# --------------------------------------------------------------------------- trusted devices


class DeviceStatusFilter(admin.SimpleListFilter):
    title = _("status")
    parameter_name = "status"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("active", _("active")), ("revoked", _("revoked"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() == "active":
            return queryset.filter(revoked_at__isnull=True, confirmed=True)
        if self.value() == "revoked":
            return queryset.exclude(revoked_at__isnull=True, confirmed=True)
        return queryset


def _device_status(obj: TrustedDevice) -> str:
    if obj.revoked_at is not None:
        return str(_("revoked"))
    return str(_("active")) if obj.confirmed else str(_("unconfirmed"))


def _public_key_preview(obj: TrustedDevice) -> str:
    key = obj.public_key or ""
    return f"{key[:16]}… ({len(key)} chars)" if key else ""


@admin.register(TrustedDevice)
class TrustedDeviceAdmin(SelectionCheckMixin, admin.ModelAdmin):
    """Devices are read-only here; the one change staff can make is "revoke", which runs
    ``flows.devices.remove_device`` (signatures stop at once, the device's refresh-token
    families are revoked, the user is notified) and needs ``authdevice.revoke_trusteddevice``.
    There is no private material to show; the public key is shown truncated."""

    list_display = [
        "name",
        "user",
        "algorithm",
        "device_type",
        "application",
        "created_at",
        "last_used_at",
        "status",
    ]
    list_filter = [
        DeviceStatusFilter,
        "algorithm",
        "application",
        UserFilter,
        ("last_used_at", admin.DateFieldListFilter),
    ]
    search_fields = [
        "name",
        "device_type",
        USERNAME_LOOKUP,
        "=user__authdevice_identity__client_user_id",
        "=fingerprint",
    ]
    list_select_related = ["user", "application"]
    fields = [
        "user",
        "name",
        "status",
        "algorithm",
        "device_type",
        "application",
        "public_key_preview",
        "fingerprint",
        "created_at",
        "last_used_at",
        "revoked_at",
        "revoked_by",
        "revoke_reason",
    ]
    readonly_fields = fields
    actions = ["revoke"]
    date_hierarchy = "created_at"

    @admin.display(description=_("status"))
    def status(self, obj: TrustedDevice) -> str:
        return _device_status(obj)

    @admin.display(description=_("public key"))
    def public_key_preview(self, obj: TrustedDevice) -> str:
        return _public_key_preview(obj)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Deleting the row would skip the cascade (sessions, audit, notification): revoke.
        return False

    def has_revoke_permission(self, request: HttpRequest) -> bool:
        opts = self.opts
        return request.user.has_perm(f"{opts.app_label}.revoke_trusteddevice")

    @admin.action(
        description=_("Revoke: signatures and sessions stop at once"), permissions=["revoke"]
    )
    def revoke(self, request: HttpRequest, queryset: QuerySet[TrustedDevice]) -> None:
        actor = request.user.get_username()
        revoked = 0
        for device in queryset.filter(revoked_at__isnull=True):
            if device_flows.remove_device(
                device, actor=actor, reason="revoked by staff", request=request
            ):
                revoked += 1
                self.log_change(request, device, "Revoked (signatures and sessions ended).")
        self.message_user(request, _("Revoked %(n)d device(s).") % {"n": revoked})


# --------------------------------------------------------------------------- users


class UserIdentityInline(admin.StackedInline):
    model = UserIdentity
    fk_name = "user"
    extra = 0
    max_num = 1
    can_delete = False
    verbose_name = _("authdevice identity")
    fields = ["public_id", "client_user_id", "identifier_list", "created_at"]
    readonly_fields = fields

    @admin.display(description=_("identifiers"))
    def identifier_list(self, obj: UserIdentity) -> str:
        rows = obj.identifiers.order_by("-is_primary", "created_at")
        return format_html_join(
            ", ",
            "{} ({}{})",
            (
                (
                    row.value,
                    row.get_kind_display(),
                    "" if row.verified_at else ", " + str(_("unverified")),
                )
                for row in rows
            ),
        ) or str(_("none"))

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class TrustedDeviceInline(admin.TabularInline):
    model = TrustedDevice
    fk_name = "user"
    extra = 0
    can_delete = False
    show_change_link = True
    verbose_name_plural = _("trusted devices (revoke them from the device list)")
    fields = ["name", "status", "algorithm", "device_type", "created_at", "last_used_at"]
    readonly_fields = fields

    @admin.display(description=_("status"))
    def status(self, obj: TrustedDevice) -> str:
        return _device_status(obj)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class RecentEventsFormSet(BaseInlineFormSet):
    """Only the newest events (the full log is one click away, filtered by user)."""

    def get_queryset(self) -> QuerySet:
        if not hasattr(self, "_recent"):
            self._recent = super().get_queryset().order_by("-created_at")[:RECENT_EVENTS]
        return self._recent


class RecentAuthEventInline(admin.TabularInline):
    model = AuthEvent
    fk_name = "user"
    formset = RecentEventsFormSet
    extra = 0
    can_delete = False
    show_change_link = True
    verbose_name_plural = _("recent auth events (newest 20)")
    fields = ["created_at", "event", "state", "method", "application", "ip", "actor"]
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


USER_INLINES = [UserIdentityInline, TrustedDeviceInline, RecentAuthEventInline]


def install_user_inlines(site: admin.AdminSite = admin.site) -> bool:
    """Add identifiers, devices and recent events to the user admin, if the user model is
    registered with ``django.contrib.auth.admin.UserAdmin`` (or a subclass): the registered
    class is subclassed, so a site's own customisations survive. Otherwise nothing changes
    (a site with its own user admin can add ``USER_INLINES`` itself)."""
    # Registers auth.User's admin now (authdevice may come before django.contrib.auth in
    # INSTALLED_APPS, and autodiscover imports admin modules in that order).
    from django.contrib.auth import admin as auth_admin

    user_model = get_user_model()
    current = site._registry.get(user_model)
    if not isinstance(current, auth_admin.UserAdmin):
        return False
    base = type(current)
    if getattr(base, "authdevice_inlines", False):
        return True
    extended = type(
        f"AuthDevice{base.__name__}",
        (base,),
        {
            "__module__": __name__,
            "authdevice_inlines": True,
            "inlines": [*base.inlines, *USER_INLINES],
        },
    )
    site.unregister(user_model)
    site.register(user_model, extended)
    return True


install_user_inlines()
