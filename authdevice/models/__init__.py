"""authdevice's models. Import them from here: ``from authdevice.models import Application``."""

from __future__ import annotations

from .applications import Application
from .challenges import AuthorizationCode, Challenge, Channel
from .devices import IdentifierDevice, TrustedDevice, UsedDeviceMessage
from .events import AuthEvent
from .identities import Identifier, UserIdentity
from .keys import SigningKey
from .native import DeviceBinding, DeviceChallenge
from .tokens import RefreshToken

__all__ = [
    "Application",
    "AuthEvent",
    "AuthorizationCode",
    "Challenge",
    "Channel",
    "DeviceBinding",
    "DeviceChallenge",
    "Identifier",
    "IdentifierDevice",
    "RefreshToken",
    "SigningKey",
    "TrustedDevice",
    "UsedDeviceMessage",
    "UserIdentity",
]
