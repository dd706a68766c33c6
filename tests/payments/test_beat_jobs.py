"""The beat jobs beside the janitor: run records, the dashboard panel, expiring authorizations,
housekeeping in batches, and the schedule itself."""

import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone
from structlog.testing import capture_logs

from outbox.models import OutboxMessage
from payments import topics
from payments.idempotency import idempotency_key_purge
from payments.models import IdempotencyKey, JobRun, Payment, PaymentEvent
from payments.services.authorizations import authorizations_expiring_settle
from payments.services.jobs import job_run, job_run_purge
from payments.tasks import authorization_expiry_task, janitor_task, job_run_purge_task
from tests.factories import ApiClientFactory, payment_with_status
from tests.fixtures.ops import OPS_READ_ONLY

pytestmark = pytest.mark.django_db
S = Payment.Status
DASHBOARD = "/admin/dashboard/"
EXPIRY_AGE = timedelta(days=6, hours=20)


def authorized(*, age: timedelta) -> Payment:
    payment = payment_with_status(S.REQUIRES_CAPTURE, amount=2000, provider_payment_id=f"pi_{age.total_seconds():.0f}")
    Payment.objects.filter(pk=payment.pk).update(created_at=timezone.now() - age)
    return Payment.objects.get(pk=payment.pk)


def test_a_job_run_is_recorded_with_its_counts_and_duration_and_logged_once():
    now = timezone.now()

    with capture_logs() as logs:
        run = job_run(name="payments.example", now=now, work=lambda: {"checked": 3})

    run.refresh_from_db()
    assert (run.outcome, run.counts, run.error, run.started_at) == (JobRun.Outcome.OK, {"checked": 3}, "", now)
    assert run.duration_seconds is not None and run.duration_seconds >= 0
    (line,) = [line for line in logs if line["event"] == "beat_job_run"]
    assert (line["job"], line["outcome"], line["checked"]) == ("payments.example", "OK", 3)
    assert line["duration_ms"] >= 0 and line["log_level"] == "info"


def test_a_failed_job_run_is_recorded_as_failed_and_the_error_reaches_celery():
    def work():
        raise RuntimeError("database went away")

    with pytest.raises(RuntimeError):
        job_run(name="payments.example", now=timezone.now(), work=work)

    run = JobRun.objects.get()
    assert run.outcome == JobRun.Outcome.FAILED and run.error == "RuntimeError: database went away"
    assert run.finished_at is not None


def test_the_janitor_task_records_its_run(monkeypatch):
    janitor_task.apply(kwargs={}).get()

    run = JobRun.objects.get(name="payments.janitor")
    assert run.outcome == JobRun.Outcome.OK and run.counts["payments_checked"] == 0


def test_the_dashboard_shows_the_last_run_of_every_beat_job_with_its_outcome(login_as):
    now = timezone.now()
    JobRun.objects.create(
        name="payments.janitor",
        started_at=now - timedelta(minutes=5),
        finished_at=now - timedelta(minutes=5),
        outcome="OK",
    )
    JobRun.objects.create(
        name="payments.janitor",
        started_at=now - timedelta(minutes=1),
        finished_at=now - timedelta(minutes=1) + timedelta(seconds=2.5),
        outcome="FAILED",
        error="ProviderError: boom",
    )
    client = login_as(OPS_READ_ONLY)

    page = client.get(DASHBOARD)

    figures = {figure.label: figure for panel, panel_figures in page.context["panels"] for figure in panel_figures}
    janitor = figures["payments.janitor"]
    assert janitor.value.startswith("Failed in 2.5 s, 1") and janitor.attention
    assert figures["payments.authorization_expiry"].value == "never run"
    assert client.get(janitor.url).status_code == 200
    assert set(figures) >= {task["task"] for task in settings.CELERY_BEAT_SCHEDULE.values()}


def test_an_authorization_past_its_age_is_canceled_by_default_with_a_timeline_entry():
    old = authorized(age=EXPIRY_AGE + timedelta(minutes=1))
    young = authorized(age=EXPIRY_AGE - timedelta(minutes=1))

    counts = authorizations_expiring_settle(now=timezone.now())

    old.refresh_from_db()
    young.refresh_from_db()
    assert settings.AUTHORIZATION_EXPIRY_ACTION == "cancel"
    assert (old.status, young.status) == (S.CANCEL_REQUESTED, S.REQUIRES_CAPTURE)
    event = old.events.get(type="payment.cancel_requested")
    assert (event.source, event.actor) == (PaymentEvent.Source.RECONCILIATION, "janitor")
    assert "about to expire" in event.reason
    assert OutboxMessage.objects.get().topic == topics.PAYMENT_CANCEL_REQUESTED
    assert counts == {"expiring": 1, "cancel_requested": 1}


def test_an_authorization_past_its_age_is_captured_when_the_setting_says_capture(settings):
    settings.AUTHORIZATION_EXPIRY_ACTION = "capture"
    old = authorized(age=EXPIRY_AGE + timedelta(minutes=1))

    authorizations_expiring_settle(now=timezone.now())

    old.refresh_from_db()
    assert old.status == S.CAPTURE_REQUESTED and old.amount_to_capture == 2000
    assert old.events.get(type="payment.capture_requested").source == PaymentEvent.Source.RECONCILIATION
    assert OutboxMessage.objects.get().topic == topics.PAYMENT_CAPTURE_REQUESTED


def test_the_authorization_job_run_again_asks_nothing_twice():
    authorized(age=EXPIRY_AGE + timedelta(minutes=1))

    authorization_expiry_task.apply(kwargs={}).get()
    authorization_expiry_task.apply(kwargs={}).get()

    assert PaymentEvent.objects.filter(type="payment.cancel_requested").count() == 1
    assert OutboxMessage.objects.count() == 1
    assert [run.counts for run in JobRun.objects.order_by("id")] == [
        {"expiring": 1, "cancel_requested": 1},
        {"expiring": 0},
    ]


def test_expired_idempotency_keys_are_purged_in_batches_and_live_ones_kept():
    client = ApiClientFactory()
    now = timezone.now()
    for n in range(5):
        IdempotencyKey.objects.create(
            client=client, key=f"old-{n}", request_method="POST", request_path="/", request_hash="h", expires_at=now
        )
    IdempotencyKey.objects.create(
        client=client,
        key="live",
        request_method="POST",
        request_path="/",
        request_hash="h",
        expires_at=now + timedelta(hours=1),
    )

    deleted = idempotency_key_purge(now=now, batch_size=2)

    assert deleted == 5
    assert list(IdempotencyKey.objects.values_list("key", flat=True)) == ["live"]


def test_a_purge_stops_after_its_batches_and_the_next_run_continues():
    client = ApiClientFactory()
    now = timezone.now()
    for n in range(5):
        IdempotencyKey.objects.create(
            client=client, key=f"old-{n}", request_method="POST", request_path="/", request_hash="h", expires_at=now
        )

    first = idempotency_key_purge(now=now, batch_size=2, max_batches=2)
    second = idempotency_key_purge(now=now, batch_size=2, max_batches=2)

    assert (first, second) == (4, 1)


def test_job_runs_past_retention_are_purged_and_the_purge_records_its_own_run(settings):
    now = timezone.now()
    JobRun.objects.create(
        name="payments.janitor", started_at=now - timedelta(days=settings.JOB_RUN_RETENTION_DAYS, hours=1)
    )
    recent = JobRun.objects.create(name="payments.janitor", started_at=now - timedelta(days=1))

    job_run_purge_task.apply(kwargs={}).get()

    purge = JobRun.objects.get(name="payments.job_run_purge")
    assert purge.counts == {"deleted": 1}
    assert set(JobRun.objects.values_list("pk", flat=True)) == {recent.pk, purge.pk}
    assert job_run_purge(now=now, retention=timedelta(hours=1), batch_size=1) == 1  # `recent`, a day old


def test_every_beat_job_is_scheduled_with_a_crontab_guru_link_above_it():
    source = (Path(settings.BASE_DIR) / "config" / "settings" / "base.py").read_text()
    block = source[source.index("CELERY_BEAT_SCHEDULE = {") :]
    block = block[: block.index("\n}\n")]

    for name, entry in settings.CELERY_BEAT_SCHEDULE.items():
        assert re.search(rf'# https://crontab\.guru/#\S+ : .+\n    "{re.escape(name)}": {{', block), name
        assert entry["task"] == name
    assert {"payments.janitor", "payments.authorization_expiry", "payments.job_run_purge"} <= set(
        settings.CELERY_BEAT_SCHEDULE
    )
