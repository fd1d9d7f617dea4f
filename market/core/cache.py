"""Django's Redis cache, with one Redis client per server kept instead of one made per call.

``django.core.cache.backends.redis.RedisCacheClient.get_client`` builds a ``redis.Redis`` around its
connection pool on every cache call, which costs more than a short command on a local Redis (the
client's constructor fills its table of response callbacks each time). The client is thread-safe and
holds nothing but the pool, so one per server is kept.
"""

from django.core.cache.backends import redis as django_redis


class RedisCacheClient(django_redis.RedisCacheClient):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._clients = {}

    def get_client(self, key=None, *, write=False):
        index = self._get_connection_pool_index(write)
        client = self._clients.get(index)
        if client is None:
            pool = self._get_connection_pool(write)
            client = self._clients[index] = self._client(connection_pool=pool)
        return client


# Incremented where it exists, else started at ARGV[1]: in one round trip, and atomic (a script).
# The start is returned as the string it was given (a Lua number is a double: a nanosecond clock
# would lose its last digits).
_BUMP = """
if redis.call('EXISTS', KEYS[1]) == 1 then return redis.call('INCR', KEYS[1]) end
redis.call('SET', KEYS[1], ARGV[1])
return ARGV[1]
"""


class RedisCache(django_redis.RedisCache):
    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = RedisCacheClient
        self._bump = None

    def counter_bump(self, key, start: int, version=None) -> int:
        """The counter at ``key`` plus one, or ``start`` when there is none (never expiring): what
        ``incr`` and, on its ``ValueError``, ``add`` do, in one round trip instead of two or three.
        Stored as ``incr`` stores it (a plain integer, read back by ``get``)."""
        key = self.make_and_validate_key(key, version=version)
        client = self._cache.get_client(key, write=True)
        if self._bump is None:
            self._bump = client.register_script(_BUMP)
        return int(self._bump(keys=[key], args=[int(start)], client=client))
