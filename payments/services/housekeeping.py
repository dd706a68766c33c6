"""Deleting what is past retention without long locks: a batch of ids at a time, each its own statement."""

from __future__ import annotations

from django.db.models import QuerySet


def batched_delete(queryset: QuerySet, *, batch_size: int = 1000, max_batches: int = 100) -> int:
    """
    Delete the rows of `queryset` (ordered, e.g. oldest first) `batch_size` at a time; return how many.

    Each batch is one short autocommit statement, so no lock is held between batches and a busy
    table is never blocked for long; `max_batches` bounds one run (the next run continues).
    """
    deleted_total = 0
    for _ in range(max_batches):
        ids = list(queryset.values_list("pk", flat=True)[:batch_size])
        if not ids:
            break
        # The queryset's own condition again: a row changed since (an expired key reused) is kept.
        deleted, _ = queryset.filter(pk__in=ids).delete()
        deleted_total += deleted
        if len(ids) < batch_size:
            break
    return deleted_total
