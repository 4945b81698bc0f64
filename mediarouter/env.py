"""Environment handling: the embedded default, development secrets and production checks.

Kept apart from settings.py so it can be tested on its own.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

PRODUCTION_REQUIRED = ("SECRET_KEY", "FERNET_KEYS", "DATABASE_URL", "REDIS_URL")


def load_dev_secrets(var_dir: Path) -> dict[str, str]:
    """Return SECRET_KEY and FERNET_KEYS for development, generated once into ``var_dir``.

    The file is git-ignored and created with mode 0600. Values already in the environment win.
    """
    path = var_dir / "dev-secrets.env"
    values: dict[str, str] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            if "=" in line and not line.startswith("#"):
                name, _, value = line.partition("=")
                values[name.strip()] = value.strip()
    changed = False
    if not values.get("SECRET_KEY"):
        values["SECRET_KEY"] = secrets.token_urlsafe(50)
        changed = True
    if not values.get("FERNET_KEYS"):
        values["FERNET_KEYS"] = Fernet.generate_key().decode()
        changed = True
    if changed:
        var_dir.mkdir(parents=True, exist_ok=True)
        body = "# Development secrets, generated once. Never use these in production.\n"
        body += "".join(f"{k}={v}\n" for k, v in sorted(values.items()))
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(body)
    return values


def check_production(environ: os._Environ | dict[str, str], debug: bool) -> None:
    """Refuse to start in production without the settings that must not have defaults."""
    missing = [name for name in PRODUCTION_REQUIRED if not environ.get(name)]
    if missing:
        raise ImproperlyConfigured(
            "Production mode (DJANGO_ENV=production) needs these environment variables: " + ", ".join(missing)
        )
    if debug:
        raise ImproperlyConfigured("DEBUG must be off in production (unset DEBUG or set DEBUG=false).")
