from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from outbox.errors import OutboxOutsideTransaction
from outbox.models import OutboxMessage


def outbox_message_enqueue(*, topic: str, payload: dict, available_at: datetime | None = None) -> OutboxMessage:
    """
    Write a message for the relay in the caller's transaction, so it exists iff the change commits.

    :raises OutboxOutsideTransaction: if no transaction is open (the message could outlive a rollback
        or be committed without its change)
    """
    if not transaction.get_connection().in_atomic_block:
        raise OutboxOutsideTransaction(f"outbox message {topic!r} must be written inside transaction.atomic()")
    return OutboxMessage.objects.create(topic=topic, payload=payload, available_at=available_at or timezone.now())
