"""The staff console: applications, keys, tokens and the audit log."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .flows import applications as app_flows
from .flows import keys as key_flows
from .flows import tokens as token_flows
from .models import Application, AuthEvent, Identifier, RefreshToken, SigningKey, UserIdentity


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


@admin.register(Application)
class ApplicationAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "api_key_id",
        "is_active",
        "allow_unauthenticated_enrolment",
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
class SigningKeyAdmin(admin.ModelAdmin):
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
class UserIdentityAdmin(admin.ModelAdmin):
    list_display = ["public_id", "user", "client_user_id", "created_at"]
    search_fields = ["public_id", "client_user_id", "identifiers__value"]
    readonly_fields = ["public_id", "created_at", "updated_at"]
    raw_id_fields = ["user"]
    inlines = [IdentifierInline]


@admin.register(RefreshToken)
class RefreshTokenAdmin(admin.ModelAdmin):
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
        count = token_flows._revoke_families(families, "staff")
        self.message_user(request, _("Revoked %(n)d token(s).") % {"n": count})


@admin.register(AuthEvent)
class AuthEventAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "created_at",
        "event",
        "state",
        "method",
        "user",
        "application",
        "ip",
        "actor",
    ]
    list_filter = ["event", "state", "method", "application", "created_at"]
    search_fields = ["=id", "user__username", "ip", "actor"]
    date_hierarchy = "created_at"

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [f.name for f in AuthEvent._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
