from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from ...flows.audit import record_event
from ...flows.errors import InvalidIdentifier
from ...flows.identities import find_identity, guess_kind, normalise_identifier
from ...flows.tokens import issue_token_set
from ...models import Application, AuthEvent
from ...models.tokens import AuthMethod


class Command(BaseCommand):
    help = "Issue a token set for an existing user (service accounts, support)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--identifier", required=True, help="Email or phone of the user.")
        parser.add_argument("--application", required=True, help="API key id.")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        value = options["identifier"]
        try:
            normalised = normalise_identifier(guess_kind(value), value)
        except InvalidIdentifier as exc:
            raise CommandError(f"Not an email address or phone number: {value!r}") from exc
        identity = find_identity(normalised)
        if identity is None:
            raise CommandError(f"No user has the identifier {normalised!r}.")
        if not identity.user.is_active:
            raise CommandError("That user is inactive.")
        app = Application.objects.filter(api_key_id=options["application"], is_active=True).first()
        if app is None:
            raise CommandError(f"No active application with API key id {options['application']!r}.")
        with transaction.atomic():
            tokens = issue_token_set(
                identity=identity,
                application=app,
                auth_method=AuthMethod.OPERATOR,
                identifier=normalised,
            )
            record_event(
                event=AuthEvent.Kind.TOKENS_ISSUED,
                state=AuthEvent.State.APPROVED,
                user=identity.user,
                application=app,
                method=AuthMethod.OPERATOR,
                actor="manage.py authdevice_issue_tokens",
            )
        if options["json"]:
            self.stdout.write(json.dumps(tokens.as_cotter()))
        else:
            for key, val in tokens.as_cotter().items():
                self.stdout.write(f"{key}: {val}")
