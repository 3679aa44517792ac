"""Approval requests as a Hypothesis state machine (security.md C, "model the state
machine with a Hypothesis RuleBasedStateMachine").

Random sequences of new requests, approvals with the right or a wrong number,
rejections, polls and waits run against the real native flows (signatures by a real
device key, the database, the clock moved by the test). After every step the outcome is
compared with a model:

* PENDING goes to APPROVED, REJECTED (a rejection, or ``MATCH_MAX_ATTEMPTS`` wrong
  numbers) or EXPIRED (its lifetime passes); every other state is final;
* a wrong number never approves; a decision on a final or expired request is refused;
* the tokens of a request exist if and only if it was approved and polled in time (until
  it expires, or ``HANDOUT_GRACE`` after the approval if later), and the first poll after
  approval is the only one that gets them; later, an uncollected approval is
  ``expired_token``.

Examples are derandomized (the same ones on every run).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest
import time_machine
from django.core.cache import caches
from django.test import override_settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    invariant,
    rule,
    run_state_machine_as_test,
)

from authdevice.conf import app_settings
from authdevice.flows import native
from authdevice.flows.devices import enrol_device
from authdevice.flows.events import HANDOUT_GRACE, AlreadyDecided, EventExpired
from authdevice.models import AuthEvent, RefreshToken
from tests.devicekit import Browser
from tests.stateful import derandomized

pytestmark = pytest.mark.django_db(transaction=True)

LIFETIME, MAX_WRONG = 180, 3
START = datetime(2026, 12, 5, 12, 0, 0)


@dataclass
class Request:
    pk: int
    secret: str
    number: str
    expires: float
    state: str = "pending"  # pending | approved | rejected
    wrong: int = 0
    collected: bool = False
    decided: float = 0.0


class Approvals(RuleBasedStateMachine):
    requests = Bundle("requests")

    def __init__(self) -> None:
        super().__init__()
        self.clock = time_machine.travel(START, tick=False)
        self.traveller = self.clock.start()
        self.now = 0.0
        caches[app_settings.RATELIMIT_CACHE].clear()
        AuthEvent.objects.filter(event="LOGIN").delete()
        RefreshToken.objects.all().delete()
        self.identity, self.application, self.browser, self.device = _world
        self.all: list[Request] = []

    def teardown(self) -> None:
        self.clock.stop()

    def effective(self, r: Request) -> str:
        if r.state == "pending" and self.now >= r.expires:
            return "expired"
        return r.state

    @rule(target=requests)
    def ask(self) -> Request:
        started = native.start_approval(identity=self.identity, application=self.application)
        request = Request(
            pk=started.event.pk,
            secret=started.poll_secret,
            number=started.match_code,
            expires=self.now + LIFETIME,
        )
        self.all.append(request)
        return request

    def _decide(self, r: Request, approve: bool, number: str) -> None:
        event = AuthEvent.objects.get(pk=r.pk)
        challenge = native.approval_challenge(self.device, event)
        decision = "approve" if approve else "reject"
        signature = self.browser.sign(
            native.signed_message("approve", challenge.value, event_id=r.pk, decision=decision)
        )
        before = self.effective(r)
        try:
            native.decide(
                event_id=r.pk,
                device=self.device,
                challenge=challenge.value,
                signature=signature,
                approve=approve,
                match_code=number,
            )
        except EventExpired:
            assert before == "expired"
            return
        except AlreadyDecided:
            assert before in ("approved", "rejected")
            return
        except native.WrongNumber:
            assert before == "pending" and approve and number != r.number
            r.wrong += 1
            if r.wrong >= MAX_WRONG:
                r.state = "rejected"
            return
        assert before == "pending", f"a {before} request was decided again"
        if approve:
            assert number == r.number, "approved with a wrong number"
        r.state = "approved" if approve else "rejected"
        r.decided = self.now

    @rule(r=requests)
    def approve(self, r: Request) -> None:
        self._decide(r, True, r.number)

    @rule(r=requests, typed=st.integers(min_value=0, max_value=999_999))
    def approve_with_a_wrong_number(self, r: Request, typed: int) -> None:
        number = f"{typed:06d}"
        if number != r.number:
            self._decide(r, True, number)

    @rule(r=requests)
    def reject(self, r: Request) -> None:
        self._decide(r, False, "")

    @rule(r=requests)
    def poll(self, r: Request) -> None:
        result = native.poll(r.pk, r.secret, enforce_interval=False, application=self.application)
        expected = {
            "pending": "authorization_pending",
            "approved": "approved",
            "rejected": "access_denied",
            "expired": "expired_token",
        }[self.effective(r)]
        late = self.now >= max(r.expires, r.decided + HANDOUT_GRACE)
        if r.state == "approved" and not r.collected and late:
            expected = "expired_token"  # nobody came for the tokens in time
        assert result.status == expected
        if r.state == "approved" and not r.collected and not late:
            assert result.tokens is not None, "the first poll after approval got no tokens"
            r.collected = True
        else:
            assert result.tokens is None, "tokens for a request that may not have them"

    @rule(seconds=st.sampled_from([1, 60, LIFETIME + 1]))
    def wait(self, seconds: int) -> None:
        self.now += seconds
        self.traveller.shift(timedelta(seconds=seconds))

    @invariant()
    def the_database_agrees(self) -> None:
        rows = {e.pk: e for e in AuthEvent.objects.filter(pk__in=[r.pk for r in self.all])}
        for r in self.all:
            row = rows[r.pk]
            # The row says pending until the tidy-up task runs: expiry is decided at read.
            assert row.state == r.state, (r, row.state)
            assert (row.tokens_handed_out_at is not None) == r.collected
        collected = [r for r in self.all if r.collected]
        assert RefreshToken.objects.count() == len(collected)
        assert all(r.state == "approved" for r in collected)


_world: tuple = ()


def test_approval_requests_follow_the_state_machine(identity, application):
    global _world
    browser = Browser()
    device = enrol_device(
        identity=identity, public_key=browser.public_key, algorithm="EC", application=application
    )
    _world = (identity, application, browser, device)
    with override_settings(
        AUTHDEVICE_PENDING_EVENT_LIFETIME=LIFETIME,
        AUTHDEVICE_MATCH_MAX_ATTEMPTS=MAX_WRONG,
        AUTHDEVICE_MAX_OUTSTANDING_EVENTS=10**6,
        AUTHDEVICE_MAX_REQUESTS_SINCE_SUCCESS=10**6,
        AUTHDEVICE_GEOLOCATION_BACKEND=None,
        EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend",
    ):
        run_state_machine_as_test(
            Approvals,
            settings=derandomized(max_examples=50, steps=40),
        )
