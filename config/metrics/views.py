"""
GET /metrics for Prometheus: every process's metrics added up, plus what is read at scrape time.

Not public: it names topics, providers and backlog sizes. With `METRICS_TOKEN` set, the scraper sends
`Authorization: Bearer <token>` (Prometheus' `authorization` scrape option). Without one it is open
only under DEBUG (`make run`); elsewhere it answers 404, as if absent, rather than refusing to
start: a missing scrape token must not take payments down, and a scrape that 404s is visible at
once as a target that is down. No session, cookie or CSRF is involved: scrapers are not browsers.
"""

from __future__ import annotations

import hmac

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.http import require_GET
from prometheus_client.exposition import choose_encoder

from config.metrics.collectors import metrics_registry


def _bearer_token_matches(request: HttpRequest, expected: str) -> bool:
    scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
    # Compared in constant time, as bytes: a timing difference must not spell the token out.
    return scheme.lower() == "bearer" and hmac.compare_digest(presented.strip().encode(), expected.encode())


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    """Answer a scrape in the format the scraper asked for (Prometheus text or OpenMetrics)."""
    token = settings.METRICS_TOKEN
    if not token and not settings.DEBUG:
        raise Http404("metrics are served only with METRICS_TOKEN set")
    if token and not _bearer_token_matches(request, token):
        return HttpResponse(status=401, headers={"WWW-Authenticate": 'Bearer realm="metrics"'})
    encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
    return HttpResponse(encoder(metrics_registry()), content_type=content_type, headers={"Cache-Control": "no-store"})
