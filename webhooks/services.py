"""
Webhook events: the one intake (`webhook_event_record`, for deliveries and, later, reconciliation's
backfill), processing through the handler table, and ops' replay.

Intake does as little as it can, in one short transaction: one `INSERT … ON CONFLICT DO NOTHING`
of the event (unique on the provider's event id) and, only if that inserted, the outbox row that
will process it. A duplicate delivery inserts nothing and changes nothing. Everything else, every
provider call included, happens in a worker (`webhook_event_process`).
"""

from __future__ import annotations

import functools
import json
import math
from datetime import UTC, datetime

import structlog
from django.conf import settings
from django.db import connection, transaction
from django.db.models import F

from config.log import without_row_values
from config.metrics import WEBHOOK_TYPE_OTHER, webhook_event_processed_observed
from outbox.errors import GiveUp, RetryLater
from outbox.services import outbox_message_enqueue, outbox_message_insert
from payments.gateway.base import NO_SECRET_CONFIGURED, PaymentGateway, ProviderError, WebhookSignatureInvalid
from payments.gateway.stripe import PROVIDER, webhook_signature_verify
from payments.models import Payment
from payments.models.base import public_id_well_formed
from payments.services.events import payment_event_create
from payments.services.payments import Actor
from webhooks import topics
from webhooks.errors import WebhookEventNotOurs, WebhookEventNotYetKnown, WebhookRejected
from webhooks.handlers import HANDLERS, NOT_OURS, UNHANDLED_TYPE, HandlerContext
from webhooks.models import SETTLED, WebhookEvent
from webhooks.redaction import storable, webhook_payload_redact

logger = structlog.get_logger(__name__)
PAYLOAD_INVALID = "payload_invalid"  # signed, but not a JSON event with an id and a type
LAST_ERROR_MAX_LENGTH = 500  # the gist for ops, not a stack trace
_EVENT_ID_MAX_LENGTH = WebhookEvent._meta.get_field("provider_event_id").max_length
_TYPE_MAX_LENGTH = WebhookEvent._meta.get_field("type").max_length
# Text, numbers, booleans and aware datetimes go to psycopg as they are; only the JSON needs adapting.
_PAYLOAD_FIELD = WebhookEvent._meta.get_field("payload")


def webhook_secrets() -> list[str]:
    """The signing secrets a delivery may be signed with: STRIPE_WEBHOOK_SECRET, comma-separated."""
    return [secret.strip() for secret in settings.STRIPE_WEBHOOK_SECRET.split(",") if secret.strip()]


def webhook_event_receive(*, payload: bytes, signature: str | None, now: datetime) -> tuple[dict, bool]:
    """
    Verify a delivery's raw body against its `Stripe-Signature` and store the event once.

    Returns the event (as sent) and True if it was stored now, False if it was stored before.

    :raises WebhookRejected: if the signature does not verify (400, or 503 when no secret is
        configured) or the signed body is not an event (400); nothing is stored
    """
    try:
        webhook_signature_verify(
            payload=payload,
            header=signature,
            secrets=webhook_secrets(),
            tolerance_seconds=settings.STRIPE_WEBHOOK_TOLERANCE_SECONDS,
        )
    except WebhookSignatureInvalid as exc:
        status = 503 if exc.reason == NO_SECRET_CONFIGURED else 400
        raise WebhookRejected(exc.message, code=exc.reason, http_status=status) from None
    try:
        event = json.loads(payload, parse_constant=_refuse_constant, parse_float=_finite_float)
    except (ValueError, RecursionError):  # RecursionError: nested deeper than the parser goes
        raise WebhookRejected("the signed body is not JSON", code=PAYLOAD_INVALID) from None
    if not _is_event(event):
        raise WebhookRejected("the signed body is not an event with an id and a type", code=PAYLOAD_INVALID)
    return event, webhook_event_record(provider=PROVIDER, event=event, now=now)


# Python's json reads NaN, Infinity and -Infinity, and 1e400 as inf: none is JSON (RFC 8259), and
# PostgreSQL's jsonb refuses them, so an event holding one could only fail at the INSERT, as a 500.
def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text[:20]} is out of range")
    return value


def _is_event(event: object) -> bool:
    return (
        isinstance(event, dict)
        and isinstance(event.get("id"), str)
        and 0 < len(event["id"]) <= _EVENT_ID_MAX_LENGTH
        and storable(event["id"])
        and isinstance(event.get("type"), str)
        and 0 < len(event["type"]) <= _TYPE_MAX_LENGTH
        and storable(event["type"])
    )


def webhook_event_record(
    *, provider: str, event: dict, now: datetime, source: str = WebhookEvent.Source.WEBHOOK
) -> bool:
    """
    Store a verified provider event once, with the outbox row that will process it, in one transaction.

    The one intake of events: deliveries to the endpoint and reconciliation's backfill both come
    here, so an event is processed once whichever brought it first. Returns True if it was stored
    now, False if it already was (nothing is written then). A type no handler acts on is stored
    IGNORED (`unhandled_type`) at once, without an outbox row: processing it could only say so,
    a worker task later (Stripe sends several such events with every payment); a replay still can.

    :raises ValueError: if the event has no id or type
    """
    if not _is_event(event):
        raise ValueError("an event needs an id and a type")
    data = event.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    obj = obj if isinstance(obj, dict) else {}
    metadata = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    payment_id = metadata.get("payment_id")
    handled = event["type"] in HANDLERS
    row = {
        "provider": provider,
        "provider_event_id": event["id"],
        "type": event["type"],
        "object_type": _text(obj.get("object"), "object_type"),
        "object_id": _text(obj.get("id"), "object_id"),
        "payment_public_id": payment_id if public_id_well_formed(payment_id, prefix="pay") else "",
        "provider_created_at": _created_at(event.get("created"), now),
        "api_version": _text(event.get("api_version"), "api_version"),
        "livemode": event.get("livemode") is True,
        "payload": webhook_payload_redact(event),
        "source": source,
        "status": WebhookEvent.Status.RECEIVED if handled else WebhookEvent.Status.IGNORED,
        "outcome": "" if handled else UNHANDLED_TYPE,
        "attempts": 0,
        "last_error": "",
        "received_at": now,
        "processed_at": None if handled else now,
    }
    row["payload"] = _PAYLOAD_FIELD.get_db_prep_save(row["payload"], connection)  # the one column to adapt
    with transaction.atomic(durable=True):
        with connection.cursor() as cursor:
            cursor.execute(_insert_statement(tuple(row)), list(row.values()))
            inserted = cursor.fetchone()
        if inserted is None:
            return False
        if handled:
            outbox_message_insert(
                topic=topics.WEBHOOK_EVENT_RECEIVED, payload={"webhook_event_id": inserted[0]}, now=now
            )
    if not handled:
        webhook_event_processed_observed(type=WEBHOOK_TYPE_OTHER, status=WebhookEvent.Status.IGNORED)
    return True


@functools.cache
def _insert_statement(fields: tuple[str, ...]) -> str:
    """INSERT … ON CONFLICT DO NOTHING RETURNING id, its columns from the model: no second list of them."""
    columns = [WebhookEvent._meta.get_field(name).column for name in fields]
    return (
        f"INSERT INTO {WebhookEvent._meta.db_table} ({', '.join(columns)}) "  # noqa: S608 - names are the model's
        f"VALUES ({', '.join(['%s'] * len(columns))}) "
        "ON CONFLICT ON CONSTRAINT webhook_event_once DO NOTHING RETURNING id"
    )


def _text(value: object, field_name: str) -> str:
    """A short string field from the event: anything else (a number, an object, too long, text
    PostgreSQL cannot store) is left empty."""
    limit = WebhookEvent._meta.get_field(field_name).max_length
    return value if isinstance(value, str) and len(value) <= limit and storable(value) else ""


def _created_at(created: object, now: datetime) -> datetime:
    if isinstance(created, int) and not isinstance(created, bool):
        try:
            return datetime.fromtimestamp(created, tz=UTC)
        except (OverflowError, OSError, ValueError):
            pass
    return now


# --- processing -------------------------------------------------------------------------------------
def webhook_event_process(
    *, webhook_event_id: int, now: datetime, gateway: PaymentGateway | None = None, guards=None
) -> WebhookEvent | None:
    """
    Process a stored event through its handler and record what came of it on the row.

    Marked PROCESSED (or IGNORED) only after the handler's effects committed; safe to repeat, so a
    second delivery of the same outbox message, or a replay, does no harm. Returns the event, or
    None if it was already settled.

    :raises RetryLater: if the handler failed or the event's payment is not known yet (the row is
        FAILED with its attempts and last error; the outbox keeps the schedule)
    :raises GiveUp: if the event is parked (its payment never appeared), or the provider answered
        the handler's question definitively with an error
    """
    event = _webhook_event_claim(webhook_event_id=webhook_event_id)
    if event is None:
        return None
    handler = HANDLERS.get(event.type)
    if handler is None:
        return _settle(
            event, HandlerContext(event=event, now=now), status=WebhookEvent.Status.IGNORED, outcome=UNHANDLED_TYPE
        )
    context = HandlerContext(event=event, now=now, gateway=gateway, guards=guards)
    with structlog.contextvars.bound_contextvars(
        webhook_event_id=event.pk, provider_event_id=event.provider_event_id, event_type=event.type
    ):
        try:
            outcome = handler(context)
        except WebhookEventNotOurs as exc:
            logger.info("webhook_event_not_ours", detail=str(exc))
            return _settle(event, context, status=WebhookEvent.Status.IGNORED, outcome=NOT_OURS)
        except WebhookEventNotYetKnown as exc:
            if event.attempts >= min(settings.WEBHOOK_PARK_AFTER_ATTEMPTS, settings.OUTBOX_MAX_ATTEMPTS):
                _fail(event, context, status=WebhookEvent.Status.PARKED, error=f"parked: {exc}")
                logger.warning("webhook_event_parked", attempts=event.attempts, detail=str(exc))
                raise GiveUp(f"parked: {exc}", error_type="webhook_event_parked") from exc
            _fail(event, context, error=f"not_yet_known: {exc}")
            raise RetryLater(str(exc), error_type="webhook_object_not_yet_known") from exc
        except RetryLater as exc:  # the provider could not answer a fetch now (rate limit, breaker, 5xx)
            _fail(event, context, error=f"{exc.error_type}: {exc.message}", attempt_given_back=not exc.count_attempt)
            raise
        except ProviderError as exc:  # a definitive provider answer (e.g. no such object): retrying cannot help
            _fail(event, context, error=f"{exc.error_type}: {exc.message}")
            raise GiveUp(f"the provider refused a fetch: {exc.message}", error_type=exc.error_type) from exc
        except Exception as exc:
            _fail(event, context, error=without_row_values(f"{type(exc).__name__}: {exc}"))
            raise  # a bug, not an answer: the outbox logs it and retries the row, then it is dead for ops
    return _settle(event, context, status=WebhookEvent.Status.PROCESSED, outcome=outcome)


def _webhook_event_claim(*, webhook_event_id: int) -> WebhookEvent | None:
    """Mark an unsettled event PROCESSING, count the attempt and read it back, in one statement
    (UPDATE … RETURNING); None if it is settled or gone."""
    table = WebhookEvent._meta.db_table
    claimed = list(
        WebhookEvent.objects.raw(
            f"UPDATE {table} SET status = %s, attempts = attempts + 1 "  # noqa: S608 - the table name is ours
            "WHERE id = %s AND NOT (status = ANY(%s)) RETURNING *",
            [WebhookEvent.Status.PROCESSING, webhook_event_id, [str(status) for status in SETTLED]],
        )
    )
    return claimed[0] if claimed else None


def _settle(event: WebhookEvent, context: HandlerContext, *, status: str, outcome: str) -> WebhookEvent:
    updates = {"status": status, "outcome": outcome, "processed_at": context.now}
    if context.payment_id:
        updates["payment_public_id"] = context.payment_id
    WebhookEvent.objects.filter(pk=event.pk).update(**updates)
    for name, value in updates.items():
        setattr(event, name, value)
    _observed(event)
    logger.info(
        "webhook_event_processed",
        webhook_event_id=event.pk,
        provider_event_id=event.provider_event_id,
        event_type=event.type,
        status=status,
        outcome=outcome,
        payment_id=event.payment_public_id or None,
        attempts=event.attempts,
        fetched_from_provider=bool(context.fetched),
    )
    return event


def _fail(
    event: WebhookEvent,
    context: HandlerContext,
    *,
    error: str,
    status: str = WebhookEvent.Status.FAILED,
    attempt_given_back: bool = False,
) -> None:
    updates = {"status": status, "last_error": error[:LAST_ERROR_MAX_LENGTH]}
    if context.payment_id:
        updates["payment_public_id"] = context.payment_id
    if attempt_given_back:
        updates["attempts"] = F("attempts") - 1
    WebhookEvent.objects.filter(pk=event.pk).update(**updates)
    event.status = status
    _observed(event)


def _observed(event: WebhookEvent) -> None:
    webhook_event_processed_observed(
        type=event.type if event.type in HANDLERS else WEBHOOK_TYPE_OTHER, status=event.status
    )


def webhook_event_replay(*, webhook_event_id: int, now: datetime, actor: Actor | None = None) -> WebhookEvent:
    """
    Process an event again from the start, whatever its status (ops' replay, e.g. of a parked one).

    Its attempts start again from zero; its last error stays until the next attempt reports.
    Handlers are safe to repeat, so replaying a processed event changes nothing that was right. With an
    `actor` (an operator and a reason), the replay is on the timeline of the payment the event names.

    :raises WebhookEvent.DoesNotExist: if there is no such event
    """
    with transaction.atomic(durable=True):
        event = WebhookEvent.objects.select_for_update().get(pk=webhook_event_id)
        event.status = WebhookEvent.Status.RECEIVED
        event.attempts = 0
        event.outcome = ""
        event.processed_at = None
        event.save(update_fields=["status", "attempts", "outcome", "processed_at"])
        outbox_message_enqueue(
            topic=topics.WEBHOOK_EVENT_RECEIVED, payload={"webhook_event_id": event.pk}, available_at=now
        )
        payment = Payment.objects.filter(public_id=event.payment_public_id).first() if event.payment_public_id else None
        if actor is not None and payment is not None:
            replays = payment.events.filter(type="webhook.replayed", data__event_id=event.provider_event_id).count()
            payment_event_create(
                payment=payment,
                type="webhook.replayed",
                source=actor.source,
                actor=actor.name,
                reason=actor.reason,
                idempotency_key=f"webhook_replayed:{event.provider_event_id}:{replays + 1}"[:255],
                now=now,
                from_status=payment.status,
                data={"event_id": event.provider_event_id, "event_type": event.type},
            )
    logger.info("webhook_event_replayed", webhook_event_id=event.pk, provider_event_id=event.provider_event_id)
    return event
