"""Writes each message as a JSON file into ``AUTHDEVICE_FILE_CHANNEL_DIR``: lets tests (or
an operator) read codes sent by another process."""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path

from ..conf import app_settings
from . import ChannelBackend, ChannelError, Message


class FileBackend(ChannelBackend):
    def send(self, message: Message) -> None:
        directory = app_settings.FILE_CHANNEL_DIR
        if not directory:
            raise ChannelError("AUTHDEVICE_FILE_CHANNEL_DIR is not set")
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        record = {
            "channel": message.channel,
            "to": message.to,
            "template": message.template,
            "body": message.render(".txt").strip(),
            "code": message.context.get("code", ""),
            "link": message.context.get("link_url", ""),
            "time": time.time(),
        }
        name = f"{time.time_ns()}-{uuid.uuid4().hex[:8]}.json"
        tmp = path / (name + ".tmp")
        tmp.write_text(json.dumps(record))
        os.replace(tmp, path / name)
