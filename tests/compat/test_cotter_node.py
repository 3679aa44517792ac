"""Cotter's server-side JavaScript packages against a live authdevice server
(reference/cotter-api.md §3, §5.2): ``cotter-node@0.1.3`` validates our access tokens
through our JWKS, ``cotter-token-js@0.1.11`` (the version react-native-cotter@0.3.6
resolves) decodes our tokens.

``CotterValidateJWT`` fetches ``Constants.BaseURL + "/token/jwks"`` once, selects the key
whose ``kid`` is ``Constants.JWTKID`` and runs ``jsonwebtoken.verify(token, pem,
{algorithms: ["ES256"]})``: signature and ``exp`` only. The driver points ``BaseURL`` at
``<site>/api/v0`` and ``JWTKID`` at our key's kid, the two settings an app would change.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from tests.compat.node_env import NodeEnv
from tests.live import ROOT, LiveSite, live_site

pytestmark = pytest.mark.slow

CREATE_USER = """
import json
from django.contrib.auth import get_user_model
from authdevice.flows.identities import add_identifier, identity_for_user
user = get_user_model().objects.create_user(username={email!r}, email={email!r})
add_identifier(user, "EMAIL", {email!r}, verified=True)
print(json.dumps({{"ID": str(identity_for_user(user).public_id)}}))
"""


@pytest.fixture(scope="module")
def node() -> NodeEnv:
    return NodeEnv.get()


@pytest.fixture(scope="module")
def site(node: NodeEnv) -> Iterator[LiveSite]:
    with live_site("gunicorn") as running:
        yield running


def manage(site: LiveSite, *args: str) -> str:
    """``site.manage`` with a time limit."""
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=site.env,
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout


@pytest.fixture(scope="module")
def issued(site: LiveSite) -> dict[str, Any]:
    """A user with a verified email and a token set issued by our server for the app."""
    email = f"node-{uuid.uuid4().hex[:10]}@example.com"
    out = manage(site, "shell", "-c", CREATE_USER.format(email=email))
    user = json.loads(out.strip().splitlines()[-1])
    args = ("--identifier", email, "--application", site.api_key_id, "--json")
    tokens = json.loads(manage(site, "authdevice_issue_tokens", *args))
    return {"email": email, "user_id": user["ID"], **tokens}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def part(token: str, index: int) -> dict[str, Any]:
    return json.loads(unb64url(token.split(".")[index]))


def with_claims(token: str, **changes: Any) -> str:
    """Same header and signature, edited payload."""
    header, _, signature = token.split(".")
    claims = {**part(token, 1), **changes}
    return f"{header}.{b64url(json.dumps(claims).encode())}.{signature}"


def signed_by_stranger(token: str) -> str:
    """Same header (kid included) and payload, ES256-signed by a key that is not ours."""
    header, payload, _ = token.split(".")
    key = ec.generate_private_key(ec.SECP256R1())
    r, s = decode_dss_signature(key.sign(f"{header}.{payload}".encode(), ec.ECDSA(hashes.SHA256())))
    return f"{header}.{payload}.{b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


def unsigned(token: str) -> str:
    header = {**part(token, 0), "alg": "none"}
    return f"{b64url(json.dumps(header).encode())}.{token.split('.')[1]}."


def our_kid(site: LiveSite, token: str) -> str:
    jwks = requests.get(f"{site.url}/api/v0/token/jwks", timeout=10)
    assert jwks.status_code == 200, jwks.text
    kids = [key["kid"] for key in jwks.json()["keys"]]
    kid = part(token, 0)["kid"]
    assert kid in kids, (kid, kids)
    return kid


def validate(node: NodeEnv, site: LiveSite, kid: str, *tokens: str) -> list[dict[str, Any]]:
    args = ["validate", "--url", site.url, "--kid", kid]
    for token in tokens:
        args += ["--token", token]
    result = node.run("cotter-node.js", *args)
    assert result["baseURL"] == f"{site.url}/api/v0"
    assert result["outbound"] == [] and result["unhandled"] == [], result
    return result["results"]


def test_cotter_node_accepts_our_access_token(
    node: NodeEnv, site: LiveSite, issued: dict[str, Any]
) -> None:
    token = issued["access_token"]
    assert part(token, 0)["alg"] == "ES256"
    assert validate(node, site, our_kid(site, token), token) == [{"valid": True}]


def test_cotter_node_rejects_tampered_tokens(
    node: NodeEnv, site: LiveSite, issued: dict[str, Any]
) -> None:
    token = issued["access_token"]
    claims = part(token, 1)
    tampered = [
        with_claims(token, sub=str(uuid.uuid4())),  # someone else
        with_claims(token, exp=claims["exp"] + 86400),  # a longer life
        signed_by_stranger(token),  # a forger's key under our kid
        unsigned(token),  # alg: none
    ]
    results = validate(node, site, our_kid(site, token), token, *tampered)
    assert results[0] == {"valid": True}
    assert [r["valid"] for r in results[1:]] == [False] * len(tampered), results


def test_cotter_node_needs_our_kid(node: NodeEnv, site: LiveSite, issued: dict[str, Any]) -> None:
    """With Cotter's hard-coded production kid it finds no key (so the app must set it)."""
    results = validate(
        node, site, "SPACE_JWT_PUBLIC:8028AAA3-EC2D-4BAA-BE7A-7C8359CCB9F9", issued["access_token"]
    )
    assert results[0]["valid"] is False


def test_cotter_token_js_decodes_our_tokens(node: NodeEnv, issued: dict[str, Any]) -> None:
    result = node.run(
        "cotter-node.js",
        "decode",
        "--id-token",
        issued["id_token"],
        "--access-token",
        issued["access_token"],
    )
    id_token = result["id"]
    # RN's TokenHandler.setIDToken builds its user from exactly these three (reference §3.3).
    assert id_token["id"] == issued["user_id"]
    assert id_token["clientUserID"] == issued["user_id"]
    assert id_token["identifier"] == issued["email"]
    assert isinstance(id_token["authTime"], str)  # typed string by cotter-token-js and Dart
    assert isinstance(id_token["expiration"], int)

    access = result["access"]
    assert access["id"] == issued["user_id"]
    assert access["clientUserID"] == issued["user_id"]
    assert access["identifier"] == issued["email"]
    assert access["scope"] == "access"
    assert access["authMethod"] == issued["auth_method"]
    assert access["expiration"] > access["payload"]["iat"]
