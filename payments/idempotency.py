"""
Client idempotency keys with Stripe's semantics (https://docs.stripe.com/api/idempotent_requests).

One transaction holds the key row, the work and the stored response:
- the first request inserts the key (unique per client) and runs; its response is stored with it;
- a concurrent request with the same key waits on the unique index for at most
  IDEMPOTENCY_LOCK_TIMEOUT_MS and is answered 409 `idempotency_key_in_use` with Retry-After;
- a request that crashes rolls its key back with its work, so no lock is left behind (and
  `idle_in_transaction_session_timeout` ends a request that hangs holding it);
- a later request with the same key replays the stored status and body byte for byte, or is
  422 `idempotency_key_reused` if its method, path or body differ;
- a request that fails validation raises out of the transaction and stores nothing.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from datetime import datetime, timedelta

import psycopg
from django.conf import settings
from django.db import OperationalError, connection, transaction
from django.db.backends.utils import CursorWrapper
from django.http import HttpRequest, HttpResponse
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request

from payments.api.exception_handler import payments_error_payload
from payments.errors import (
    IdempotencyKeyInUse,
    IdempotencyKeyInvalid,
    IdempotencyKeyRequired,
    IdempotencyKeyReused,
    PaymentBusy,
    PaymentsError,
)
from payments.models import ApiClient, IdempotencyKey
from payments.services.housekeeping import batched_delete

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 255
# Printable ASCII without leading or trailing spaces: HTTP strips those from a header value, so a key
# that had them would arrive as another key. The OpenAPI schema states this same pattern.
KEY_PATTERN = r"^[!-~](?:[ -~]*[!-~])?$"
_KEY = re.compile(KEY_PATTERN)
Handler = Callable[[], tuple[int, dict]]
_RENDERER = JSONRenderer()  # keeps no state between requests


def _fingerprint(request: Request) -> str:
    """Hash the request's method, path and canonical JSON body (key order and spacing ignored)."""
    # The body DRF parsed once (the handler validates this same object); no body at all is {}. Not
    # `or {}`: a body of [], null, 0, false or "" hashed as {} and replayed another request's answer.
    data = request.data
    http = request._request
    body = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(f"{http.method}\n{http.path}\n{body}".encode()).hexdigest()


def _key_from(request: Request, *, required: bool) -> str | None:
    key = request.headers.get(HEADER)
    if key is None:
        if required:
            raise IdempotencyKeyRequired(f"An {HEADER} header is required for this request", param=HEADER)
        return None
    if len(key) > MAX_KEY_LENGTH or not _KEY.fullmatch(key):
        raise IdempotencyKeyInvalid(
            f"{HEADER} must be 1 to {MAX_KEY_LENGTH} printable ASCII characters, not starting or ending with a space",
            param=HEADER,
        )
    return key


def _render(status: int, payload: dict) -> HttpResponse:
    return HttpResponse(_RENDERER.render(payload), status=status, content_type="application/json")


def _run(handler: Handler) -> tuple[int, dict]:
    """Run the handler; an anticipated domain error is an answer (stored with the key), not a rollback.

    Services write inside their own `atomic()` (a savepoint here), so a PaymentsError leaves the
    transaction clean; anything unanticipated propagates and rolls the key back with the work.
    """
    try:
        return handler()
    except PaymentsError as exc:
        return exc.http_status, payments_error_payload(exc)


def _claim(
    cursor: CursorWrapper, *, client: ApiClient, key: str, http: HttpRequest, fingerprint: str, now: datetime
) -> int | None:
    """Insert the key row, or return None if it already exists (waiting at most the lock timeout)."""
    expires_at = now + timedelta(hours=settings.IDEMPOTENCY_KEY_TTL_HOURS)
    # One round trip for the three statements (client-side binding sends them as one simple query):
    # the short wait for a concurrent request holding the key, the insert, and back to the normal
    # wait for everything the handler locks (a payment row under refund).
    cursor.execute(
        f"""SET LOCAL lock_timeout = %s;
            INSERT INTO {IdempotencyKey._meta.db_table}
               (client_id, key, request_method, request_path, request_hash, expires_at, created_at, updated_at)
            VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
            ON CONFLICT (client_id, key) DO NOTHING RETURNING id;
            SET LOCAL lock_timeout = %s""",  # noqa: S608 - table name is ours
        [
            f"{settings.IDEMPOTENCY_LOCK_TIMEOUT_MS}ms",
            *(client.pk, key, http.method, http.path[:255], fingerprint, expires_at, now, now),
            f"{settings.DATABASE_LOCK_TIMEOUT_MS}ms",
        ],
    )
    cursor.nextset()  # from the first SET's (empty) result to the INSERT's
    row = cursor.fetchone()
    return row[0] if row else None


def _store(cursor: CursorWrapper, *, row_id: int, status: int, body: bytes) -> None:
    cursor.execute(
        f"UPDATE {IdempotencyKey._meta.db_table} SET response_status = %s, response_body = %s WHERE id = %s",  # noqa: S608
        [status, body, row_id],
    )


def idempotent_response(
    *, request: Request, client: ApiClient, required: bool, handler: Handler, now: datetime
) -> HttpResponse:
    """
    Run `handler` at most once per (client, Idempotency-Key) and answer with its stored response.

    :raises IdempotencyKeyRequired: if `required` and the header is missing
    :raises IdempotencyKeyInvalid: if the key is empty, too long or not printable ASCII
    :raises IdempotencyKeyReused: if the key was used for a different request
    :raises IdempotencyKeyInUse: if a request with the key is still in flight
    """
    key = _key_from(request, required=required)
    if key is None:
        try:
            with transaction.atomic(durable=True):
                with connection.cursor() as cursor:
                    cursor.execute("SET LOCAL lock_timeout = %s", [f"{settings.DATABASE_LOCK_TIMEOUT_MS}ms"])
                return _render(*_run(handler))
        except OperationalError as exc:
            if isinstance(exc.__cause__, psycopg.errors.LockNotAvailable):
                raise PaymentBusy("The payment is being changed by another request; retry shortly") from exc
            raise
    fingerprint = _fingerprint(request)  # parses the body first: bad JSON stores nothing
    http = request._request
    claimed = False
    try:
        # One cursor for the claim and the stored response (the handler's statements use their own).
        with transaction.atomic(durable=True), connection.cursor() as cursor:
            row_id = _claim(cursor, client=client, key=key, http=http, fingerprint=fingerprint, now=now)
            claimed = True
            if row_id is None:
                stored = IdempotencyKey.objects.select_for_update().get(client=client, key=key)
                if stored.expires_at > now:
                    return _replay(stored, http=http, fingerprint=fingerprint)
                row_id = _recycle(stored, http=http, fingerprint=fingerprint, now=now)
            status, payload = _run(handler)
            response = _render(status, payload)
            _store(cursor, row_id=row_id, status=status, body=response.content)
            return response
    except OperationalError as exc:
        if isinstance(exc.__cause__, psycopg.errors.LockNotAvailable) and claimed:
            raise PaymentBusy("The payment is being changed by another request; retry shortly") from exc
        if isinstance(exc.__cause__, psycopg.errors.LockNotAvailable):
            raise IdempotencyKeyInUse(
                f"A request with this {HEADER} is still being processed; retry later", param=HEADER
            ) from exc
        raise


def _replay(stored: IdempotencyKey, *, http: HttpRequest, fingerprint: str) -> HttpResponse:
    if (stored.request_method, stored.request_path, stored.request_hash) != (
        http.method,
        http.path[:255],
        fingerprint,
    ):
        raise IdempotencyKeyReused(
            f"Keys for idempotent requests can only be used with the same parameters they were first "
            f"used with. Try using a key other than '{stored.key}' if you meant to execute a different request.",
            param=HEADER,
        )
    response = HttpResponse(bytes(stored.response_body), status=stored.response_status, content_type="application/json")
    response[REPLAYED_HEADER] = "true"
    return response


def _recycle(stored: IdempotencyKey, *, http: HttpRequest, fingerprint: str, now: datetime) -> int:
    """Reuse an expired key's row for a new request (the purge task had not removed it yet)."""
    stored.request_method = http.method
    stored.request_path = http.path[:255]
    stored.request_hash = fingerprint
    stored.response_status = None
    stored.response_body = None
    stored.expires_at = now + timedelta(hours=settings.IDEMPOTENCY_KEY_TTL_HOURS)
    stored.save()
    return stored.pk


def idempotency_key_purge(*, now: datetime, batch_size: int = 1000, max_batches: int = 100) -> int:
    """Delete expired keys, in short batches that hold no long lock; return how many."""
    # One DELETE of every expired key would lock them all at once and for as long as it takes.
    return batched_delete(
        IdempotencyKey.objects.filter(expires_at__lte=now).order_by("expires_at"),
        batch_size=batch_size,
        max_batches=max_batches,
    )
