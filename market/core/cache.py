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


class RedisCache(django_redis.RedisCache):
    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = RedisCacheClient
