from django.db import models


class JobOutcome(models.TextChoices):  # module level, so Meta builds its CHECK from it (one home)
    RUNNING = "RUNNING", "Running"
    OK = "OK", "OK"
    FAILED = "FAILED", "Failed"


class JobRun(models.Model):
    """One run of a beat job: when, how long, how it ended and what it did (counts), for the dashboard.

    Written when the run starts (finished_at empty while it runs) and completed when it ends; the
    housekeeping job deletes runs past JOB_RUN_RETENTION_DAYS.
    """

    Outcome = JobOutcome

    name = models.CharField(max_length=100)  # the Celery task name, e.g. payments.janitor
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=16, choices=Outcome.choices, default=Outcome.RUNNING)
    counts = models.JSONField(default=dict, blank=True)  # e.g. {"checked": 12, "settled": 3, "flagged": 1}
    error = models.TextField(blank=True, default="")  # the exception's type and message, for ops

    class Meta:
        indexes = [
            # The dashboard's "last run of each job" (DISTINCT ON name ORDER BY name, started_at DESC).
            models.Index(fields=["name", "-started_at"], name="job_run_last_per_name"),
            models.Index(fields=["started_at"], name="job_run_started_at"),  # housekeeping's prune
        ]
        constraints = [
            models.CheckConstraint(condition=models.Q(outcome__in=JobOutcome.values), name="job_run_outcome_valid")
        ]

    def __str__(self) -> str:
        return f"{self.name} at {self.started_at:%Y-%m-%d %H:%M:%S}"

    @property
    def duration_seconds(self) -> float | None:
        if self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()
