"""Input validation of the native API (DRF serializers; bounded lengths everywhere)."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

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


class CodeRequestSerializer(serializers.Serializer):
    identifier = serializers.CharField(max_length=254)
    channel = serializers.ChoiceField(choices=Channel.choices, required=False)
    method = serializers.ChoiceField(
        choices=Challenge.Method.choices, required=False, default=Challenge.Method.OTP
    )


class ChallengeSerializer(serializers.Serializer):
    challenge_id = ChallengeIdField()
    challenge_secret = serializers.CharField(max_length=128, trim_whitespace=False)


class CodeVerifySerializer(ChallengeSerializer):
    code = serializers.CharField(max_length=32)
