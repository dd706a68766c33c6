"""
Beat jobs record each run: a `JobRun` row written when it starts and completed when it ends, and one
structured log line with its counts and duration. The dashboard shows the last run of every job.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta

import structlog
from django.db import transaction

from payments.models import JobRun
from payments.services.housekeeping import batched_delete

logger = structlog.get_logger("payments.jobs")
ERROR_MAX_LENGTH = 500  # the gist for ops, not a stack trace (the log has that)


def job_run(*, name: str, now: datetime, work: Callable[[], dict[str, int]]) -> JobRun:
    """
    Run one beat job's `work` (which returns its counts), recording and logging the run.

    An exception in `work` is recorded as a failed run, logged, and re-raised for Celery to see.
    """
    run = JobRun.objects.create(name=name, started_at=now)  # autocommit: visible while the job runs
    started = time.monotonic()
    try:
        counts = work()
    except Exception as exc:
        _finish(run, started, outcome=JobRun.Outcome.FAILED, counts={}, error=f"{type(exc).__name__}: {exc}")
        raise
    _finish(run, started, outcome=JobRun.Outcome.OK, counts=counts, error="")
    return run


def _finish(run: JobRun, started: float, *, outcome: str, counts: dict, error: str) -> None:
    elapsed = time.monotonic() - started
    run.finished_at = run.started_at + timedelta(seconds=elapsed)
    run.outcome = outcome
    run.counts = counts
    run.error = error[:ERROR_MAX_LENGTH]
    with transaction.atomic():
        run.save(update_fields=["finished_at", "outcome", "counts", "error"])
    (logger.info if outcome == JobRun.Outcome.OK else logger.error)(
        "beat_job_run",
        job=run.name,
        job_run_id=run.pk,
        outcome=outcome,
        duration_ms=round(elapsed * 1000, 1),
        error_type=error.split(":", 1)[0] if error else None,
        **counts,
    )


def job_run_purge(*, now: datetime, retention: timedelta, batch_size: int = 1000, max_batches: int = 100) -> int:
    """Delete job runs started before `now - retention`, in short batches that hold no long lock."""
    return batched_delete(
        JobRun.objects.filter(started_at__lt=now - retention).order_by("started_at"),
        batch_size=batch_size,
        max_batches=max_batches,
    )
