"""Settings for the test suite: the same settings module, with test-only speedups."""

import os
import tempfile
import uuid
from pathlib import Path

os.environ.setdefault("DJANGO_ENV", "test")
os.environ.setdefault("MEDIAROUTER_VAR_DIR", str(Path(__file__).resolve().parent.parent / ".var" / "test"))
# Queues of their own per test run, inherited by child processes (a real worker), so parallel runs
# never share messages: every queue name derives from this prefix (CELERY_QUEUE_NAMES in settings.py).
os.environ["CELERY_QUEUE_PREFIX"] = os.environ.setdefault("MEDIAROUTER_TEST_QUEUE", f"mr-test-{uuid.uuid4().hex[:10]}")

from mediarouter.settings import *  # noqa: F403
from mediarouter.settings import CELERY_BROKER_TRANSPORT_OPTIONS, CELERY_BROKER_URL, DATABASES, VAR_DIR

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
# Eager in the test process; a real worker started by an integration test (tests/worker.py sets
# MEDIAROUTER_TEST_WORKER=1) must send its follow-up steps through the broker with their
# countdowns, or it would run a whole job's chain of steps inline, in one task.
CELERY_TASK_ALWAYS_EAGER = os.environ.get("MEDIAROUTER_TEST_WORKER") != "1"
CELERY_TASK_EAGER_PROPAGATES = True
SANDBOX_JOB_SECONDS = 1.0
# The suite never talks to OpenAI: Sora models run against an OpenAI-compatible gateway (an
# emulator, or nothing on this port), which is also what keeps the retired Sora 2 models usable.
# tests/generations/test_create.py removes it to see them refused.
OPENAI_BASE_URL = os.environ.get("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
# an open circuit (apps.generations.routing) waits this long in tests, not a minute
ROUTER_CIRCUIT_OPEN_SECONDS = 2.0
# One media folder per test run, shared with the run's child processes (a real worker, commands)
# through the variable. The process that made it (the pytest session) removes it at the end
# (tests/conftest.py, pytest_sessionfinish); children and a folder given from outside are left alone.
TEST_MEDIA_ROOT_OWNED = not os.environ.get("MEDIAROUTER_TEST_MEDIA_ROOT")
if TEST_MEDIA_ROOT_OWNED:
    os.environ["MEDIAROUTER_TEST_MEDIA_ROOT"] = tempfile.mkdtemp(prefix="mediarouter-test-media-")
MEDIA_ROOT = Path(os.environ["MEDIAROUTER_TEST_MEDIA_ROOT"])
STORAGES = {
    "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(MEDIA_ROOT), "allow_overwrite": True},
    },
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # A file, not :memory:, so a real worker process in integration tests sees the same data.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test-db.sqlite3")}

# Subprocesses started by integration tests (a real Celery worker, manage.py commands) are pointed
# at the test database and at a queue of their own through these variables.
if os.environ.get("MEDIAROUTER_TEST_DB_NAME"):
    DATABASES["default"]["NAME"] = os.environ["MEDIAROUTER_TEST_DB_NAME"]

# The engine's timings, shortened so integration tests finish in seconds.
GENERATION_LEASE_GRACE_SECONDS = 3.0
GENERATION_POLL_MIN_SECONDS = 0.3
GENERATION_POLL_MAX_SECONDS = 2.0
GENERATION_POLL_PACED_MAX_SECONDS = 2.0
GENERATION_DISPATCH_INTERVAL_SECONDS = 1.0
WEBHOOK_DISPATCH_INTERVAL_SECONDS = 1.0
GENERATION_POLL_STEP_INTERVAL_SECONDS = 0.3
GENERATION_POLL_STEP_WINDOW_SECONDS = 0.1  # a test worker runs every queue in two processes
CELERY_BEAT_SCHEDULE = {
    "poll-due-generations": {"task": "generations.poll_due", "schedule": GENERATION_POLL_STEP_INTERVAL_SECONDS},
    "dispatch-due-generations": {"task": "generations.dispatch_due", "schedule": GENERATION_DISPATCH_INTERVAL_SECONDS},
    "dispatch-due-webhooks": {"task": "webhooks.dispatch_due", "schedule": WEBHOOK_DISPATCH_INTERVAL_SECONDS},
    "dispatch-waiting-batch-items": {
        "task": "generations.dispatch_batches",
        "schedule": GENERATION_DISPATCH_INTERVAL_SECONDS,
    },
}

# API throttling stays on, with rates no suite reaches; throttling tests lower them (and clear the
# counts) with pytest-django's ``settings`` fixture.
API_THROTTLE_CREATE_RATE = API_THROTTLE_READ_RATE = "100000/min"
API_THROTTLE_ORG_CREATE_RATE = API_THROTTLE_ORG_READ_RATE = "100000/min"

if CELERY_BROKER_URL == "mrfs://":
    # poll the queue folder every 0.1 s instead of every second: workers in tests pick steps up fast
    CELERY_BROKER_TRANSPORT_OPTIONS = {**CELERY_BROKER_TRANSPORT_OPTIONS, "polling_interval": 0.1}
