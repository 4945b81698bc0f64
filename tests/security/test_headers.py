"""Security headers, as production serves them (a subprocess with DJANGO_ENV=production)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from cryptography.fernet import Fernet

from tests.utils import ROOT

SCRIPT = r"""
import json, django
django.setup()
from django.test import Client
c = Client(HTTP_HOST="mr.example.com")
plain = c.get("/login/")
https = c.get("/login/", secure=True)
print(json.dumps({
    "plain_status": plain.status_code, "plain_location": plain.get("Location", ""),
    "status": https.status_code,
    "headers": {k.lower(): v for k, v in https.items()},
    "cookies": {name: {"secure": bool(m["secure"]), "httponly": bool(m["httponly"]), "samesite": m["samesite"]}
                for name, m in https.cookies.items()},
}))
"""


def _production_page(var_dir):
    env = {k: v for k, v in os.environ.items() if k not in ("DEBUG", "DATABASE_URL", "REDIS_URL")}
    env.update(
        DJANGO_SETTINGS_MODULE="mediarouter.settings",
        DJANGO_ENV="production",
        SECRET_KEY="x" * 64,
        FERNET_KEYS=Fernet.generate_key().decode(),
        DATABASE_URL=f"sqlite:///{var_dir}/headers.sqlite3",  # its own file: two runs side by side
        REDIS_URL="redis://127.0.0.1:6379/14",
        ALLOWED_HOSTS="mr.example.com",
        EMAIL_URL="smtp+tls://mr:mail-password@smtp.example.com:587",  # production refuses console mail
        MEDIAROUTER_VAR_DIR=str(var_dir),
    )
    # production serves hashed static files (whitenoise's manifest): collect them first, as a deploy does
    collect = subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert collect.returncode == 0, collect.stderr
    result = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_production_security_headers_and_cookies(tmp_path):
    page = _production_page(tmp_path)
    assert page["plain_status"] == 301 and page["plain_location"].startswith("https://")  # HTTPS only
    assert page["status"] == 200
    headers = page["headers"]
    assert "max-age=31536000" in headers["strict-transport-security"]
    assert headers["x-frame-options"] == "DENY"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "same-origin"
    csp = headers["content-security-policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp and "object-src 'none'" in csp
    assert "script-src 'self'" in csp and "unsafe-eval" not in csp
    csrf = page["cookies"]["csrftoken"]
    assert csrf["secure"] and csrf["samesite"] == "Lax"
