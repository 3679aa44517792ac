"""Input validation of the native API (DRF serializers; bounded lengths everywhere)."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from ...flows.pkce import (
    CODE_CHALLENGE_METHOD,
    MAX_VERIFIER_LENGTH,
    MIN_VERIFIER_LENGTH,
    valid_code_challenge,
)
from ...models import Challenge, Channel

MAX_CHALLENGE_ID = 2**63 - 1


class ChallengeIdField(serializers.Field):
    """A challenge id: a JSON integer or a decimal string (what ``/auth/code`` returns).

    Sent out as a zero-padded 16-digit string: every response then has the same length,
    whatever the random id (security.md J03 compares ``Content-Length``).
    """

    default_error_messages = {"invalid": _("Not a valid challenge id.")}

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool):
            self.fail("invalid")
        if isinstance(data, int):
            value = data
        elif isinstance(data, str) and 0 < len(data) <= 19 and data.isascii() and data.isdigit():
            value = int(data)
        else:
            self.fail("invalid")
        if not 0 < value <= MAX_CHALLENGE_ID:
            self.fail("invalid")
        return value

    def to_representation(self, value: int) -> str:
        return f"{int(value):016d}"


def _s256_challenge(value: str) -> None:
    if not valid_code_challenge(value):
        raise serializers.ValidationError(
            _("code_challenge must be an S256 challenge: 43 base64url characters.")
        )


class CodeRequestSerializer(serializers.Serializer):
    identifier = serializers.CharField(max_length=254)
    channel = serializers.ChoiceField(choices=Channel.choices, required=False)
    method = serializers.ChoiceField(
        choices=Challenge.Method.choices, required=False, default=Challenge.Method.OTP
    )
    #: RFC 7636: with it, verify answers with an authorization code to exchange.
    code_challenge = serializers.CharField(
        max_length=43, required=False, trim_whitespace=False, validators=[_s256_challenge]
    )
    code_challenge_method = serializers.ChoiceField(
        choices=[(CODE_CHALLENGE_METHOD, CODE_CHALLENGE_METHOD)], required=False
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if "code_challenge_method" in attrs and "code_challenge" not in attrs:
            raise serializers.ValidationError(
                {"code_challenge": _("code_challenge_method needs a code_challenge.")}
            )
        return attrs


class ChallengeSerializer(serializers.Serializer):
    challenge_id = ChallengeIdField()
    challenge_secret = serializers.CharField(max_length=128, trim_whitespace=False)


class CodeVerifySerializer(ChallengeSerializer):
    code = serializers.CharField(max_length=32)


class CodeExchangeSerializer(serializers.Serializer):
    challenge_id = ChallengeIdField()
    authorization_code = serializers.CharField(max_length=200, trim_whitespace=False)
    code_verifier = serializers.CharField(
        min_length=MIN_VERIFIER_LENGTH, max_length=MAX_VERIFIER_LENGTH, trim_whitespace=False
    )
