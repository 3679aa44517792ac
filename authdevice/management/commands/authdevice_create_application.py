from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ...flows.applications import create_application
from ...flows.errors import FlowError


class Command(BaseCommand):
    help = "Create an application (API key). Its secret key is printed once."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--name", required=True)
        parser.add_argument("--redirect-url", action="append", default=[], dest="redirect_urls")
        parser.add_argument("--origin", action="append", default=[], dest="origins")
        parser.add_argument(
            "--allow-unauthenticated-enrolment",
            action="store_true",
            help="Legacy Cotter behaviour (unsafe; a system check warns).",
        )
        parser.add_argument("--json", action="store_true", help="Print a JSON object.")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            app, secret = create_application(
                name=options["name"],
                redirect_urls=options["redirect_urls"],
                allowed_origins=options["origins"],
                allow_unauthenticated_enrolment=options["allow_unauthenticated_enrolment"],
            )
        except FlowError as exc:
            raise CommandError(exc.message) from exc
        data = {
            "name": app.name,
            "api_key_id": app.api_key_id,
            "secret_key": secret,
            "redirect_urls": app.redirect_urls,
            "allowed_origins": app.allowed_origins,
        }
        if options["json"]:
            self.stdout.write(json.dumps(data))
        else:
            self.stdout.write(f"Application {app.name!r} created.")
            self.stdout.write(f"  API key ID:  {app.api_key_id}")
            self.stdout.write(f"  Secret key:  {secret}   (shown once; stored hashed)")
