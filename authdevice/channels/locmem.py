"""Keeps messages in memory (``authdevice.channels.locmem.outbox``): for tests."""

from __future__ import annotations

from . import ChannelBackend, Message

outbox: list[Message] = []


class LocmemBackend(ChannelBackend):
    def send(self, message: Message) -> None:
        outbox.append(message)
