"""Errors raised by flows. Doors map them to HTTP responses or form errors."""

from __future__ import annotations


class FlowError(Exception):
    """Base class. ``code`` is stable and machine-readable; ``message`` is for people."""

    code = "invalid_request"
    status = 400

    def __init__(self, message: str = "", *, code: str | None = None) -> None:
        super().__init__(message or self.__class__.__doc__ or self.code)
        self.message = message or (self.__class__.__doc__ or self.code).strip()
        if code:
            self.code = code


class InvalidApplication(FlowError):
    """The API key is unknown or the application is inactive."""

    code = "invalid_client"
    status = 401


class InvalidGrant(FlowError):
    """The refresh token is not valid."""

    code = "invalid_grant"
    status = 400


class InvalidToken(FlowError):
    """The access token is not valid."""

    code = "invalid_token"
    status = 401


class InvalidIdentifier(FlowError):
    """The email address or phone number is not valid."""

    code = "invalid_identifier"


class IdentifierTaken(FlowError):
    """This email address or phone number belongs to another user."""

    code = "identifier_taken"
    status = 409


class SigningUnavailable(FlowError):
    """Tokens cannot be signed right now."""

    code = "temporarily_unavailable"
    status = 503
