"""The public key set (JWKS), served at /api/v0/token/jwks and /.well-known/jwks.json."""

from __future__ import annotations

import hashlib
import json

from django.http import HttpRequest, HttpResponse, JsonResponse

from ..conf import app_settings
from ..flows.keys import keyring


def jwks_view(request: HttpRequest) -> HttpResponse:
    """Public members only; cacheable (``max-age`` + ETag) and readable cross-origin."""
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        # Cotter's error shape, like every other /api/v0 error.
        response = JsonResponse(
            {"msg": f'Method "{request.method}" not allowed.', "type": "method_not_allowed"},
            status=405,
        )
        response["Allow"] = "GET, HEAD, OPTIONS"
        return response
    body = json.dumps(keyring.jwks(), separators=(",", ":")).encode()
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    if request.method == "OPTIONS":
        response = HttpResponse(status=204)
    elif etag in request.headers.get("If-None-Match", ""):
        response = HttpResponse(status=304)
    else:
        response = HttpResponse(body, content_type="application/json")
    response["ETag"] = etag
    response["Cache-Control"] = f"public, max-age={int(app_settings.JWKS_MAX_AGE)}"
    response["Access-Control-Allow-Origin"] = "*"
    response["Access-Control-Allow-Methods"] = "GET, HEAD, OPTIONS"
    return response
