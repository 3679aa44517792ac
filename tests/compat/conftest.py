"""Browser fixtures for the SDK compatibility tests: the same headless Chromium as the
page tests (``tests/e2e/conftest.py``; skipped without Chromium, failed in CI)."""

from __future__ import annotations

from tests.e2e.conftest import browser, new_context, page, playwright

__all__ = ["browser", "new_context", "page", "playwright"]
