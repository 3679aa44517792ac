"""What the harness measures: one :class:`Endpoint` per HTTP endpoint, with its target.

To add an endpoint, append a spec to :data:`ENDPOINTS`. Paths, headers and bodies are
:class:`string.Template` strings; the placeholders come from the seeder's ``setup`` reply
(``$api_key_id``, ``$access_token``, ...) plus, for endpoints that spend a one-use
credential per request, that credential: ``$consumable`` is the whole line the producer
wrote, and when the line is a JSON object its fields are placeholders too
(``$challenge_id``, ``$code``, ...). A one-use credential kind (``consumable``) must have a
producer in ``benchmarks/seeder.py`` (:data:`benchmarks.seeder.PRODUCERS`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from string import Template


@dataclass(frozen=True)
class Endpoint:
    key: str
    """Short id used on the command line and in the JSON (``a``, ``b``, ...)."""
    name: str
    description: str
    method: str
    path: str
    headers: Mapping[str, str] = field(default_factory=dict)
    body: str | None = None
    consumable: str | None = None
    """Kind of one-use credential spent by every request (``None``: the request is static)."""
    consumable_ttl: float | None = None
    """Seconds an issued credential stays usable (codes and signed timestamps expire);
    older ones are dropped from the pool instead of being sent. ``None``: no limit."""
    target: float | None = None
    """Minimum ``rps / baseline rps`` from the same run; ``None``: reported, not judged."""
    expect_status: int = 200
    expect_json_key: str | None = None
    """A key the JSON body of the sanity-check response must contain."""
    server: str = "main"
    """Which gunicorn serves it: ``main`` (Celery eager) or ``broker`` (the same site and
    database, Celery publishing to a broker; see ``bench.BROKER_SERVER``)."""

    def render_headers(self, context: Mapping[str, str]) -> dict[str, str]:
        return {k: Template(v).substitute(context) for k, v in self.headers.items()}

    def render_body(self, context: Mapping[str, str]) -> str | None:
        """The body of every request (endpoints without a consumable)."""
        return None if self.body is None else Template(self.body).substitute(context)

    def item_in_path(self, context: Mapping[str, str]) -> bool:
        """Whether the path holds a per-request value (``$consumable`` or one of its fields)."""
        return self.consumable is not None and "$" in self.default_path(context)

    def default_path(self, context: Mapping[str, str]) -> str:
        return Template(self.path).safe_substitute(context)

    def render_item(self, context: Mapping[str, str], consumable: str) -> str:
        """One request spending ``consumable``: ``BODY``, or ``PATH<TAB>BODY`` if the
        path holds a per-request value (the line format of the load generators)."""
        values = {**context, **item_fields(consumable), "consumable": consumable}
        body = "" if self.body is None else Template(self.body).substitute(values)
        if "\n" in body or "\t" in body:
            raise ValueError(f"{self.key}: a request body must be one line without tabs")
        if self.item_in_path(context):
            return f"{Template(self.path).substitute(values)}\t{body}"
        return body


def item_fields(consumable: str) -> dict[str, str]:
    """The fields of a credential written as a one-line JSON object (else none)."""
    if not consumable.startswith("{"):
        return {}
    data = json.loads(consumable)
    return {str(k): str(v) for k, v in data.items()}


JSON = {"Content-Type": "application/json"}
API = {**JSON, "API_KEY_ID": "$api_key_id"}

#: The endpoint every ratio is computed against (same run, same server).
BASELINE = "a"

ENDPOINTS: list[Endpoint] = [
    Endpoint(
        key="a",
        name="hello",
        description="bare DRF APIView, no authentication (baseline)",
        method="GET",
        path="/demo/api/hello",
        expect_json_key="hello",
    ),
    Endpoint(
        key="b",
        name="me (bearer)",
        description="the same view behind AccessTokenAuthentication (ES256 verify, no DB)",
        method="GET",
        path="/demo/api/me",
        headers={"Authorization": "Bearer $access_token"},
        target=0.65,
        expect_json_key="sub",
    ),
    Endpoint(
        key="c",
        name="token refresh",
        description="refresh_token grant: look up, rotate (UPDATE + INSERT), sign access + id",
        method="POST",
        path="/api/v0/token/$api_key_id",
        headers=JSON,
        body='{"grant_type":"refresh_token","refresh_token":"$consumable"}',
        consumable="refresh_token",
        target=0.30,
        expect_json_key="refresh_token",
    ),
    Endpoint(
        key="d",
        name="code request",
        description="start a one-time-code challenge (rate limits counted, INSERT); Celery "
        "eager: the send task runs after commit in the worker, mail to a no-op backend",
        method="POST",
        path="/api/v1/auth/code",
        headers=API,
        body='{"identifier":"$consumable"}',
        consumable="new_identifier",
        target=0.40,
        expect_status=202,
        expect_json_key="challenge_id",
    ),
    Endpoint(
        key="e",
        name="code request (broker)",
        description="the same request on a second gunicorn whose Celery publishes the send "
        "task to a broker (Redis on loopback, or kombu memory://) that no worker consumes",
        method="POST",
        path="/api/v1/auth/code",
        headers=API,
        body='{"identifier":"$consumable"}',
        consumable="new_identifier",
        target=0.40,
        expect_status=202,
        expect_json_key="challenge_id",
        server="broker",
    ),
    Endpoint(
        key="f",
        name="code verify",
        description="a challenge started with a code_challenge (the native two-step "
        "sign-in): read it, check the code (HMAC, constant time), then one conditional "
        "UPDATE to granted with the hash of the authorization code it answers with",
        method="POST",
        path="/api/v1/auth/code/verify",
        headers=API,
        body='{"challenge_id":"$challenge_id","challenge_secret":"$challenge_secret",'
        '"code":"$code"}',
        consumable="pkce_code_challenge",
        consumable_ttl=480,  # AUTHDEVICE_CHALLENGE_LIFETIME=600 for the run
        target=0.50,
        expect_json_key="authorization_code",
    ),
    Endpoint(
        key="f1",
        name="code verify, one step",
        description="a challenge started without a code_challenge: (f) and (f2) in one "
        "request: read the challenge and its user in one query, check the code, sign the "
        "tokens, then one transaction: consume it (conditional UPDATE), audit row, refresh "
        "token; a known user. Target: (g)'s, the same work",
        method="POST",
        path="/api/v1/auth/code/verify",
        headers=API,
        body='{"challenge_id":"$challenge_id","challenge_secret":"$challenge_secret",'
        '"code":"$code"}',
        consumable="code_challenge",
        consumable_ttl=480,
        target=0.30,
        expect_json_key="refresh_token",
    ),
    Endpoint(
        key="f2",
        name="code token exchange",
        description="the second step of (f): read the granted challenge and its user in one "
        "query, S256 check of the verifier, sign the tokens, then one transaction: consume "
        "it (conditional UPDATE), audit row, refresh token; a known user",
        method="POST",
        path="/api/v1/auth/code/token",
        headers=API,
        body='{"challenge_id":"$challenge_id","authorization_code":"$authorization_code",'
        '"code_verifier":"$code_verifier"}',
        consumable="code_grant",
        consumable_ttl=240,  # grants live 300 s (AUTHDEVICE_AUTHORIZATION_CODE_LIFETIME)
        target=0.30,
        expect_json_key="refresh_token",
    ),
    Endpoint(
        key="f0",
        name="code verify floor",
        description="(f1) written as directly as this stack allows (benchmarks/floor.py): "
        "one SELECT of the needed columns, binding and code checks, two ES256 signatures, "
        "one transaction (UPDATE, two INSERTs); no models, hooks or signals. A ceiling for "
        "(f1)",
        method="POST",
        path="/bench/floor/code-verify",
        headers=API,
        body='{"challenge_id":"$challenge_id","challenge_secret":"$challenge_secret",'
        '"code":"$code"}',
        consumable="code_challenge",
        consumable_ttl=480,
        expect_json_key="refresh_token",
    ),
    Endpoint(
        key="g",
        name="get_identity",
        description="redeem a PKCE authorization code: read it, S256 check, sign the tokens, "
        "then one transaction: mark it redeemed (conditional UPDATE), refresh token",
        method="POST",
        path="/api/v0/verify/get_identity?oauth_token=true",
        headers=API,
        body='{"code_verifier":"$code_verifier","authorization_code":"$authorization_code",'
        '"challenge_id":$challenge_id,"redirect_url":"$redirect_url"}',
        consumable="authorization_code",
        consumable_ttl=240,  # codes live 300 s (AUTHDEVICE_AUTHORIZATION_CODE_LIFETIME)
        target=0.30,
        expect_json_key="oauth_token",
    ),
    Endpoint(
        key="h",
        name="device sign-in",
        description="Cotter B1: Ed25519 verify of uid+key+LOGIN+timestamp+TRUSTED_DEVICE+true, "
        "replay-cache INSERT, approved event (server ES256 signature), token set",
        method="POST",
        path="/api/v0/event/create?oauth_token=true",
        headers=API,
        body='{"user_id":"$uid","issuer":"$api_key_id","event":"LOGIN","ip":"127.0.0.1",'
        '"location":"benchmark","timestamp":"$timestamp","method":"TRUSTED_DEVICE",'
        '"code":"$signature","approved":true,"public_key":"$public_key"}',
        consumable="device_login",
        consumable_ttl=240,  # signed timestamps from now-40 s to now+290 s; window 300 s
        target=0.25,
        expect_json_key="oauth_token",
    ),
    Endpoint(
        key="i",
        name="respond to event",
        description="Cotter B3: a trusted device approves a pending event (Ed25519 verify, "
        "replay-cache INSERT, conditional UPDATE with a new server signature)",
        method="POST",
        path="/api/v0/event/respond/$event_id",
        headers=API,
        body='{"user_id":"$uid","issuer":"$api_key_id","event":"LOGIN","ip":"127.0.0.1",'
        '"location":"benchmark","timestamp":"$timestamp","method":"TRUSTED_DEVICE",'
        '"code":"$signature","approved":true,"public_key":"$public_key"}',
        consumable="pending_event",
        consumable_ttl=480,  # seeded pending events expire after 600 s
        expect_json_key="approved",
    ),
]

#: The scale check's endpoint (``run.py --scale``): Cotter B5, the newest pending event.
PENDING_LOOKUP = Endpoint(
    key="j",
    name="newest pending event",
    description="Cotter B5: the user's newest unexpired pending event (one indexed lookup)",
    method="GET",
    path="/api/v0/event/new/$scale_user_id",
    headers={"API_KEY_ID": "$api_key_id"},
    expect_json_key="ID",
)


def select(keys: str | None) -> list[Endpoint]:
    """The endpoints named in a comma-separated list (always with the baseline), in order."""
    if not keys:
        return list(ENDPOINTS)
    wanted = {k.strip() for k in keys.split(",") if k.strip()} | {BASELINE}
    unknown = wanted - {e.key for e in ENDPOINTS}
    if unknown:
        raise ValueError(f"unknown endpoint(s): {', '.join(sorted(unknown))}")
    return [e for e in ENDPOINTS if e.key in wanted]
