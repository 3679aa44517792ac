"""``runserver`` that lets Cotter's underscore headers (``API_KEY_ID``) through.

Django's development server drops every header with an underscore in its name (they are
ambiguous with dashes once mapped into the WSGI environ). Cotter's SDKs send
``API_KEY_ID`` and ``API_SECRET_KEY``; this server keeps exactly those two and, if a
client also sends the dashed spelling, drops the dashed one so no header can shadow them.
"""

from __future__ import annotations

from typing import Any
from wsgiref import simple_server

from django.apps import apps
from django.core.servers.basehttp import WSGIRequestHandler, WSGIServer

if apps.is_installed("django.contrib.staticfiles"):
    from django.contrib.staticfiles.management.commands.runserver import (
        Command as BaseRunserver,
    )
else:
    from django.core.management.commands.runserver import Command as BaseRunserver

KEPT_UNDERSCORE_HEADERS = frozenset({"API_KEY_ID", "API_SECRET_KEY"})


class UnderscoreHeaderRequestHandler(WSGIRequestHandler):
    def get_environ(self) -> dict[str, Any]:
        for name in list(self.headers):
            upper = name.upper()
            if "_" in name and upper not in KEPT_UNDERSCORE_HEADERS:
                del self.headers[name]
            elif "-" in name and upper.replace("-", "_") in KEPT_UNDERSCORE_HEADERS:
                del self.headers[name]
        # Skip Django's handler, which would drop the headers kept above.
        return simple_server.WSGIRequestHandler.get_environ(self)


class UnderscoreHeaderWSGIServer(WSGIServer):
    def __init__(self, server_address: Any, handler_class: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(server_address, UnderscoreHeaderRequestHandler, *args, **kwargs)


class Command(BaseRunserver):
    help = BaseRunserver.help + " Keeps the API_KEY_ID / API_SECRET_KEY headers."
    server_cls = UnderscoreHeaderWSGIServer
