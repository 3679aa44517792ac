"""Forms of the sign-in pages. They only parse input: every rule lives in ``flows``."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from ..models import Challenge, Channel

CHANNEL_LABELS = {
    Channel.EMAIL: _("Email"),
    Channel.SMS: _("Text message (SMS)"),
    Channel.WHATSAPP: _("WhatsApp"),
}


class SignInForm(forms.Form):
    identifier = forms.CharField(max_length=254, strip=True)
    channel = forms.ChoiceField(required=False, choices=())
    method = forms.ChoiceField(
        required=False,
        choices=[
            (Challenge.Method.OTP, _("Send me a code")),
            (Challenge.Method.MAGIC_LINK, _("Email me a sign-in link")),
        ],
    )
    # Hidden fields: never a form error (a bad ``next`` is dropped by the view's safety
    # check, an unknown ``flow`` is an expired sign-in).
    next = forms.CharField(required=False, strip=False)
    flow = forms.CharField(required=False)

    def __init__(
        self, *args: Any, kind: str | None = None, phone_channels: list[str], **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.kind = kind
        self.fields["identifier"].label = {
            "EMAIL": _("Email address"),
            "PHONE": _("Phone number"),
        }.get(kind or "", _("Email address or phone number"))
        self.fields["identifier"].error_messages["required"] = {
            "EMAIL": _("Enter your email address."),
            "PHONE": _("Enter your phone number."),
        }.get(kind or "", _("Enter your email address or phone number."))
        self.fields["channel"].choices = [(c, CHANNEL_LABELS[c]) for c in phone_channels]
        if kind == "PHONE":
            self.fields["method"].choices = [
                (Challenge.Method.OTP, _("Send me a code")),
                (Challenge.Method.MAGIC_LINK, _("Send me a sign-in link")),
            ]

    @property
    def input_type(self) -> str:
        return {"EMAIL": "email", "PHONE": "tel"}.get(self.kind or "", "text")

    @property
    def autocomplete(self) -> str:
        return {"EMAIL": "email", "PHONE": "tel"}.get(self.kind or "", "username")

    @property
    def inputmode(self) -> str:
        return {"EMAIL": "email", "PHONE": "tel"}.get(self.kind or "", "email")


class CodeForm(forms.Form):
    code = forms.CharField(
        max_length=32,
        strip=True,
        error_messages={"required": _("Enter the 6-digit code from the message.")},
    )
    flow = forms.CharField(required=False)


class FlowForm(forms.Form):
    """Resend and cancel: they only name the sign-in in progress."""

    flow = forms.CharField(required=False)


class LinkForm(forms.Form):
    confirm = forms.BooleanField(required=False)
