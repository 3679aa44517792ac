"""The real ``react-native-cotter@0.3.6`` TrustedDevice code (npm) against a live authdevice
server: reference/cotter-api.md §1.5 A/B, §1.8, §2, §4.1-4.3, §5.4; issue 4 "Proof with
real clients".

The SDK's source is bundled with esbuild for Node (``tests/compat/node/build.mjs``); only
its native modules and the JSX modal wrapper are stand-ins (``tests/compat/node/stubs``,
``drivers/rn-modals.js`` re-enacts what the modals do). Each phone is a JSON file holding
its secure storage, driven one step per ``node`` process, so two files are two phones.
The SDK sends no bearer token when enrolling: the application has the legacy
``--allow-unauthenticated-enrolment`` switch on. Nothing leaves 127.0.0.1: geoip-db.com is
answered inside the driver and a guard refuses any other non-loopback connection.
"""

from __future__ import annotations

import base64
import json
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.compat.node_env import BackgroundRun, NodeEnv
from tests.live import LiveSite, live_site

pytestmark = pytest.mark.slow

DRIVER = "rn-trusted-device.js"
GEOIP = {"ip": "203.0.113.7", "location": "Testville"}  # what the driver's geoip stub says
TOKEN_FIELDS = {"access_token", "id_token", "refresh_token", "expires_in", "token_type"}


@pytest.fixture(scope="module")
def node() -> NodeEnv:
    return NodeEnv.get()


@pytest.fixture(scope="module")
def site(node: NodeEnv) -> Iterator[LiveSite]:
    with live_site("gunicorn", create_args=("--allow-unauthenticated-enrolment",)) as running:
        yield running


def transcript(result: dict[str, Any]) -> str:
    """The HTTP exchange a driver step made, for assertion messages."""
    lines = [f"step {result.get('command')}: outcome={result.get('outcome')!r}"]
    if result.get("error") is not None:
        lines.append(f"  error: {json.dumps(result['error'])[:600]}")
    for req in result.get("requests", []):
        body = json.dumps(req.get("body"))[:400] if req.get("body") is not None else ""
        answer = json.dumps(req.get("response"))[:600]
        status = f"stubbed({req['stubbed']})" if req.get("stubbed") else req.get("status")
        lines.append(f"  {req['method']} {req['path']} {body}\n    -> {status} {answer}")
    if result.get("unhandled"):
        lines.append(f"  unhandled rejections: {result['unhandled']}")
    return "\n".join(lines)


class Phone:
    """One phone running the SDK: a state file (its secure storage) plus the user it is for."""

    def __init__(self, node: NodeEnv, site: LiveSite, state: Path) -> None:
        self.node = node
        self.site = site
        self.state = state
        self.user: dict[str, Any] | None = None

    def _args(self, command: str, *extra: str) -> list[str]:
        args = [command, "--url", self.site.url, "--api-key", self.site.api_key_id]
        args += ["--phone", str(self.state)]
        if self.user is not None:
            args += ["--user-id", self.user["client_user_id"], "--cotter-user-id", self.user["ID"]]
        return args + list(extra)

    def run(self, command: str, *extra: str, timeout: float = 60) -> dict[str, Any]:
        result = self.node.run(DRIVER, *self._args(command, *extra), timeout=timeout)
        check_clean(result)
        return result

    def start(self, command: str, *extra: str, timeout: float = 90) -> tuple[BackgroundRun, Path]:
        ready = self.state.with_suffix(f".{command}.ready.json")
        ready.unlink(missing_ok=True)
        run = self.node.start(
            DRIVER, *self._args(command, "--ready-file", str(ready), *extra), timeout=timeout
        )
        return run, ready

    def for_user(self, user: dict[str, Any]) -> Phone:
        self.user = user
        return self


def check_clean(result: dict[str, Any]) -> None:
    """Nothing left 127.0.0.1 and the SDK hit no unhandled rejection (e.g. a token set it
    could not store: TokenHandler.storeTokens runs un-awaited)."""
    assert result["outbound"] == [], result["outbound"]
    assert result["unhandled"] == [], transcript(result)
    for req in result.get("requests", []):
        if not req.get("stubbed"):
            assert req["url"].startswith("http://127.0.0.1:"), req["url"]


def only(result: dict[str, Any], method: str, path_re: str) -> dict[str, Any]:
    """The single server request of a step matching method and path."""
    hits = [
        r
        for r in result["requests"]
        if r["method"] == method and re.fullmatch(path_re, r["path"]) and not r.get("stubbed")
    ]
    assert len(hits) == 1, f"expected one {method} {path_re}\n{transcript(result)}"
    return hits[0]


def assert_token_set(oauth: Any, context: str) -> None:
    assert isinstance(oauth, dict), f"no oauth_token object: {oauth!r}\n{context}"
    assert TOKEN_FIELDS <= set(oauth), f"oauth_token lacks {TOKEN_FIELDS - set(oauth)}\n{context}"
    assert oauth["token_type"] == "Bearer", context
    assert oauth["auth_method"] == "TRUSTED_DEVICE", context


def api_get(site: LiveSite, path: str) -> requests.Response:
    return requests.get(
        f"{site.url}/api/v0{path}", headers={"API_KEY_ID": site.api_key_id}, timeout=10
    )


@pytest.fixture
def phones(node: NodeEnv, site: LiveSite, tmp_path: Path) -> tuple[Phone, Phone]:
    a = Phone(node, site, tmp_path / "phone-a.json")
    b = Phone(node, site, tmp_path / "phone-b.json")
    return a, b


def new_user(phone: Phone) -> dict[str, Any]:
    """A1 POST /user/create {identifier}, sent by the SDK's Requests.registerUserToCotter."""
    email = f"rn-{uuid.uuid4().hex[:10]}@example.com"
    result = phone.run("create-user", "--identifier", email)
    sent = only(result, "POST", "/api/v0/user/create")
    assert sent["body"] == {"identifier": email}
    assert result["outcome"] == "success", transcript(result)
    user = result["response"]
    assert sent["status"] == 200, transcript(result)
    assert isinstance(user.get("ID"), str) and user["ID"], user
    assert isinstance(user.get("client_user_id"), str) and user["client_user_id"], user
    assert user["identifier"] == email, user
    assert user["issuer"] == phone.site.api_key_id, user
    user["email"] = email
    return user


def enrol(phone: Phone) -> dict[str, Any]:
    result = phone.run("enrol")
    assert result["outcome"] == "success", transcript(result)
    return result


@pytest.fixture
def trusted(phones: tuple[Phone, Phone]) -> tuple[Phone, Phone, dict[str, Any]]:
    """A user whose phone A is enrolled; phone B knows the user but has no key yet."""
    a, b = phones
    user = new_user(a)
    enrol(a.for_user(user))
    b.for_user(user)
    return a, b, user


def test_enrol_this_device_and_check_enrolment(phones: tuple[Phone, Phone]) -> None:
    a, _ = phones
    user = new_user(a)
    a.for_user(user)

    result = a.run("enrol")
    assert result["outcome"] == "success", transcript(result)
    key = result["publicKey"]
    assert key and len(base64.b64decode(key)) == 32
    # RN with userID set takes A5: PUT /user/:client_user_id?oauth_token=true (reference §1.8).
    sent = only(
        result, "PUT", rf"/api/v0/user/{re.escape(user['client_user_id'])}\?oauth_token=true"
    )
    assert sent["headers"]["API_KEY_ID"] == a.site.api_key_id
    assert sent["body"] == {
        "method": "TRUSTED_DEVICE",
        "enrolled": True,
        "code": key,
        "algorithm": "ED25519",
        "device_name": "phone-a 1.0",
        "device_type": "TestMaker",
    }
    response = result["response"]
    assert response["ID"] == user["ID"], transcript(result)
    assert "TRUSTED_DEVICE" in (response.get("enrolled") or []), transcript(result)
    assert_token_set(response.get("oauth_token"), transcript(result))
    # TokenHandler.storeTokens decoded the ID token with cotter-token-js into its user.
    claims = result["tokens"]["id_token_claims"]
    assert claims["sub"] == user["ID"]
    assert claims["client_user_id"] == user["client_user_id"]
    assert claims["identifier"] == user["email"]

    check = a.run("enrolled")
    assert check["enrolled"] is True, transcript(check)
    # A7 with the double-base64 key, url-safe alphabet, padding kept (reference §2.4).
    encoded = base64.b64encode(key.encode()).decode().replace("+", "-").replace("/", "_")
    sent = only(
        check,
        "GET",
        re.escape(f"/api/v0/user/enrolled/{user['client_user_id']}/TRUSTED_DEVICE/{encoded}"),
    )
    assert sent["status"] == 200, transcript(check)
    assert sent["response"]["enrolled"] is True, transcript(check)
    assert sent["response"]["method"] == "TRUSTED_DEVICE", transcript(check)


def test_enrol_with_cotter_user_id_only(phones: tuple[Phone, Phone]) -> None:
    """User.registerDevice / Cotter.signUpWithDevice: no userID -> A6 PUT /user/methods."""
    a, _ = phones
    user = new_user(a)
    a.for_user(user)
    result = a.run("enrol", "--no-user-id")
    sent = only(
        result,
        "PUT",
        rf"/api/v0/user/methods\?cotter_user_id={re.escape(user['ID'])}&oauth_token=true",
    )
    assert result["outcome"] == "success", transcript(result)
    assert sent["body"]["code"] == result["publicKey"]
    assert_token_set(result["response"].get("oauth_token"), transcript(result))
    assert a.run("enrolled")["enrolled"] is True


def test_sign_in_from_trusted_device(
    node: NodeEnv, site: LiveSite, trusted: tuple[Phone, Phone, dict[str, Any]]
) -> None:
    a, _, user = trusted
    before = json.loads(a.state.read_text())["storage"]["ACCESS_TOKEN"]

    result = a.run("login")
    assert result["outcome"] == "success", transcript(result)
    sent = only(result, "POST", r"/api/v0/event/create\?oauth_token=true")
    body = sent["body"]
    assert body["client_user_id"] == user["client_user_id"]
    assert body["issuer"] == site.api_key_id
    assert body["event"] == "LOGIN" and body["method"] == "TRUSTED_DEVICE"
    assert body["approved"] is True and body["algorithm"] == "ED25519"
    assert body["public_key"] == result["publicKey"]
    assert {"ip": body["ip"], "location": body["location"]} == GEOIP
    assert abs(int(body["timestamp"]) - time.time()) < 60

    event = result["response"]
    assert isinstance(event["ID"], int), transcript(result)
    assert event["approved"] is True and event["new"] is False, transcript(result)
    assert event["event"] == "LOGIN" and event["method"] == "TRUSTED_DEVICE"
    assert event["client_user_id"] == user["client_user_id"]
    assert isinstance(event["timestamp"], str)
    assert_token_set(event.get("oauth_token"), transcript(result))

    # The SDK stored the new token set; the access token is ours and says how it was won.
    stored = result["tokens"]
    assert stored["access_token"] == event["oauth_token"]["access_token"] != before
    assert stored["access_token_claims"]["sub"] == user["ID"]
    assert stored["access_token_claims"]["authentication_method"] == "TRUSTED_DEVICE"
    assert stored["id_token_claims"]["identifier"] == user["email"]

    # ... and Cotter's own server-side validator (cotter-node) accepts it through our JWKS.
    kid = json.loads(base64.urlsafe_b64decode(stored["access_token"].split(".")[0] + "=="))["kid"]
    args = ["validate", "--url", site.url, "--kid", kid, "--token", stored["access_token"]]
    validated = node.run("cotter-node.js", *args)
    assert validated["results"] == [{"valid": True}], validated


def test_pending_login_from_second_device_approved_by_first(
    site: LiveSite, trusted: tuple[Phone, Phone, dict[str, Any]]
) -> None:
    a, b, user = trusted
    waiting, ready = b.start("request", "--poll", "0.5", "--deadline", "45")
    try:
        event_id = waiting.wait_for_file(ready)["eventID"]
        assert isinstance(event_id, int), event_id
        answer = a.run("respond", "--decision", "approve")
        assert answer["outcome"] == "success", transcript(answer)
        outcome = waiting.result(timeout=60)
    finally:
        waiting.kill()
    check_clean(outcome)

    # The second phone created the pending event (B2) ...
    pending = only(outcome, "POST", "/api/v0/event/create_pending")
    assert pending["body"]["client_user_id"] == user["client_user_id"]
    assert pending["body"]["method"] == "TRUSTED_DEVICE" and "code" not in pending["body"]
    assert pending["response"]["new"] is True and pending["response"]["approved"] is False
    assert pending["response"]["ID"] == event_id

    # ... the first found it (B5) and approved it (B3, signed over the pending timestamp).
    assert answer["outcome"] == "success", transcript(answer)
    assert answer["newEvent"]["ID"] == event_id, transcript(answer)
    assert answer["newEvent"]["new"] is True and answer["newEvent"]["approved"] is False
    only(answer, "GET", re.escape(f"/api/v0/event/new/{user['client_user_id']}"))
    respond = only(answer, "POST", f"/api/v0/event/respond/{event_id}")
    # The approver signs the pending event's timestamp as the server chose it (never the
    # requester's own clock), echoed back in the respond body.
    assert respond["body"]["timestamp"] == pending["response"]["timestamp"]
    assert abs(int(respond["body"]["timestamp"]) - int(pending["body"]["timestamp"])) <= 30
    assert respond["body"]["approved"] is True
    assert respond["body"]["public_key"] == answer["publicKey"]
    assert answer["response"]["approved"] is True and answer["response"]["new"] is False

    # The second phone's poll (B4 ?oauth_token=true) got the approved event with its tokens.
    assert outcome["outcome"] == "success", transcript(outcome)
    assert outcome["response"]["ID"] == event_id and outcome["response"]["approved"] is True
    assert_token_set(outcome["response"].get("oauth_token"), transcript(outcome))
    polls = [p.get("response") or {} for p in outcome["polls"]]
    with_tokens = [i for i, p in enumerate(polls) if "oauth_token" in p]
    assert len(with_tokens) == 1, transcript(outcome)
    assert all(p.get("approved") is False for p in polls[: with_tokens[0]]), transcript(outcome)
    stored = outcome["tokens"]
    assert stored["access_token"] == outcome["response"]["oauth_token"]["access_token"]
    assert stored["access_token_claims"]["sub"] == user["ID"]
    assert stored["id_token_claims"]["client_user_id"] == user["client_user_id"]
    assert outcome["publicKey"] is None  # it asked; it was not made a trusted device

    # The tokens were handed out once; no pending event is left for the trusted phone.
    again = api_get(site, f"/event/get/{event_id}?oauth_token=true")
    assert again.status_code == 200, again.text
    assert again.json()["approved"] is True and "oauth_token" not in again.json(), again.text
    nothing = a.run("respond", "--decision", "approve")
    assert nothing["outcome"] == "no-modal", transcript(nothing)
    assert only(nothing, "GET", r"/api/v0/event/new/.+")["response"] is None


def test_pending_login_rejected_never_yields_tokens(
    site: LiveSite, trusted: tuple[Phone, Phone, dict[str, Any]]
) -> None:
    a, b, _ = trusted
    # No SDK notices a rejection: the request modal polls until its deadline (shortened).
    waiting, ready = b.start("request", "--poll", "0.5", "--deadline", "4", "--result-delay", "0")
    try:
        event_id = waiting.wait_for_file(ready)["eventID"]
        answer = a.run("respond", "--decision", "reject")
        assert answer["outcome"] == "success", transcript(answer)
        outcome = waiting.result(timeout=60)
    finally:
        waiting.kill()
    check_clean(outcome)

    assert answer["outcome"] == "success", transcript(answer)  # the modal closed normally
    assert answer["newEvent"]["ID"] == event_id
    respond = only(answer, "POST", f"/api/v0/event/respond/{event_id}")
    assert respond["body"]["approved"] is False
    assert answer["response"]["approved"] is False and answer["response"]["new"] is False

    assert outcome["outcome"] == "error", transcript(outcome)
    assert outcome["tokens"] == {}, transcript(outcome)
    for poll in outcome["polls"]:
        response = poll.get("response") or {}
        assert not response.get("approved") and "oauth_token" not in response, transcript(outcome)
    after = api_get(site, f"/event/get/{event_id}?oauth_token=true")
    if after.status_code == 200:
        assert after.json()["approved"] is False and "oauth_token" not in after.json()


def test_qr_enrolment_of_second_device(
    site: LiveSite, trusted: tuple[Phone, Phone, dict[str, Any]]
) -> None:
    a, b, user = trusted
    showing, ready = b.start("qr", "--poll", "0.5", "--deadline", "45", "--result-delay", "0")
    try:
        qr = showing.wait_for_file(ready)["qr"]
        key_b, algorithm, issuer, uid, ts = qr.split(":")
        assert (algorithm, issuer, uid) == ("ED25519", site.api_key_id, user["ID"]), qr
        assert abs(int(ts) - time.time()) < 60

        scanned = a.run("enrol-other", "--qr", qr)
        assert scanned["outcome"] == "success", transcript(scanned)
        shown = showing.result(timeout=60)
    finally:
        showing.kill()
    check_clean(shown)

    assert scanned["outcome"] == "success", transcript(scanned)
    sent = only(scanned, "POST", "/api/v0/event/create")
    body = sent["body"]
    assert body["event"] == "ENROLL_NEW_TRUSTED_DEVICE" and body["register_new_device"] is True
    assert body["new_device_public_key"] == key_b and body["new_device_algorithm"] == "ED25519"
    assert body["public_key"] == scanned["publicKey"] != key_b
    assert scanned["response"]["approved"] is True
    assert scanned["response"]["event"] == "ENROLL_NEW_TRUSTED_DEVICE"

    # The new phone's QR modal saw its key become enrolled (A7 false ... then true).
    assert shown["outcome"] == "success", transcript(shown)
    assert shown["publicKey"] == key_b
    checks = [r["response"] for r in shown["requests"] if "/user/enrolled/" in r["path"]]
    assert checks and checks[-1]["enrolled"] is True, transcript(shown)
    assert all(c["enrolled"] is False for c in checks[:-1]), transcript(shown)

    assert b.run("enrolled")["enrolled"] is True
    login = b.run("login")  # and it signs in on its own now
    assert login["outcome"] == "success", transcript(login)
    assert_token_set(login["response"].get("oauth_token"), transcript(login))
    assert a.run("enrolled")["enrolled"] is True  # the first phone is still trusted


def test_remove_device_then_its_login_fails(trusted: tuple[Phone, Phone, dict[str, Any]]) -> None:
    a, _, user = trusted
    assert a.run("login")["outcome"] == "success"
    # The SDK's own refresh (C2 POST /token) works with the token set the device won ...
    refreshed = a.run("refresh")
    assert refreshed["outcome"] == "success", transcript(refreshed)
    assert only(refreshed, "POST", "/api/v0/token")["body"]["grant_type"] == "refresh_token"

    removed = a.run("remove")
    assert removed["outcome"] == "success", transcript(removed)
    sent = only(
        removed, "PUT", rf"/api/v0/user/{re.escape(user['client_user_id'])}\?oauth_token=true"
    )
    assert sent["body"]["enrolled"] is False and sent["body"]["code"] == removed["publicKey"]
    assert sent["body"]["method"] == "TRUSTED_DEVICE" and sent["body"]["algorithm"] is None
    assert "TRUSTED_DEVICE" not in (removed["response"].get("enrolled") or []), transcript(removed)

    check = a.run("enrolled")
    assert check["enrolled"] is False, transcript(check)

    tokens_before = json.loads(a.state.read_text())["storage"].get("ACCESS_TOKEN")
    login = a.run("login")
    assert login["outcome"] == "error", transcript(login)
    attempt = only(login, "POST", r"/api/v0/event/create\?oauth_token=true")
    assert attempt["status"] >= 400 or attempt["response"].get("approved") is False, transcript(
        login
    )
    assert "oauth_token" not in (attempt["response"] or {}), transcript(login)
    assert login["tokens"].get("access_token") == tokens_before  # nothing new stored

    again = a.run("remove")  # the SDK checks A7 first and refuses
    assert again["outcome"] == "error" and again["error"] == "This device is not a trusted device"

    # ... and stops working once the device is removed (its token families are revoked).
    revoked = a.run("refresh")
    assert revoked["outcome"] == "error", transcript(revoked)
    assert only(revoked, "POST", "/api/v0/token")["status"] in (400, 401), transcript(revoked)


def test_sign_in_with_device_by_identifier(
    trusted: tuple[Phone, Phone, dict[str, Any]], tmp_path: Path
) -> None:
    """Cotter.signInWithDevice(identifier): A2, then A7, then B1 (trusted) or B2 + B4."""
    a, _, user = trusted
    result = a.run("sign-in", "--identifier", user["email"])
    assert result["outcome"] == "success", transcript(result)
    looked_up = result["requests"][0]
    assert looked_up["method"] == "GET" and looked_up["path"].startswith("/api/v0/user?identifier=")
    assert looked_up["response"]["client_user_id"] == user["client_user_id"]
    only(result, "POST", r"/api/v0/event/create\?oauth_token=true")
    assert_token_set(result["response"].get("oauth_token"), transcript(result))

    # A phone that only knows the email: the same call becomes a pending request. Cotter's
    # approve string for it (reference §2.2) is byte-identical to the login string above
    # when both carry the same second, and the server's replay cache then refuses the
    # approval (test_approving_in_the_same_second_as_own_login): start in a later second.
    signed_at = int(
        only(result, "POST", r"/api/v0/event/create\?oauth_token=true")["body"]["timestamp"]
    )
    while round(time.time()) <= signed_at:
        time.sleep(0.05)
    c = Phone(a.node, a.site, tmp_path / "phone-c.json")
    waiting, ready = c.start(
        "sign-in", "--identifier", user["email"], "--poll", "0.5", "--deadline", "45"
    )
    try:
        event_id = waiting.wait_for_file(ready)["eventID"]
        answer = a.run("respond", "--decision", "approve")
        assert answer["outcome"] == "success", transcript(answer)
        outcome = waiting.result(timeout=60)
    finally:
        waiting.kill()
    check_clean(outcome)
    assert answer["newEvent"]["ID"] == event_id, transcript(answer)
    assert outcome["outcome"] == "success", transcript(outcome)
    assert_token_set(outcome["response"].get("oauth_token"), transcript(outcome))


def test_approving_in_the_same_second_as_own_login(
    site: LiveSite, trusted: tuple[Phone, Phone, dict[str, Any]]
) -> None:
    """Phone A signs in (B1, LOGIN, second T); phone B asks in that same second T (B2 body
    exactly as RN sends it, posted directly to pin the second); A approves (B3)."""
    a, _, user = trusted
    login = a.run("login")
    assert login["outcome"] == "success", transcript(login)
    signed = only(login, "POST", r"/api/v0/event/create\?oauth_token=true")["body"]
    pending = requests.post(
        f"{site.url}/api/v0/event/create_pending",
        json={
            "client_user_id": user["client_user_id"],
            "issuer": site.api_key_id,
            "event": "LOGIN",
            "ip": "unknown",
            "location": "unknown",
            "timestamp": signed["timestamp"],
            "method": "TRUSTED_DEVICE",
        },
        headers={"API_KEY_ID": site.api_key_id},
        timeout=10,
    )
    assert pending.status_code == 200, pending.text
    answer = a.run("respond", "--decision", "approve")
    assert answer["newEvent"]["ID"] == pending.json()["ID"], transcript(answer)
    assert answer["outcome"] == "success", transcript(answer)
