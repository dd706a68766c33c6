"""Production: every secret and service comes from the environment; unsafe values refuse to start."""

from django.core.exceptions import ImproperlyConfigured

from .base import *
from .base import BASE_DIR, database, env

DEBUG = env.bool("DEBUG", default=False)
if DEBUG:
    raise ImproperlyConfigured("DEBUG must be off in production")
SECRET_KEY = env("SECRET_KEY", default="")
if len(SECRET_KEY) < 32:
    raise ImproperlyConfigured("SECRET_KEY must be set (at least 32 characters) in production")
DATABASES = {"default": database(env("DATABASE_URL"))}  # required: no embedded fallback here
REDIS_URL = env("REDIS_URL")
CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default=REDIS_URL)

STRIPE_SECRET_KEY = env("STRIPE_SECRET_KEY")
STRIPE_WEBHOOK_SECRET = env("STRIPE_WEBHOOK_SECRET")
if not [secret for secret in STRIPE_WEBHOOK_SECRET.split(",") if secret.strip()]:
    # Every webhook would be refused (503) and retried by the provider until someone noticed.
    raise ImproperlyConfigured("STRIPE_WEBHOOK_SECRET must list at least one signing secret")
# A test key in production means real orders go unpaid; allow it only on purpose (a staging box).
STRIPE_ALLOW_TEST_KEYS = env.bool("STRIPE_ALLOW_TEST_KEYS", default=False)
if STRIPE_SECRET_KEY.startswith(("sk_test_", "rk_test_")) and not STRIPE_ALLOW_TEST_KEYS:
    raise ImproperlyConfigured("a Stripe test key is configured in production; set STRIPE_ALLOW_TEST_KEYS=true")

STATIC_ROOT = BASE_DIR / "staticfiles"  # filled by collectstatic in the Dockerfile
WHITENOISE_USE_FINDERS = False
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# https://docs.djangoproject.com/en/5.2/howto/deployment/checklist/
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
# Probes and the Prometheus scrape speak plain HTTP inside the cluster (the scrape carries METRICS_TOKEN).
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
# https://developer.mozilla.org/docs/Web/HTTP/Headers/Strict-Transport-Security : a year (the
# shortest that browsers' preload list accepts), on every subdomain too.
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=60 * 60 * 24 * 365)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
# Preloading binds the whole domain to HTTPS in browsers for months, and undoing it is slow
# (https://hstspreload.org/#removal): it is the domain owner's decision, off until they set it.
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
if not SECURE_HSTS_PRELOAD:
    SILENCED_SYSTEM_CHECKS = ["security.W021"]  # "preload is off": on purpose, see above
SECURE_CONTENT_TYPE_NOSNIFF = True
