"""Sending codes: the Celery task, its idempotency, retries, and the channel backends
(the SMS provider's HTTP API is the outside world: a local fake Twilio server)."""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import pytest
from django.core import mail

from authdevice.channels import locmem
from authdevice.crypto.seal import seal
from authdevice.flows import codes
from authdevice.models import Challenge
from authdevice.tasks import send_challenge

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _setup(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.AUTHDEVICE_CHANNELS = {
        "EMAIL": "authdevice.channels.email.EmailBackend",
        "SMS": "authdevice.channels.locmem.LocmemBackend",
        "WHATSAPP": "authdevice.channels.locmem.LocmemBackend",
    }
    from django.core.cache import cache

    cache.clear()
    locmem.outbox.clear()
    yield
    locmem.outbox.clear()


def test_email_has_text_and_html_and_the_code_is_not_logged(caplog):
    caplog.set_level("DEBUG")
    started = codes.start_challenge(identifier="a@example.com", method="MAGIC_LINK")
    message = mail.outbox[0]
    code = re.search(r"\b(\d{6})\b", message.body).group(1)
    html = message.alternatives[0][0]
    assert code in html and "/signin/link/" in html
    assert code in message.subject
    row = Challenge.objects.get(pk=started.challenge.pk)
    assert row.sent_version == 1
    assert code not in caplog.text and code not in repr(row.__dict__)
    link_token = re.search(r"/signin/link/([^/]+)/", message.body).group(1)
    assert link_token not in caplog.text and link_token not in repr(row.__dict__)


def test_sms_and_whatsapp_channels_and_phone_normalisation():
    codes.start_challenge(identifier="+1 (415) 555-2671")
    codes.start_challenge(identifier="+14155552671", channel="WHATSAPP")
    assert [(m.channel, m.to) for m in locmem.outbox] == [
        ("SMS", "+14155552671"),
        ("WHATSAPP", "+14155552671"),
    ]
    assert "is your sign-in code" in locmem.outbox[0].render(".txt")
    assert "code" not in repr(locmem.outbox[0]).lower().replace("template", "")


def test_unconfigured_channel_is_refused(settings):
    settings.AUTHDEVICE_CHANNELS = {"EMAIL": "authdevice.channels.email.EmailBackend"}
    with pytest.raises(codes.ChannelUnavailable):
        codes.start_challenge(identifier="+14155552671")
    assert codes.available_channels("PHONE") == []


def test_duplicate_and_late_deliveries_send_nothing():
    started = codes.start_challenge(identifier="a@example.com")
    assert len(mail.outbox) == 1
    row = Challenge.objects.get()
    # The broker delivers the same message again: the claim is taken, nothing is sent.
    sealed = seal({"code": "123456", "link": ""}, f"challenge:{row.pk}:{row.version}")
    assert send_challenge.apply(args=[row.pk, row.version, sealed]).get() == "skipped"
    # A late delivery of an old version after a resend sends nothing either.
    codes.resend_challenge(challenge_id=row.pk, binding=started.binding)
    assert len(mail.outbox) == 2
    assert send_challenge.apply(args=[row.pk, 1, sealed]).get() == "skipped"
    # Nor for a used (or dead/expired) challenge.
    Challenge.objects.filter(pk=row.pk).update(state="verified", sent_version=0)
    assert send_challenge.apply(args=[row.pk, 2, sealed]).get() == "skipped"
    assert len(mail.outbox) == 2


def test_payload_is_encrypted_for_the_broker(monkeypatch, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = False  # with a broker (eager sends never leave)
    captured = []
    monkeypatch.setattr(send_challenge, "publish", lambda *a: captured.append(a))
    codes.start_challenge(identifier="a@example.com")
    ((challenge_id, version, sealed),) = captured
    assert re.fullmatch(r"[A-Za-z0-9_=-]+", sealed)
    from authdevice.crypto.seal import unseal

    code = unseal(sealed, f"challenge:{challenge_id}:{version}")["code"]
    assert code not in sealed and len(code) == 6
    with pytest.raises(Exception):
        unseal(sealed, f"challenge:{challenge_id}:{version + 1}")


class FakeTwilio(BaseHTTPRequestHandler):
    requests: list[dict] = []
    fail_next = 0

    def do_POST(self):
        length = int(self.headers["Content-Length"])
        body = parse_qs(self.rfile.read(length).decode())
        FakeTwilio.requests.append(
            {"path": self.path, "auth": self.headers["Authorization"], **body}
        )
        if FakeTwilio.fail_next:
            FakeTwilio.fail_next -= 1
            self.send_response(503)
            self.end_headers()
            return
        self.send_response(201)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(json.dumps({"sid": "SM123"}).encode())

    def log_message(self, *args):
        pass


@pytest.fixture
def twilio(settings):
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeTwilio)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    FakeTwilio.requests = []
    settings.AUTHDEVICE_CHANNELS = {
        "EMAIL": "authdevice.channels.email.EmailBackend",
        "SMS": "authdevice.channels.twilio.TwilioBackend",
        "WHATSAPP": "authdevice.channels.twilio.TwilioBackend",
    }
    settings.AUTHDEVICE_TWILIO_ACCOUNT_SID = "AC123"
    settings.AUTHDEVICE_TWILIO_AUTH_TOKEN = "tok"
    settings.AUTHDEVICE_TWILIO_FROM_NUMBER = "+15005550006"
    settings.AUTHDEVICE_TWILIO_WHATSAPP_FROM = "+14155238886"
    settings.AUTHDEVICE_TWILIO_API_BASE = f"http://127.0.0.1:{server.server_port}"
    yield FakeTwilio
    server.shutdown()


def test_twilio_sms_and_whatsapp(twilio):
    codes.start_challenge(identifier="+14155552671")
    codes.start_challenge(identifier="+14155552671", channel="WHATSAPP")
    sms, whatsapp = twilio.requests
    assert sms["path"] == "/2010-04-01/Accounts/AC123/Messages.json"
    assert sms["To"] == ["+14155552671"] and sms["From"] == ["+15005550006"]
    assert re.search(r"\b\d{6}\b", sms["Body"][0])
    assert sms["auth"].startswith("Basic ")
    assert whatsapp["To"] == ["whatsapp:+14155552671"] and whatsapp["From"] == [
        "whatsapp:+14155238886"
    ]


def test_transport_errors_are_retried_and_send_once(twilio):
    twilio.fail_next = 2
    codes.start_challenge(identifier="+14155552671")
    # Eager mode runs the retries at once: two 503s, then one successful send.
    assert len(twilio.requests) == 3
    bodies = {r["Body"][0] for r in twilio.requests}
    assert len(bodies) == 1  # the same code each time, never a second valid one
    assert Challenge.objects.get().sent_version == 1


def test_eager_sends_run_inline_with_the_claim_written_by_the_insert():
    """Eager mode: the web process is the worker. The challenge is inserted already
    claimed for its send (no claim UPDATE, no sealing, no task run), and sent once."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        codes.start_challenge(identifier="a@example.com")
    statements = [q["sql"] for q in queries.captured_queries]
    assert len(mail.outbox) == 1
    assert [s.split()[0] for s in statements] == ["INSERT"], statements
    row = Challenge.objects.get()
    assert row.sent_version == row.version == 1
    # A duplicate delivery of the same version still sends nothing.
    sealed = seal({"code": "123456", "link": ""}, f"challenge:{row.pk}:1")
    assert send_challenge.apply(args=[row.pk, 1, sealed]).get() == "skipped"
    assert len(mail.outbox) == 1


def test_task_signal_receivers_see_eager_sends_as_tasks():
    from celery import signals

    seen = []

    def prerun(sender=None, **kwargs):
        seen.append(sender.name)

    signals.task_prerun.connect(prerun)
    try:
        codes.start_challenge(identifier="a@example.com")
    finally:
        signals.task_prerun.disconnect(prerun)
    assert seen == ["authdevice.send_challenge"]
    assert len(mail.outbox) == 1
    assert Challenge.objects.get().sent_version == 1


class _Broken:
    def send(self, message):
        raise RuntimeError("bug in a channel backend")


def test_inline_send_unexpected_error_is_logged_or_propagated(monkeypatch, settings, caplog):
    from authdevice import tasks

    monkeypatch.setattr(tasks, "load_backend", lambda path: _Broken())
    settings.CELERY_TASK_EAGER_PROPAGATES = False
    started = codes.start_challenge(identifier="a@example.com")  # the request still answers
    assert "send failed" in caplog.text and "bug in a channel backend" in caplog.text
    # Not a transport error: the claim stays (no retry can send a second code).
    assert Challenge.objects.get(pk=started.challenge.pk).sent_version == 1
    settings.CELERY_TASK_EAGER_PROPAGATES = True
    with pytest.raises(RuntimeError):
        codes.start_challenge(identifier="b@example.com")


def test_rollback_sends_nothing_inline():
    from django.db import transaction

    with pytest.raises(ZeroDivisionError), transaction.atomic():
        codes.start_challenge(identifier="a@example.com")
        1 / 0
    assert mail.outbox == [] and not Challenge.objects.exists()
