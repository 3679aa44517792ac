"""Delivery channels (email, SMS, WhatsApp, push) behind one interface.

A channel backend is a class named by dotted path with one method,
``send(message: Message) -> None``. Backends are called from Celery tasks only.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Message:
    """One outgoing message. ``secret_fields`` name context keys never to be logged."""

    channel: str
    to: str
    template: str
    context: dict[str, object] = field(default_factory=dict)
    secret_fields: tuple[str, ...] = ()


class ChannelBackend:
    """Base class of delivery backends."""

    def send(self, message: Message) -> None:
        raise NotImplementedError
