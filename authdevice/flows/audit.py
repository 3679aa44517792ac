from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from ..http import client_ip, user_agent
from ..models import Application, AuthEvent, fastsql
from ..signals import auth_event_recorded


def record_event(
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
    """Write one audit row and announce it. Call inside the transaction of the change.
    Pass ``user`` or, when only its id is at hand, ``user_id`` (saves a query)."""
    row = AuthEvent(
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
    fastsql.insert(row)  # one prepared INSERT: the ORM compile would cost ~10x the statement
    auth_event_recorded.send(sender=AuthEvent, event=row)
    return row
