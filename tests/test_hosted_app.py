"""Cotter's hosted page ``/app`` for mobile apps and CLIs (reference/cotter-api.md 1.6, 4.4;
security.md H01, H02, H08-H12, K04).

Registered redirect URLs of the ``application`` fixture: ``http://localhost:18555`` (a
loopback URL: any port) and ``https://app.example.com/cb``.
"""

from __future__ import annotations

import re
import string
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from django.contrib.auth import SESSION_KEY as AUTH_SESSION_KEY
from django.core import mail
from django.core.cache import cache
from django.test import Client

from authdevice.flows import pkce
from authdevice.flows.applications import clear_application_cache, create_application
from authdevice.flows.tokens import revoke_user_tokens
from authdevice.models import AuthEvent, AuthorizationCode, Challenge

pytestmark = pytest.mark.django_db(transaction=True)

# RFC 7636 Appendix B.
VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
CLI = "http://localhost:18555"
WEB = "https://app.example.com/cb"
LONG_STATE = (string.ascii_letters + string.digits + "+/=%&?#-_.~ ") * 7
assert len(LONG_STATE[:500]) == 500

V11 = [
    "https://app.example.com/cb/",
    "https://app.example.com/cb?x=1",
    "https://app.example.com/cb#f",
    "https://APP.example.com/cb",
    "http://app.example.com/cb",
    "https://app.example.com:443/cb",
    "https://app.example.com/CB",
    "https://app.example.com/cb/../cb",
    "https://app.example.com/cb%2F..%2Fx",
    "https://app.example.com.evil.io/cb",
    "https://evil.io/cb?https://app.example.com/cb",
    "https://app.example.com@evil.io/cb",
    "https://evil.io\\@app.example.com/cb",
    "https://app.example.com%2F@evil.io/cb",
    "https://app.ex\u0430mple.com/cb",  # Cyrillic a (U+0430)
    "//evil.io/cb",
    "javascript:alert(1)//app.example.com/cb",
    "http://localhost.evil.io:18555",
    "https://localhost:18555",
    "http://127.0.0.2:18555",
]


@pytest.fixture(autouse=True)
def _clean(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def browser():
    return Client(enforce_csrf_checks=True)


def app_url(application, **overrides: str | None) -> str:
    params: dict[str, str | None] = {
        "api_key": application.api_key_id,
        "redirect_url": CLI,
        "state": "kqqyhxjkhe",
        "code_challenge": CHALLENGE,
        "type": "EMAIL",
        "auth_method": "OTP",
        **overrides,
    }
    return "/app?" + urlencode({k: v for k, v in params.items() if v is not None})


def hidden(response, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]*)"', response.content.decode())
    assert match, (name, response.content)
    return match.group(1)


def sent_code(index: int = -1) -> str:
    return re.search(r"\b(\d{6})\b", mail.outbox[index].body).group(1)


def open_app(client: Client, application, **overrides: str | None):
    page = client.get(app_url(application, **overrides))
    assert page.status_code == 200, page.content
    return page, hidden(page, "flow"), hidden(page, "csrfmiddlewaretoken")


def start(client: Client, application, identifier: str = "cli@example.com", **overrides):
    _page, flow, token = open_app(client, application, **overrides)
    response = client.post(
        "/signin/", {"identifier": identifier, "flow": flow, "csrfmiddlewaretoken": token}
    )
    assert response.status_code == 303, response.content
    return flow, token, response


def finish(client: Client, application, **overrides):
    """Run /app to the end with the emailed code; return the redirect response."""
    flow, token, _ = start(client, application, **overrides)
    return client.post(
        "/signin/code/", {"flow": flow, "code": sent_code(), "csrfmiddlewaretoken": token}
    )


def query_of(location: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(location).query, keep_blank_values=True)


def assert_no_redirect(response) -> None:
    assert response.status_code == 400
    assert "Location" not in response
    assert b"We cannot continue" in response.content


# -- success ---------------------------------------------------------------------------------


def test_code_flow_redirects_with_code_state_and_challenge_id(browser, application):
    page, _, _ = open_app(browser, application)
    body = page.content.decode()
    assert "Sign in to Test app" in body and 'type="email"' in body
    assert 'name="method"' not in body  # type and method are fixed by the app
    assert "Cancel and go back to Test app" in body
    csp = page["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp and f"form-action 'self' {CLI}" in csp
    assert page["Cache-Control"].count("no-store") == 1 and page["Referrer-Policy"] == "no-referrer"
    assert "Access-Control-Allow-Origin" not in page  # H12

    flow, token, _ = start(browser, application)
    done = browser.post(
        "/signin/code/", {"flow": flow, "code": sent_code(), "csrfmiddlewaretoken": token}
    )
    assert done.status_code == 303  # never 307/308 (H12)
    location = done["Location"]
    assert location.startswith(CLI + "?code=")
    query = query_of(location)
    assert list(query) == ["code", "state", "challenge_id"]
    assert query["state"] == ["kqqyhxjkhe"]
    row = AuthorizationCode.objects.get()
    assert query["challenge_id"] == [str(row.pk)]
    assert row.redirect_url == CLI and row.code_challenge == CHALLENGE
    assert row.application_id == application.pk and row.auth_method == "OTP"
    assert row.identifier.value == "cli@example.com"
    # The app redeems it with its verifier (what get_identity does).
    redeemed = pkce.redeem_authorization_code(
        application=application,
        authorization_code=query["code"][0],
        challenge_id=query["challenge_id"][0],
        code_verifier=VERIFIER,
        redirect_url=CLI,
    )
    assert redeemed.identifier.value == "cli@example.com"
    # The hosted flow hands the app a code; it does not sign this browser in to the site.
    assert AUTH_SESSION_KEY not in browser.session
    assert flow not in browser.session.get("authdevice_signin", {})


def test_loopback_redirect_matches_any_port(browser, application):
    done = finish(browser, application, redirect_url="http://localhost:51004")
    assert done["Location"].startswith("http://localhost:51004?code=")
    assert AuthorizationCode.objects.get().redirect_url == "http://localhost:51004"


def test_existing_query_of_the_redirect_url_is_kept(browser):
    app, _ = create_application(name="Q", redirect_urls=["https://q.example.com/cb?tenant=a%20b"])
    done = finish(browser, app, redirect_url="https://q.example.com/cb?tenant=a%20b")
    assert done["Location"].startswith("https://q.example.com/cb?tenant=a%20b&code=")
    assert query_of(done["Location"])["tenant"] == ["a b"]


@pytest.mark.parametrize(
    "state", ["a+b c", "x%2Fy", LONG_STATE[:500], "ünï/cødé&=?#", ""], ids=str.__len__
)
def test_state_is_echoed_byte_for_byte(browser, application, state):
    done = finish(browser, application, state=state)
    assert query_of(done["Location"])["state"] == [state]


def test_missing_state_is_not_invented(browser, application):
    done = finish(browser, application, state=None)
    assert "state" not in query_of(done["Location"])


def test_magic_link_in_the_same_browser(browser, application):
    _flow, _token, started = start(browser, application, auth_method="MAGIC_LINK")
    waiting = browser.get(started["Location"])
    assert b"Check your messages" in waiting.content and b"Cancel and go back" in waiting.content
    link = re.search(r"(http\S+/signin/link/\S+/)", mail.outbox[-1].body).group(1)
    path = urlsplit(link).path
    page = browser.get(path)
    assert page.status_code == 200 and b"Continue to sign in as" in page.content
    assert f"form-action 'self' {CLI}" in page["Content-Security-Policy"]
    done = browser.post(path, {"csrfmiddlewaretoken": hidden(page, "csrfmiddlewaretoken")})
    assert done.status_code == 303 and done["Location"].startswith(CLI + "?code=")
    assert AuthorizationCode.objects.get().auth_method == "MAGIC_LINK"
    assert AUTH_SESSION_KEY not in browser.session


def test_magic_link_of_an_app_cannot_be_finished_in_another_browser(browser, application):
    start(browser, application, auth_method="MAGIC_LINK")
    path = urlsplit(re.search(r"(http\S+/signin/link/\S+/)", mail.outbox[-1].body).group(1)).path
    other = Client(enforce_csrf_checks=True)
    page = other.get(path)
    assert page.status_code == 200 and b"Open this link where you started" in page.content
    token = hidden(other.get("/signin/"), "csrfmiddlewaretoken")
    refused = other.post(path, {"csrfmiddlewaretoken": token, "confirm": "on"})
    assert refused.status_code == 400 and "Location" not in refused
    assert Challenge.objects.get().state == "pending" and not AuthorizationCode.objects.exists()


def test_phone_type_with_prefill(browser, application, settings):
    settings.AUTHDEVICE_CHANNELS = {
        "SMS": "authdevice.channels.locmem.LocmemBackend",
        "WHATSAPP": "authdevice.channels.locmem.LocmemBackend",
    }
    page, flow, token = open_app(
        browser,
        application,
        type="PHONE",
        input="+14155552671",
        direct_login="true",
        use_channel="WHATSAPP",
    )
    body = page.content.decode()
    assert 'type="tel"' in body and 'value="+14155552671"' in body
    assert re.search(r'value="WHATSAPP" checked', body)
    wrong_kind = browser.post(
        "/signin/", {"identifier": "a@example.com", "flow": flow, "csrfmiddlewaretoken": token}
    )
    assert wrong_kind.status_code == 400 and b"Enter a valid" in wrong_kind.content
    assert b"Cancel and go back" in wrong_kind.content
    ok = browser.post(
        "/signin/",
        {
            "identifier": "+14155552671",
            "flow": flow,
            "channel": "WHATSAPP",
            "csrfmiddlewaretoken": token,
        },
    )
    assert ok.status_code == 303
    assert Challenge.objects.get().channel == "WHATSAPP"


def test_wrong_code_stays_on_the_page_with_cancel(browser, application):
    flow, token, _ = start(browser, application)
    code = sent_code()
    wrong = browser.post(
        "/signin/code/",
        {
            "flow": flow,
            "code": "000000" if code != "000000" else "111111",
            "csrfmiddlewaretoken": token,
        },
    )
    assert wrong.status_code == 400 and "Location" not in wrong
    assert b"Cancel and go back to Test app" in wrong.content
    assert f"form-action 'self' {CLI}" in wrong["Content-Security-Policy"]


def test_a_dead_challenge_restarts_within_the_same_app_flow(browser, application, settings):
    settings.AUTHDEVICE_CODE_MAX_ATTEMPTS = 1
    flow, token, _ = start(browser, application)
    code = sent_code()
    wrong = "000000" if code != "000000" else "111111"
    browser.post("/signin/code/", {"flow": flow, "code": wrong, "csrfmiddlewaretoken": token})
    resend = browser.post("/signin/resend/", {"flow": flow, "csrfmiddlewaretoken": token})
    assert resend.status_code == 400 and b"Sign in to Test app" in resend.content
    assert hidden(resend, "flow") == flow
    again = browser.post(
        "/signin/", {"identifier": "cli@example.com", "flow": flow, "csrfmiddlewaretoken": token}
    )
    assert again.status_code == 303
    done = browser.post(
        "/signin/code/", {"flow": flow, "code": sent_code(), "csrfmiddlewaretoken": token}
    )
    assert done["Location"].startswith(CLI + "?code=")


def test_two_tabs_do_not_clobber_each_other(browser, application):
    first_flow, token, _ = start(browser, application, state="one")
    first_code = sent_code()
    second = finish(browser, application, state="two")
    assert query_of(second["Location"])["state"] == ["two"]
    done = browser.post(
        "/signin/code/", {"flow": first_flow, "code": first_code, "csrfmiddlewaretoken": token}
    )
    assert query_of(done["Location"])["state"] == ["one"]


# -- cancel ----------------------------------------------------------------------------------


@pytest.mark.parametrize("state", ["a+b", "x%2Fy", LONG_STATE[:500]], ids=["plus", "pct2F", "500"])
def test_cancel_sends_access_denied_with_the_state(browser, application, state):
    _page, flow, token = open_app(browser, application, state=state)
    response = browser.post("/app/cancel/", {"flow": flow, "csrfmiddlewaretoken": token})
    assert response.status_code == 303
    assert response["Location"].startswith(CLI + "?error=access_denied&state=")
    assert query_of(response["Location"]) == {"error": ["access_denied"], "state": [state]}
    # The flow is gone: cancelling again (or signing in with it) redirects nowhere.
    again = browser.post("/app/cancel/", {"flow": flow, "csrfmiddlewaretoken": token})
    assert_no_redirect(again)
    reuse = browser.post(
        "/signin/", {"identifier": "a@example.com", "flow": flow, "csrfmiddlewaretoken": token}
    )
    assert_no_redirect(reuse)
    assert Challenge.objects.count() == 0


def test_cancel_from_the_code_page(browser, application):
    flow, token, started = start(browser, application)
    page = browser.get(started["Location"])
    assert b'action="/app/cancel/"' in page.content
    response = browser.post("/app/cancel/", {"flow": flow, "csrfmiddlewaretoken": token})
    assert response["Location"] == CLI + "?error=access_denied&state=kqqyhxjkhe"


def test_cancel_needs_csrf(browser, application):
    _, flow, _ = open_app(browser, application)
    assert browser.post("/app/cancel/", {"flow": flow}).status_code == 403


def test_cancel_of_another_browsers_flow_redirects_nowhere(browser, application):
    _, flow, _ = open_app(browser, application)
    other = Client(enforce_csrf_checks=True)
    token = hidden(other.get("/signin/"), "csrfmiddlewaretoken")
    assert_no_redirect(other.post("/app/cancel/", {"flow": flow, "csrfmiddlewaretoken": token}))


# -- refusals --------------------------------------------------------------------------------


@pytest.mark.parametrize("redirect_url", V11)
def test_redirect_url_mutations_get_an_error_page_and_no_redirect(
    browser, application, redirect_url
):
    response = browser.get(app_url(application, redirect_url=redirect_url))
    assert_no_redirect(response)
    assert response["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in response["Content-Security-Policy"]
    assert not browser.session.get("authdevice_signin")


def test_missing_or_repeated_redirect_url_redirects_nowhere(browser, application):
    assert_no_redirect(browser.get(app_url(application, redirect_url=None)))
    assert_no_redirect(
        browser.get(app_url(application) + "&redirect_url=" + "https%3A%2F%2Fevil.io")
    )


def test_unknown_or_inactive_application_redirects_nowhere(browser, application):
    assert_no_redirect(browser.get(app_url(application, api_key="nope")))
    assert_no_redirect(browser.get(app_url(application, api_key=None)))
    application.is_active = False
    application.save()
    clear_application_cache()
    assert_no_redirect(browser.get(app_url(application)))


@pytest.mark.parametrize(
    "overrides",
    [
        {"code_challenge": None},
        {"code_challenge": ""},
        {"code_challenge": CHALLENGE[:-1]},
        {"code_challenge": CHALLENGE + "A"},
        {"code_challenge": "+" * 43},
        {"code_challenge": VERIFIER + "=="},
        {"type": None},
        {"type": "USERNAME"},
        {"auth_method": "PASSWORD"},
    ],
    ids=lambda o: "-".join(f"{k}={v!r}" for k, v in o.items()),
)
def test_invalid_request_goes_back_to_the_registered_url_with_the_state(
    browser, application, overrides
):
    response = browser.get(app_url(application, redirect_url=WEB, state="s+1/2", **overrides))
    assert response.status_code == 302
    assert response["Location"].startswith(WEB + "?error=invalid_request&state=")
    assert query_of(response["Location"]) == {"error": ["invalid_request"], "state": ["s+1/2"]}
    assert not browser.session.get("authdevice_signin")


def test_lower_case_type_and_missing_method_are_accepted(browser, application):
    page = browser.get(app_url(application, type="email", auth_method=None))
    assert page.status_code == 200 and b'type="email"' in page.content


def test_application_disabled_midway_redirects_nowhere(browser, application):
    flow, token, _ = start(browser, application)
    application.is_active = False
    application.save()
    clear_application_cache()
    response = browser.post(
        "/signin/code/", {"flow": flow, "code": sent_code(), "csrfmiddlewaretoken": token}
    )
    assert_no_redirect(response)
    assert not AuthorizationCode.objects.exists()
    # Nothing happened: the sign-in and its code mint are one transaction.
    assert Challenge.objects.get().state == Challenge.State.PENDING
    assert not AuthEvent.objects.filter(event=AuthEvent.Kind.LOGIN).exists()


def test_redirect_url_removed_midway_redirects_nowhere_and_spends_nothing(browser, application):
    flow, token, _ = start(browser, application, redirect_url=WEB)
    application.redirect_urls = [CLI]
    application.save()
    clear_application_cache()
    response = browser.post(
        "/signin/code/", {"flow": flow, "code": sent_code(), "csrfmiddlewaretoken": token}
    )
    assert_no_redirect(response)
    assert b"redirect URL is not allowed" in response.content
    assert not AuthorizationCode.objects.exists()
    assert Challenge.objects.get().state == Challenge.State.PENDING
    assert not AuthEvent.objects.filter(event=AuthEvent.Kind.LOGIN).exists()


def test_sign_out_everywhere_after_the_sign_in_ends_its_code(browser, application, user):
    """The code is minted with the sign-in; a later "sign out everywhere" ends it."""
    response = finish(browser, application, identifier="alice@example.com")
    assert response.status_code == 303
    code = query_of(response["Location"])["code"][0]
    revoke_user_tokens(user.authdevice_identity, reason="test")
    row = AuthorizationCode.objects.get()
    assert row.redeemed_at is not None and row.token_family is None
    with pytest.raises(pkce.InvalidAuthorizationCode):
        pkce.redeem_authorization_code(
            application=application,
            authorization_code=code,
            challenge_id=row.pk,
            code_verifier=VERIFIER,
            redirect_url=CLI,
        )


def test_use_a_different_address_keeps_the_app_flow(browser, application):
    flow, token, started = start(browser, application)
    page = browser.get(started["Location"]).content.decode()
    restart = re.search(r'href="([^"]+)" class="ad-link">Use a different address', page).group(1)
    assert restart == f"/signin/?flow={flow}"
    form = browser.get(restart)
    assert form.status_code == 200 and b"Sign in to Test app" in form.content
    assert hidden(form, "flow") == flow
    browser.post(
        "/signin/", {"identifier": "other@example.com", "flow": flow, "csrfmiddlewaretoken": token}
    )
    done = browser.post(
        "/signin/code/", {"flow": flow, "code": sent_code(), "csrfmiddlewaretoken": token}
    )
    assert done["Location"].startswith(CLI + "?code=")
    assert AuthorizationCode.objects.get().identifier.value == "other@example.com"
