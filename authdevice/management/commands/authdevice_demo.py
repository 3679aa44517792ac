from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from ...flows.applications import create_application
from ...flows.keys import ensure_signing_key
from ...models import Application

DEMO_NAME = "Demo application"


class Command(BaseCommand):
    help = "Create the demo application (once) and print its API key id."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--port", default="8000")

    def handle(self, *args: Any, **options: Any) -> None:
        ensure_signing_key()
        app = Application.objects.filter(name=DEMO_NAME).first()
        base = f"http://127.0.0.1:{options['port']}"
        if app is None:
            app, secret = create_application(
                name=DEMO_NAME,
                redirect_urls=["http://localhost/", "http://127.0.0.1/"],
                allowed_origins=[base, f"http://localhost:{options['port']}"],
            )
            self.stdout.write(self.style.SUCCESS("Created the demo application."))
            self.stdout.write(f"  API key secret (shown once): {secret}")
        self.stdout.write(f"  Demo API key ID: {app.api_key_id}")
        self.stdout.write(f"  Cotter SDK base URL: {base}/api/v0")
