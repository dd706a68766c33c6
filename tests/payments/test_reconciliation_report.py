"""The daily reconciliation report against the sandbox: mismatches planted on either side are stored,
a re-run neither duplicates nor keeps what was fixed; the admin, the dashboard and /metrics show them."""

from datetime import UTC

import pytest
from django.conf import settings
from django.utils import timezone
from prometheus_client import CollectorRegistry

from config.metrics.collectors import ScrapeTimeCollector
from payments.gateway.stripe import StripeGateway
from payments.models import JobRun, Payment, ReconciliationMismatch, Refund
from payments.models.base import new_payment_id
from payments.services.dispatch import payment_submit
from payments.services.reconciliation import reconciliation_report_run
from payments.tasks import reconciliation_report_task
from tests.factories import PaymentFactory, payment_with_status
from tests.fixtures.ops import OPS_READ_ONLY, PAYMENTS_ADMIN

pytestmark = pytest.mark.django_db
S = Payment.Status
K = ReconciliationMismatch.Kind


@pytest.fixture
def sandbox(stripe_sandbox) -> StripeGateway:
    return StripeGateway(
        api_key="sk_test_report",
        api_base=stripe_sandbox.url,
        api_version=settings.STRIPE_API_VERSION,
        timeout_seconds=2.0,
        connect_timeout_seconds=1.0,
    )


def today():
    return timezone.now().astimezone(UTC).date()


def report(sandbox, guards):
    return reconciliation_report_run(day=today(), now=timezone.now(), gateway=sandbox, guards=guards)


def settled(sandbox, guards, **fields) -> Payment:
    payment = PaymentFactory(amount=2000, payment_method="pm_card_visa", **fields)
    payment_submit(payment_id=payment.public_id, now=timezone.now(), gateway=sandbox, guards=guards)
    payment.refresh_from_db()
    return payment


def open_mismatches() -> set[tuple[str, str, str]]:
    return set(
        ReconciliationMismatch.objects.filter(resolved_at__isnull=True).values_list(
            "kind", "payment_public_id", "provider_id"
        )
    )


def test_matching_payments_and_refunds_make_no_mismatch(sandbox, guards, stripe_client):
    payment = settled(sandbox, guards)
    refund = Refund.objects.create(payment=payment, amount=500)
    stripe_refund = stripe_client.v1.refunds.create(
        params={
            "payment_intent": payment.provider_payment_id,
            "amount": 500,
            "metadata": {"refund_id": refund.public_id},
        }
    )
    Refund.objects.filter(pk=refund.pk).update(provider_refund_id=stripe_refund.id, status=Refund.Status.SUCCEEDED)

    counts = report(sandbox, guards)

    assert open_mismatches() == set()
    assert (counts["payments"], counts["intents"], counts["refunds"], counts["provider_refunds"]) == (1, 1, 1, 1)


def test_a_mismatch_planted_on_either_side_appears_in_the_report(sandbox, guards, stripe_client):
    only_ours = payment_with_status(S.PROCESSING, amount=2000)  # sent, but the provider never made an intent
    only_theirs_id = new_payment_id()
    only_theirs = stripe_client.v1.payment_intents.create(
        params={"amount": 1500, "currency": "eur", "metadata": {"payment_id": only_theirs_id}}
    )
    stripe_client.v1.payment_intents.create(params={"amount": 900, "currency": "eur"})  # not ours at all
    other_amount = settled(sandbox, guards)
    Payment.objects.filter(pk=other_amount.pk).update(amount=2500, amount_received=2500)
    other_status = settled(sandbox, guards)
    Payment.objects.filter(pk=other_status.pk).update(status=S.FAILED)
    refunded_elsewhere = settled(sandbox, guards)
    made_elsewhere = stripe_client.v1.refunds.create(params={"payment_intent": refunded_elsewhere.provider_payment_id})

    counts = report(sandbox, guards)

    assert open_mismatches() == {
        (K.PAYMENT_MISSING_AT_PROVIDER, only_ours.public_id, ""),
        (K.PAYMENT_MISSING_HERE, only_theirs_id, only_theirs.id),
        (K.PAYMENT_AMOUNT, other_amount.public_id, other_amount.provider_payment_id),
        (K.PAYMENT_STATUS, other_status.public_id, other_status.provider_payment_id),
        (K.REFUND_MISSING_HERE, refunded_elsewhere.public_id, made_elsewhere.id),
    }
    status = ReconciliationMismatch.objects.get(kind=K.PAYMENT_STATUS)
    assert (status.ours["status"], status.theirs["status"], status.theirs["maps_to"]) == (
        S.FAILED,
        "succeeded",
        S.SUCCEEDED,
    )
    amount = ReconciliationMismatch.objects.get(kind=K.PAYMENT_AMOUNT)
    assert (amount.ours["amount"], amount.theirs["amount"], amount.day) == (2500, 2000, today())
    assert counts["intents_not_ours"] == 1 and counts["mismatches_new"] == 5


def test_rerunning_the_report_does_not_duplicate_and_closes_what_was_fixed(sandbox, guards):
    fixed = settled(sandbox, guards)
    Payment.objects.filter(pk=fixed.pk).update(amount=2500)
    still = payment_with_status(S.PROCESSING, amount=2000)
    report(sandbox, guards)
    first = ReconciliationMismatch.objects.get(kind=K.PAYMENT_MISSING_AT_PROVIDER)
    Payment.objects.filter(pk=fixed.pk).update(amount=2000)

    counts = report(sandbox, guards)
    again = report(sandbox, guards)

    assert ReconciliationMismatch.objects.count() == 2
    assert open_mismatches() == {(K.PAYMENT_MISSING_AT_PROVIDER, still.public_id, "")}
    assert ReconciliationMismatch.objects.get(kind=K.PAYMENT_AMOUNT).resolved_at is not None
    assert ReconciliationMismatch.objects.get(kind=K.PAYMENT_MISSING_AT_PROVIDER).pk == first.pk
    assert (counts["mismatches_closed"], counts["mismatches_new"]) == (1, 0)
    assert (again["mismatches_closed"], again["mismatches_new"]) == (0, 0)


def test_a_mismatch_that_comes_back_is_opened_again_not_duplicated(sandbox, guards):
    payment = settled(sandbox, guards)
    Payment.objects.filter(pk=payment.pk).update(amount=2500)
    report(sandbox, guards)
    Payment.objects.filter(pk=payment.pk).update(amount=2000)
    report(sandbox, guards)
    Payment.objects.filter(pk=payment.pk).update(amount=2400)

    report(sandbox, guards)

    (row,) = ReconciliationMismatch.objects.all()
    assert row.resolved_at is None and row.ours["amount"] == 2400


def test_the_report_task_records_its_run_for_the_last_complete_days(provider, settings):
    settings.RECONCILIATION_REPORT_DAYS = 2
    from payments.gateway.base import IntentPage, RefundPage

    provider.script("intents_list_created", IntentPage(intents=[], has_more=False))
    provider.script("refunds_list_created", RefundPage(refunds=[], has_more=False))

    reconciliation_report_task.apply(kwargs={}).get()

    run = JobRun.objects.get(name="payments.reconciliation_report")
    assert run.outcome == JobRun.Outcome.OK and run.counts["days"] == 2
    days = {call["gte"] for call in provider.called("intents_list_created")}
    assert len(days) == 2 and max(days) + 86400 <= timezone.now().timestamp()


def open_mismatch(kind=K.PAYMENT_AMOUNT, **fields) -> ReconciliationMismatch:
    now = timezone.now()
    return ReconciliationMismatch.objects.create(
        day=today(), kind=kind, payment_public_id=new_payment_id(), created_at=now, updated_at=now, **fields
    )


def test_open_mismatches_are_counted_by_kind_in_metrics_at_scrape_time():
    open_mismatch()
    open_mismatch()
    open_mismatch(kind=K.REFUND_MISSING_HERE)
    open_mismatch(resolved_at=timezone.now())
    registry = CollectorRegistry()
    registry.register(ScrapeTimeCollector())

    value = registry.get_sample_value

    assert value("reconciliation_mismatches_open", {"kind": K.PAYMENT_AMOUNT}) == 2
    assert value("reconciliation_mismatches_open", {"kind": K.REFUND_MISSING_HERE}) == 1
    assert value("reconciliation_mismatches_open", {"kind": K.PAYMENT_STATUS}) == 0
    assert value("metrics_collector_up", {"source": "reconciliation"}) == 1


@pytest.mark.parametrize("group", [OPS_READ_ONLY, PAYMENTS_ADMIN])
def test_ops_groups_see_open_mismatches_on_the_dashboard_and_in_a_read_only_list(login_as, group):
    mismatch = open_mismatch()
    client = login_as(group)

    page = client.get("/admin/dashboard/")

    figures = {f.label: f for panel, panel_figures in page.context["panels"] for f in panel_figures}
    figure = figures[K.PAYMENT_AMOUNT.label]
    assert figure.value == "1" and figure.attention
    listing = client.get(figure.url)
    assert listing.status_code == 200 and mismatch.payment_public_id in listing.content.decode()
    detail = client.get(f"/admin/payments/reconciliationmismatch/{mismatch.pk}/change/")
    assert detail.status_code == 200 and b'name="_save"' not in detail.content


def test_staff_outside_the_ops_groups_cannot_see_mismatches(login_as):
    client = login_as(None)

    assert client.get("/admin/payments/reconciliationmismatch/").status_code == 403
