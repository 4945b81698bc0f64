"""MediaRouter settings: everything comes from environment variables (see README, "Configuration").

Three modes, chosen by DJANGO_ENV:
- ``development`` (default, the embedded default of ``make run``): SQLite, local media, a broker
  that needs no server, development secrets generated once into ``.var/``. DATABASE_URL and
  REDIS_URL switch it to PostgreSQL and Redis.
- ``production``: refuses to start without SECRET_KEY, FERNET_KEYS, DATABASE_URL and REDIS_URL, or
  with DEBUG on.
- ``test``: used by the test suite (mediarouter/settings_test.py).
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path

import environ
from csp.constants import NONE, SELF, UNSAFE_INLINE
from kombu import Queue

from mediarouter import queues
from mediarouter.env import check_production, load_dev_secrets

BASE_DIR = Path(__file__).resolve().parent.parent
# django-environ's FileAwareEnv: NAME_FILE, when set, names a file holding NAME's value (Docker
# secrets) and wins over NAME.
env = environ.FileAwareEnv()


def envsecret(name: str) -> str | None:
    """NAME (or the contents of NAME_FILE) without a file's trailing newline; None when unset."""
    value = env.str(name, default=None)
    return value.strip() if value else None


DJANGO_ENV = env.str("DJANGO_ENV", default="development")
if DJANGO_ENV not in ("development", "production", "test"):
    raise environ.ImproperlyConfigured("DJANGO_ENV must be development, production or test")
IS_PRODUCTION = DJANGO_ENV == "production"
# Off unless asked for (`make dev` sets DEBUG=true): a debug page would show a tenant tracebacks.
DEBUG = env.bool("DEBUG", default=False)
VAR_DIR = Path(env.str("MEDIAROUTER_VAR_DIR", default=str(BASE_DIR / ".var")))

if IS_PRODUCTION:
    check_production(
        {n: envsecret(n) or "" for n in ("SECRET_KEY", "FERNET_KEYS", "DATABASE_URL", "REDIS_URL")},
        DEBUG,
    )
    SECRET_KEY = envsecret("SECRET_KEY")
    FERNET_KEYS = [k.strip() for k in envsecret("FERNET_KEYS").split(",") if k.strip()]
else:
    _dev = load_dev_secrets(VAR_DIR)
    SECRET_KEY = envsecret("SECRET_KEY") or _dev["SECRET_KEY"]
    FERNET_KEYS = [k.strip() for k in (envsecret("FERNET_KEYS") or _dev["FERNET_KEYS"]).split(",") if k.strip()]

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=[] if IS_PRODUCTION else ["*"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000").rstrip("/")
ADMIN_URL = env.str("ADMIN_URL", default="admin/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "template_partials",
    "apps.core",
    "apps.accounts",
    "apps.api_keys",
    "apps.providers",
    "apps.generations",
    "apps.billing",
    "apps.audit",
    "apps.webhooks",
    "apps.sharing",
    "axes",
    "csp",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "apps.core.middleware.ContentSecurityPolicyMiddleware",  # django-csp, a fixed policy on /v1/
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "apps.core.middleware.RequestIdMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "apps.accounts.middleware.TenantScopeMiddleware",
    # last, as django-axes asks: refuses logins after repeated failures
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "mediarouter.urls"
WSGI_APPLICATION = "mediarouter.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "apps.accounts.context_processors.tenant",
            ],
        },
    }
]

# --- Database ------------------------------------------------------------------------------
if envsecret("DATABASE_URL"):
    DATABASES = {"default": env.db_url_config(envsecret("DATABASE_URL"))}
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DB_CONN_MAX_AGE", default=60))
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = env.bool("DB_CONN_HEALTH_CHECKS", default=True)
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        # Django's backend, whose health check polls the socket instead of a SELECT 1 per request
        DATABASES["default"]["ENGINE"] = "apps.core.backends.postgresql"
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": VAR_DIR / "db.sqlite3",
            "OPTIONS": {
                # WAL lets the web process read while a worker writes; IMMEDIATE takes the write
                # lock at BEGIN, so concurrent writers queue instead of failing mid-transaction.
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
            },
            # Kept open between requests, as on PostgreSQL: opening a SQLite connection (its PRAGMAs,
            # Django's SQL functions) cost ~1 ms of every `make run` request (bench/api_overhead.py).
            "CONN_MAX_AGE": env.int("DB_CONN_MAX_AGE", default=60),
            "CONN_HEALTH_CHECKS": env.bool("DB_CONN_HEALTH_CHECKS", default=True),
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache, broker -------------------------------------------------------------------------
REDIS_URL = envsecret("REDIS_URL")
if REDIS_URL:
    # django-redis: the API throttle takes its client through django_redis.get_redis_connection
    CACHES = {"default": {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": REDIS_URL}}
    CELERY_BROKER_URL = REDIS_URL
    CELERY_RESULT_BACKEND = REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
else:
    # The embedded default: no server. Cache in files (shared by web and worker processes),
    # broker and results on the local filesystem (kombu's filesystem transport).
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
        }
    }
    _broker_dir = VAR_DIR / "broker"
    for _sub in ("queue", "processed", "results", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_URL = "mrfs://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
    CELERY_RESULT_BACKEND = f"file://{_broker_dir / 'results'}"

CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = env.int("CELERY_WORKER_PREFETCH_MULTIPLIER", default=1)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Database connections live across tasks as they live across requests. Without this setting,
# Celery's Django fix-up closes every connection before and after each task: one new PostgreSQL
# session per task, 25 a second at 10,000 jobs in flight (bench/RESULTS.md). With it, the fix-up
# closes them only every this many tasks, and mediarouter/celery.py closes the unusable or obsolete
# ones around each task, as Django does around each request (CONN_MAX_AGE, CONN_HEALTH_CHECKS).
CELERY_DB_REUSE_MAX = env.int("CELERY_DB_REUSE_MAX", default=1000)
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=600)
CELERY_TASK_TIME_LIMIT = CELERY_TASK_SOFT_TIME_LIMIT + 60
# Queues: submits, polls and downloads each have their own, so a long download never holds up a
# poll. Every name derives from one prefix (the test suite makes it unique per run). The default
# queue carries everything else (the dispatcher, webhooks, pings). Workers pick queues with -Q
# (Procfile, docker-compose.yml, mediarouter/run.py); README "Running it in production".
CELERY_QUEUE_PREFIX = env.str("CELERY_QUEUE_PREFIX", default=queues.DEFAULT_PREFIX)
CELERY_QUEUE_NAMES = queues.queue_names(CELERY_QUEUE_PREFIX)  # {"default": prefix, "poll": "<prefix>.poll", …}
CELERY_TASK_DEFAULT_QUEUE = CELERY_QUEUE_NAMES["default"]
# a worker started without -Q (``celery -A mediarouter worker``) consumes all of them
CELERY_TASK_QUEUES = [Queue(name) for name in CELERY_QUEUE_NAMES.values()]
CELERY_TASK_ROUTES = {  # glob patterns: the batched poll step (generations.poll_due) follows poll
    "generations.submit*": {"queue": CELERY_QUEUE_NAMES["submit"]},
    "generations.reconcile*": {"queue": CELERY_QUEUE_NAMES["submit"]},
    "generations.poll*": {"queue": CELERY_QUEUE_NAMES["poll"]},
    "generations.download*": {"queue": CELERY_QUEUE_NAMES["download"]},
}
# Time limits per kind of step, whichever worker runs it (hard limit: the soft one + 30 s). A submit
# must end well inside GENERATION_SUBMIT_LEASE_SECONDS; a download streams up to VIDEO_MAX_BYTES.
_STEP_TIME_LIMITS = {
    "submit": env.int("CELERY_SUBMIT_SOFT_TIME_LIMIT", default=90),
    "poll": env.int("CELERY_POLL_SOFT_TIME_LIMIT", default=60),
    "download": env.int("CELERY_DOWNLOAD_SOFT_TIME_LIMIT", default=1800),
}
CELERY_TASK_ANNOTATIONS = {
    f"generations.{task}": {"soft_time_limit": _STEP_TIME_LIMITS[kind], "time_limit": _STEP_TIME_LIMITS[kind] + 30}
    for task, kind in (
        ("submit", "submit"),
        ("reconcile", "submit"),
        ("poll", "poll"),
        ("poll_due", "poll"),
        ("download", "download"),
    )
}
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")

# --- Files ---------------------------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "staticfiles"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(VAR_DIR / "media")))
MEDIA_URL = "/media/"  # never served directly: files go through tenant-checked views

AWS_STORAGE_BUCKET_NAME = env.str("AWS_STORAGE_BUCKET_NAME", default="")


def _transfer_config(*, chunk_mib: int, concurrency: int):
    from boto3.s3.transfer import TransferConfig

    chunk = max(chunk_mib, 5) * 1024 * 1024  # S3's smallest part is 5 MiB
    config = TransferConfig(multipart_threshold=chunk, multipart_chunksize=chunk, max_concurrency=concurrency)
    config.max_in_memory_upload_chunks = concurrency  # s3transfer's knob; boto3's constructor lacks it
    return config


if AWS_STORAGE_BUCKET_NAME:
    _default_storage = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": AWS_STORAGE_BUCKET_NAME,
            "endpoint_url": env.str("AWS_S3_ENDPOINT_URL", default="") or None,
            "region_name": env.str("AWS_S3_REGION_NAME", default="") or None,
            "access_key": envsecret("AWS_ACCESS_KEY_ID"),
            "secret_key": envsecret("AWS_SECRET_ACCESS_KEY"),
            "default_acl": None,
            "file_overwrite": True,
            "querystring_auth": True,
            "querystring_expire": env.int("AWS_QUERYSTRING_EXPIRE", default=300),
            # Videos are streamed in (not seekable): boto3 holds up to max_in_memory_upload_chunks
            # parts of multipart_chunksize in memory (defaults 10 x 8 MiB, ~100 MB per upload).
            # Two 8 MiB parts in flight keep a 500 MB upload under ~40 MB (bench/download.py).
            "transfer_config": _transfer_config(
                chunk_mib=env.int("AWS_S3_MULTIPART_CHUNK_MIB", default=8),
                concurrency=env.int("AWS_S3_MAX_CONCURRENCY", default=2),
            ),
        },
    }
else:
    _default_storage = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(MEDIA_ROOT), "allow_overwrite": True},
    }
STORAGES = {
    "default": _default_storage,
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if IS_PRODUCTION
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}

# --- Auth ----------------------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # login throttling: locks out after repeated failures
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = env.float("LOGIN_COOLOFF_MINUTES", default=15.0) / 60  # hours
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_USERNAME_FORM_FIELD = "username"
AXES_IPWARE_PROXY_COUNT = env.int("PROXY_COUNT", default=0) or None
AXES_VERBOSE = False
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
INVITATION_TTL_HOURS = env.int("INVITATION_TTL_HOURS", default=72)
# the longest a share link may live (apps.sharing): the lifetimes offered are 1, 7 and 30 days up to it
SHARE_LINK_MAX_DAYS = env.int("SHARE_LINK_MAX_DAYS", default=30)
PASSWORD_RESET_TIMEOUT = 3 * 3600

# --- Mail ----------------------------------------------------------------------------------
if os.environ.get("EMAIL_URL"):
    vars().update(env.email_url("EMAIL_URL"))
else:
    EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
# Mail that is printed, kept or dropped instead of sent puts password-reset links in the log (or
# loses them): production needs a real EMAIL_URL, unless EMAIL_ALLOW_CONSOLE=true says otherwise.
EMAIL_ALLOW_CONSOLE = env.bool("EMAIL_ALLOW_CONSOLE", default=False)
_LOCAL_EMAIL_BACKENDS = {
    f"django.core.mail.backends.{n}.EmailBackend" for n in ("console", "filebased", "locmem", "dummy")
}
if IS_PRODUCTION and EMAIL_BACKEND in _LOCAL_EMAIL_BACKENDS and not EMAIL_ALLOW_CONSOLE:
    raise environ.ImproperlyConfigured(
        "Production mode (DJANGO_ENV=production) needs EMAIL_URL (e.g. smtp+tls://user:pass@smtp.example.com:587): "
        "without it, mail such as password-reset links would be printed to the log. "
        "Set EMAIL_ALLOW_CONSOLE=true to accept that."
    )
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="MediaRouter <noreply@localhost>")

# --- I18N ----------------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- API -----------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["apps.api_keys.authentication.ApiTokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": [
        # DRF's, strict: depth-limited JSON, multipart refused without its closing boundary
        "apps.core.parsers.JSONParser",
        "apps.core.parsers.MultiPartParser",
        "rest_framework.parsers.FormParser",
    ],
    "EXCEPTION_HANDLER": "apps.core.api.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
    # Creates and reads apart, per API token and per organization, on both API shapes; rates
    # below (counted in Redis when REDIS_URL is set, else in a SQLite file in VAR_DIR shared by
    # every process on the host; atomic in both).
    "DEFAULT_THROTTLE_CLASSES": ["apps.core.throttling.ApiRateThrottle"],
}
# "<requests>/<sec|min|hour|day>"; empty disables that throttle.
API_THROTTLE_CREATE_RATE = env.str("API_THROTTLE_CREATE_RATE", default="120/min")  # per token
API_THROTTLE_READ_RATE = env.str("API_THROTTLE_READ_RATE", default="3000/min")  # per token: 100 jobs at 2 s
API_THROTTLE_ORG_CREATE_RATE = env.str("API_THROTTLE_ORG_CREATE_RATE", default="600/min")
API_THROTTLE_ORG_READ_RATE = env.str("API_THROTTLE_ORG_READ_RATE", default="12000/min")
# Deprecated: when set (even empty, hence os.environ), one budget for creates and reads together
# at that level, as before the split.
API_THROTTLE_TOKEN_RATE = os.environ.get("API_THROTTLE_TOKEN_RATE")
API_THROTTLE_ORG_RATE = os.environ.get("API_THROTTLE_ORG_RATE")
# How long each web process may reuse an authenticated API token's identity (token, user,
# organization, role) without asking the database: a revoked token or a removed member is refused
# at most this long after the change (at once in the process that made it). 0 disables.
API_TOKEN_CACHE_SECONDS = env.float("API_TOKEN_CACHE_SECONDS", default=5.0)
# Hot-path reads compiled to SQL by hand (apps.core.prepared.PreparedGet, on Django's compiler
# internals): half the server's CPU of an API retrieve (0.8 of 1.6 ms on the embedded default,
# bench/RESULTS.md), which the 3 ms retrieve target needs. On only on a tested Django (the system
# check core.E001 refuses any other); false: the plain ORM.
MEDIAROUTER_PREPARED_QUERIES = env.bool("MEDIAROUTER_PREPARED_QUERIES", default=True)
SPECTACULAR_SETTINGS = {
    "TITLE": "MediaRouter API",
    "DESCRIPTION": "One API for AI video generation across providers.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    # Swagger UI assets come from the sidecar package: no CDN at runtime.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- Providers -----------------------------------------------------------------------------
# Each provider's own settings follow one rule, read by apps.providers.registry from the environment
# (or from a Django setting of the same name): PROVIDER_<SLUG>_ENABLED, <SLUG>_BASE_URL and
# <SLUG>_<NAME> for the adapter's further settings. Nothing per provider is written here.
# A base URL that a tenant types (a key's own gateway) may point at a private address only in
# development and tests.
# The router's circuit per supplier (and per key): this many consecutive transient failures open
# it for this long; then one request probes it.
ROUTER_CIRCUIT_FAILURES = env.int("ROUTER_CIRCUIT_FAILURES", default=5)
ROUTER_CIRCUIT_OPEN_SECONDS = env.float("ROUTER_CIRCUIT_OPEN_SECONDS", default=60.0)
TENANT_URL_ALLOW_PRIVATE_ADDRESSES = env.bool("TENANT_URL_ALLOW_PRIVATE_ADDRESSES", default=not IS_PRODUCTION)
SANDBOX_JOB_SECONDS = env.float("SANDBOX_JOB_SECONDS", default=6.0)
PROVIDER_CONNECT_TIMEOUT = env.float("PROVIDER_CONNECT_TIMEOUT", default=5.0)
PROVIDER_READ_TIMEOUT = env.float("PROVIDER_READ_TIMEOUT", default=30.0)
PROVIDER_ALLOW_HTTP = env.bool("PROVIDER_ALLOW_HTTP", default=not IS_PRODUCTION)
VIDEO_MAX_BYTES = env.int("VIDEO_MAX_BYTES", default=2 * 1024**3)
# Content credentials (apps/generations/credentials.py): the PEM bundle of trust anchors a C2PA
# signer must chain to for "valid" (empty: every signer is "untrusted"), and the largest stored
# file whose credentials are verified (the C2PA SDK reads the media box whole to hash it: peak
# memory is about the file's size); a larger one has its manifest read only ("unverified").
C2PA_TRUST_ANCHORS = env.str("C2PA_TRUST_ANCHORS", default="")
C2PA_MAX_BYTES = env.int("C2PA_MAX_BYTES", default=256 * 1024**2)
# Provider callbacks (apps/generations/callbacks.py): where providers reach /hooks/providers/…
# (used as given; empty: SITE_URL when it is public https, else no callbacks, polling only), and
# the poll interval of a job whose provider will call back (the safety net for a lost callback).
PROVIDER_CALLBACK_BASE_URL = env.str("PROVIDER_CALLBACK_BASE_URL", default="").rstrip("/")
PROVIDER_CALLBACK_POLL_SECONDS = env.float("PROVIDER_CALLBACK_POLL_SECONDS", default=60.0)

# --- Generation engine ---------------------------------------------------------------------
GENERATION_DEADLINE_SECONDS = env.int("GENERATION_DEADLINE_SECONDS", default=2 * 3600)
GENERATION_POLL_MIN_SECONDS = env.float("GENERATION_POLL_MIN_SECONDS", default=2.0)
GENERATION_POLL_MAX_SECONDS = env.float("GENERATION_POLL_MAX_SECONDS", default=30.0)
# Pace polls by the job's own figures (engine.paced_delay): a running job that reports progress is
# next asked at half the time it has left by that progress, a queued one at half the time it has
# waited; never sooner than the provider's hint, never later than GENERATION_POLL_PACED_MAX_SECONDS
# (the longest a job whose progress jumps, or that leaves the queue done, is seen late).
# False: every poll at the hint.
GENERATION_POLL_PACED = env.bool("GENERATION_POLL_PACED", default=True)
GENERATION_POLL_PACED_MAX_SECONDS = env.float("GENERATION_POLL_PACED_MAX_SECONDS", default=60.0)
GENERATION_DISPATCH_INTERVAL_SECONDS = env.float("GENERATION_DISPATCH_INTERVAL_SECONDS", default=5.0)
# How long past its scheduled time a step may be silent before the dispatcher re-sends it.
GENERATION_LEASE_GRACE_SECONDS = env.float("GENERATION_LEASE_GRACE_SECONDS", default=30.0)
GENERATION_SUBMIT_LEASE_SECONDS = env.float("GENERATION_SUBMIT_LEASE_SECONDS", default=120.0)
GENERATION_DOWNLOAD_LEASE_SECONDS = env.float("GENERATION_DOWNLOAD_LEASE_SECONDS", default=300.0)
# Batches (apps.generations.batches): items per batch, and how many of a batch's items run at once
# (the default, and the most a request may ask for).
BATCH_MAX_ITEMS = env.int("BATCH_MAX_ITEMS", default=100)
BATCH_DEFAULT_CONCURRENCY = env.int("BATCH_DEFAULT_CONCURRENCY", default=4)
BATCH_MAX_CONCURRENCY = env.int("BATCH_MAX_CONCURRENCY", default=20)
BATCH_UPLOAD_MAX_BYTES = env.int("BATCH_UPLOAD_MAX_BYTES", default=1024 * 1024)  # the Playground's CSV / JSONL
# The batched poll step (apps.generations.polling): beat sends it every interval (and it re-sends
# itself while batches come back full); each claims up to BATCH_SIZE due jobs and asks their
# providers with CONCURRENCY threads, at most SUPPLIER_CONCURRENCY calls in flight and
# SUPPLIER_RATE calls/s per supplier (0: no limit; <SLUG>_POLL_CONCURRENCY and <SLUG>_POLL_RATE
# override one supplier's), per worker process. A claimed job is due again after LEASE_SECONDS if
# its step died (longer than the poll step's hard time limit).
GENERATION_POLL_STEP_INTERVAL_SECONDS = env.float("GENERATION_POLL_STEP_INTERVAL_SECONDS", default=1.0)
# how long one step keeps taking jobs as they fall due (so they wait hundredths of a second, not
# up to a beat interval); at most the interval, so beat's next message does not queue behind it
GENERATION_POLL_STEP_WINDOW_SECONDS = env.float(
    "GENERATION_POLL_STEP_WINDOW_SECONDS", default=GENERATION_POLL_STEP_INTERVAL_SECONDS
)
GENERATION_POLL_BATCH_SIZE = env.int("GENERATION_POLL_BATCH_SIZE", default=200)
GENERATION_POLL_CONCURRENCY = env.int("GENERATION_POLL_CONCURRENCY", default=16)
GENERATION_POLL_SUPPLIER_CONCURRENCY = env.int("GENERATION_POLL_SUPPLIER_CONCURRENCY", default=16)
GENERATION_POLL_SUPPLIER_RATE = env.float("GENERATION_POLL_SUPPLIER_RATE", default=0.0)
GENERATION_POLL_LEASE_SECONDS = env.float("GENERATION_POLL_LEASE_SECONDS", default=120.0)

CELERY_BEAT_SCHEDULE = {
    "poll-due-generations": {
        "task": "generations.poll_due",
        "schedule": GENERATION_POLL_STEP_INTERVAL_SECONDS,
        # a backed-up poll worker drops stale ticks instead of running them all late
        "options": {"expires": max(GENERATION_POLL_STEP_INTERVAL_SECONDS * 2, 2.0)},
    },
    # what each key may use, where the provider reports it (the Gemini API's video models)
    "refresh-key-details": {"task": "api_keys.refresh_key_details", "schedule": 24 * 3600.0},
    "dispatch-due-generations": {
        "task": "generations.dispatch_due",
        "schedule": GENERATION_DISPATCH_INTERVAL_SECONDS,
        "options": {"expires": GENERATION_DISPATCH_INTERVAL_SECONDS * 2},
    },
    # batch items waiting for a free slot whose release was lost (the batches' safety net)
    "dispatch-waiting-batch-items": {
        "task": "generations.dispatch_batches",
        "schedule": GENERATION_DISPATCH_INTERVAL_SECONDS,
        "options": {"expires": GENERATION_DISPATCH_INTERVAL_SECONDS * 2},
    },
}
# --- Team webhooks (apps.webhooks) -----------------------------------------------------------
# An endpoint URL may point at a private or loopback address only in development and tests.
WEBHOOK_ALLOW_PRIVATE_ADDRESSES = env.bool("WEBHOOK_ALLOW_PRIVATE_ADDRESSES", default=not IS_PRODUCTION)
WEBHOOK_TIMEOUT_SECONDS = env.float("WEBHOOK_TIMEOUT_SECONDS", default=5.0)
WEBHOOK_MAX_CONCURRENCY = env.int("WEBHOOK_MAX_CONCURRENCY", default=4)
WEBHOOK_RETRY_HOURS = env.float("WEBHOOK_RETRY_HOURS", default=24.0)
WEBHOOK_DISABLE_AFTER_DAYS = env.float("WEBHOOK_DISABLE_AFTER_DAYS", default=3.0)
WEBHOOK_SECRET_OVERLAP_HOURS = env.float("WEBHOOK_SECRET_OVERLAP_HOURS", default=24.0)
WEBHOOK_DISPATCH_INTERVAL_SECONDS = env.float("WEBHOOK_DISPATCH_INTERVAL_SECONDS", default=10.0)
CELERY_BEAT_SCHEDULE["dispatch-due-webhooks"] = {
    "task": "webhooks.dispatch_due",
    "schedule": WEBHOOK_DISPATCH_INTERVAL_SECONDS,
    "options": {"expires": WEBHOOK_DISPATCH_INTERVAL_SECONDS * 2},
}
INPUT_IMAGE_MAX_BYTES = env.int("INPUT_IMAGE_MAX_BYTES", default=10 * 1024 * 1024)
# An input image's declared size is checked from its header before it is decoded (image bombs):
# a decode takes up to 4 bytes a pixel, so 40 megapixels bound it to 160 MB.
INPUT_IMAGE_MAX_PIXELS = env.int("INPUT_IMAGE_MAX_PIXELS", default=40_000_000)
INPUT_IMAGE_MAX_SIDE = env.int("INPUT_IMAGE_MAX_SIDE", default=8192)

# --- Security ------------------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if IS_PRODUCTION:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    # probes and scrapers inside the private network speak plain http (/metrics: README "Metrics")
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^metrics$"]
    if env.bool("USE_X_FORWARDED_PROTO", default=False):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# Content-Security-Policy (django-csp): scripts only from our own origin (htmx is vendored by
# django-htmx, no inline scripts or handlers); inline styles are allowed for htmx's indicator
# styles and progress bars. Videos may come from the storage's own origin (S3 presigned URLs).
_media_origins = []
if AWS_STORAGE_BUCKET_NAME:
    _endpoint = env.str("AWS_S3_ENDPOINT_URL", default="")
    _media_origins = [_endpoint] if _endpoint else ["https://*.amazonaws.com"]
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF, UNSAFE_INLINE],
        "img-src": [SELF, "data:", "blob:", *_media_origins],
        "media-src": [SELF, "blob:", *_media_origins],
        "connect-src": [SELF],
        "font-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}

# --- Metrics (apps/metrics) ----------------------------------------------------------------
# /metrics: with a token, scrapers send "Authorization: Bearer <token>"; with networks, only those
# addresses connect. Neither: 404 in production, loopback clients only otherwise (apps/metrics/views.py).
# Counters and histograms of every process (workers included) reach the scrape through
# prometheus-client's multiprocess mode: the PROMETHEUS_MULTIPROC_DIR environment variable.
METRICS_TOKEN = envsecret("METRICS_TOKEN") or ""
METRICS_ALLOWED_NETWORKS = env.list("METRICS_ALLOWED_NETWORKS", default=[])
try:
    for _network in METRICS_ALLOWED_NETWORKS:
        ipaddress.ip_network(_network, strict=False)
except ValueError as exc:
    raise environ.ImproperlyConfigured(f"METRICS_ALLOWED_NETWORKS: {exc}") from None

# --- Logging -------------------------------------------------------------------------------
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOG_FORMAT = env.str("LOG_FORMAT", default="plain")  # or "json": one JSON object a line (python-json-logger)
if LOG_FORMAT not in ("plain", "json"):
    raise environ.ImproperlyConfigured("LOG_FORMAT must be plain or json")
# Celery workers replace the root logger's handlers with their own unless told not to: in JSON mode
# they keep this configuration (JSON lines, the redaction filter) like every other process.
CELERY_WORKER_HIJACK_ROOT_LOGGER = LOG_FORMAT != "json"
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {
            "()": "mediarouter.logging.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
    },
    # invitation and password-reset tokens never reach a log (mediarouter/logging.py)
    "filters": {"redact_secrets": {"()": "mediarouter.logging.RedactSecretsFilter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": ["redact_secrets"]}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        # Django's own loggers go through the root's (redacting) handler instead of Django's defaults;
        # the request loggers redact on the record itself, for any other handler too
        "django": {"level": "INFO", "handlers": [], "propagate": True},
        "django.request": {"filters": ["redact_secrets"]},
        "django.server": {"level": "INFO", "handlers": [], "filters": ["redact_secrets"], "propagate": True},
    },
}
