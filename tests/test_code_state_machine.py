"""The life of sign-in codes as a Hypothesis state machine (security.md A01-A05, J02).

Random sequences of requests, resends, wrong codes, old codes, right codes and waits run
against the real flows (``authdevice.flows.codes``, the database, the rate-limit cache,
the mail a user would read), on a clock the test moves. After every step the outcome is
compared with a small model of the rules:

* a code signs in at most once, only while its challenge is pending and unexpired, and
  only the newest code of the challenge (a resend replaces it);
* each code has ``CODE_MAX_ATTEMPTS`` tries; a resend gives the new code its own tries;
* wrong codes count against the identifier across codes and resends; from
  ``IDENTIFIER_FAILURE_LIMIT`` on, each one kills its challenge and makes the identifier
  wait (``IDENTIFIER_FAILURE_DELAY``, doubling), and nothing is checked while it waits;
  the count lapses ``IDENTIFIER_FAILURE_WINDOW`` after the last wrong code and a sign-in
  clears it;
* every sign-in writes one audit row;
* a challenge started with a PKCE ``code_challenge`` answers its right code with a grant
  (the same checks and counts) and signs in only when the grant is exchanged with its
  verifier: once, within ``AUTHORIZATION_CODE_LIFETIME``; a second exchange fails and
  revokes the tokens of the first; a wrong verifier changes nothing.

Examples are derandomized (the same ones on every run), so CI never meets a new one.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pytest
import time_machine
from django.core import mail
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
from authdevice.flows import codes, pkce, ratelimit
from authdevice.flows.applications import create_application
from authdevice.models import AuthEvent, Challenge, RefreshToken
from tests.stateful import derandomized

pytestmark = pytest.mark.django_db(transaction=True)

MAX_ATTEMPTS, MAX_RESENDS, FAILURE_LIMIT, DELAY, WINDOW, LIFETIME = 3, 3, 5, 30, 3600, 300
START = datetime(2026, 12, 5, 12, 0, 0)
_examples = itertools.count()


@dataclass
class Model:
    pk: int
    binding: str
    code: str
    expires: float
    old_codes: list[str] = field(default_factory=list)
    state: str = "pending"  # pending | dead | granted | used
    attempts: int = 0
    resends: int = 0
    verifier: str = ""  # a PKCE challenge's; empty: one step
    grant: str = ""
    granted_at: float = 0.0
    replayed: bool = False


def last_code() -> str:
    return re.search(r"\b(\d{6})\b", mail.outbox[-1].body).group(1)


class CodeLife(RuleBasedStateMachine):
    challenges = Bundle("challenges")

    def __init__(self) -> None:
        super().__init__()
        self.identifier = f"prop{next(_examples)}@example.com"
        self.clock = time_machine.travel(START, tick=False)
        self.traveller = self.clock.start()
        self.now = 0.0  # seconds since START
        self.failures = 0
        self.last_failure = -(10**9)
        self.wait_until = -(10**9)
        self.sign_ins = 0
        self.models: list[Model] = []
        self.application, _ = create_application(name=f"prop{self.identifier}")
        caches[app_settings.RATELIMIT_CACHE].clear()
        mail.outbox = []

    def teardown(self) -> None:
        self.clock.stop()

    # -- the model's view of the identifier ---------------------------------------------

    def _lapse(self) -> None:
        if self.now - self.last_failure >= WINDOW:
            self.failures = 0

    def waiting(self) -> bool:
        return self.now < self.wait_until

    def _usable(self, m: Model) -> bool:
        return m.state == "pending" and self.now < m.expires

    # -- rules ----------------------------------------------------------------------------

    @rule(target=challenges, two_step=st.booleans())
    def request(self, two_step: bool) -> Model:
        verifier = f"verifier-{next(_examples):040d}" if two_step else ""
        started = codes.start_challenge(
            identifier=self.identifier,
            application=self.application,
            code_challenge=pkce.s256(verifier) if verifier else "",
        )
        model = Model(
            pk=started.challenge.pk,
            binding=started.binding,
            code=last_code(),
            expires=self.now + LIFETIME,
            verifier=verifier,
        )
        self.models.append(model)
        return model

    @rule(m=challenges)
    def resend(self, m: Model) -> None:
        try:
            codes.resend_challenge(
                challenge_id=m.pk, binding=m.binding, application=self.application
            )
        except codes.ChallengeNotFound:
            assert m.state != "pending"
            return
        except ratelimit.RateLimited:
            assert m.state == "pending" and m.resends >= MAX_RESENDS
            return
        assert m.state == "pending" and m.resends < MAX_RESENDS
        m.old_codes.append(m.code)
        m.code, m.attempts, m.resends = last_code(), 0, m.resends + 1
        m.expires = self.now + LIFETIME

    def _check(self, m: Model, code: str, right: bool) -> None:
        self._lapse()
        try:
            result = codes.verify_code_or_grant(
                challenge_id=m.pk, binding=m.binding, code=code, application=self.application
            )
        except ratelimit.RateLimited:
            assert self.waiting(), "refused with a wait the model does not have"
            return
        except codes.InvalidCode:
            assert not self.waiting(), "checked a code while the identifier had to wait"
            if right:
                assert not self._usable(m), "the newest code of a usable challenge failed"
                return
            if not self._usable(m):
                return  # nothing is counted against a challenge that cannot sign in
            m.attempts += 1
            self.failures += 1
            self.last_failure = self.now
            if m.attempts >= MAX_ATTEMPTS:
                m.state = "dead"
            if self.failures >= FAILURE_LIMIT:
                m.state = "dead"
                delay = min(DELAY * 2 ** (self.failures - FAILURE_LIMIT), WINDOW)
                self.wait_until = self.now + delay
            return
        assert right, "a wrong or replaced code signed in"
        assert not self.waiting() and self._usable(m)
        self.failures, self.wait_until = 0, -(10**9)
        if m.verifier:
            assert isinstance(result, codes.Granted), "a PKCE challenge signed in in one step"
            m.state, m.grant, m.granted_at = "granted", result.authorization_code, self.now
            return
        assert isinstance(result, codes.SignedIn) and result.tokens is not None
        m.state = "used"
        self.sign_ins += 1

    def _exchange(self, m: Model, verifier: str) -> None:
        try:
            signed = codes.exchange_code_grant(
                application=self.application,
                challenge_id=m.pk,
                authorization_code=m.grant,
                code_verifier=verifier,
            )
        except pkce.InvalidAuthorizationCode:
            if verifier == m.verifier:
                assert m.state != "granted" or self.now >= m.granted_at + LIFETIME
                if m.state == "used":
                    m.replayed = True
            return
        assert verifier == m.verifier and m.state == "granted", "an exchange it should refuse"
        assert self.now < m.granted_at + LIFETIME, "an expired grant was exchanged"
        assert signed.tokens is not None
        m.state = "used"
        self.sign_ins += 1

    @rule(m=challenges)
    def exchange(self, m: Model) -> None:
        if m.grant:
            self._exchange(m, m.verifier)

    @rule(m=challenges)
    def exchange_once_the_grant_expired(self, m: Model) -> None:
        if m.grant:
            self.wait(max(0, int(m.granted_at + LIFETIME - self.now)))
            self._exchange(m, m.verifier)

    @rule(m=challenges)
    def exchange_with_a_wrong_verifier(self, m: Model) -> None:
        if m.grant:
            self._exchange(m, m.verifier[::-1])

    @rule(m=challenges)
    def right_code(self, m: Model) -> None:
        self._check(m, m.code, right=True)

    @rule(m=challenges, pick=st.integers(min_value=0, max_value=10**6 - 1))
    def wrong_code(self, m: Model, pick: int) -> None:
        code = f"{pick:06d}"
        if code != m.code:
            self._check(m, code, right=False)

    @rule(m=challenges)
    def wrong_code_then_the_first_delay(self, m: Model) -> None:
        """A guesser who waits out the first delay each time (it should double)."""
        self.wrong_code(m, (int(m.code) + 1) % 10**6)
        self.wait(DELAY + 1)

    @rule(m=challenges, which=st.integers(min_value=0, max_value=2))
    def replaced_code(self, m: Model, which: int) -> None:
        if m.old_codes and m.old_codes[which % len(m.old_codes)] != m.code:
            self._check(m, m.old_codes[which % len(m.old_codes)], right=False)

    @rule(seconds=st.sampled_from([1, DELAY - 1, DELAY + 1, LIFETIME + 1, WINDOW + 1]))
    def wait(self, seconds: int) -> None:
        self.now += seconds
        self.traveller.shift(timedelta(seconds=seconds))

    # -- invariants ---------------------------------------------------------------------

    @invariant()
    def the_database_agrees(self) -> None:
        expected = {m.pk: {"used": "verified"}.get(m.state, m.state) for m in self.models}
        rows = dict(Challenge.objects.filter(identifier=self.identifier).values_list("pk", "state"))
        assert rows == expected
        logins = AuthEvent.objects.filter(
            event="LOGIN", state="approved", details__challenge_id__in=list(expected)
        )
        assert logins.count() == self.sign_ins
        for m in self.models:
            if m.replayed:
                family = Challenge.objects.get(pk=m.pk).token_family
                assert family is not None
                live = RefreshToken.objects.filter(family=family, revoked_at__isnull=True)
                assert not live.exists(), "a replayed grant's tokens are still valid"


def test_codes_follow_the_rules(transactional_db):
    with override_settings(
        AUTHDEVICE_CODE_MAX_ATTEMPTS=MAX_ATTEMPTS,
        AUTHDEVICE_CODE_MAX_RESENDS=MAX_RESENDS,
        AUTHDEVICE_IDENTIFIER_FAILURE_LIMIT=FAILURE_LIMIT,
        AUTHDEVICE_IDENTIFIER_FAILURE_DELAY=DELAY,
        AUTHDEVICE_IDENTIFIER_FAILURE_WINDOW=WINDOW,
        AUTHDEVICE_CHALLENGE_LIFETIME=LIFETIME,
        AUTHDEVICE_AUTHORIZATION_CODE_LIFETIME=LIFETIME,
        AUTHDEVICE_SEND_LIMIT_PER_IP=10**9,
        AUTHDEVICE_SEND_LIMIT_PER_IDENTIFIER=10**9,
        EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend",
    ):
        run_state_machine_as_test(
            CodeLife,
            settings=derandomized(max_examples=100, steps=50),
        )
