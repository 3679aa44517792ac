"""Delivery channels (email, SMS, WhatsApp) behind one interface.

A backend is a class named by dotted path in ``AUTHDEVICE_CHANNELS`` with one method,
``send(message: Message) -> None``, raising :class:`ChannelError` on a transport failure
(the task then retries with backoff). Backends are called from Celery tasks only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from django.template.loader import render_to_string
from django.utils.module_loading import import_string


class ChannelError(Exception):
    """A transient delivery failure (network, provider 5xx): worth retrying."""


@dataclass(frozen=True)
class Message:
    """One outgoing message: ``template`` names templates under
    ``authdevice/messages/`` (``<template>.txt`` for SMS, plus ``_subject.txt`` and
    ``.html`` for email). ``context`` holds the code and link: never log it."""

    channel: str
    to: str
    template: str
    context: dict[str, Any] = field(default_factory=dict)

    def render(self, suffix: str) -> str:
        return render_to_string(f"authdevice/messages/{self.template}{suffix}", self.context)

    def __repr__(self) -> str:  # never print the context (it carries the code)
        return f"<Message {self.channel} to={self.to!r} template={self.template!r}>"


class ChannelBackend:
    """Base class of delivery backends."""

    def send(self, message: Message) -> None:
        raise NotImplementedError


@lru_cache(maxsize=16)
def load_backend(path: str) -> ChannelBackend:
    return import_string(path)()
