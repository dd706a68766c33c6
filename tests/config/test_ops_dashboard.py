"""The ops dashboard: figures for each group that may see them, each linking to the list behind it, in a
number of queries that does not grow with the tables."""

import re
from datetime import timedelta
from html import unescape
from types import SimpleNamespace

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from outbox.models import OutboxMessage
from outbox.services import outbox_message_enqueue
from payments.models import Payment
from tests.factories import StaffUserFactory, payment_with_status
from tests.fixtures.ops import NO_GROUP, OPS_READ_ONLY, PAYMENTS_ADMIN

pytestmark = pytest.mark.django_db
S = Payment.Status
DASHBOARD = reverse("admin:ops_dashboard")


@pytest.fixture(autouse=True)
def breaker(monkeypatch):
    """The provider's breaker as the dashboard reads it, without the suite's shared Redis state."""
    from payments.gateway import limits

    fake = SimpleNamespace(current="closed")
    monkeypatch.setattr(limits, "get_circuit_breaker", lambda **_: SimpleNamespace(state=lambda: fake.current))
    return fake


def figures(response) -> dict[str, tuple[str, str]]:
    """Each figure's label → (value, link), as the page shows them."""
    label = r'<th scope="row">(?:<a href="([^"]*)">)?([^<]+)(?:</a>)?</th>'
    value = r'<td>(?:<a href="[^"]*">)?(?:<img[^>]*> )?([^<]+)'
    rows = re.findall(label + r"\s*" + value, response.content.decode())
    return {unescape(label): (unescape(value), unescape(url)) for url, label, value in rows}


def stuck(status: str, *, currency: str, amount: int, minutes: int) -> Payment:
    payment = payment_with_status(status, currency=currency, amount=amount)
    Payment.objects.filter(pk=payment.pk).update(updated_at=timezone.now() - timedelta(minutes=minutes))
    return payment


def dead_message() -> OutboxMessage:
    with transaction.atomic():
        message = outbox_message_enqueue(topic="payments.payment.create_requested", payload={"payment_id": "pay_x"})
    OutboxMessage.objects.filter(pk=message.pk).update(status=OutboxMessage.Status.DEAD)
    return message


@pytest.mark.parametrize("group", [OPS_READ_ONLY, PAYMENTS_ADMIN])
def test_each_ops_group_finds_the_dashboard_from_the_admin_index_and_sees_every_panel(login_as, group):
    client = login_as(group)

    index = client.get(reverse("admin:index"))
    page = client.get(DASHBOARD)

    assert f'href="{DASHBOARD}"' in index.content.decode()
    assert page.status_code == 200
    for title in ("Payments created today", "Amount at risk", "Outbox", "Webhooks", "Provider"):
        assert f"<caption>{title}</caption>" in page.content.decode()


def test_a_staff_user_in_no_group_is_neither_shown_nor_given_the_dashboard(login_as):
    client = login_as(NO_GROUP)

    index = client.get(reverse("admin:index"))
    page = client.get(DASHBOARD)

    assert DASHBOARD not in index.content.decode()
    assert page.status_code == 403


def test_the_dashboard_needs_an_admin_login(client):
    response = client.get(DASHBOARD)

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


def test_a_user_sees_only_the_panels_of_the_lists_they_may_open(client):
    client.force_login(StaffUserFactory(permissions=["outbox.view_outboxmessage"]))

    page = client.get(DASHBOARD).content.decode()

    assert "<caption>Outbox</caption>" in page
    assert "<caption>Amount at risk</caption>" not in page


def test_payments_created_today_are_counted_by_status_and_link_to_the_admins_today_filter(login_as):
    client = login_as(OPS_READ_ONLY)
    failed = payment_with_status(S.FAILED)
    payment_with_status(S.SUCCEEDED)
    payment_with_status(S.SUCCEEDED)
    yesterday = payment_with_status(S.FAILED)
    Payment.objects.filter(pk=yesterday.pk).update(created_at=timezone.now() - timedelta(days=1))

    shown = figures(client.get(DASHBOARD))
    listing = client.get(shown["Failed"][1])

    assert (shown["All"][0], shown["Succeeded"][0], shown["Failed"][0], shown["Pending"][0]) == ("3", "2", "1", "0")
    assert failed.public_id in listing.content.decode()
    assert yesterday.public_id not in listing.content.decode()
    assert re.search(r'<li class="selected">\s*<a href="[^"]*">Today</a>', listing.content.decode())


def test_amount_at_risk_sums_stuck_payments_per_currency_and_links_to_them(login_as, settings):
    settings.PAYMENT_AT_RISK_AFTER_SECONDS = 15 * 60
    client = login_as(OPS_READ_ONLY)
    processing = stuck(S.PROCESSING, currency="eur", amount=2000, minutes=60)
    stuck(S.CAPTURE_REQUESTED, currency="eur", amount=550, minutes=30)
    stuck(S.CANCEL_REQUESTED, currency="jpy", amount=2000, minutes=30)
    fresh = stuck(S.PROCESSING, currency="eur", amount=9900, minutes=1)  # busy, not stuck
    stuck(S.SUCCEEDED, currency="eur", amount=7700, minutes=60)  # settled

    shown = figures(client.get(DASHBOARD))
    listing = client.get(shown["EUR"][1]).content.decode()

    assert shown["EUR"][0] == "€25.50 in 2 payments"
    assert shown["JPY"][0] == "¥2,000 in 1 payment"
    assert processing.public_id in listing
    assert fresh.public_id not in listing


def test_nothing_at_risk_says_so(login_as):
    client = login_as(OPS_READ_ONLY)

    shown = figures(client.get(DASHBOARD))

    assert shown["Nothing"][0] == "no payment is stuck"


def test_dead_outbox_messages_are_counted_and_link_to_the_dead_list(login_as):
    client = login_as(OPS_READ_ONLY)
    message = dead_message()
    dead_message()

    shown = figures(client.get(DASHBOARD))
    listing = client.get(shown["Dead messages"][1])

    assert shown["Dead messages"][0] == "2"
    assert listing.status_code == 200
    assert f'href="/admin/outbox/outboxmessage/{message.pk}/change/' in listing.content.decode()


def test_the_providers_breaker_state_is_shown_and_links_to_what_it_holds_back(login_as, breaker):
    client = login_as(OPS_READ_ONLY)
    breaker.current = "open"

    page = client.get(DASHBOARD)
    value, url = figures(page)["Stripe circuit breaker"]

    assert value == "open: calls held back"
    assert 'alt="Needs attention:"' in page.content.decode()
    assert client.get(url).status_code == 200
    assert "last_error_type__exact=circuit_open" in url


def dashboard_queries(client) -> list[str]:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(DASHBOARD).status_code == 200
    return [query["sql"] for query in captured]


def test_the_dashboard_costs_the_same_few_queries_however_many_rows(login_as, django_assert_max_num_queries):
    client = login_as(PAYMENTS_ADMIN)

    # The session, the user, their permissions (two), then one query per panel; the breaker is Redis.
    with django_assert_max_num_queries(10):
        client.get(DASHBOARD)
    before = dashboard_queries(client)
    for status in (S.PROCESSING, S.CAPTURE_REQUESTED, S.SUCCEEDED, S.FAILED):
        for currency in ("eur", "usd", "jpy", "kwd"):
            stuck(status, currency=currency, amount=5120, minutes=60)
    dead_message()

    assert len(dashboard_queries(client)) == len(before)


def test_the_dashboards_own_queries_can_all_be_answered_from_indexes(login_as):
    client = login_as(PAYMENTS_ADMIN)
    ours = [
        sql
        for sql in dashboard_queries(client)
        if any(
            table in sql
            for table in (
                "payments_payment",
                "outbox_outboxmessage",
                "payments_jobrun",
                "payments_reconciliationmismatch",
                "webhooks_webhookevent",
            )
        )
    ]

    with connection.cursor() as cursor:
        # An empty test table is cheapest to scan: forbid that, so a missing index shows as a Seq Scan.
        cursor.execute("SET LOCAL enable_seqscan = off")
        plans = []
        for sql in ours:
            cursor.execute(f"EXPLAIN {sql}")
            plans.append("\n".join(row[0] for row in cursor.fetchall()))

    assert len(plans) == 6  # today, at risk, dead outbox rows, parked/failed webhook events, beat jobs, mismatches
    for plan in plans:
        assert "Seq Scan" not in plan, plan


def test_parked_and_failed_webhook_events_are_counted_on_the_dashboard_with_links_to_them(login_as):
    from webhooks.models import WebhookEvent

    for n, status in enumerate([WebhookEvent.Status.PARKED, WebhookEvent.Status.PARKED, WebhookEvent.Status.FAILED]):
        WebhookEvent.objects.create(
            provider="stripe",
            provider_event_id=f"evt_dash_{n}",
            type="payment_intent.succeeded",
            status=status,
            payload={},
            provider_created_at=timezone.now(),
            received_at=timezone.now(),
        )
    client = login_as(OPS_READ_ONLY)

    page = client.get(DASHBOARD).content.decode()

    assert "Parked events" in page and "status__exact=PARKED" in page
    parked = page[page.index("Parked events") :]
    assert ">2<" in parked.replace(" ", "")[:400]
