"""Celery interfaces of the payments app: thin, keyword-only, named explicitly (STYLE §9).

The provider tasks take one attempt each: the outbox row they were handed holds the retry schedule,
and `outbox_message_process` records the outcome on it.
"""

import logging
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from outbox.services import outbox_message_process
from payments.idempotency import idempotency_key_purge
from payments.services.authorizations import authorizations_expiring_settle
from payments.services.dispatch import payment_cancel, payment_capture, payment_submit, payment_sync, refund_submit
from payments.services.janitor import janitor_run
from payments.services.jobs import job_run, job_run_purge
from payments.services.reconciliation import reconciliation_report_days

logger = logging.getLogger(__name__)


@shared_task(name="payments.payment_submit")
def payment_submit_task(*, payment_id: str, message_id: int, **kwargs: object) -> str:
    return outbox_message_process(
        message_id=message_id, work=lambda: payment_submit(payment_id=payment_id, now=timezone.now())
    )


@shared_task(name="payments.payment_capture")
def payment_capture_task(*, payment_id: str, message_id: int, **kwargs: object) -> str:
    return outbox_message_process(
        message_id=message_id, work=lambda: payment_capture(payment_id=payment_id, now=timezone.now())
    )


@shared_task(name="payments.payment_cancel")
def payment_cancel_task(*, payment_id: str, message_id: int, **kwargs: object) -> str:
    return outbox_message_process(
        message_id=message_id, work=lambda: payment_cancel(payment_id=payment_id, now=timezone.now())
    )


@shared_task(name="payments.refund_submit")
def refund_submit_task(*, refund_id: str, message_id: int, **kwargs: object) -> str:
    return outbox_message_process(
        message_id=message_id, work=lambda: refund_submit(refund_id=refund_id, now=timezone.now())
    )


@shared_task(name="payments.payment_sync")
def payment_sync_task(*, payment_id: str, message_id: int, **kwargs: object) -> str:
    return outbox_message_process(
        message_id=message_id, work=lambda: payment_sync(payment_id=payment_id, now=timezone.now())
    )


# Housekeeping that moves no money: Celery's own retry is fine here.
@shared_task(name="payments.idempotency_key_purge", autoretry_for=(Exception,), retry_backoff=True, max_retries=3)
def idempotency_key_purge_task(**kwargs: object) -> int:
    deleted = idempotency_key_purge(now=timezone.now())
    logger.info("purged %d expired idempotency keys", deleted)
    return deleted


# Beat jobs: each run is recorded (JobRun) and logged by `job_run`. No Celery retry: the next beat is
# the retry, and every job is safe to run again (and twice at once).
@shared_task(name="payments.janitor")
def janitor_task(**kwargs: object) -> None:
    now = timezone.now()
    job_run(name="payments.janitor", now=now, work=lambda: janitor_run(now=now))


@shared_task(name="payments.authorization_expiry")
def authorization_expiry_task(**kwargs: object) -> None:
    now = timezone.now()
    job_run(name="payments.authorization_expiry", now=now, work=lambda: authorizations_expiring_settle(now=now))


@shared_task(name="payments.job_run_purge")
def job_run_purge_task(**kwargs: object) -> None:
    now = timezone.now()
    retention = timedelta(days=settings.JOB_RUN_RETENTION_DAYS)
    job_run(
        name="payments.job_run_purge", now=now, work=lambda: {"deleted": job_run_purge(now=now, retention=retention)}
    )


@shared_task(name="payments.reconciliation_report")
def reconciliation_report_task(**kwargs: object) -> None:
    now = timezone.now()
    job_run(name="payments.reconciliation_report", now=now, work=lambda: reconciliation_report_days(now=now))
