"""Beat job runs: read-only in the admin, and the dashboard's "last run of every beat job" panel."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.contrib import admin
from django.http import HttpRequest
from django.utils.timesince import timesince

from config.admin import ReadOnlyMixin
from config.dashboard import Figure, Panel, dashboard_panel_register
from payments.admin.dashboard import _changelist
from payments.models import JobRun

VIEW_JOB_RUNS = "payments.view_jobrun"


@admin.register(JobRun)
class JobRunAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["name", "started_at", "outcome", "duration", "counts", "error"]
    list_filter = ["name", "outcome", ("started_at", admin.DateFieldListFilter)]
    fields = ["name", "started_at", "finished_at", "outcome", "counts", "error"]
    readonly_fields = fields

    @admin.display(description="Duration")
    def duration(self, run: JobRun) -> str:
        seconds = run.duration_seconds
        return "running" if seconds is None else f"{seconds:.1f} s"


def beat_jobs() -> list[str]:
    """The task of every beat schedule entry: a job that never ran shows too (is beat running?)."""
    return sorted({entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()})


def beat_job_last_runs(request: HttpRequest, now: datetime) -> list[Figure]:
    """The last run of each beat job, its outcome and duration; one statement, an index probe per job."""
    names = beat_jobs()
    arms = [JobRun.objects.filter(name=name).order_by("-started_at")[:1] for name in names]
    last = {run.name: run for run in (arms[0].union(*arms[1:], all=True) if arms else [])}
    figures = []
    for name in names:
        run = last.get(name)
        if run is None:
            value = "never run"
        elif run.outcome == JobRun.Outcome.RUNNING:
            value = f"running since {timesince(run.started_at, now)}"
        else:
            value = f"{run.get_outcome_display()} in {run.duration_seconds:.1f} s, {timesince(run.started_at, now)} ago"
        figures.append(
            Figure(
                label=name,
                value=value,
                url=_changelist("payments_jobrun", name__exact=name),
                attention=run is not None and run.outcome == JobRun.Outcome.FAILED,
            )
        )
    return figures


dashboard_panel_register(
    key="payments.beat_jobs",
    panel=Panel(
        title="Beat jobs",
        permission=VIEW_JOB_RUNS,
        figures=beat_job_last_runs,
        description="The last run of every scheduled job, its outcome and how long it took.",
        order=60,
    ),
)
