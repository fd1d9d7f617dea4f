"""``manage.py check --deploy`` is clean in production mode (issue 8, security): DEBUG off, a long
random SECRET_KEY, ALLOWED_HOSTS, PostgreSQL and Redis, behind a TLS proxy, with every security
setting left at the default that market/settings.py derives from DEBUG. Run in a subprocess, with
only the production environment (none of the test settings), exactly as an operator would."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def production_env(tmp_path, **overrides) -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", str(tmp_path)),
        "LANG": "C.UTF-8",
        "DJANGO_SETTINGS_MODULE": "market.settings",
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(64),
        "ALLOWED_HOSTS": "market.example.cn",
        "CSRF_TRUSTED_ORIGINS": "https://market.example.cn",
        "SITE_URL": "https://market.example.cn",
        "BEHIND_TLS_PROXY": "1",
        "PROXY_COUNT": "1",
        "DATABASE_URL": "postgres://market@db.internal:5432/market",
        "REDIS_URL": "redis://redis.internal:6379/0",
        "MARKET_VAR_DIR": str(tmp_path / "var"),
    }
    env.update(overrides)
    return env


def check_deploy(env) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_is_clean_in_production_mode(tmp_path):
    result = check_deploy(production_env(tmp_path))
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "System check identified no issues (0 silenced)." in output, output


def test_check_deploy_catches_an_insecure_override(tmp_path):
    """The test above can fail: turning a protection off in the environment is reported."""
    env = production_env(
        tmp_path, SECURE_SSL_REDIRECT="0", SESSION_COOKIE_SECURE="0", SECURE_HSTS_SECONDS="0"
    )
    result = check_deploy(env)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    for check in ("security.W004", "security.W008", "security.W012"):
        assert check in output, output


def test_production_mode_refuses_to_start_without_a_secret_key(tmp_path):
    env = production_env(tmp_path)
    del env["SECRET_KEY"]
    result = check_deploy(env)
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr
