"""Celery interfaces of the outbox app (housekeeping only; consumers live in the apps that own topics)."""

import logging

from celery import shared_task
from django.utils import timezone

from outbox.services import outbox_message_purge_done

logger = logging.getLogger(__name__)


# Housekeeping that moves no money: Celery's own retry is fine here.
@shared_task(name="outbox.outbox_message_purge_done", autoretry_for=(Exception,), retry_backoff=True, max_retries=3)
def outbox_message_purge_done_task(**kwargs: object) -> int:
    deleted = outbox_message_purge_done(now=timezone.now())
    logger.info("purged %d done outbox messages", deleted)
    return deleted
