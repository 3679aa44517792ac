"""The pre-session: sign-ins in progress, kept in the (anonymous) Django session.

Each sign-in in progress is a *flow* under a random id (so two tabs, e.g. two CLI logins,
do not clobber each other). A flow holds the challenge id and the binding secret that
proves "this browser asked" (security.md A05, A10, K02), the ``next`` URL, and for
Cotter's hosted page the validated ``/app`` parameters. A completed or cancelled flow is
removed; at most :data:`MAX_FLOWS` are kept (oldest dropped).
"""

from __future__ import annotations

import secrets
from typing import Any

from django.http import HttpRequest

SESSION_KEY = "authdevice_signin"
MAX_FLOWS = 5


def _flows(request: HttpRequest) -> dict[str, dict[str, Any]]:
    value = request.session.get(SESSION_KEY)
    return value if isinstance(value, dict) else {}


def get_flow(request: HttpRequest, flow_id: object) -> dict[str, Any] | None:
    if not isinstance(flow_id, str) or not flow_id:
        return None
    flow = _flows(request).get(flow_id)
    return dict(flow) if isinstance(flow, dict) else None


def save_flow(request: HttpRequest, flow: dict[str, Any], flow_id: str | None = None) -> str:
    """Store ``flow`` (under ``flow_id``, or a new id); returns the id."""
    flows = _flows(request)
    flow_id = flow_id or secrets.token_urlsafe(12)
    flows.pop(flow_id, None)
    flows[flow_id] = flow
    while len(flows) > MAX_FLOWS:
        flows.pop(next(iter(flows)))
    request.session[SESSION_KEY] = flows
    return flow_id


def drop_flow(request: HttpRequest, flow_id: str) -> None:
    flows = _flows(request)
    if flows.pop(flow_id, None) is not None:
        request.session[SESSION_KEY] = flows


def flow_for_challenge(
    request: HttpRequest, challenge_id: int
) -> tuple[str, dict[str, Any]] | None:
    """The flow of this browser that started ``challenge_id``, if any (read only)."""
    for flow_id, flow in _flows(request).items():
        if isinstance(flow, dict) and flow.get("challenge") == challenge_id:
            return flow_id, dict(flow)
    return None
