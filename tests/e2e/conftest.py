"""Shared Playwright fixtures: headless Debian Chromium (``/usr/bin/chromium``).

* ``browser``: one Chromium for the tests of this package (or of any module that imports
  these fixtures); ``new_context(**kwargs)``: a fresh browser profile (cookie jar), closed
  after the test; ``page``: a page in a fresh context.
* Without Chromium or the ``playwright`` package the tests are skipped, except in CI
  (``CI`` set), where that is a failure.

Playwright's sync API keeps an asyncio loop current in the test thread, which makes
Django refuse ORM calls there ("SynchronousOnlyOperation"), including pytest-django's own
flush between transactional tests. ``DJANGO_ALLOW_ASYNC_UNSAFE`` is therefore set while
the browser is up and restored when it stops (package scope), so it never leaks into the
rest of the suite. Use with pytest-django's ``live_server`` (same process: ``settings``
overrides, ``mail.outbox`` and the locmem channel outbox are shared with the server).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from typing import Any, NoReturn

import pytest

CHROMIUM = os.environ.get("AUTHDEVICE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
IN_CI = bool(os.environ.get("CI"))
DEFAULT_TIMEOUT_MS = 15_000


def _unavailable(reason: str) -> NoReturn:
    if IN_CI:
        pytest.fail(f"browser tests cannot run in CI: {reason}", pytrace=False)
    pytest.skip(reason)
    raise AssertionError("unreachable")


@pytest.fixture(scope="package")
def playwright() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright package is not installed")
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)) and not shutil.which(
        CHROMIUM
    ):
        _unavailable(f"Chromium not found at {CHROMIUM} (apt-get install chromium)")
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as pw:
            yield pw
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture(scope="package")
def browser(playwright: Any) -> Iterator[Any]:
    try:
        instance = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
    except Exception as exc:
        _unavailable(f"Chromium did not start: {exc}")
    yield instance
    instance.close()


@pytest.fixture
def new_context(browser: Any) -> Iterator[Callable[..., Any]]:
    """Factory: ``ctx = new_context(locale="en-US")``; every context is closed afterwards."""
    contexts: list[Any] = []

    def make(**kwargs: Any) -> Any:
        kwargs.setdefault("locale", "en-US")
        context = browser.new_context(**kwargs)
        context.set_default_timeout(DEFAULT_TIMEOUT_MS)
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def page(new_context: Callable[..., Any]) -> Any:
    return new_context().new_page()
