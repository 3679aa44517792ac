"""The short paths of the code request (benchmarks/README.md, (d)/(e)): each must do exactly
what the general path it stands in for does."""

from __future__ import annotations

from typing import Any

import pytest

from authdevice.api.v1.codes import _code_request_fields
from authdevice.api.v1.serializers import CodeRequestSerializer
from authdevice.flows import ratelimit
from authdevice.tasks import send_challenge
from tests.services import require


@pytest.mark.parametrize(
    "body",
    [
        {"identifier": "a@example.com"},
        {"identifier": "  a@example.com\t"},
        {"identifier": "a@example.com", "channel": "SMS", "method": "MAGIC_LINK"},
        {"identifier": "a@example.com", "extra": 1},
        {"identifier": "a" * 254},
        {"identifier": "a" * 255},
        {"identifier": "a@example.com\x00"},
        {"identifier": "   "},
        {"identifier": 5},
        {"identifier": "é@example.com"},
        {"identifier": "a@example.com", "channel": None},
        {"identifier": "a@example.com", "channel": ""},
        {"identifier": "a@example.com", "method": None},
        {"identifier": "a@example.com", "method": "PIN"},
        {"identifier": "a@example.com", "code_challenge": "A" * 43},
        {
            "identifier": "a@example.com",
            "code_challenge": "A" * 43,
            "code_challenge_method": "S256",
        },
        {
            "identifier": "a@example.com",
            "code_challenge": "A" * 43,
            "code_challenge_method": "plain",
        },
        {"identifier": "a@example.com", "code_challenge": "A" * 43, "code_challenge_method": None},
        {"identifier": "a@example.com", "code_challenge_method": "S256"},
        {"identifier": "a@example.com", "code_challenge": "A" * 42},
        {"identifier": "a@example.com", "code_challenge": "A" * 42 + "+"},
        {"identifier": "a@example.com", "code_challenge": "A" * 43 + "\n"},
        {"identifier": "a@example.com", "code_challenge": ""},
        {"identifier": "a@example.com", "code_challenge": None},
        {"identifier": "a@example.com", "code_challenge": 5},
        {},
        [],
    ],
)
def test_request_fields_match_the_serializer(body: Any) -> None:
    """Accepted only what the serializer accepts, with the same values; everything else is
    left to the serializer (and its exact error)."""
    fields = _code_request_fields(body)
    serializer = CodeRequestSerializer(data=body)
    valid = serializer.is_valid()
    if fields is not None:
        data = serializer.validated_data
        assert valid
        assert fields == (
            data["identifier"],
            data.get("channel"),
            data["method"],
            data.get("code_challenge", ""),
        )


def test_hit_many_on_redis_counts_like_consecutive_hits(settings) -> None:
    url = require("redis")
    settings.CACHES = {
        **settings.CACHES,
        "rl": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": url},
    }
    settings.AUTHDEVICE_RATELIMIT_CACHE = "rl"
    from django.core.cache import caches

    cache = caches["rl"]
    cache.clear()
    assert ratelimit._redis_client(cache) is not None  # the scripted path is the one tested
    ip, ident = ratelimit.Limit("t-ip", 3, 300), ratelimit.Limit("t-id", 2, 300)
    ratelimit.hit_many([(ip, "1.1.1.1"), (ident, "a@x")])
    ratelimit.hit_many([(ip, "1.1.1.1"), (ident, "a@x")])
    with pytest.raises(ratelimit.RateLimited) as over:
        ratelimit.hit_many([(ip, "1.1.1.1"), (ident, "a@x")])  # the identifier's third
    assert 1 <= over.value.retry_after <= 300
    assert ratelimit.peek("t-ip", "1.1.1.1", 300) == 3
    assert ratelimit.peek("t-id", "a@x", 300) == 3
    # Over the IP limit: stops there, the identifier is not counted.
    with pytest.raises(ratelimit.RateLimited):
        ratelimit.hit_many([(ip, "1.1.1.1"), (ident, "b@x")])
    assert ratelimit.peek("t-id", "b@x", 300) == 0
    # Every counter expires with its window.
    key, _ = ratelimit._key("t-ip", "1.1.1.1", 300)
    client = cache._cache.get_client(write=True)
    assert 0 < client.ttl(cache.make_and_validate_key(key)) <= 301


@pytest.fixture
def memory_broker(celery_broker):
    return celery_broker("memory://")


def _next_message(app: Any) -> Any:
    with app.connection_for_read() as conn, conn.SimpleQueue("celery") as queue:
        message = queue.get(timeout=1)
        message.ack()
        return message


def test_fast_publish_sends_what_celery_sends(memory_broker) -> None:
    app = memory_broker
    with app.connection_for_read() as conn, conn.SimpleQueue("celery") as queue:
        queue.clear()
    send_challenge.delay(12, 3, "sealed")
    fast = _next_message(app)
    send_challenge.apply_async((12, 3, "sealed"))
    celery = _next_message(app)
    assert (
        fast.payload
        == celery.payload
        == [
            [12, 3, "sealed"],
            {},
            {"callbacks": None, "errbacks": None, "chain": None, "chord": None},
        ]
    )
    assert set(fast.headers) == set(celery.headers)
    for name, value in celery.headers.items():
        if name not in ("id", "root_id", "argsrepr"):
            assert fast.headers[name] == value, name
    assert fast.headers["argsrepr"] == "(12, 3, '...')"  # not the sealed payload
    assert fast.delivery_info == celery.delivery_info
    assert fast.content_type == celery.content_type
    assert set(fast.properties) == set(celery.properties)
    for name, value in celery.properties.items():
        if name not in ("correlation_id", "delivery_tag"):
            assert fast.properties[name] == value, name
    assert fast.properties["correlation_id"] == fast.headers["id"]


def test_fast_publish_stores_in_redis_what_celery_stores(celery_broker) -> None:
    """The same comparison one level down: the JSON kombu's Redis transport stores."""
    import json

    import redis

    broker = require("redis").rsplit("/", 1)[0] + "/7"
    client = redis.Redis.from_url(broker)
    client.delete("celery")
    celery_broker(broker)
    try:
        send_challenge.publish(12, 3, "sealed")
        send_challenge.apply_async((12, 3, "sealed"))
        celery_raw, fast_raw = client.lrange("celery", 0, -1)  # LPUSH: newest first
    finally:
        client.delete("celery")
    fast, celery = json.loads(fast_raw), json.loads(celery_raw)
    for message in (fast, celery):
        for name in ("id", "root_id", "argsrepr"):
            message["headers"].pop(name)
        for name in ("correlation_id", "delivery_tag"):
            message["properties"].pop(name)
    assert fast == celery


@pytest.mark.parametrize("backend", ["locmem", "redis"])
def test_hit_counts_and_every_counter_expires_with_its_window(settings, backend) -> None:
    """``hit`` (the path of every cache but Django's RedisCache with scripting): the first
    hit of a window starts the counter with its expiry, later ones only increment."""
    import time

    if backend == "redis":
        location = require("redis")
        settings.CACHES = {
            **settings.CACHES,
            "rl": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": location},
        }
    else:
        settings.CACHES = {
            **settings.CACHES,
            "rl": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "rl"},
        }
    settings.AUTHDEVICE_RATELIMIT_CACHE = "rl"
    from django.core.cache import caches

    cache = caches["rl"]
    cache.clear()
    limit = ratelimit.Limit("t-one", 3, 3600)  # one window for the whole test
    for expected in (1, 2, 3):
        ratelimit.hit(limit, "s")
        assert ratelimit.peek("t-one", "s", 3600) == expected
    with pytest.raises(ratelimit.RateLimited):
        ratelimit.hit(limit, "s")
    key, _ = ratelimit._key("t-one", "s", 3600)
    if backend == "redis":
        client = cache._cache.get_client(write=True)
        assert 3500 < client.ttl(cache.make_and_validate_key(key)) <= 3601
    else:
        expires = cache._expire_info[cache.make_and_validate_key(key)]
        assert 3500 < expires - time.time() <= 3601
