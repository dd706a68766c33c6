"""Read paths of the outbox."""

from __future__ import annotations

from django.db.models import Q

from outbox.models import OutboxMessage, OutboxStatus


def outbox_messages_handed_out(*, payloads: list[dict]) -> list[OutboxMessage]:
    """Return the messages a worker holds (HANDED_OUT) whose payload holds one of `payloads`."""
    if not payloads:
        return []
    matches = Q()
    for payload in payloads:
        matches |= Q(payload__contains=payload)
    return list(OutboxMessage.objects.filter(matches, status=OutboxStatus.HANDED_OUT).order_by("pk"))
