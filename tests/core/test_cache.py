"""The Redis cache keeps one client per server (``market.core.cache``) and behaves as Django's."""

import uuid

import pytest
from django.conf import settings

from market.core.cache import RedisCache


@pytest.fixture
def cache():
    # The suite runs against real Redis (make test sets REDIS_URL); the embedded default has none.
    assert settings.REDIS_URL, "the suite needs REDIS_URL (make test sets it)"
    return RedisCache(settings.REDIS_URL, {"KEY_PREFIX": f"test-cache-{uuid.uuid4().hex}"})


def test_one_client_serves_every_call_and_the_cache_answers_as_djangos(cache):
    assert cache._cache.get_client() is cache._cache.get_client(write=True)
    assert cache.get("counter") is None
    with pytest.raises(ValueError):
        cache.incr("counter")
    assert cache.add("counter", 1) and not cache.add("counter", 5)
    assert cache.incr("counter") == 2 and cache.get("counter") == 2
    cache.set_many({"a": {"价格": "2010.00"}, "b": [1, 2]}, timeout=30)
    assert cache.get_many(["a", "b", "c"]) == {"a": {"价格": "2010.00"}, "b": [1, 2]}
    cache.delete_many(["a", "b", "counter"])
    assert cache.get_many(["a", "b", "counter"]) == {}


def test_a_counter_is_started_then_bumped_in_one_round_trip(cache, monkeypatch):
    """``counter_bump``: what ``incr`` does where the counter exists, else the start value (as
    ``add`` would, never expiring), in one command; read back by ``get`` as ``incr`` stores it."""
    client = cache._cache.get_client(write=True)
    sent = []
    execute = type(client).execute_command

    def counting(self, *args, **kwargs):
        sent.append(args[0])
        return execute(self, *args, **kwargs)

    assert cache.counter_bump("generation", 1_000) == 1_000  # (loads its script the first time)
    monkeypatch.setattr(type(client), "execute_command", counting)
    assert cache.counter_bump("generation", 5) == 1_001
    assert sent == ["EVALSHA"]
    monkeypatch.undo()
    assert cache.get("generation") == 1_001 and cache.incr("generation") == 1_002
    assert client.ttl(cache.make_and_validate_key("generation")) == -1  # no expiry
    cache.delete("generation")
