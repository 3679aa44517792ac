"""The browser as a trusted device, in Chromium (issue 5, "Proof in a real browser").

Independent browser contexts (separate profiles: cookies and IndexedDB) against the example
site served by **uvicorn** (ASGI: the waiting page's server-sent events stream for real),
in its own process with its own SQLite file; mail goes to the file channel. The server is
a separate process because the test database is an in-memory SQLite shared-cache database:
the waiting endpoints read it from worker threads while approvals write it, which that
database answers with "database table is locked".

Context A enrols itself as a trusted device; context B signs in by "Approve from my device"
and is signed in, without a reload, once A approves with the number B shows. Also: three
wrong numbers, "This wasn't me" (security email), expiry, adding a third context by QR code
(decoded from a screenshot of the page with zxing-cpp), removing a device and staff revoking
it in the admin (its approvals are refused).
"""

from __future__ import annotations

import itertools
import json
import re
import sqlite3
import struct
import subprocess
import tempfile
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.live import PY, ROOT, site_env
from tests.services import free_port, wait_for_port

STAFF_PASSWORD = "staff-password-for-e2e-only"
_serial = itertools.count(1)


@dataclass
class Site:
    url: str
    db: Path
    mail_dir: Path
    log: Path

    def mails(self, to: str, template: str | None = None) -> list[dict[str, Any]]:
        found = []
        for path in sorted(self.mail_dir.glob("*.json")):
            record = json.loads(path.read_text())
            if record["to"] == to and (template is None or record["template"] == template):
                found.append(record)
        return found

    def wait_for_mail(self, to: str, template: str, count: int = 1) -> dict[str, Any]:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            found = self.mails(to, template)
            if len(found) >= count:
                return found[-1]
            time.sleep(0.05)
        raise AssertionError(
            f"no {template!r} message to {to}; server log:\n{self.log.read_text()}"
        )

    def sql(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.db, timeout=10) as conn:
            return conn.execute(query, params).fetchall()

    def expire_pending_events(self, email: str) -> int:
        """Age the user's pending requests past their expiry (as the clock would)."""
        with sqlite3.connect(self.db, timeout=10) as conn:
            cursor = conn.execute(
                "UPDATE authdevice_authevent SET expires_at = '2000-01-01 00:00:00' "
                "WHERE state = 'pending' AND user_id = (SELECT i.user_id FROM "
                "authdevice_useridentity i JOIN authdevice_identifier x ON x.identity_id = i.id "
                "WHERE x.value = ?)",
                (email,),
            )
            return cursor.rowcount

    def pending_count(self, email: str) -> int:
        return self.sql(
            "SELECT COUNT(*) FROM authdevice_authevent e JOIN authdevice_useridentity i "
            "ON i.user_id = e.user_id JOIN authdevice_identifier x ON x.identity_id = i.id "
            "WHERE x.value = ? AND e.state = 'pending'",
            email,
        )[0][0]


@pytest.fixture(scope="module")
def site() -> Iterator[Site]:
    tmp = Path(tempfile.mkdtemp(prefix="authdevice-e2e-devices-"))
    port = free_port()
    env = site_env(
        tmp,
        AUTHDEVICE_ISSUER=f"http://127.0.0.1:{port}",
        AUTHDEVICE_EMAIL_BACKEND="authdevice.channels.file.FileBackend",
        AUTHDEVICE_FILE_CHANNEL_DIR=str(tmp / "mail"),
        DJANGO_SUPERUSER_PASSWORD=STAFF_PASSWORD,
    )
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    for args in (
        ["migrate", "--noinput"],
        ["createsuperuser", "--noinput", "--username", "staff", "--email", "staff@example.com"],
    ):
        subprocess.run([PY, "manage.py", *args], cwd=ROOT, env=env, check=True, capture_output=True)
    log = tmp / "server.log"
    cmd = [
        PY,
        "-m",
        "uvicorn",
        "project.asgi:application",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--lifespan",
        "off",
        "--log-level",
        "warning",
    ]
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        wait_for_port(port, timeout=30, proc=proc)
        yield Site(
            url=f"http://127.0.0.1:{port}",
            db=tmp / "db.sqlite3",
            mail_dir=tmp / "mail",
            log=log,
        )
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture
def email(request) -> str:
    """A fresh account per test (rate limits are per identifier)."""
    return f"{request.node.name.replace('_', '-')[:40]}-{next(_serial)}@example.com"


@pytest.fixture
def console_errors() -> list[str]:
    return []


def open_page(new_context, console_errors: list[str], **kwargs: Any) -> Any:
    """A page in a fresh context that records script errors and CSP violations (the 4xx
    answers the pages expect, e.g. a wrong number, are logged by Chromium too: not these)."""
    page = new_context(**kwargs).new_page()

    def record(msg: Any) -> None:
        if msg.type == "error" and not msg.text.startswith("Failed to load resource"):
            console_errors.append(msg.text)

    page.on("console", record)
    page.on("pageerror", lambda exc: console_errors.append(str(exc)))
    return page


def sign_in_by_code(page, site: Site, email: str) -> None:
    already = len(site.mails(email, "code"))
    page.goto(f"{site.url}/signin/")
    page.get_by_label("Email address or phone number").fill(email)
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url(re.compile(r".*/signin/code/.*"))
    code = site.wait_for_mail(email, "code", already + 1)["code"]
    page.get_by_label("6-digit code").fill(code)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{site.url}/signin/done/")


def make_trusted(page, site: Site, email: str, name: str = "Laptop A") -> None:
    """Sign in by code, then "Make this browser a trusted device"."""
    sign_in_by_code(page, site, email)
    page.goto(f"{site.url}/devices/")
    page.get_by_label("Name for this browser").fill(name)
    page.get_by_role("button", name="Make this browser a trusted device").click()
    page.wait_for_url(f"{site.url}/devices/?done=added")
    row = page.locator("li.ad-device", has_text=name)
    # Both are shown by the page's script once it finds this browser's key (asynchronous
    # IndexedDB): wait for them (an instant is_visible() lost that race in CI once).
    row.locator("[data-ad-this]").wait_for(state="visible")  # "This browser"
    page.get_by_text("This browser is one of your trusted devices").wait_for(state="visible")


def ask_for_approval(page, site: Site, email: str) -> str:
    """On a browser that is not trusted: "Approve from my device"; returns the number."""
    page.goto(f"{site.url}/signin/")
    page.get_by_label("Email address or phone number").fill(email)
    page.get_by_role("button", name="Approve from my device").click()
    page.wait_for_url(re.compile(r".*/signin/approve/\?flow=.*"))
    number = page.locator("[data-ad-number]").inner_text().strip()
    assert re.fullmatch(r"\d{6}", number)
    assert page.get_by_text("Waiting for approval").is_visible()
    return number


def request_card(page, site: Site) -> Any:
    page.goto(f"{site.url}/devices/approve/")
    card = page.locator("form[data-ad-approval]").first
    card.get_by_role("button", name="Approve").wait_for()
    # The buttons are enabled once the page found this browser's key.
    page.wait_for_function(
        "() => !document.querySelector('form[data-ad-approval] button').disabled"
    )
    return card


def other_than(number: str) -> str:
    return f"{(int(number) + 1) % 10 ** len(number):0{len(number)}d}"


# -- the tests -------------------------------------------------------------------------------


def test_approve_with_the_number_signs_the_other_browser_in_without_reload(
    new_context, site, email, console_errors
):
    a = open_page(new_context, console_errors)
    make_trusted(a, site, email)
    # The private key is a non-extractable CryptoKey in IndexedDB; only the public key left.
    stored = a.evaluate(
        """() => new Promise((resolve, reject) => {
            const open = indexedDB.open("authdevice");
            open.onerror = () => reject(open.error);
            open.onsuccess = () => {
              const get = open.result.transaction("keys").objectStore("keys").get("this-browser");
              get.onsuccess = () => {
                const r = get.result;
                resolve({
                  type: r.keyPair.privateKey.type,
                  extractable: r.keyPair.privateKey.extractable,
                  algorithm: r.keyPair.privateKey.algorithm,
                  handle: r.handle,
                });
              };
            };
          })"""
    )
    assert stored["type"] == "private" and stored["extractable"] is False
    assert stored["algorithm"] == {"name": "ECDSA", "namedCurve": "P-256"}
    assert site.sql(
        "SELECT name FROM authdevice_trusteddevice WHERE fingerprint = ?", stored["handle"]
    ) == [("Laptop A",)]

    b = open_page(new_context, console_errors)
    streams: list[str] = []
    b.on("request", lambda r: streams.append(r.url) if "/signin/approval/" in r.url else None)
    number = ask_for_approval(b, site, email)
    b_url = b.url

    card = request_card(a, site)
    assert "Sign-in from Chrome" in card.inner_text()
    assert "127.0.0.1" in card.inner_text()
    # The number exists only on B's screen.
    assert not re.search(rf"(?<!\d){number}(?!\d)", a.content())
    card.get_by_label("Number shown on the other screen").fill(number)
    card.get_by_role("button", name="Approve").click()
    card.get_by_text("Approved. The other browser is signing in.").wait_for()

    # B learns it over its event stream and finishes the sign-in by itself.
    b.wait_for_url(f"{site.url}/signin/done/")
    assert b.get_by_role("heading", name="You are signed in").is_visible()
    assert email in b.inner_text("main")
    assert b_url != b.url and any("/signin/approval/events" in u for u in streams)
    assert console_errors == []


def test_without_event_source_the_page_long_polls(new_context, site, email, console_errors):
    a = open_page(new_context, console_errors)
    make_trusted(a, site, email)
    b = open_page(new_context, console_errors)
    b.context.add_init_script("delete window.EventSource;")
    waits: list[str] = []
    b.on("request", lambda r: waits.append(r.url) if "/signin/approval/" in r.url else None)
    number = ask_for_approval(b, site, email)
    card = request_card(a, site)
    card.get_by_label("Number shown on the other screen").fill(number)
    card.get_by_role("button", name="Approve").click()
    b.wait_for_url(f"{site.url}/signin/done/")
    assert waits and all("/signin/approval/status" in u and "wait=25" in u for u in waits)
    assert console_errors == []


def test_sign_in_with_this_device_needs_no_code(new_context, site, email, console_errors):
    a = open_page(new_context, console_errors)
    make_trusted(a, site, email)
    a.goto(f"{site.url}/signout/")
    a.get_by_role("button", name="Sign out").click()
    a.wait_for_url(f"{site.url}/signin/")
    codes_before = len(site.mails(email, "code"))
    a.get_by_role("button", name="Sign in with this device").click()
    a.wait_for_url(f"{site.url}/signin/done/")
    assert email in a.inner_text("main")
    assert len(site.mails(email, "code")) == codes_before  # no code was sent
    # A browser without the key does not offer it.
    b = open_page(new_context, console_errors)
    b.goto(f"{site.url}/signin/")
    b.get_by_role("button", name="Approve from my device").wait_for()
    assert not b.get_by_role("button", name="Sign in with this device").is_visible()
    assert console_errors == []


def test_three_wrong_numbers_refuse_the_sign_in(new_context, site, email, console_errors):
    a = open_page(new_context, console_errors)
    make_trusted(a, site, email)
    b = open_page(new_context, console_errors)
    number = ask_for_approval(b, site, email)
    card = request_card(a, site)
    field = card.get_by_label("Number shown on the other screen")
    status = card.locator("[data-ad-status]")
    for left in ("2 tries left", "1 try left"):
        field.fill(other_than(number))
        card.get_by_role("button", name="Approve").click()
        status.get_by_text(left).wait_for()
    field.fill(other_than(number))
    card.get_by_role("button", name="Approve").click()
    status.get_by_text("The request was cancelled").wait_for()
    # B shows the refusal live, and offers the code route instead.
    b.locator("[data-ad-refused]").wait_for(state="visible")
    assert b.get_by_role("button", name="Send me a code instead").is_visible()
    assert not b.locator("[data-ad-number]").is_visible()
    assert "/signin/approve/" in b.url
    b.get_by_role("button", name="Send me a code instead").click()
    b.wait_for_url(re.compile(r".*/signin/code/.*"))
    assert console_errors == []


def test_this_wasnt_me_refuses_and_sends_a_security_email(new_context, site, email, console_errors):
    a = open_page(new_context, console_errors)
    make_trusted(a, site, email)
    b = open_page(new_context, console_errors)
    ask_for_approval(b, site, email)
    card = request_card(a, site)
    card.get_by_role("button", name="This wasn't me").click()
    card.get_by_text("Refused.").wait_for()
    b.locator("[data-ad-refused]").wait_for(state="visible")
    notice = site.wait_for_mail(email, "device_refused")
    assert "refused a sign-in request" in notice["body"] and "127.0.0.1" in notice["body"]
    assert console_errors == []


def test_an_expired_request_says_so(new_context, site, email, console_errors):
    a = open_page(new_context, console_errors)
    make_trusted(a, site, email)
    b = open_page(new_context, console_errors)
    ask_for_approval(b, site, email)
    assert site.expire_pending_events(email) == 1
    b.locator("[data-ad-expired]").wait_for(state="visible")
    assert b.get_by_role("button", name="Send me a code instead").is_visible()
    a.goto(f"{site.url}/devices/approve/")
    assert a.get_by_text("No sign-in is waiting for your approval.").is_visible()
    assert console_errors == []


def png_to_gray(data: bytes) -> tuple[bytes, int, int]:
    """A minimal PNG decoder (8-bit, non-interlaced, as Chromium writes screenshots)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat = 8, b""
    width = height = channels = 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        chunk = data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", chunk)
            assert depth == 8 and interlace == 0
            channels = {0: 1, 2: 3, 4: 2, 6: 4}[color]
        elif kind == b"IDAT":
            idat += chunk
        elif kind == b"IEND":
            break
    raw, stride = zlib.decompress(idat), width * channels
    previous, gray, offset = bytearray(stride), bytearray(), 0
    for _ in range(height):
        kind, line = raw[offset], bytearray(raw[offset + 1 : offset + 1 + stride])
        offset += 1 + stride
        for x in range(stride):
            left = line[x - channels] if x >= channels else 0
            up = previous[x]
            up_left = previous[x - channels] if x >= channels else 0
            if kind == 1:
                line[x] = (line[x] + left) & 255
            elif kind == 2:
                line[x] = (line[x] + up) & 255
            elif kind == 3:
                line[x] = (line[x] + (left + up) // 2) & 255
            elif kind == 4:
                p = left + up - up_left
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - up_left)
                pred = left if pa <= pb and pa <= pc else (up if pb <= pc else up_left)
                line[x] = (line[x] + pred) & 255
        gray += line[::channels]
        previous = line
    return bytes(gray), width, height


def decode_qr(png: bytes) -> str:
    import zxingcpp

    gray, width, height = png_to_gray(png)
    found = zxingcpp.read_barcodes(memoryview(gray).cast("B", (height, width)))
    assert len(found) == 1, "no QR code found in the screenshot"
    return found[0].text


def test_add_a_device_by_qr_code(new_context, site, email, console_errors):
    a = open_page(new_context, console_errors)
    make_trusted(a, site, email)
    a.get_by_role("button", name="Add a device with a QR code").click()
    a.get_by_role("heading", name="Add a device").wait_for()
    qr = a.locator("[data-ad-qr] svg")
    url = decode_qr(qr.screenshot())
    # D01: the QR holds only this server's origin and the single-use binding code.
    match = re.fullmatch(re.escape(site.url) + r"/d/([A-Za-z0-9_-]{24,})", url)
    assert match, url
    assert a.locator("[data-ad-short-link]").inner_text() == url

    c = open_page(new_context, console_errors)
    c.goto(url)
    c.get_by_label("Name for this browser").fill("Tablet C")
    c.get_by_role("button", name="Add this browser").click()
    shown_on_c = c.locator("[data-ad-comparison]")
    shown_on_c.wait_for(state="visible")
    code = shown_on_c.inner_text().strip()
    assert re.fullmatch(r"\d{6}", code)

    # A moves on by itself to the comparison, shows the same code, and confirms.
    a.get_by_role("heading", name="Compare the codes").wait_for()
    assert a.locator("[data-ad-comparison]").inner_text().strip() == code
    assert "Tablet C" in a.inner_text("main")
    a.get_by_role("button", name="The codes match: add the device").click()
    a.wait_for_url(f"{site.url}/devices/?done=confirmed")
    assert a.locator("li.ad-device", has_text="Tablet C").is_visible()
    site.wait_for_mail(email, "device_added", 2)

    # C is now a trusted device: it signs in without a code.
    c.get_by_role("link", name="Go to sign-in").click()
    c.get_by_role("button", name="Sign in with this device").click()
    c.wait_for_url(f"{site.url}/signin/done/")
    assert email in c.inner_text("main")
    # The code worked once.
    again = open_page(new_context, console_errors)
    assert again.goto(url).status == 404
    assert console_errors == []


def test_a_removed_device_cannot_approve(new_context, site, email, console_errors):
    a = open_page(new_context, console_errors)
    make_trusted(a, site, email)
    b = open_page(new_context, console_errors)
    number = ask_for_approval(b, site, email)
    card = request_card(a, site)
    # In another tab of the same browser, remove this device.
    manage = a.context.new_page()
    manage.goto(f"{site.url}/devices/")
    manage.locator("li.ad-device", has_text="Laptop A").get_by_role("link", name="Remove").click()
    manage.get_by_role("button", name="Remove device").click()
    manage.wait_for_url(f"{site.url}/devices/?done=removed")
    card.get_by_label("Number shown on the other screen").fill(number)
    card.get_by_role("button", name="Approve").click()
    card.get_by_text("This browser is not a trusted device any more.").wait_for()
    assert site.pending_count(email) == 1
    assert b.locator("[data-ad-number]").is_visible() and "/signin/approve/" in b.url
    assert console_errors == []


def test_staff_revokes_a_device_in_the_admin(new_context, site, email, console_errors):
    a = open_page(new_context, console_errors)
    name = f"Revoked {email.split('@')[0][-6:]}"
    make_trusted(a, site, email, name=name)
    b = open_page(new_context, console_errors)
    number = ask_for_approval(b, site, email)

    card = request_card(a, site)  # open before the revocation
    staff = new_context().new_page()
    staff.goto(f"{site.url}/admin/login/?next=/admin/authdevice/trusteddevice/")
    staff.get_by_label("Username").fill("staff")
    staff.get_by_label("Password").fill(STAFF_PASSWORD)
    staff.get_by_role("button", name="Log in").click()
    staff.wait_for_url(re.compile(r".*/admin/authdevice/trusteddevice/.*"))
    staff.goto(f"{site.url}/admin/authdevice/trusteddevice/?q={name.replace(' ', '+')}")
    row = staff.locator("#result_list tbody tr", has_text=name)
    row.locator("input[name=_selected_action]").check()
    staff.locator("select[name=action]").select_option("revoke")
    staff.locator("button[name=index]").click()
    staff.get_by_text("Revoked 1 device(s).").wait_for()

    card.get_by_label("Number shown on the other screen").fill(number)
    card.get_by_role("button", name="Approve").click()
    card.get_by_text("This browser is not a trusted device any more.").wait_for()
    assert site.pending_count(email) == 1
    assert "/signin/approve/" in b.url
    # Opened afresh, the page says this browser cannot approve.
    a.reload()
    a.get_by_text("This browser is not one of your trusted devices").wait_for()
    assert a.get_by_role("button", name="Approve").is_disabled()
    assert console_errors == []
