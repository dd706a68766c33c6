"""Celery interfaces of the webhooks app: thin, keyword-only, named explicitly (STYLE §9)."""

from celery import shared_task
from django.utils import timezone

from outbox.services import outbox_message_process
from payments.services.jobs import job_run
from webhooks.reconciliation import webhook_events_backfill
from webhooks.services import webhook_event_process


# One attempt per hand-out: the outbox row holds the retry schedule, the event row what happened.
@shared_task(name="webhooks.webhook_event_process")
def webhook_event_process_task(*, webhook_event_id: int, message_id: int, **kwargs: object) -> str:
    return outbox_message_process(
        message_id=message_id,
        work=lambda: webhook_event_process(webhook_event_id=webhook_event_id, now=timezone.now()),
    )


# A beat job: recorded (JobRun) and logged by `job_run`. No Celery retry: the next beat is the retry,
# and the backfill is safe to run again, and twice at once.
@shared_task(name="webhooks.webhook_events_backfill")
def webhook_events_backfill_task(**kwargs: object) -> None:
    now = timezone.now()
    job_run(name="webhooks.webhook_events_backfill", now=now, work=lambda: webhook_events_backfill(now=now))
