"""The shared response and request helpers: ``no_store`` and the JSON parser's fast paths
give exactly what Django's and DRF's own code gives."""

from __future__ import annotations

import io

import pytest
from django.http import HttpResponse
from django.test import RequestFactory
from django.utils.cache import add_never_cache_headers
from rest_framework.exceptions import ParseError
from rest_framework.parsers import FormParser, JSONParser
from rest_framework.request import Request

from authdevice.api.v0.base import JSONObjectParser, PlainJSONNegotiation
from authdevice.http import no_store


def _django_never_cache(response: HttpResponse) -> HttpResponse:
    add_never_cache_headers(response)
    response["Pragma"] = "no-cache"
    return response


def test_no_store_sets_what_add_never_cache_headers_sets():
    ours, django = no_store(HttpResponse()), _django_never_cache(HttpResponse())
    assert ours["Cache-Control"] == django["Cache-Control"]
    assert ours["Cache-Control"] == "max-age=0, no-cache, no-store, must-revalidate, private"
    assert ours["Pragma"] == "no-cache"
    assert ours["Expires"].endswith(" GMT") and len(ours["Expires"]) == len(django["Expires"])


def test_no_store_merges_existing_caching_headers_like_django():
    existing = HttpResponse(headers={"Cache-Control": "public, max-age=60", "Expires": "x"})
    other = HttpResponse(headers={"Cache-Control": "public, max-age=60", "Expires": "x"})
    assert no_store(existing)["Cache-Control"] == _django_never_cache(other)["Cache-Control"]
    assert existing["Expires"] == "x"  # as Django: an Expires already set is kept


@pytest.mark.parametrize(
    ("content_type", "chosen"),
    [
        ("application/json", JSONObjectParser),
        ("application/json; charset=utf-8", JSONObjectParser),
        ("application/x-www-form-urlencoded", FormParser),
        ("text/plain", None),
    ],
)
def test_parser_choice_is_drfs(content_type, chosen):
    request = Request(RequestFactory().post("/", b"{}", content_type=content_type))
    parsers = [JSONObjectParser(), FormParser()]
    ours = PlainJSONNegotiation().select_parser(request, parsers)
    assert (type(ours) if ours else None) is chosen


@pytest.mark.parametrize(
    "raw",
    [
        b'{"a": 1, "b": ["x", null, true], "c": {"d": 1.5}}',
        '{"é": "ü"}'.encode(),
        b"[]",
        b'"text"',
        b"{",
        b'{"a": NaN}',
        b'{"a": -Infinity}',
        b"\xff\xfe{}",
        b"\xef\xbb\xbf{}",
        b'{"a": 1} x',
    ],
)
def test_json_parser_agrees_with_drf(raw):
    def run(parser):
        try:
            return ("ok", parser.parse(io.BytesIO(raw), "application/json", {}))
        except ParseError:
            return ("error", None)

    assert run(JSONObjectParser()) == run(JSONParser())


def test_json_parser_refuses_deep_nesting_with_a_parse_error():
    with pytest.raises(ParseError):
        JSONObjectParser().parse(io.BytesIO(b"[" * 100_000), "application/json", {})
