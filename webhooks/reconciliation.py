"""
The missed-webhooks backfill: the provider's event list, read back to the last event seen, fed
through the one intake (`webhook_event_record`, source `backfill`), so an event whose deliveries were
dropped (Stripe's `delivery_success=false`) is stored and processed exactly as a delivery would be.

The whole list is read, not only `delivery_success=false`: an event still being retried, or one
delivered while our database was being restored, is missed too. Only the types a handler acts on are
asked for (`WEBHOOK_EVENT_TYPES`, Stripe's `types[]`), the ones our endpoint subscribes to: the
others would be stored only to be ignored. The insert's unique constraint
(`ON CONFLICT DO NOTHING`) makes every event the endpoint already stored a no-op, so reading an event
twice, or by two beats at once, changes nothing.

Listing is a read with no transaction open (STYLE §1.2). The cursor row (`WebhookBackfillCursor`) is
locked only to advance it, in a short transaction after the walk: a run whose starting position was
moved by another run meanwhile leaves the cursor to that run (its own inserts were no-ops or harmless
repeats). Bounded by WEBHOOK_BACKFILL_MAX_PAGES pages a run; a longer walk resumes where it stopped.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import structlog
from django.conf import settings
from django.db import transaction

from payments.gateway.base import PaymentGateway
from payments.gateway.stripe import PROVIDER
from payments.services.dispatch import _gateway, provider_call
from webhooks.handlers import WEBHOOK_EVENT_TYPES
from webhooks.models import WebhookBackfillCursor, WebhookEvent
from webhooks.services import webhook_event_record

logger = structlog.get_logger(__name__)
PAGE_SIZE = 100  # Stripe's largest page: fewest calls against the shared rate limit


def _position(cursor: WebhookBackfillCursor) -> tuple:
    return (
        cursor.last_event_id,
        cursor.last_event_created_at,
        cursor.walk_head_event_id,
        cursor.walk_head_created_at,
        cursor.walk_after_event_id,
    )


def _created_at(event: dict) -> datetime | None:
    created = event.get("created")
    if isinstance(created, int) and not isinstance(created, bool):
        return datetime.fromtimestamp(created, tz=UTC)
    return None


def webhook_events_backfill(
    *, now: datetime, gateway: PaymentGateway | None = None, guards=None, provider: str = PROVIDER
) -> dict[str, int]:
    """
    Read the provider's events newer than the cursor and store each one not stored yet, through the
    webhook intake with source `backfill`; advance the cursor. Return the counts of what it did.

    Events younger than WEBHOOK_BACKFILL_DELAY_SECONDS are left to their delivery (and the next run).
    With no cursor yet, the walk goes back WEBHOOK_BACKFILL_FIRST_RUN_LOOKBACK_SECONDS.

    :raises RetryLater, GiveUp, ProviderError: if the provider could not list events; the walk so
        far is kept and the next run resumes it
    """
    gateway = _gateway(gateway)
    cursor, _ = WebhookBackfillCursor.objects.get_or_create(provider=provider)
    start = _position(cursor)
    young_after = now - timedelta(seconds=settings.WEBHOOK_BACKFILL_DELAY_SECONDS)
    floor = cursor.last_event_created_at or now - timedelta(
        seconds=settings.WEBHOOK_BACKFILL_FIRST_RUN_LOOKBACK_SECONDS
    )
    resuming = bool(cursor.walk_after_event_id)
    head = (cursor.walk_head_event_id, cursor.walk_head_created_at) if resuming else None
    after = cursor.walk_after_event_id or None
    counts: Counter[str] = Counter()
    reached = False
    try:
        while counts["pages"] < settings.WEBHOOK_BACKFILL_MAX_PAGES and not reached:
            page = provider_call(
                "events_list",
                lambda after=after: gateway.events_list(
                    starting_after=after, types=WEBHOOK_EVENT_TYPES, limit=PAGE_SIZE
                ),
                guards=guards,
            )
            counts["pages"] += 1
            for event in page.events:
                if not isinstance(event.get("id"), str):
                    counts["invalid"] += 1  # no id: nothing to store, nowhere to resume from
                    continue
                created_at = _created_at(event)
                if event.get("id") == cursor.last_event_id or (created_at is not None and created_at < floor):
                    reached = True
                    break
                if head is None and (created_at is None or created_at > young_after):
                    counts["too_young"] += 1  # its delivery may still be on the way: the next run takes it
                else:
                    head = head or (event["id"], created_at)
                    counts[_record(event, provider=provider, now=now)] += 1
                after = event["id"]  # only once the event is stored: a failed insert is read again
            reached = reached or not page.has_more
    finally:
        counts["cursor_advanced"] = int(_advance(cursor, start=start, head=head, after=after, reached=reached, now=now))
    return dict(counts)


def _record(event: dict, *, provider: str, now: datetime) -> str:
    try:
        stored = webhook_event_record(provider=provider, event=event, now=now, source=WebhookEvent.Source.BACKFILL)
    except ValueError:
        return "invalid"  # not an event with an id and a type: nothing to store
    return "backfilled" if stored else "already_stored"


def _advance(
    cursor: WebhookBackfillCursor,
    *,
    start: tuple,
    head: tuple[str, datetime | None] | None,
    after: str | None,
    reached: bool,
    now: datetime,
) -> bool:
    """Move the cursor to where this walk got, unless another run moved it first; True if it moved."""
    with transaction.atomic(durable=True):
        row = WebhookBackfillCursor.objects.select_for_update().get(pk=cursor.pk)
        if _position(row) != start:
            logger.info("webhook_backfill_cursor_moved_by_another_run", provider=row.provider)
            return False
        if reached:
            if head is not None:
                row.last_event_id, row.last_event_created_at = head
            row.walk_head_event_id, row.walk_head_created_at, row.walk_after_event_id = "", None, ""
        elif head is not None and after:
            row.walk_head_event_id, row.walk_head_created_at = head
            row.walk_after_event_id = after
        if _position(row) == start:
            return False
        row.updated_at = now
        row.save()
    return True
