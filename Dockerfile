# The production image: one image for web, worker, beat and relay (docker-compose.yml picks the command).
FROM python:3.11-slim AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DJANGO_SETTINGS_MODULE=config.settings.production
WORKDIR /app

# The apps only, installed without extras: no embedded servers, Procfile runner, sandbox, tests or
# benchmarks in the image (tests/config/test_dependencies.py holds it to that).
COPY pyproject.toml README.md ./
COPY config ./config
COPY payments ./payments
COPY outbox ./outbox
COPY webhooks ./webhooks
COPY manage.py ./
RUN pip install . \
    && useradd --system --uid 10001 --home-dir /app app \
    && SECRET_KEY=build-only-collectstatic-key-not-used-at-runtime DATABASE_URL=postgres://x@localhost/x \
       REDIS_URL=redis://localhost STRIPE_SECRET_KEY=sk_live_build STRIPE_WEBHOOK_SECRET=whsec_build \
       python manage.py collectstatic --noinput \
    && chown -R app /app

USER app
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --retries=3 \
    CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz').status != 200)"
# No --access-logfile: gunicorn's logs query strings and the Referer; the app logs each request itself.
CMD ["gunicorn", "config.wsgi:application", "-c", "config/gunicorn.py", "--bind", "0.0.0.0:8000", "--workers", "4", "--threads", "4", \
     "--graceful-timeout", "20", "--no-control-socket"]
