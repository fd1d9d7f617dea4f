"""Production mode refuses to start half-configured, and Django's deployment check is clean."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def manage(*args, **env):
    # The suite's own settings put test-only values in the environment; production must not see them.
    test_only = {"DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "DJANGO_SETTINGS_MODULE", "MARKET_VAR_DIR"}
    base = {
        k: v
        for k, v in os.environ.items()
        if k not in test_only and not k.startswith(("SECURE_", "SESSION_COOKIE_", "CSRF_COOKIE_"))
    }
    base.update(env)
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=base, capture_output=True, text=True, timeout=120
    )


def test_production_refuses_to_start_without_a_secret_key():
    result = manage("check", ALLOWED_HOSTS="market.example.cn")
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_every_model_change_has_its_migration_even_without_a_secret_key(tmp_path):
    # Writing migrations signs nothing: it runs with no SECRET_KEY, and finds nothing left to write.
    result = manage("makemigrations", "--check", "--dry-run", MARKET_VAR_DIR=str(tmp_path), DATABASE_URL="")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No changes detected" in result.stdout


def test_production_refuses_to_start_without_allowed_hosts():
    result = manage("check", SECRET_KEY=secrets.token_urlsafe(60))
    assert result.returncode != 0
    assert "ALLOWED_HOSTS must be set" in result.stderr


def test_deploy_check_reports_nothing():
    result = manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        SECRET_KEY=secrets.token_urlsafe(60),
        ALLOWED_HOSTS="market.example.cn",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_redis_url_switches_every_shared_service_to_redis():
    code = (
        "import django; django.setup(); from django.conf import settings as s;"
        "print(s.CHANNEL_LAYERS['default']['BACKEND'], s.CACHES['default']['BACKEND'], s.CELERY_BROKER_URL)"
    )
    env = {k: v for k, v in os.environ.items() if k not in {"DJANGO_SETTINGS_MODULE"}}
    env.update(DEBUG="1", REDIS_URL="redis://127.0.0.1:6379/3", DJANGO_SETTINGS_MODULE="market.settings")
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert out.stdout.split() == [
        "channels_redis.core.RedisChannelLayer",
        "market.core.cache.RedisCache",
        "redis://127.0.0.1:6379/3",
    ], out.stderr
    env.pop("REDIS_URL")
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    layer, cache, broker = out.stdout.split()
    assert layer == "channels.layers.InMemoryChannelLayer"
    assert cache.endswith("LocMemCache")
    assert broker.startswith("sqla+sqlite:///")
