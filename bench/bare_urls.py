"""
The bare anchor's views: the same SQL as the product's endpoints (bench/writes.py) through Django's
connection, with no DRF, no authentication, no serializer, no rate limit (and, for the webhook, the
same signature check). Never routed in the product.
"""

import json
import os

import stripe
from django.conf import settings
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


@csrf_exempt
def stripe_webhook(request: HttpRequest) -> HttpResponse:
    """The same work as ours without the framework around it: the SDK's signature check over the raw
    bytes (the library call ours makes), the JSON parse, the two statements; the payload stored as
    received (redacting it is ours to pay for)."""
    text = request.body.decode()
    try:
        stripe.WebhookSignature.verify_header(
            text,
            request.headers.get("Stripe-Signature", ""),
            settings.STRIPE_WEBHOOK_SECRET,
            settings.STRIPE_WEBHOOK_TOLERANCE_SECONDS,
        )
    except stripe.SignatureVerificationError:
        return HttpResponse(status=400)
    event = json.loads(text)
    with transaction.atomic(durable=True), connection.cursor() as cursor:
        stored = writes.webhook_event_insert(cursor, event=event, payload=text)
    return HttpResponse(json.dumps({"received": True, "duplicate": not stored}), content_type="application/json")


urlpatterns = [
    path("api/v1/payments", payments),
    path("api/v1/payments/<str:public_id>", payment),
    path("webhooks/stripe", stripe_webhook),
]
