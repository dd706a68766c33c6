"""Celery interfaces of the payments app: thin, keyword-only, named explicitly (STYLE §9)."""

import logging

from celery import shared_task
from django.utils import timezone

from payments.idempotency import idempotency_key_purge

logger = logging.getLogger(__name__)


# Housekeeping that moves no money: Celery's own retry is fine here.
@shared_task(name="payments.idempotency_key_purge", autoretry_for=(Exception,), retry_backoff=True, max_retries=3)
def idempotency_key_purge_task(**kwargs: object) -> int:
    deleted = idempotency_key_purge(now=timezone.now())
    logger.info("purged %d expired idempotency keys", deleted)
    return deleted
