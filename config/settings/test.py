"""The test suite: always PostgreSQL (embedded unless DATABASE_URL is set), never SQLite."""

from .base import *
from .base import env

DEBUG = False
INSTALLED_APPS = [*INSTALLED_APPS, "config.devstack"]  # development commands: manage.py stripe_sandbox
SECRET_KEY = "test-only-not-secret"  # the suite's own value, never deployed
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # speed; tests only
STRIPE_SECRET_KEY = "sk_test_suite"
STRIPE_WEBHOOK_SECRET = "whsec_test_suite"
STRIPE_TIMEOUT_SECONDS = env.float("STRIPE_TIMEOUT_SECONDS", default=5.0)
CELERY_TASK_ALWAYS_EAGER = False
LOG_LEVEL = env("LOG_LEVEL", default="WARNING")
LOGGING["root"]["level"] = LOG_LEVEL
OUTBOX_CONSUMER_RAISES = True
# Every test client calls from 127.0.0.1 and the limiter's Redis outlives each test's database, so
# the suite's deliberate bad keys would add up; the limiter's own tests set a limit and an address.
API_KEY_FAILURE_LIMIT = 1_000_000
