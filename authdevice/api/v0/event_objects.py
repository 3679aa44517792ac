"""Cotter's Event object (reference/cotter-api.md §1.4), rendered from an ``AuthEvent`` row.

Output only. Quirks the SDKs depend on: ``ID`` is an integer, ``timestamp`` is the client's
unix-seconds *string*, ``new``/``approved`` are booleans, Go-style ``CreatedAt`` keys, and
``ip``/``location``/``client_user_id`` are never ``null`` (iOS decodes them as non-optional).
"""

from __future__ import annotations

from typing import Any

from ...flows.events import effective_state
from ...models import Application, AuthEvent, UserIdentity
from .serializers import rfc3339

ZERO_UUID = "00000000-0000-0000-0000-000000000000"


def _identity(event: AuthEvent) -> UserIdentity | None:
    user = event.user
    if user is None:
        return None
    try:
        return user.authdevice_identity
    except UserIdentity.DoesNotExist:
        return None


def event_object(
    event: AuthEvent,
    *,
    state: str | None = None,
    identity: UserIdentity | None = None,
    application: Application | None = None,
) -> dict[str, Any]:
    """Cotter's Event object for ``event`` as of now.

    * ``new`` is true only while the event is pending and unexpired; an expired event is
      ``new: false, approved: false`` (whatever the row says, expiry is decided at read time).
    * ``ip`` is the address *we* saw (the requester's body cannot override it; reference C09);
      the client's own claim is used only when the server saw none. ``location`` is the
      client's claim (we do no geolocation).
    * ``issuer`` is the application the event belongs to.

    Callers that hold the event's user identity and application pass them (saves the lazy
    reads); they must be the event's own.
    """
    state = state or effective_state(event)
    if identity is None:
        identity = _identity(event)
    if application is None:
        application = event.application
    return {
        "ID": int(event.pk),
        "CreatedAt": rfc3339(event.created_at),
        "UpdatedAt": rfc3339(event.updated_at),
        "DeletedAt": None,
        "user_id": str(identity.public_id) if identity is not None else ZERO_UUID,
        "client_user_id": identity.client_user_id if identity is not None else "",
        "issuer": application.api_key_id if application is not None else "",
        "event": event.event,
        "ip": event.ip or event.reported_ip or "",
        "location": event.reported_location or "",
        "timestamp": event.client_timestamp or "",
        "method": event.method or "",
        "new": state == AuthEvent.State.PENDING,
        "approved": state == AuthEvent.State.APPROVED,
        "signature": event.signature or "",
    }
