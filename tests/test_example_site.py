from __future__ import annotations

import pytest


@pytest.mark.django_db
def test_home_page_links_to_sign_in(client, user):
    page = client.get("/")
    assert page.status_code == 200 and b"/signin/" in page.content
    client.force_login(user)
    signed_in = client.get("/")
    assert b"alice" in signed_in.content and b"/signout/" in signed_in.content
