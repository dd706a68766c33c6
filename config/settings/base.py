"""
Settings shared by every environment. Everything configurable is read through django-environ;
local.py, test.py and production.py only override. Every variable is listed in README.md and
.env.example.
"""

from datetime import timedelta
from pathlib import Path

import environ
from celery.schedules import crontab
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

from config import log
from config.devstack import paths

BASE_DIR = Path(__file__).resolve().parent.parent.parent
env = environ.Env()
if (BASE_DIR / ".env").exists():
    env.read_env(str(BASE_DIR / ".env"), overwrite=False)

# DJANGO ---------------------------------------------------------------------------------------
DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env("SECRET_KEY", default=None)  # local/test provide one; production requires it
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = None  # production collects into the image; elsewhere WhiteNoise serves from the apps
WHITENOISE_USE_FINDERS = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# Refuse bodies past this before any view sees them (payments requests are a few hundred bytes).
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=64 * 1024)

INSTALLED_APPS = [
    "config.apps.OpsAdminConfig",  # django.contrib.admin, with our site (and its ops dashboard) as admin.site
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "corsheaders",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "rest_framework_api_key",
    "axes",
    "csp",
    "payments",
    "outbox",
    "webhooks",
]

MIDDLEWARE = [
    "payments.api.middleware.RequestIdMiddleware",
    "config.middleware.RefuseUnreadableRequestMiddleware",
    "config.middleware.DatabaseUnavailableMiddleware",  # a lost connection in a non-API view: 503, not 500
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",  # last: turns a refused login into the lockout answer
]
# /api/v1/ and /webhooks/ (config/stacks.py): clients there send a key or a signature and read JSON, so no
# sessions, CSRF, users, messages, lockout, static files or per-page policy; the rest as above, with one
# fixed policy for JSON answers instead of the pages' (config/middleware.py).
API_MIDDLEWARE = [
    "payments.api.middleware.RequestIdMiddleware",
    "config.middleware.RefuseUnreadableRequestMiddleware",
    "config.middleware.DatabaseUnavailableMiddleware",  # the webhook endpoint is a plain Django view
    "django.middleware.security.SecurityMiddleware",
    "config.middleware.ApiSecurityHeadersMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.middleware.common.CommonMiddleware",
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "config" / "templates"],  # the admin site's own pages (config/admin.py)
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

# https://docs.djangoproject.com/en/5.2/ref/settings/#session-cookie-age
# Admin sessions (the API uses keys, not sessions) end this long after login, however busy: a cookie
# that leaks or a browser left open moves no money the next morning.
SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE", default=8 * 60 * 60)
SESSION_EXPIRE_AT_BROWSER_CLOSE = True

# CONTENT SECURITY POLICY ----------------------------------------------------------------------
# https://django-csp.readthedocs.io/en/latest/configuration.html
# The admin and the API docs load only their own files: no inline script or style, nothing from
# elsewhere. Swagger UI comes from drf-spectacular-sidecar and its start-up script from the docs view
# itself (config/urls.py); data: images are the icons inlined in Swagger UI's stylesheet.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [NONE],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}

# ADMIN LOGIN LOCKOUT --------------------------------------------------------------------------
# https://django-axes.readthedocs.io/en/latest/4_configuration.html
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # first: refuses a locked-out login before any password is checked
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=15))
# Lock the (username, address) pair, never one of them alone. By username alone, anyone who knows an
# admin's name could lock that admin out from everywhere, during an incident say; by address alone, one
# person's typos behind the office NAT or VPN would lock out every colleague there. The pair stops
# guessing one account's password from one place (AXES_FAILURE_LIMIT tries per cool-off); guessing from many
# addresses at once is what strong passwords (AUTH_PASSWORD_VALIDATORS) are for.
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True  # a typo now and then never adds up to a lockout
AXES_VERBOSE = False  # log lines name only the (masked) lockout keys, never the raw user agent
# Which address is the client's. With no proxy in front, the peer's (REMOTE_ADDR): X-Forwarded-For is
# whatever the client wrote, and trusting it would let one attacker change address on every try.
# Behind TRUSTED_PROXY_COUNT proxies that each append to X-Forwarded-For, the header must have exactly
# that many entries (ipware counts the ones before the last proxy); a longer, forged one is not believed.
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)
if TRUSTED_PROXY_COUNT:
    AXES_IPWARE_META_PRECEDENCE_ORDER = ["HTTP_X_FORWARDED_FOR", "REMOTE_ADDR"]
    AXES_IPWARE_PROXY_COUNT = TRUSTED_PROXY_COUNT - 1
    AXES_IPWARE_PROXY_ORDER = "left-most"
else:
    AXES_IPWARE_META_PRECEDENCE_ORDER = ["REMOTE_ADDR"]
# One answer to "who is the client" for every limiter, an IPv6 client counted by its /64.
AXES_CLIENT_IP_CALLABLE = "config.client_address.client_address_key"


# DATABASE -------------------------------------------------------------------------------------
def database(url: str) -> dict:
    """Return the settings of a connection to the PostgreSQL at `url`: every settings module uses this."""
    config = env.db_url_config(url)
    config["ATOMIC_REQUESTS"] = False  # services own their transactions
    config["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
    # No SELECT 1 before each request: config/db.py finds a dead kept connection without a round trip.
    config["CONN_HEALTH_CHECKS"] = False
    # A request that hangs inside a transaction must not hold row locks (or an idempotency key) forever.
    timeout_ms = env.int("DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_MS", default=60_000)
    config.setdefault("OPTIONS", {})["options"] = f"-c idle_in_transaction_session_timeout={timeout_ms}"
    return config


# With no DATABASE_URL, the embedded PostgreSQL of the dev stack (a Unix socket under .data/).
DATABASES = {"default": database(env("DATABASE_URL", default=paths.local_database_url()))}

# REDIS ----------------------------------------------------------------------------------------
# One Redis: Celery's broker and the store shared by every worker (rate limits).
REDIS_URL = env("REDIS_URL", default=paths.local_redis_url())
CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}

# CELERY ---------------------------------------------------------------------------------------
# https://docs.celeryq.dev/en/stable/userguide/configuration.html
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default=REDIS_URL)
CELERY_TASK_IGNORE_RESULT = True  # outcomes live in PostgreSQL, not in a result backend
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TIMEZONE = TIME_ZONE
# A task is acknowledged after it ran, so a killed worker's task is delivered again; services are
# safe to re-run. Prefetch 1 keeps a slow provider call from holding other tasks hostage.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=120)
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=90)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Redis re-delivers unacknowledged tasks after this; it must exceed the task time limit.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# Celery's Django fixup closes every database connection before and after each task unless this many
# tasks ran since it last did: never, here. config.db.connections_keep_for_task (connected in
# config/celery.py) closes what Django closes around a request instead (CONN_MAX_AGE, a broken session).
CELERY_DB_REUSE_MAX = 2**62
# The one beat schedule. Each entry names its cadence; https://crontab.guru explains crontab ones.
CELERY_BEAT_SCHEDULE = {
    # https://crontab.guru/#17_*_*_*_* : hourly, off the top of the hour when everyone else runs
    "payments.idempotency_key_purge": {
        "task": "payments.idempotency_key_purge",
        "schedule": crontab(minute="17"),
    },
    # https://crontab.guru/#23_*_*_*_* : hourly; done rows past OUTBOX_DONE_RETENTION_HOURS, in batches
    "outbox.outbox_message_purge_done": {
        "task": "outbox.outbox_message_purge_done",
        "schedule": crontab(minute="23"),
    },
    # https://crontab.guru/#*_*_*_*_* : every minute; each payment's own back-off decides when it is asked
    "payments.janitor": {
        "task": "payments.janitor",
        "schedule": crontab(),
    },
    # https://crontab.guru/#*/15_*_*_*_* : every 15 minutes, well inside AUTHORIZATION_EXPIRY_AGE's margin
    "payments.authorization_expiry": {
        "task": "payments.authorization_expiry",
        "schedule": crontab(minute="*/15"),
    },
    # https://crontab.guru/#41_*_*_*_* : hourly; job runs past JOB_RUN_RETENTION_DAYS, in batches
    "payments.job_run_purge": {
        "task": "payments.job_run_purge",
        "schedule": crontab(minute="41"),
    },
    # https://crontab.guru/#37_3_*_*_* : daily at 03:37 UTC, the previous UTC days, once late webhooks are in
    "payments.reconciliation_report": {
        "task": "payments.reconciliation_report",
        "schedule": crontab(minute="37", hour="3"),
    },
    # https://crontab.guru/#*/5_*_*_*_* : every 5 minutes; a dropped webhook is applied within minutes
    "webhooks.webhook_events_backfill": {
        "task": "webhooks.webhook_events_backfill",
        "schedule": crontab(minute="*/5"),
    },
}

# OUTBOX ---------------------------------------------------------------------------------------
# Retries of provider calls are data on the outbox row; one policy decides the next attempt:
# uniform in [0, min(CAP, BASE * 2**attempt)] (full jitter), never sooner than a Retry-After.
OUTBOX_BACKOFF_BASE_SECONDS = env.float("OUTBOX_BACKOFF_BASE_SECONDS", default=1.0)
OUTBOX_BACKOFF_CAP_SECONDS = env.float("OUTBOX_BACKOFF_CAP_SECONDS", default=300.0)
# After this many attempts a row is DEAD: kept, counted, shown to ops with a "retry now" action.
# 12 attempts of capped full jitter span roughly half an hour; the janitor takes over after that.
OUTBOX_MAX_ATTEMPTS = env.int("OUTBOX_MAX_ATTEMPTS", default=12)
# A handed-out row whose task never reports back (worker killed, broker lost the message) is handed
# out again after this. Longer than the task time limit, so a slow task is rarely run twice.
OUTBOX_LEASE_SECONDS = env.int("OUTBOX_LEASE_SECONDS", default=300)
OUTBOX_RELAY_BATCH_SIZE = env.int("OUTBOX_RELAY_BATCH_SIZE", default=200)
# LISTEN/NOTIFY wakes the relay at once; this poll is only the fallback.
OUTBOX_RELAY_POLL_SECONDS = env.float("OUTBOX_RELAY_POLL_SECONDS", default=2.0)
# With the broker down, claimed rows are given back and tried again after this.
OUTBOX_RELAY_PUBLISH_RETRY_SECONDS = env.float("OUTBOX_RELAY_PUBLISH_RETRY_SECONDS", default=1.0)
OUTBOX_DONE_RETENTION_HOURS = env.int("OUTBOX_DONE_RETENTION_HOURS", default=72)
# Tests set this so a bug in a consumer fails the test instead of hiding in a retry.
OUTBOX_CONSUMER_RAISES = False

# BEAT JOBS ------------------------------------------------------------------------------------
# The janitor looks up at the provider payments left in one of these states longer than this (seconds
# since their last change), and refunds left pending. Past a provider call and the outbox's first
# retries (seconds to minutes), so it finds what is stuck, not what is busy; PENDING has never been
# sent (the outbox row owns it) and is only looked at late.
JANITOR_PAYMENT_AFTER_SECONDS = {
    "PENDING": env.int("JANITOR_PENDING_AFTER_SECONDS", default=30 * 60),
    "PROCESSING": env.int("JANITOR_PROCESSING_AFTER_SECONDS", default=10 * 60),
    "REQUIRES_ACTION": env.int("JANITOR_REQUIRES_ACTION_AFTER_SECONDS", default=60 * 60),
    "CAPTURE_REQUESTED": env.int("JANITOR_CAPTURE_REQUESTED_AFTER_SECONDS", default=10 * 60),
    "CANCEL_REQUESTED": env.int("JANITOR_CANCEL_REQUESTED_AFTER_SECONDS", default=10 * 60),
}
JANITOR_REFUND_AFTER_SECONDS = env.int("JANITOR_REFUND_AFTER_SECONDS", default=10 * 60)
# The wait before each next look-up of one payment: 5 minutes, an hour, then daily (the last repeats).
JANITOR_BACKOFF_SECONDS = env.list("JANITOR_BACKOFF_SECONDS", cast=int, default=[5 * 60, 60 * 60, 24 * 60 * 60])
# Payments (and refunds) one run looks up at most: a run stays short under the shared provider rate limit.
JANITOR_BATCH_SIZE = env.int("JANITOR_BATCH_SIZE", default=100)
# Authorizations still uncaptured this long after the payment was created are captured or canceled.
# Stripe releases an uncaptured card authorization after 7 days
# (https://docs.stripe.com/payments/place-a-hold-on-a-payment-method#auth-and-capture-limitations);
# 6 days 20 hours leaves 4 hours for the job (every 15 min) and the outbox's retries to get through.
AUTHORIZATION_EXPIRY_AGE_SECONDS = env.int("AUTHORIZATION_EXPIRY_AGE_SECONDS", default=(6 * 24 + 20) * 3600)
# `cancel` by default: releasing a hold the merchant never decided to collect is reversible (they can
# charge again); capturing charges a customer for an order that may never ship, and needs a refund to undo.
AUTHORIZATION_EXPIRY_ACTION = env.str("AUTHORIZATION_EXPIRY_ACTION", default="cancel")
if AUTHORIZATION_EXPIRY_ACTION not in ("capture", "cancel"):
    raise ImproperlyConfigured("AUTHORIZATION_EXPIRY_ACTION must be 'capture' or 'cancel'")
# The missed-webhooks backfill (webhooks/reconciliation.py). Events younger than this are left to their
# delivery, so the backfill takes what the endpoint really missed, not what is on its way.
WEBHOOK_BACKFILL_DELAY_SECONDS = env.int("WEBHOOK_BACKFILL_DELAY_SECONDS", default=60)
# Pages of 100 events one run reads at most; a longer walk (after an outage) resumes on the next run.
WEBHOOK_BACKFILL_MAX_PAGES = env.int("WEBHOOK_BACKFILL_MAX_PAGES", default=10)
# With no cursor yet (the first run), how far back to read. Stripe retries a delivery for up to 3 days
# (https://docs.stripe.com/webhooks#retries); after that the cursor alone decides, and the event list
# itself keeps 30 days (https://docs.stripe.com/api/events).
WEBHOOK_BACKFILL_FIRST_RUN_LOOKBACK_SECONDS = env.int(
    "WEBHOOK_BACKFILL_FIRST_RUN_LOOKBACK_SECONDS", default=3 * 24 * 3600
)
# The daily reconciliation report (payments/services/reconciliation.py) covers the last this many
# complete UTC days, so a day is compared again the next day and what was fixed meanwhile is closed.
RECONCILIATION_REPORT_DAYS = env.int("RECONCILIATION_REPORT_DAYS", default=2)
# Pages of 100 intents (and of refunds) read per day at most; a longer day stores nothing and fails
# the run (a partial list would report what it did not read as missing): raise it with the volume.
RECONCILIATION_MAX_PAGES = env.int("RECONCILIATION_MAX_PAGES", default=500)
# Beat job runs are kept this long for the dashboard and the admin, then deleted by housekeeping.
JOB_RUN_RETENTION_DAYS = env.int("JOB_RUN_RETENTION_DAYS", default=14)

# OPS CONSOLE ----------------------------------------------------------------------------------
# The dashboard's "amount at risk": payments processing, or with a capture or cancel asked for, that
# have not changed for this long. Well past a provider call and its first retries (seconds to a few
# minutes), so what it counts is stuck, not busy.
PAYMENT_AT_RISK_AFTER_SECONDS = env.int("PAYMENT_AT_RISK_AFTER_SECONDS", default=15 * 60)

# STRIPE ---------------------------------------------------------------------------------------
# https://docs.stripe.com/keys
STRIPE_SECRET_KEY = env("STRIPE_SECRET_KEY", default="")
# https://docs.stripe.com/webhooks#verify-events
# The endpoint's signing secret, or several, comma-separated: a delivery signed with any listed one
# is accepted, so a secret is rotated by listing the new one beside the old until the old is retired
# (README, "Webhooks"). make run signs its sandbox's deliveries with the first.
STRIPE_WEBHOOK_SECRET = env("STRIPE_WEBHOOK_SECRET", default="")
# A signed delivery older than this is refused as a replay (the SDK's default; Stripe's own retries
# are signed afresh, so only a captured copy is this old). https://docs.stripe.com/webhooks#replay-attacks
STRIPE_WEBHOOK_TOLERANCE_SECONDS = env.int("STRIPE_WEBHOOK_TOLERANCE_SECONDS", default=300)
# Larger bodies are refused (413) before they are read. Events are a few kB; an event with large
# expanded objects stays well under this.
STRIPE_WEBHOOK_MAX_BODY_BYTES = env.int("STRIPE_WEBHOOK_MAX_BODY_BYTES", default=256 * 1024)
# An event whose payment (or refund) is not in our database, or not yet bound to the provider's
# object, is retried this many times with the outbox's backoff (about 7 minutes with the defaults),
# then PARKED for ops. Never more than OUTBOX_MAX_ATTEMPTS.
WEBHOOK_PARK_AFTER_ATTEMPTS = env.int("WEBHOOK_PARK_AFTER_ATTEMPTS", default=10)
# Empty: the SDK talks to Stripe itself. Set to the sandbox (http://127.0.0.1:12111) or stripe-mock.
STRIPE_API_BASE = env("STRIPE_API_BASE", default="")
# Pinned so a dashboard upgrade cannot change payloads under us; an event of another version (or
# none) is not read: its object is fetched again in this version. Its one home:
# `manage.py stripe_sandbox` hands it to the sandbox, the tests read it, and
# a test keeps it equal to the installed SDK's own. https://docs.stripe.com/api/versioning
STRIPE_API_VERSION = "2026-10-28.endive"
# Read timeout of every provider call: a request sent and not answered within it is "outcome unknown".
STRIPE_TIMEOUT_SECONDS = env.float("STRIPE_TIMEOUT_SECONDS", default=10.0)
# Connect timeout, kept short: a connection that never opened sent nothing, so it is safe to retry at once.
STRIPE_CONNECT_TIMEOUT_SECONDS = env.float("STRIPE_CONNECT_TIMEOUT_SECONDS", default=3.0)
# A payment waiting on the customer (3-D Secure) or on an async method is polled at the provider for
# this long after creation; webhooks usually settle it first, and the janitor settles it after.
PAYMENT_FOLLOW_UP_SECONDS = env.int("PAYMENT_FOLLOW_UP_SECONDS", default=3600)

# PROVIDER RATE LIMIT AND CIRCUIT BREAKER ------------------------------------------------------
# Shared by every worker through Redis (payments/gateway/limits/). A worker without a token, or
# held back by an open breaker, reschedules its row instead of calling.
# Calls per provider account: `account` counts every call, `default` each operation that has no
# limit of its own, and named operations (e.g. "account=90/s,default=25/s,intent_find=20/s").
# A rate is <calls>/<period>[:<burst>], period s, m, h or e.g. 2s; the burst (calls let through at
# once after a quiet spell) defaults to <calls>. Keep under the provider's own limits: Stripe allows
# 100/s live and 25/s in test mode per account, 25/s per endpoint, 20/s for search.
# https://docs.stripe.com/rate-limits
PROVIDER_RATE_LIMITS = env.dict(
    "PROVIDER_RATE_LIMITS", default={"account": "25/s", "default": "25/s", "intent_find": "20/s"}
)
# The breaker opens when at least FAILURE_RATE of at least MIN_CALLS calls in the last
# WINDOW_SECONDS failed (5xx, timeouts, connection failures, 429s; never declines), stays open
# OPEN_SECONDS, then lets one probe call through: a success closes it, a failure reopens it.
# https://martinfowler.com/bliki/CircuitBreaker.html
PROVIDER_BREAKER_FAILURE_RATE = env.float("PROVIDER_BREAKER_FAILURE_RATE", default=0.5)
PROVIDER_BREAKER_MIN_CALLS = env.int("PROVIDER_BREAKER_MIN_CALLS", default=10)
PROVIDER_BREAKER_WINDOW_SECONDS = env.int("PROVIDER_BREAKER_WINDOW_SECONDS", default=30)
PROVIDER_BREAKER_OPEN_SECONDS = env.float("PROVIDER_BREAKER_OPEN_SECONDS", default=15.0)
# A probe that has not reported by then (its worker was killed) lets another worker probe; longer
# than one provider call.
PROVIDER_BREAKER_PROBE_TIMEOUT_SECONDS = env.float(
    "PROVIDER_BREAKER_PROBE_TIMEOUT_SECONDS", default=3 * STRIPE_TIMEOUT_SECONDS
)
# Our key refused (401/403) opens the breaker this long: every call would fail alike. One probe per
# period checks whether someone fixed it (the breaker's reset() resumes at once).
PROVIDER_BREAKER_AUTH_TRIP_SECONDS = env.float("PROVIDER_BREAKER_AUTH_TRIP_SECONDS", default=300.0)

# METRICS --------------------------------------------------------------------------------------
# The bearer token Prometheus sends to /metrics (the `authorization` option of a scrape config,
# https://prometheus.io/docs/prometheus/latest/configuration/configuration/#scrape_config).
# Empty: /metrics is open under DEBUG (make run) and answers 404 everywhere else. The directory the
# processes share their metrics through is PROMETHEUS_MULTIPROC_DIR, read by prometheus_client from
# the environment itself (config/metrics/multiprocess.py).
METRICS_TOKEN = env("METRICS_TOKEN", default="")

# API ------------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["payments.api.parsers.SafeJSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_AUTHENTICATION_CLASSES": ["payments.api.authentication.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["payments.api.permissions.IsApiClient"],
    "DEFAULT_THROTTLE_CLASSES": ["payments.api.throttling.ClientRateThrottle"],
    "UNAUTHENTICATED_USER": None,
    "EXCEPTION_HANDLER": "payments.api.exception_handler.exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Payment orchestration API",
    "DESCRIPTION": "Write before you call: payments are stored, then sent to the provider by workers.",
    "VERSION": "1.0.0",
    # 3.1: full JSON Schema, so the schema can state metadata's key rules (propertyNames) as the server checks them.
    "OAS_VERSION": "3.1.0",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "payments.api.schema.api_contract_postprocess",
    ],
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],  # the contract is public, the data is not
    "SERVE_AUTHENTICATION": [],
    "SWAGGER_UI_DIST": "SIDECAR",
    # No badge fetched from validator.swagger.io: it would hand our schema URL to a third party.
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}
# Requests per minute per API client, unless the client has its own limit (admin, --rate-limit).
API_RATE_LIMIT_PER_MINUTE = env.int("API_RATE_LIMIT_PER_MINUTE", default=600)
# Failed API-key attempts allowed per client address (REMOTE_ADDR; an IPv6 /64) in any window of
# this many seconds; past them that address is answered 429 before its keys are looked up. Keys are
# too long to guess, so a real client never gets near; behind a proxy see README ("client address").
API_KEY_FAILURE_LIMIT = env.int("API_KEY_FAILURE_LIMIT", default=20)
# Each web process remembers a key it verified for this long instead of querying and hashing it on
# every request: a revoked key (or a client's new rate limit) takes effect within this many seconds
# everywhere; an expired key is refused at once. 0 checks the database on every request.
API_KEY_CACHE_SECONDS = env.int("API_KEY_CACHE_SECONDS", default=10)
API_KEY_FAILURE_WINDOW_SECONDS = env.int("API_KEY_FAILURE_WINDOW_SECONDS", default=300)
# https://github.com/adamchainz/django-cors-headers#configuration ; off unless origins are listed
CORS_ALLOWED_ORIGINS = env.list("CORS_ALLOWED_ORIGINS", default=[])
CORS_URLS_REGEX = r"^/api/.*$"
CORS_ALLOW_HEADERS = ["accept", "authorization", "content-type", "idempotency-key", "x-request-id"]
CORS_EXPOSE_HEADERS = ["idempotent-replayed", "retry-after", "request-id"]

# LOGGING --------------------------------------------------------------------------------------
# One JSON line per event, structlog's and the standard library's alike (config/log.py).
LOG_LEVEL = env("LOG_LEVEL", default="INFO")
LOGGING = log.logging_config(level=LOG_LEVEL)
log.structlog_configure()

# IDEMPOTENCY ----------------------------------------------------------------------------------
# How long a client's Idempotency-Key is remembered (Stripe: 24 hours).
IDEMPOTENCY_KEY_TTL_HOURS = env.int("IDEMPOTENCY_KEY_TTL_HOURS", default=24)
# How long a request waits for another one holding the same key before answering 409.
IDEMPOTENCY_LOCK_TIMEOUT_MS = env.int("IDEMPOTENCY_LOCK_TIMEOUT_MS", default=200)
# Ordinary row-lock waits (a payment locked by a concurrent refund) give up after this.
DATABASE_LOCK_TIMEOUT_MS = env.int("DATABASE_LOCK_TIMEOUT_MS", default=10_000)
