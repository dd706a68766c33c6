"""
The bare anchor's views: the same SQL as the product's endpoints (bench/writes.py) through Django's
connection, with no DRF, no authentication, no serializer, no rate limit. Never routed in the product.
"""

import json
import os

from django.db import connection, transaction
from django.http import HttpRequest, HttpResponse, HttpResponseNotFound
from django.urls import path
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from bench import writes

CLIENT_ID = int(os.environ["BENCH_CLIENT_ID"])  # the benchmark's API client: no authentication here


@csrf_exempt
def payments(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        with connection.cursor() as cursor:
            body = writes.payment_list(cursor, client_id=CLIENT_ID, limit=int(request.GET.get("limit", "10")))
        return HttpResponse(body, content_type="application/json")
    raw = request.body
    with transaction.atomic(durable=True), connection.cursor() as cursor:
        body = writes.payment_create_writes(
            cursor,
            client_id=CLIENT_ID,
            key=request.headers["Idempotency-Key"],
            body=json.loads(raw),
            fingerprint=writes.request_hash(raw),
            now=timezone.now(),
        )
    return HttpResponse(body, status=202, content_type="application/json")


def payment(request: HttpRequest, public_id: str) -> HttpResponse:
    try:
        with connection.cursor() as cursor:
            body = writes.payment_read(cursor, client_id=CLIENT_ID, public_id=public_id)
    except LookupError:
        return HttpResponseNotFound()
    return HttpResponse(body, content_type="application/json")


urlpatterns = [
    path("api/v1/payments", payments),
    path("api/v1/payments/<str:public_id>", payment),
]
