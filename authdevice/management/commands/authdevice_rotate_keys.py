from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from ...flows.keys import rotate_signing_key


class Command(BaseCommand):
    help = (
        "Publish a new ES256 signing key. It signs after AUTHDEVICE_KEY_PUBLISH_DELAY "
        "(--immediate: at once); the old key stays in the JWKS for the longest token lifetime."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--immediate", action="store_true", help="Switch at once.")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        key = rotate_signing_key(
            immediate=options["immediate"], actor="manage.py authdevice_rotate_keys"
        )
        if options["json"]:
            self.stdout.write(
                json.dumps(
                    {
                        "kid": key.kid,
                        "generation": key.generation,
                        "not_before": key.not_before.isoformat(),
                    }
                )
            )
        else:
            self.stdout.write(
                f"New key {key.kid} published; signs from {key.not_before.isoformat()}."
            )
