"""The real Cotter Python SDK (``cotter==0.0.7`` from PyPI) against a live authdevice
server (gunicorn, separate process, as deployed), with Chromium playing the person on the
hosted ``/app`` page (reference/cotter-api.md §1.6, §4.4, §5.1).

Only the outside world is stood in for: the SDK's ``webbrowser.open`` (we capture the URL
and drive it in Playwright) and the mailbox/phone (the file channel writes each message
as JSON into a directory we read).
"""

from __future__ import annotations

import json
import queue
import threading
import time
import webbrowser
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import cotter
import pytest
import requests
import time_machine
from cotter import constants, tokenhandler, validate
from jose.exceptions import ExpiredSignatureError

from tests.live import LiveSite, live_site
from tests.services import free_port

pytestmark = pytest.mark.slow

SUCCESS_PAGE = "<!doctype html><title>Signed in</title><p>You can close this window.</p>"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveSite]:
    outbox = tmp_path_factory.mktemp("outbox")
    with live_site(
        "gunicorn",
        # A loopback redirect URL matches on any port (RFC 8252): the SDK picks the port.
        redirect_urls=("http://localhost:18555",),
        AUTHDEVICE_EMAIL_BACKEND="authdevice.channels.file.FileBackend",
        AUTHDEVICE_SMS_BACKEND="authdevice.channels.file.FileBackend",
        AUTHDEVICE_FILE_CHANNEL_DIR=str(outbox),
    ) as running:
        running.extra["outbox"] = outbox
        yield running


@pytest.fixture
def opened_urls(
    site: LiveSite, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> queue.Queue[str]:
    """Point the SDK at the live server and catch the URL it would open in a browser."""
    monkeypatch.setattr(constants, "CotterBackendURL", f"{site.url}/api/v0")
    monkeypatch.setattr(constants, "CotterJSURL", site.url)
    # Computed at import from the old backend URL, read at call time by validate.py.
    monkeypatch.setattr(constants, "CotterJWKSURL", f"{site.url}/api/v0/token/jwks")
    urls: queue.Queue[str] = queue.Queue()

    def fake_open(url: str, *args: Any, **kwargs: Any) -> bool:
        urls.put(url)
        return True

    monkeypatch.setattr(webbrowser, "open", fake_open)
    # The SDK's redirect handler serves sys.path[0]/cotter_login_success.html and fails
    # the login without it.
    (tmp_path / "cotter_login_success.html").write_text(SUCCESS_PAGE)
    monkeypatch.syspath_prepend(str(tmp_path))
    return urls


class SDKLogin:
    """One ``cotter.login_with_*`` call in a thread (it blocks serving one redirect)."""

    def __init__(self, fn: Callable[[str, int], Any], api_key: str) -> None:
        self.port = free_port()
        self.result: Any = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(fn, api_key), daemon=True)
        self.thread.start()

    def _run(self, fn: Callable[[str, int], Any], api_key: str) -> None:
        try:
            self.result = fn(api_key, self.port)
        except BaseException as exc:
            self.error = exc

    def wait(self, timeout: float = 30) -> dict[str, Any]:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the SDK is still waiting for the redirect"
        assert self.error is None, repr(self.error)
        assert isinstance(self.result, dict), self.result
        return self.result


def read_message(outbox: Path, to: str, seen: set[str], timeout: float = 15) -> dict[str, Any]:
    """The next message the file channel wrote for ``to``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for path in sorted(outbox.glob("*.json")):
            if path.name in seen:
                continue
            record = json.loads(path.read_text())
            if record["to"] == to:
                seen.add(path.name)
                return record
        time.sleep(0.1)
    raise AssertionError(f"no message for {to} in {outbox}")


def start(
    fn: Callable[[str, int], Any], site: LiveSite, urls: queue.Queue[str], kind: str, method: str
) -> tuple[SDKLogin, str]:
    login = SDKLogin(fn, site.api_key_id)
    url = urls.get(timeout=15)
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == f"{site.url}/app"
    assert query["api_key"] == site.api_key_id
    assert query["redirect_url"] == f"http://localhost:{login.port}"
    assert query["type"] == kind and query["auth_method"] == method
    assert len(query["code_challenge"]) == 43 and query["state"]
    return login, url


def check_tokens(site: LiveSite, identity: dict[str, Any], identifier: str, method: str) -> None:
    """What a CLI does with the result: validate, then refresh when the access token expired."""
    api_key = site.api_key_id
    oauth = identity["oauth_token"]
    assert oauth["auth_method"] == method
    assert identity["user"]["identifier"] == identifier
    assert identity["identifier"]["identifier"] == identifier
    access = validate.validate_access_token(oauth["access_token"], api_key)
    assert access["aud"] == api_key and access["sub"] == identity["user"]["ID"]
    assert access["identifier"] == identifier
    id_claims = validate.validate_id_token(oauth["id_token"], api_key)
    assert id_claims["sub"] == identity["user"]["ID"]
    # A valid token is handed back unchanged.
    assert tokenhandler.refresh_token(oauth, api_key) == oauth
    # Two hours later (by this process's clock; the server keeps real time) the access
    # token has expired, so the SDK refreshes it (rotation).
    with time_machine.travel(time.time() + timedelta(hours=2).total_seconds()):
        with pytest.raises(ExpiredSignatureError):
            validate.validate_access_token(oauth["access_token"], api_key)
        fresh = tokenhandler.refresh_token(oauth, api_key)
    assert fresh["access_token"] != oauth["access_token"]
    assert fresh["refresh_token"] != oauth["refresh_token"]
    renewed = validate.validate_access_token(fresh["access_token"], api_key)
    assert renewed["sub"] == identity["user"]["ID"]
    assert validate.validate_id_token(fresh["id_token"], api_key)["sub"] == identity["user"]["ID"]
    # The spent refresh token is refused (and revokes its family).
    response = requests.post(
        f"{site.url}/api/v0/token/{api_key}",
        json={"grant_type": "refresh_token", "refresh_token": oauth["refresh_token"]},
        headers={"API_KEY_ID": api_key},
        timeout=10,
    )
    assert response.status_code == 400 and response.json()["type"] == "invalid_grant"


def finish_in_browser(page: Any, login: SDKLogin) -> dict[str, Any]:
    """After the last click the page goes to the SDK's loopback server; it answers."""
    identity = login.wait()
    page.wait_for_url(f"http://localhost:{login.port}/**")
    assert "You can close this window." in page.inner_text("body")
    return identity


def test_login_with_email_otp(site, opened_urls, page):
    login, url = start(cotter.login_with_email_otp, site, opened_urls, "EMAIL", "OTP")
    page.goto(url)
    page.get_by_label("Email address").fill("cli-otp@example.com")
    page.get_by_role("button", name="Continue").click()
    message = read_message(site.extra["outbox"], "cli-otp@example.com", set())
    page.get_by_label("6-digit code").fill(message["code"])
    page.get_by_role("button", name="Sign in").click()
    identity = finish_in_browser(page, login)
    assert set(identity) >= {"identifier", "token", "user", "oauth_token"}
    check_tokens(site, identity, "cli-otp@example.com", "OTP")


def test_login_with_email_link(site, opened_urls, page):
    login, url = start(cotter.login_with_email_link, site, opened_urls, "EMAIL", "MAGIC_LINK")
    page.goto(url)
    page.get_by_label("Email address").fill("cli-link@example.com")
    page.get_by_role("button", name="Continue").click()
    message = read_message(site.extra["outbox"], "cli-link@example.com", set())
    assert message["link"].startswith(f"{site.url}/signin/link/")
    # Same browser that asked: the landing page shows one button (a GET changes nothing).
    page.goto(message["link"])
    page.get_by_role("button", name="Sign in").click()
    identity = finish_in_browser(page, login)
    check_tokens(site, identity, "cli-link@example.com", "MAGIC_LINK")


def test_login_with_phone_otp(site, opened_urls, page):
    login, url = start(cotter.login_with_phone_otp, site, opened_urls, "PHONE", "OTP")
    page.goto(url)
    page.get_by_label("Phone number").fill("+1 415 555 2671")
    page.get_by_role("button", name="Continue").click()
    message = read_message(site.extra["outbox"], "+14155552671", set())
    assert message["channel"] == "SMS"
    page.get_by_label("6-digit code").fill(message["code"])
    page.get_by_role("button", name="Sign in").click()
    identity = finish_in_browser(page, login)
    assert identity["identifier"]["identifier_type"] == "PHONE"
    check_tokens(site, identity, "+14155552671", "OTP")


def test_the_same_email_signs_into_the_same_user(site, opened_urls, page):
    ids = []
    seen: set[str] = set()
    for _ in range(2):
        login, url = start(cotter.login_with_email_otp, site, opened_urls, "EMAIL", "OTP")
        page.goto(url)
        page.get_by_label("Email address").fill("same@example.com")
        page.get_by_role("button", name="Continue").click()
        message = read_message(site.extra["outbox"], "same@example.com", seen)
        page.get_by_label("6-digit code").fill(message["code"])
        page.get_by_role("button", name="Sign in").click()
        ids.append(finish_in_browser(page, login)["user"]["ID"])
    assert ids[0] == ids[1]
