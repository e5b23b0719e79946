"""The environments README.md documents (production, and `make run`'s embedded default), for
tests that start the portal in them."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parent.parent


def production_env(tmp_path: Path, **overrides: str) -> dict[str, str]:
    """That environment with strong secrets, this process's own portal settings dropped, and
    `overrides` applied."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "PORTAL_", "DATABASE_", "REALGEEKS_"))
    }
    env.update(
        PORTAL_ENV="production",
        PORTAL_VAR_DIR=str(tmp_path),
        SECRET_KEY=secrets.token_urlsafe(50),
        FIELD_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
        DATABASE_URL="postgres://portal:secret@127.0.0.1:5432/portal",
        ALLOWED_HOSTS="portal.example.com",
        CSRF_TRUSTED_ORIGINS="https://portal.example.com",
        PORTAL_BASE_URL="https://portal.example.com",
        CELERY_BROKER_URL="redis://127.0.0.1:6379/0",
        CACHE_URL="redis://127.0.0.1:6379/1",
    )
    env.update(overrides)
    return env


def embedded_env(var_dir: Path) -> dict[str, str]:
    """`make run`'s embedded default (SQLite and the broker without a server, generated secrets)
    under `var_dir`, with this process's own portal settings dropped."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "PORTAL_", "DATABASE_", "CELERY_", "CACHE_"))
        and key not in ("SECRET_KEY", "FIELD_ENCRYPTION_KEYS")
    }
    env.update(PORTAL_VAR_DIR=str(var_dir), DJANGO_SETTINGS_MODULE="partner_portal.settings")
    return env


def manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`manage.py ARGS` in a process of its own under `env`."""
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
