from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from ..http import client_ip, user_agent
from ..models import Application, AuthEvent, fastsql
from ..signals import auth_event_recorded


def prepare_event(
    *,
    event: str,
    state: str,
    user: Any = None,
    application: Application | None = None,
    method: str = "",
    request: HttpRequest | None = None,
    actor: str = "",
    details: dict[str, Any] | None = None,
    user_id: Any = None,
) -> AuthEvent:
    """Build one audit row and convert its values, without touching the database: callers
    do this before their write transaction and :func:`save_event` inside it.
    Pass ``user`` or, when only its id is at hand, ``user_id`` (saves a query)."""
    row = fastsql.new(
        AuthEvent,
        event=event,
        state=state,
        user=user,
        **({"user_id": user_id} if user is None and user_id is not None else {}),
        application=application,
        method=method,
        ip=client_ip(request) if request is not None else None,
        user_agent=user_agent(request) if request is not None else "",
        actor=actor[:150],
        details=details or {},
    )
    row._prepared_insert = fastsql.prepare_insert(row)  # type: ignore[attr-defined]
    return row


def save_event(row: AuthEvent) -> AuthEvent:
    """INSERT a row from :func:`prepare_event` and announce it. Call inside the transaction
    of the change."""
    fastsql.run_insert(row, getattr(row, "_prepared_insert", None))
    auth_event_recorded.send(sender=AuthEvent, event=row)
    return row


def record_event(**kwargs: Any) -> AuthEvent:
    """Write one audit row and announce it (:func:`prepare_event` + :func:`save_event`).
    Call inside the transaction of the change."""
    return save_event(prepare_event(**kwargs))
