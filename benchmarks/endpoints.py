"""What the harness measures: one :class:`Endpoint` per HTTP endpoint, with its target.

To add an endpoint, append a spec to :data:`ENDPOINTS`. Paths, headers and bodies are
:class:`string.Template` strings; the placeholders come from the seeder's ``setup`` reply
(``$api_key_id``, ``$access_token``, ...) plus ``$consumable`` for endpoints that spend a
one-use credential per request. A one-use credential kind (``consumable``) must have a
producer in ``benchmarks/seeder.py`` (:data:`benchmarks.seeder.PRODUCERS`).
"""

from __future__ import annotations

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
    target: float | None = None
    """Minimum ``rps / baseline rps`` from the same run; ``None``: reported, not judged."""
    expect_status: int = 200
    expect_json_key: str | None = None
    """A key the JSON body of the sanity-check response must contain."""

    def render_headers(self, context: Mapping[str, str]) -> dict[str, str]:
        return {k: Template(v).substitute(context) for k, v in self.headers.items()}

    def render_body(self, context: Mapping[str, str]) -> str | None:
        """The body of every request (endpoints without a consumable)."""
        return None if self.body is None else Template(self.body).substitute(context)

    @property
    def consumable_in_path(self) -> bool:
        return "$consumable" in self.path or "${consumable}" in self.path

    def default_path(self, context: Mapping[str, str]) -> str:
        return Template(self.path).safe_substitute(context)

    def render_item(self, context: Mapping[str, str], consumable: str) -> str:
        """One request spending ``consumable``: ``BODY``, or ``PATH<TAB>BODY`` if the
        path holds the consumable (the line format of the load generators)."""
        values = {**context, "consumable": consumable}
        body = "" if self.body is None else Template(self.body).substitute(values)
        if "\n" in body or "\t" in body:
            raise ValueError(f"{self.key}: a request body must be one line without tabs")
        if self.consumable_in_path:
            return f"{Template(self.path).substitute(values)}\t{body}"
        return body


JSON = {"Content-Type": "application/json"}

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
]


def select(keys: str | None) -> list[Endpoint]:
    """The endpoints named in a comma-separated list (always with the baseline), in order."""
    if not keys:
        return list(ENDPOINTS)
    wanted = {k.strip() for k in keys.split(",") if k.strip()} | {BASELINE}
    unknown = wanted - {e.key for e in ENDPOINTS}
    if unknown:
        raise ValueError(f"unknown endpoint(s): {', '.join(sorted(unknown))}")
    return [e for e in ENDPOINTS if e.key in wanted]
