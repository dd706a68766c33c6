"""Money as people read it everywhere in the admin; provider ids link to Stripe's dashboard only for a
real Stripe account."""

import pytest
from django.urls import reverse
from django.utils import timezone

from payments.gateway.stripe import dashboard_payment_url
from payments.models import Payment
from payments.services.events import payment_event_create
from tests.factories import RefundFactory, payment_with_status

pytestmark = pytest.mark.django_db
S = Payment.Status
CHANGELIST = reverse("admin:payments_payment_changelist")
SANDBOX = "http://127.0.0.1:12111"


@pytest.mark.parametrize(
    ("key", "api_base", "url"),
    [
        ("sk_test_abc", "", "https://dashboard.stripe.com/test/payments/pi_123"),
        ("rk_test_abc", "", "https://dashboard.stripe.com/test/payments/pi_123"),
        ("sk_live_abc", "", "https://dashboard.stripe.com/payments/pi_123"),
        ("sk_test_sandbox", SANDBOX, None),  # make run's sandbox: no dashboard has these ids
        ("sk_live_abc", "https://stripe-mock.internal", None),
        ("", "", None),
        ("not-a-stripe-key", "", None),
    ],
)
def test_dashboard_links_only_for_a_real_stripe_account(settings, key, api_base, url):
    settings.STRIPE_SECRET_KEY = key
    settings.STRIPE_API_BASE = api_base

    assert dashboard_payment_url(intent_id="pi_123") == url


@pytest.mark.parametrize(
    ("amount", "currency", "shown"),
    [(2000, "eur", "€20.00"), (2000, "usd", "$20.00"), (2000, "jpy", "¥2,000"), (5120, "kwd", "KWD&nbsp;5.120")],
)
def test_the_payment_list_shows_amounts_in_major_units_with_the_currency(admin_client, amount, currency, shown):
    payment_with_status(S.SUCCEEDED, amount=amount, currency=currency)

    html = admin_client.get(CHANGELIST).content.decode().replace("\u00a0", "&nbsp;")

    assert f'<td class="field-amount_money">{shown}</td>' in html


def test_the_payment_page_shows_every_amount_and_the_timelines_amounts_as_money(admin_client):
    payment = payment_with_status(S.SUCCEEDED, amount=5120, currency="kwd", provider_payment_id="pi_1")
    Payment.objects.filter(pk=payment.pk).update(amount_refunded=1000)
    RefundFactory(payment=payment, amount=1000)
    payment_event_create(
        payment=payment,
        type="payment.created",
        source="api",
        actor="api_key:abc",
        idempotency_key="created",
        now=timezone.now(),
        data={"amount": 5120, "currency": "kwd"},
    )

    html = admin_client.get(reverse("admin:payments_payment_change", args=[payment.pk])).content.decode()

    assert "KWD\u00a05.120" in html  # amount, received, and the timeline's data
    assert "KWD\u00a01.000" in html  # refunded, and the refund's amount
    assert "<div>amount: KWD\u00a05.120</div>" in html
    assert 'name="amount"' not in html  # shown, never editable


def test_refunds_show_their_amount_in_their_payments_currency(admin_client):
    RefundFactory(payment=payment_with_status(S.SUCCEEDED, amount=2000, currency="jpy"), amount=500)

    html = admin_client.get(reverse("admin:payments_refund_changelist")).content.decode()

    assert '<td class="field-amount_money">¥500</td>' in html


def test_provider_ids_link_to_the_stripe_dashboard_with_a_real_key(admin_client, settings):
    settings.STRIPE_SECRET_KEY, settings.STRIPE_API_BASE = "sk_test_abc", ""
    payment = payment_with_status(S.SUCCEEDED, provider_payment_id="pi_123")
    RefundFactory(payment=payment, provider_refund_id="re_456")

    payments = admin_client.get(CHANGELIST).content.decode()
    refunds = admin_client.get(reverse("admin:payments_refund_changelist")).content.decode()

    assert 'href="https://dashboard.stripe.com/test/payments/pi_123"' in payments
    assert 'href="https://dashboard.stripe.com/test/payments/pi_123"' in refunds  # a refund shows on its payment
    assert ">re_456</a>" in refunds


def test_provider_ids_are_plain_text_against_the_sandbox(admin_client, settings):
    settings.STRIPE_SECRET_KEY, settings.STRIPE_API_BASE = "sk_test_sandbox", SANDBOX
    payment_with_status(S.SUCCEEDED, provider_payment_id="pi_123")

    html = admin_client.get(CHANGELIST).content.decode()

    assert "pi_123" in html
    assert "dashboard.stripe.com" not in html
