"""Prints messages (code and link included) to standard output: development only."""

from __future__ import annotations

import sys

from . import ChannelBackend, Message


class ConsoleBackend(ChannelBackend):
    def send(self, message: Message) -> None:
        body = message.render(".txt").strip()
        sys.stdout.write(f"\n[authdevice {message.channel} to {message.to}]\n{body}\n\n")
        sys.stdout.flush()
