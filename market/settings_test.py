"""Settings for the test suite: the real services, PostgreSQL and Redis, on this machine.

Every value can be overridden from the environment; ``make test`` passes them explicitly.
"""

import os

os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/market")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/0")
os.environ.setdefault("REDIS_PREFIX", f"market-test-{os.getpid()}")
os.environ.setdefault("SECRET_KEY", "test-secret-key-not-for-production-" + "x" * 40)
os.environ.setdefault("ALLOWED_HOSTS", "testserver,localhost,127.0.0.1")
os.environ.setdefault("SECURE_SSL_REDIRECT", "0")
os.environ.setdefault("SESSION_COOKIE_SECURE", "0")
os.environ.setdefault("CSRF_COOKIE_SECURE", "0")
os.environ.setdefault(
    "MARKET_VAR_DIR", os.path.join(os.path.dirname(os.path.dirname(__file__)), "var", "test")
)

from market.settings import *  # noqa: F403
from market.settings import DATABASES, STORAGES, VAR_DIR

# A second alias on the same test database, Django's documented way to test a read replica
# (TEST MIRROR): tests/scaleout switch the dashboards' reads to it with DATABASE_REPLICA_ALIAS.
# The rest of the suite reads and writes "default" only (DATABASE_REPLICA_ALIAS stays empty unless
# DATABASE_REPLICA_URL is set).
DATABASES.setdefault("replica", {**DATABASES["default"], "TEST": {"MIRROR": "default"}})

# Uploaded files go to a throwaway directory; static files need no manifest in tests.
MEDIA_ROOT = VAR_DIR / "media"
STORAGES = {**STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast hashing in tests only
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # noqa: F405 - WhiteNoise warns about a missing directory
